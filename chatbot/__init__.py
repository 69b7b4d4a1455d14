"""Answer questions about a folder of documents with exact, cited quotations, and nothing else."""

from .answer import Answer
from .bot import Chatbot
from .config import Config, load_config
from .errors import ChatbotError
from .quote import Quote, Source

__all__ = ["Answer", "Chatbot", "ChatbotError", "Config", "Quote", "Source", "load_config"]
