"""App: what people use, the command line, a file of questions answered at once, the terminal chat and the web page.
May import: every stage below it (training, answering, index, documents) and chatbot.config, chatbot.errors."""
