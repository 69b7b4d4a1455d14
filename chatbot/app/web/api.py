"""The page's HTTP API: /ask answers one question with the answer JSON, for gradio_client or plain HTTP
(/gradio_api/call/ask); a mistake in the request is an error for the caller, never a crash with a traceback.

Usage example:
    gr.api(ask_endpoint(bot), api_name="ask")          # inside the page's gr.Blocks (page.py)
    Client("http://127.0.0.1:7860/").predict("Which chip did Guangdong highlight?", api_name="/ask")
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from ...answering.bot import Chatbot
from ...errors import ChatbotError


def ask_endpoint(bot: Chatbot) -> Callable[..., dict]:
    """The /ask handler for `bot`; Gradio describes the API by its signature and docstring."""

    def ask_api(question: str = "", max_quotes: int | None = None, min_confidence: float | None = None) -> dict:
        """Answer one question from the documents. Returns the answer JSON: quotes with exact character
        offsets into their documents, or an abstention with the nearest passages."""
        if not isinstance(question, str):
            raise _user_error("the question must be text")
        overrides = {"max_quotes": max_quotes, "min_confidence": min_confidence}
        try:
            answer = bot.ask(question, answer={k: v for k, v in overrides.items() if v is not None} or None)
        except ChatbotError as exc:
            raise _user_error(str(exc)) from None
        return answer.to_dict()

    return ask_api


def _user_error(message: str) -> gr.Error:
    """An error for the caller to fix: reported to them, not logged as a crash with a traceback."""
    return gr.Error(message, print_exception=False)
