"""Answering: retrieve, rank and verify sentences, compose an answer of exact quotes (Answer, Quote), the Chatbot facade, recheck.
May import: chatbot.index, chatbot.documents, chatbot.config, chatbot.errors."""
