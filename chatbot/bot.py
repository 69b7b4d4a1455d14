"""The Chatbot facade: keeps the index fresh and answers questions with cited quotations.

Usage example:
    from chatbot import Chatbot
    bot = Chatbot.from_config()                      # config/default.toml; docs=..., index=... override
    answer = bot.ask("Which chip did Guangdong highlight?")
    print(answer.text)                               # “Central to ... chip.” [1]
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Sequence

from .answer import Answer
from .compose import compose
from .config import Config, load_config
from .embed import Embedder
from .errors import ChatbotError
from .indexer import IndexReport, is_current, refresh_index
from .lexical import tokenize
from .rank import rank_sentences
from .retrieve import retrieve
from .store import IndexData

log = logging.getLogger("chatbot")


class Chatbot:
    """Answers questions from a folder of documents; `ask` is `ask_batch` of one question."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.embedder = Embedder(config.model.name, config.model.batch_size, config.model.device)
        self._data: IndexData | None = None
        self._refresh_lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> Chatbot:
        """A chatbot from a TOML file (default: config/default.toml) with overrides such as docs=, index=."""
        return cls(load_config(path, **overrides))

    def index(self, force: bool = False) -> IndexReport:
        """Bring the index up to date with the documents (or rebuild it with force=True); say what was done."""
        with self._refresh_lock:
            data, report = refresh_index(self.config, self.embedder, force=force)
            self._install(data)
        return report

    def ask(self, question: str) -> Answer:
        return self.ask_batch([question])[0]

    def ask_batch(self, questions: Sequence[str]) -> list[Answer]:
        """Answers in input order; the same as calling `ask` on each, but the questions are embedded together."""
        questions = list(questions)
        for question in questions:
            if not isinstance(question, str) or not question.strip():
                raise ChatbotError("the question is empty")
        if not questions:
            return []
        data = self.data
        tokens = [tokenize(question) for question in questions]
        vectors = self.embedder.encode(questions)
        hits = retrieve(data, tokens, vectors, self.config.retrieve)
        return [
            compose(
                question,
                rank_sentences(data, question, tokens[i], vectors[i], hits[i], self.config.confidence),
                hits[i],
                data,
                self.config.answer,
            )
            for i, question in enumerate(questions)
        ]

    @property
    def data(self) -> IndexData:
        """The index in use: loaded on first use, and refreshed first when the documents or settings changed."""
        data = self._data
        if data is not None and is_current(data.manifest, self.config):
            return data
        with self._refresh_lock:
            if self._data is data:  # nobody refreshed it while this thread waited
                if data is not None:
                    log.info("documents changed since the index was loaded; updating the index")
                new, report = refresh_index(self.config, self.embedder)
                if report.action != "unchanged":
                    log.info("%s", report.summary())
                self._install(new)
            return self._data

    def _install(self, data: IndexData) -> None:
        data.sentence_passage  # computed here, once, rather than by the first question
        self._data = data
