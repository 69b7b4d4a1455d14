"""Training: make the verifier's examples and train it, evaluate answers against known ones, calibrate the settings.
May import: chatbot.answering, chatbot.index, chatbot.documents, chatbot.config, chatbot.errors."""
