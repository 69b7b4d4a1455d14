"""Answering: retrieve, rank and verify sentences, compose answers of exact quotes, the Chatbot facade, re-check quotes.
May import: chatbot.index, chatbot.documents, chatbot.config, chatbot.errors."""
