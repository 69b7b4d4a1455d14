"""The Chatbot facade: keeps the index fresh and answers questions with cited quotations.

Usage example:
    from chatbot import Chatbot
    bot = Chatbot.from_config()                      # config/default.toml; docs=..., index=... override
    answer = bot.ask("Which chip did Guangdong highlight?")
    print(answer.text)                               # “Central to ... chip.” [1]
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, apply_overrides, load_config
from ..errors import ChatbotError
from ..index.build import Progress
from ..index.embed import Embedder, torch_threads
from ..index.indexer import IndexReport, is_current, refresh_index
from ..index.lexical import tokenize
from ..index.store import IndexData
from .answer import Answer
from .compose import compose
from .rank import Ranked, rank_sentences
from .retrieve import Hits, retrieve
from .verifier import Verification, Verifier, apply

log = logging.getLogger("chatbot")
# Undecodable bytes from a command line arrive as lone surrogates, which no encoder accepts.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A question must hold a word: a letter or digit of any script, outside a terminal's escape sequences ("\x1b[2J"
# holds a "2" and a "J", but clears a screen and asks nothing).
_WORD = re.compile(r"[^\W_]")
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def question_problem(question: Any, max_chars: int) -> str | None:
    """Why `question` cannot be asked, or None: not text, empty (nothing but spaces, punctuation, symbols or
    control and zero-width characters: no word in it) or longer than `max_chars` ([answer] max_question_chars)."""
    if not isinstance(question, str):
        return f"a question must be text, got {type(question).__name__}"
    if not question.strip():
        return "the question is empty"
    if len(question) > max_chars:
        return (
            f"the question is {len(question):,} characters long; at most {max_chars:,} are accepted "
            "([answer] max_question_chars)"
        )
    if not _WORD.search(_ESCAPE_SEQUENCE.sub("", question)):
        return "the question is empty: it has no words, only punctuation, symbols or control characters"
    return None


@dataclass(frozen=True)
class Evidence:
    """Why an answer is what it is: the passages retrieved and every candidate sentence with its features."""

    hits: Hits
    ranked: Ranked  # as the answer was composed from: after the verifier, when it is on
    data: IndexData  # the index it was read from
    prior: Ranked | None = None  # the ranking model's order before the verifier read it
    verification: Verification | None = None  # what the verifier read, in `prior`'s order


class Chatbot:
    """Answers questions from a folder of documents; `ask` is `ask_batch` of one question."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.embedder = Embedder(config.model.name, config.model.batch_size, config.model.device, config.model.dtype)
        self.verifier = Verifier.from_config(config.verifier, config.model.answer_threads)
        self._data: IndexData | None = None
        self._pinned = False  # answer from _data as it is, never refreshing it (see `pinned`)
        self._refresh_lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> Chatbot:
        """A chatbot from a TOML file (default: config/default.toml) with overrides such as docs=, index=."""
        return cls(load_config(path, **overrides))

    def replace(self, **overrides: Any) -> Chatbot:
        """A chatbot with some settings changed (same forms as `from_config`) that shares this one's loaded
        index and model; settings that shape the index make it refresh as usual."""
        other = Chatbot(apply_overrides(self.config, **overrides))
        other.embedder = self.embedder
        if (other.verifier.folder, other.verifier.precision, other.verifier.threads) == (
            self.verifier.folder, self.verifier.precision, self.verifier.threads
        ):
            other.verifier = self.verifier
        other._data = self._data
        return other

    def pinned(self) -> Chatbot:
        """A chatbot that answers from the index in use now and never refreshes it, sharing this one's model:
        it answers at once while this one brings the index up to date (say, after an upload), though its
        answers miss what changed. Loads (or builds) the index first if there is none yet."""
        other = self.replace()
        other._data = self.data
        other._pinned = True
        return other

    def question_problem(self, question: Any) -> str | None:
        """Why `question` cannot be asked (empty, no words, too long), or None; `ask` raises ChatbotError with it."""
        return question_problem(question, self.config.answer.max_question_chars)

    def warm_up(self) -> None:
        """Load (or build) the index and load the model now, with all a first question loads, rather than
        make the first question wait (and so that Ctrl-C during an answer never cuts torch's import short)."""
        self.ask("What do the documents say?")

    def index(self, force: bool = False, on_progress: Progress | None = None) -> IndexReport:
        """Bring the index up to date with the documents (or rebuild it with force=True); say what was done.
        `on_progress(done, total)` is called as a build embeds texts (not at all when nothing is embedded)."""
        with self._refresh_lock:
            data, report = refresh_index(self.config, self.embedder, force=force, on_progress=on_progress)
            self._install(data)
        return report

    def ask(self, question: str, answer: dict[str, Any] | None = None) -> Answer:
        return self.ask_batch([question], answer)[0]

    def ask_batch(self, questions: Sequence[str], answer: dict[str, Any] | None = None) -> list[Answer]:
        """Answers in input order; the same as calling `ask` on each, but the questions are embedded together.

        `answer` overrides [answer] settings for these questions only, e.g. {"max_quotes": 1}.
        """
        return [reply for reply, _ in self.explain_batch(questions, answer)]

    def explain_batch(
        self, questions: Sequence[str], answer: dict[str, Any] | None = None
    ) -> list[tuple[Answer, Evidence]]:
        """Answers with the evidence behind them (retrieved passages, scored candidate sentences)."""
        settings = apply_overrides(self.config, answer=answer).answer if answer else self.config.answer
        if isinstance(questions, str):
            raise ChatbotError("ask_batch takes a list of questions; use ask for a single one")
        questions = [
            _LONE_SURROGATE.sub("\ufffd", question) if isinstance(question, str) else question for question in questions
        ]
        for question in questions:
            problem = question_problem(question, settings.max_question_chars)
            if problem:
                raise ChatbotError(problem)
        if not questions:
            return []
        data = self.data
        for question in questions:
            if self.embedder.over_limit(question):
                log.warning(
                    "a question of %d characters is longer than the model reads; its meaning is taken from the "
                    "start, its words from all of it",
                    len(question),
                )
        with torch_threads(self.config.model.answer_threads):
            return self._answer(data, questions, settings)

    def _answer(self, data: IndexData, questions: list[str], settings) -> list[tuple[Answer, Evidence]]:
        tokens = [tokenize(question) for question in questions]
        vectors = self.embedder.encode(questions)
        results = []
        for question, words, vector, hits in zip(
            questions,
            tokens,
            vectors,
            retrieve(data, tokens, vectors, self.config.retrieve, self.config.search.hnsw_ef_search),
        ):
            prior = rank_sentences(
                data,
                question,
                words,
                vector,
                hits,
                self.config.ranking,
                self.config.confidence,
                self.embedder.word_vectors,
            )
            verification, ranked = None, prior
            if self.config.verifier.enabled:
                verification = self.verifier.read(data, question, prior, self.config.verifier.candidates)
                ranked = apply(prior, verification, self.config.verifier)
            evidence = Evidence(hits, ranked, data, prior, verification)
            results.append((compose(question, ranked, hits, data, settings), evidence))
        return results

    @property
    def data(self) -> IndexData:
        """The index in use: loaded on first use, and refreshed first when the documents or settings changed,
        or when its build on disk was replaced or changed under this process (then loaded again, checked)."""
        data = self._data
        if data is not None and (
            self._pinned or (is_current(data.manifest, self.config) and not data.changed_on_disk())
        ):
            return data
        with self._refresh_lock:
            if self._data is data:  # nobody refreshed it while this thread waited
                if data is not None:
                    log.info("the documents or the index changed since the index was loaded; updating the index")
                new, report = refresh_index(self.config, self.embedder)
                if report.action != "unchanged":
                    log.info("%s", report.summary())
                self._install(new)
            return self._data

    def _install(self, data: IndexData) -> None:
        data.sentence_passage  # computed here, once, rather than by the first question
        data.sentence_lexical.distinct_terms
        self._data = data
