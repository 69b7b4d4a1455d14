"""App: what people use: the command line, a file of questions answered at once, the terminal chat, the web page.
May import: every stage below it (training, answering, index, documents), chatbot.config, chatbot.errors."""
