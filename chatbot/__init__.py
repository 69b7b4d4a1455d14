"""Answer questions about a folder of documents with exact, cited quotations, and nothing else."""

from .answering.answer import Answer
from .answering.bot import Chatbot
from .answering.quote import Quote, Source
from .config import Config, load_config
from .errors import ChatbotError

__all__ = ["Answer", "Chatbot", "ChatbotError", "Config", "Quote", "Source", "load_config"]
