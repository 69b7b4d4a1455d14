"""The web page (Gradio): layout and events (page), documents panel, rendering, HTTP API (api), server.
May import: answering, index, documents, chatbot.config, chatbot.errors; never the rest of app (cli, batch, chat)."""

import os

# Before any module of the page imports gradio, so that nothing phones home.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
