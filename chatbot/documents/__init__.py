"""Documents: find and read files (text, PDF, HTML, DOCX), read their structure, cut them into quote units and passages.
May import: chatbot.config and chatbot.errors only."""
