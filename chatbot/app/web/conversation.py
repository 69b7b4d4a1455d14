"""One visitor's conversation on the page: questions queued in the order asked, answered in turn, and the chat's
handlers that take a question at once and answer the waiting ones (the slow step), with the exports rewritten
after each answer.

Usage example:
    handlers = ChatHandlers(bot, DocumentUpdate(bot))
    question.submit(handlers.accept, ...).then(handlers.answer_waiting, ...)     # as page.py connects them
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gradio as gr

from ...answering.answer import Answer
from ...answering.bot import Chatbot
from ...errors import ChatbotError
from .documents import DocumentUpdate
from .render import answer_html, conversation_jsonl, conversation_markdown, escape, hint_html, sources_html, status_html

QUEUED = "Your question is queued: it is answered as soon as the one before it is."


EMPTY = "Type a question first."


@dataclass
class Turn:
    """A question and, once it is answered, its answer (or the error that stopped it)."""

    question: str
    settings: dict[str, Any]
    answer: Answer | None = None
    error: str = ""
    started: bool = False
    note: str = ""  # shown under the answer, e.g. that it comes from the documents as they were
    order: int | None = None  # the browser's count of questions asked; None for an example question


def _later(turn: Turn, than: Turn) -> bool:
    """Whether `turn` was asked after `than` in the browser but has not been started yet (it reached the
    server first): `than` goes before it."""
    return not turn.started and None not in (turn.order, than.order) and turn.order > than.order


@dataclass
class Conversation:
    """One visitor's questions in the order asked, kept on the server (see Conversations) so that a question
    asked while another is being answered is never lost: answering takes the waiting ones in turn."""

    turns: list[Turn] = field(default_factory=list)
    busy: bool = False  # one of this visitor's requests is answering the waiting questions
    # One lock for all conversations, held for a moment only
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def add(self, question: str, settings: dict[str, Any], order: int | None = None) -> bool:
        """Queue a question, in the place its `order` (the browser's count of questions asked) gives it, or
        last; True when another question is still to be answered."""
        with self._guard:
            ahead = any(turn.answer is None and not turn.error for turn in self.turns)
            turn = Turn(question, settings, order=order)
            later = [number for number, other in enumerate(self.turns) if _later(other, turn)]
            self.turns.insert(later[0] if later else len(self.turns), turn)
            return ahead

    def claim(self) -> bool:
        """Become the one request answering this conversation; False if another already is."""
        with self._guard:
            if self.busy:
                return False
            self.busy = True
            return True

    def next_waiting(self) -> Turn | None:
        """The earliest unanswered question, marked as started; None (and the claim given up) when none is
        left, in one step, so that a question added meanwhile is either taken here or finds no claim."""
        with self._guard:
            turn = next((turn for turn in self.turns if not turn.started), None)
            if turn is None:
                self.busy = False
            else:
                turn.started = True
            return turn

    def forget(self) -> None:
        with self._guard:
            self.turns = []

    @property
    def answers(self) -> list[Answer]:
        return [turn.answer for turn in self.turns if turn.answer is not None]


class Conversations:
    """Every visitor's Conversation, by Gradio session, the least recently used dropped past `capacity`.

    Kept here rather than in a gr.State: Gradio creates a new session's state without a lock, so two events
    that open a session together (the page's load and a first question typed at once) can each get a state
    of their own, and the question goes with the one that is dropped."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._by_session: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, request: gr.Request | None) -> Conversation:
        key = getattr(request, "session_hash", None) or ""
        with self._lock:
            conversation = self._by_session.pop(key, None) or Conversation()
            self._by_session[key] = conversation
            while len(self._by_session) > self.capacity:
                self._by_session.popitem(last=False)
            return conversation


def chat_messages(conversation: Conversation) -> list[dict[str, str]]:
    """The chat as Gradio messages: every question at once, then its answer, or a line saying it is coming."""
    messages, number = [], 0
    pending = [turn for turn in conversation.turns if turn.answer is None and not turn.error]
    # the one being answered: the one started, or else the first, which is about to be
    answering = next((turn for turn in pending if turn.started), pending[0] if pending else None)
    for turn in conversation.turns:
        messages.append({"role": "user", "content": escape(turn.question)})
        if turn.answer is not None:
            number += 1
            content = answer_html(turn.answer, number) + (
                f'<p class="qa-note">{escape(turn.note)}</p>' if turn.note else ""
            )
        elif turn.error:
            content = status_html([f"error: {turn.error}"], error=True)
        else:
            text = "Finding the answer…" if turn is answering else "Waiting for its turn…"
            content = f'<p class="qa-pending">{text}</p>'
        messages.append({"role": "assistant", "content": content})
    return messages


def _write_exports(answers: list[Answer], folder: Path) -> tuple[str, str]:
    """The conversation's two export files, rewritten in the visitor's own folder after each answer."""
    folder.mkdir(exist_ok=True)
    markdown = folder / "conversation.md"
    jsonl = folder / "conversation.jsonl"
    markdown.write_text(conversation_markdown(answers), encoding="utf-8")
    jsonl.write_text(conversation_jsonl(answers), encoding="utf-8")
    return str(markdown), str(jsonl)


def _session_folder(request: gr.Request | None) -> str:
    session = getattr(request, "session_hash", None) or "anonymous"
    return re.sub(r"[^A-Za-z0-9_-]", "_", session)[:64]


class ChatHandlers:
    """The chat's event handlers, shared by every visitor: `accept` puts a question into its visitor's
    conversation at once, `answer_waiting` answers the waiting ones in turn (from the index as it was while the
    documents are re-indexed, with a note), `forget` empties the conversation when the chat's bin is clicked."""

    def __init__(self, bot: Chatbot, update: DocumentUpdate) -> None:
        self.bot, self.update = bot, update
        self.conversations = Conversations()
        self.exports = tempfile.TemporaryDirectory(prefix="chatbot-exports-")  # lives as long as the handlers

    def accept(self, question: str, order: float | None, max_quotes: float, min_confidence: float, request: gr.Request):
        """The fast first step (not queued): the question joins the conversation at once, so that the box
        is free for the next one and nothing typed meanwhile is lost."""
        question = (question or "").strip()
        if not question:
            return gr.skip(), hint_html(EMPTY)
        problem = self.bot.question_problem(question)  # no words in it, or too long: said at once, under the box
        if problem:
            return gr.skip(), hint_html(f"{problem[0].upper()}{problem[1:]}.")
        conversation = self.conversations.of(request)
        settings = {"max_quotes": int(max_quotes), "min_confidence": float(min_confidence)}
        ahead = conversation.add(question, settings, None if order is None else int(order))
        return chat_messages(conversation), hint_html(QUEUED if ahead else "")

    def accept_example(self, max_quotes: float, min_confidence: float, evt: gr.SelectData, request: gr.Request):
        return self.accept(evt.value["text"], None, max_quotes, min_confidence, request)

    def answer_waiting(self, request: gr.Request):
        """The slow step: answer the conversation's waiting questions in the order asked. A visitor's
        questions are answered one at a time; a request that finds another answering leaves it to that one."""
        conversation = self.conversations.of(request)
        unchanged = (gr.skip(),) * 5
        if not conversation.claim():
            yield unchanged
            return
        while (turn := conversation.next_waiting()) is not None:
            asker, turn.note = self.update.answerer()
            try:
                turn.answer = asker.ask(turn.question, answer=turn.settings)
            except ChatbotError as exc:
                turn.error = str(exc)
            answers = conversation.answers
            waiting = any(not t.started for t in conversation.turns)
            if not answers:
                yield chat_messages(conversation), gr.skip(), gr.skip(), gr.skip(), hint_html("")
                continue
            markdown, jsonl = _write_exports(answers, Path(self.exports.name) / _session_folder(request))
            yield (
                chat_messages(conversation),
                sources_html(answers),
                gr.DownloadButton(value=markdown, interactive=True),
                gr.DownloadButton(value=jsonl, interactive=True),
                hint_html(QUEUED if waiting else ""),
            )
        yield unchanged  # a generator that yields nothing would blank every output (the hint included)

    def forget(self, request: gr.Request):
        """After the chat's bin is clicked: the questions, answers, their sources and the downloads go too."""
        self.conversations.of(request).forget()
        nothing = gr.DownloadButton(value=None, interactive=False)
        return sources_html([]), nothing, nothing, hint_html("")
