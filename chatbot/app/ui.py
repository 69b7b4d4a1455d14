"""The web chat (Gradio): ask, read the quoted answer, check each quote in its source, manage the documents.

Every piece of document text (quotes, passages, file names) is escaped before it reaches the page, so a
document holding HTML, script or Markdown shows as text. Settings from the page apply to one request at a
time (`Chatbot.ask(..., answer=...)`); the chatbot itself is shared by all visitors and never changed by one.

Usage example:
    from chatbot import Chatbot
    from chatbot.app.ui import serve
    serve(Chatbot.from_config(), host="127.0.0.1", port=7860)       # blocks; Ctrl-C stops it

    # from another program, with gradio_client:
    Client("http://127.0.0.1:7860/").predict("Which chip did Guangdong highlight?", api_name="/ask")
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..answering.answer import Answer, confidence_label
from ..answering.bot import Chatbot
from ..answering.quote import Quote, Source
from ..config import PROJECT_ROOT
from ..documents.load import UPLOADS
from ..errors import ChatbotError
from ..index.indexer import IndexReport
from ..index.uploads import Uploads, clean_name, size_text

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # after the variable above, so that nothing phones home

MAX_QUOTES_CHOICE = 6  # the largest "number of quotes" the settings slider offers
HEADING_CHARS = 120  # a question longer than this is shortened where it heads its sources (in full on hover)
ASK_CONCURRENCY = 8  # questions answered at the same time; more wait in Gradio's queue

# Every ASCII character that means something to HTML, Markdown, LaTeX or a JS template becomes a numeric
# entity; line breaks become <br>; other control characters go. Letters, digits and spaces stay as they are.
_ESCAPES: dict[int, str | None] = {code: f"&#{code};" for code in range(33, 128) if not chr(code).isalnum()}
_ESCAPES.update({code: None for code in range(32) if code not in (9, 10)})
_ESCAPES.update({9: "&#9;", 10: "<br>", 127: None})
# The ASCII characters that can begin Markdown (emphasis, links, images, code, headings, tables, maths) or HTML
# (tags, entities) or a highlight (==) within a line; "-", "+", "." and the like matter only at a line's start,
# where none is put.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]<>#!&|~$=]")

# The page's fonts are the system's own (Gradio's default bundles a subset of Source Sans Pro that lacks most
# glyphs, so a bold capital "A" was drawn in a fallback font): complete, and nothing to download.
SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Noto Sans", "Liberation Sans", "Arial", "sans-serif")
SYSTEM_MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace")
THEME = gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS)

CSS = """
#qa-sources { max-height: 75vh; overflow-y: auto !important; }
#qa-chat .message { overflow-wrap: anywhere; }
.qa-answer p, .qa-abstain p { margin: 0 0 .4em 0; }
.qa-quote { font-style: italic; }
.qa-cite { font-weight: 600; text-decoration: none; white-space: nowrap; }
.qa-abstain { border-left: 4px solid #9ca3af; padding-left: .6em; color: #4b5563; }
.dark .qa-abstain { color: #d1d5db; }
.qa-meta { font-size: .85em; }
.qa-pending { font-style: italic; color: #4b5563; margin: 0; }
.dark .qa-pending { color: #d1d5db; }
.qa-note { border-left: 4px solid #b45309; padding-left: .6em; margin: .4em 0 0 0; font-size: .9em; }
.dark .qa-note { border-left-color: #fbbf24; }
.qa-conf { border-bottom: 1px dotted currentColor; cursor: help; }
/* at least 4.5:1 against the chat's message backgrounds, light and dark */
.qa-conf-high { color: #166534; } .qa-conf-medium { color: #92400e; } .qa-conf-low { color: #991b1b; }
.dark .qa-conf-high { color: #4ade80; } .dark .qa-conf-medium { color: #fbbf24; } .dark .qa-conf-low { color: #fca5a5; }
.qa-turn { margin-bottom: 1em; }
.qa-turn h3, .qa-turn summary { font-size: 1em; font-weight: 600; margin: .2em 0 .5em 0; overflow-wrap: anywhere; }
.qa-source { border: 1px solid #d1d5db; border-radius: 6px; padding: .5em .7em; margin: 0 0 .6em 0; scroll-margin: 1em; }
.qa-nearest .qa-source { border-style: dashed; }
.qa-source header { font-size: .9em; font-weight: 600; margin-bottom: .3em; overflow-wrap: anywhere; }
.qa-passage { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .92em; line-height: 1.45; }
.qa-passage mark { background: #fde68a; color: #1f2937; padding: 0 .1em; }
.qa-flash { outline: 3px solid #f59e0b; }
.qa-docs { width: 100%; border-collapse: collapse; font-size: .92em; }
.qa-docs td, .qa-docs th { text-align: left; padding: .2em .5em; border-bottom: 1px solid #e5e7eb; overflow-wrap: anywhere; }
.qa-docs td.qa-num { text-align: right; white-space: nowrap; }
.qa-status-error { color: #b91c1c; }
.dark .qa-status-error { color: #fca5a5; }
#qa-hint p { margin: 0; font-size: .9em; }
"""

# Clicking a citation [n] (mouse, or Enter on it) opens and scrolls to its source in the sources panel.
HEAD = """<script>
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a.qa-cite");
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  var target = document.getElementById((link.getAttribute("href") || "").slice(1));
  if (!target) return;
  var details = target.closest("details");
  if (details) details.open = true;
  target.scrollIntoView({behavior: "smooth", block: "center"});
  target.focus({preventScroll: true});
  target.classList.add("qa-flash");
  setTimeout(function () { target.classList.remove("qa-flash"); }, 2000);
}, true);

// The question box is emptied by a step that Gradio runs a moment after Enter; on a busy page the next
// question's first keys can land before it. Note the question as it was when Enter went down, so that
// TAKE_QUESTION moves exactly that out of the box and leaves whatever was typed after it.
document.addEventListener("keydown", function (event) {
  if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
  if (event.target.closest && event.target.closest("#qa-question")) window.qaAsked = event.target.value;
}, true);

// Gradio labels each chat message for screen readers with its raw content, which here is escaped HTML
// ("based&#63;", '<div class="qa-answer">'); label it with the text shown instead.
function qaRelabel() {
  document.querySelectorAll('#qa-chat [aria-label*="message: "]').forEach(function (message) {
    var label = message.getAttribute("aria-label");
    var shown = label.slice(0, label.indexOf(": ") + 2) + message.innerText.replace(/\\s+/g, " ").trim();
    if (label !== shown) message.setAttribute("aria-label", shown);
  });
}
new MutationObserver(function (changes) {
  var inChat = changes.some(function (change) {
    var node = change.target.nodeType === 1 ? change.target : change.target.parentElement;
    return node && node.closest("#qa-chat");
  });
  if (inChat) qaRelabel();
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ["aria-label"]});
</script>"""

# The browser-side first step of asking: [the question, what stays in the box].
# Also numbers the questions in the order asked: two asked in quick succession may reach the server in the
# other order, and the conversation puts them back in this one.
TAKE_QUESTION = """(text) => {
  var asked = typeof window.qaAsked === "string" && text.startsWith(window.qaAsked) ? window.qaAsked : text;
  window.qaAsked = null;
  window.qaOrder = (window.qaOrder || 0) + 1;
  return [asked, text.slice(asked.length), window.qaOrder];
}"""


def escape(text: str) -> str:
    """`text` as HTML that displays exactly this text and nothing else, even after Markdown rendering."""
    return text.translate(_ESCAPES)


# ----- what the page shows -------------------------------------------------------------------------------


def answer_html(answer: Answer, turn: int) -> str:
    """A chat message for an answer: the quotes with citation links, or the abstention; then the confidence."""
    label = answer.label or confidence_label(answer.confidence)
    confidence = (
        f'<span class="qa-conf qa-conf-{label}" title="confidence {answer.confidence:.2f} of 1">'
        f"{label} confidence</span>"
    )
    if answer.abstained:
        nearest = ", ".join(f"{_cite_link(turn, s.citation)} {_where(answer, s)}" for s in answer.sources)
        parts = [
            f"<p><strong>{escape(answer.text)}</strong></p>",
            f"<p>Nearest text (not an answer): {nearest}</p>" if nearest else "",
            f'<p class="qa-meta">{confidence}</p>',
        ]
        return f'<div class="qa-abstain">{"".join(parts)}</div>'
    quotes = " ".join(
        f'<span class="qa-quote">“{_marked_html(quote)}”</span> {_cite_link(turn, quote.citation)}'
        for quote in answer.quotes
    )
    cited = ", ".join(f"{_cite_link(turn, s.citation)} {_where(answer, s)}" for s in answer.sources)
    return f'<div class="qa-answer"><p>{quotes}</p><p class="qa-meta">{confidence} · {cited}</p></div>'


def _marked_html(quote: Quote) -> str:
    """A quote's text, escaped, with the answer's own words (if the verifier marked them) in bold."""
    before, phrase, after = quote.parts()
    return escape(before) + (f'<strong class="qa-phrase">{escape(phrase)}</strong>' if phrase else "") + escape(after)


def sources_html(answers: list[Answer]) -> str:
    """The sources panel: the latest answer's sources open, earlier answers' folded away below them."""
    if not answers:
        return '<p class="qa-meta">The sources of each answer appear here, with the quoted text highlighted.</p>'
    parts = []
    for turn in range(len(answers), 0, -1):
        answer = answers[turn - 1]
        body = "".join(_source_html(answer, source, turn) for source in answer.sources)
        if answer.abstained:
            title = "Nearest text — not an answer"
            body = body or '<p class="qa-meta">No passage came close.</p>'
        else:
            title = "Sources"
        kind = "qa-nearest" if answer.abstained else "qa-cited"
        heading = f"{title} for “{escape(_shorten(answer.question))}”"
        full = f'title="{escape(" ".join(answer.question.split()))}"'
        if turn == len(answers):
            parts.append(
                f'<section class="qa-turn {kind}" id="qa-turn-{turn}"><h3 {full}>{heading}</h3>{body}</section>'
            )
        else:
            if turn == len(answers) - 1:
                parts.append('<h3 class="qa-meta">Earlier answers</h3>')
            parts.append(
                f'<details class="qa-turn {kind}" id="qa-turn-{turn}"><summary {full}>{heading}</summary>'
                f"{body}</details>"
            )
    return "".join(parts)


def passage_html(source: Source, answer: Answer) -> str:
    """The source's passage, escaped, with the quotes cited to it highlighted (by offsets, not by search)."""
    text = source.text
    spans = sorted(
        (quote.start - source.start, quote.end - source.start)
        for quote in answer.quotes
        if quote.citation == source.citation and quote.source == source.source
    )
    out, position = [], 0
    for lo, hi in spans:
        lo, hi = max(lo, position), min(hi, len(text))
        if lo >= hi:
            continue
        out += [escape(text[position:lo]), "<mark>", escape(text[lo:hi]), "</mark>"]
        position = hi
    out.append(escape(text[position:]))
    return "".join(out)


def documents_html(documents: list[dict[str, Any]], docs: Path | None = None, uploads: Path | None = None) -> str:
    """The indexed documents with where each is kept (the documents folder, or the uploads folder for those
    cited as .uploads/NAME), their sizes and sentences, as an escaped table under a line naming both folders."""
    folders = ""
    if docs is not None and uploads is not None:
        folders = (
            f'<p class="qa-meta">Documents folder: {escape(str(docs))} (never changed from this page). '
            f"Uploads: {escape(str(uploads))} (cited as {escape(UPLOADS)}NAME).</p>"
        )
    if not documents:
        return folders + '<p class="qa-meta">No documents are indexed.</p>'
    rows = "".join(
        f'<tr><td>{escape(doc["path"])}</td><td>{_kept_in(doc["path"])}</td>'
        f'<td class="qa-num">{size_text(doc["size"])}</td><td class="qa-num">{doc.get("sentences", 0):,}</td></tr>'
        for doc in documents
    )
    return (
        f'{folders}<table class="qa-docs"><thead><tr><th>Document</th><th>Kept in</th><th class="qa-num">Size</th>'
        f'<th class="qa-num">Sentences</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _kept_in(path: str) -> str:
    return "uploads" if path.startswith(UPLOADS) else "documents folder"


def status_html(lines: list[str], error: bool = False) -> str:
    css = ' class="qa-status-error"' if error else ""
    return "".join(f"<p{css}>{escape(line)}</p>" for line in lines)


def _source_html(answer: Answer, source: Source, turn: int) -> str:
    return (
        f'<article class="qa-source" id="qa-src-{turn}-{source.citation}" tabindex="-1">'
        f"<header>[{source.citation}] {_where(answer, source)}</header>"
        f'<div class="qa-passage">{passage_html(source, answer)}</div></article>'
    )


def _where(answer: Answer, source: Source) -> str:
    """Where a citation points, escaped: the document and its first quote's page and line (for nearest text,
    the passage's)."""
    at = next((q for q in answer.quotes if q.citation == source.citation), source)
    page = f", page {at.page}" if getattr(at, "page", None) is not None else ""
    section = getattr(at, "section", "")  # a quote's place: the headings above it, its table's header
    context = " ".join(getattr(at, "context", "").split())
    place = (f" · {escape(section)}" if section else "") + (f" · under “{escape(context[:160])}”" if context else "")
    return f"{escape(source.source)}{page}, line {at.line}{place}"


def _shorten(question: str) -> str:
    """A question as a heading: on one line, and cut at a word (with "…") when longer than HEADING_CHARS."""
    text = " ".join(question.split())
    if len(text) <= HEADING_CHARS:
        return text
    cut = text[: HEADING_CHARS - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut[HEADING_CHARS // 2 :] else cut) + "…"


def _cite_link(turn: int, citation: int) -> str:
    return f'<a class="qa-cite" href="#qa-src-{turn}-{citation}" title="Show source {citation}">[{citation}]</a>'


# ----- export ----------------------------------------------------------------------------------------------


def conversation_markdown(answers: list[Answer]) -> str:
    """The conversation as Markdown: each question, its quoted answer and where each quote came from. All
    text from the visitor or the documents is quoted as text (see `markdown_text`), never as Markdown."""
    lines = ["# Conversation", ""]
    for answer in answers:
        lines += [f"## {markdown_text(answer.question)}", "", _markdown_answer(answer), ""]
        if answer.abstained:
            lines += ["Nearest text (not an answer):", ""]
        lines += [f"- {_cited(item)}" for item in (answer.sources if answer.abstained else answer.quotes)]
        lines += ["", f"Confidence: {answer.confidence:.2f} ({answer.label or confidence_label(answer.confidence)})", ""]
    return "\n".join(lines)


def markdown_text(text: str) -> str:
    """`text` on one line, with every character that could start Markdown or HTML backslash-escaped, so that
    it renders as exactly this text (line breaks become spaces, as Markdown shows them anyway)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\g<0>", " ".join(text.split()))


def _markdown_answer(answer: Answer) -> str:
    if answer.abstained:
        return markdown_text(answer.text)
    return " ".join(f"“{markdown_text(quote.text)}” [{quote.citation}]" for quote in answer.quotes)


def _cited(item: Quote | Source) -> str:
    page = f", page {item.page}" if getattr(item, "page", None) is not None else ""
    return f"[{item.citation}] {markdown_text(item.source)}{page}, line {item.line}, characters {item.start}-{item.end}"


def conversation_jsonl(answers: list[Answer]) -> str:
    """The conversation as JSON lines: one answer JSON per question, with ids q1, q2, ..."""
    return "".join(
        json.dumps({**answer.to_dict(), "id": answer.id or f"q{n}"}, ensure_ascii=False) + "\n"
        for n, answer in enumerate(answers, start=1)
    )


# ----- one visitor's conversation --------------------------------------------------------------------------

QUEUED = "Your question is queued: it is answered as soon as the one before it is."
EMPTY = "Type a question first."
INDEXING = (
    "Updating the index of the documents; this can take minutes for a large file. Until it is done, questions "
    "are answered from the documents as they were, and say so."
)
UPDATING = (
    "The documents are being re-indexed after a document was added or removed. This answer comes from the "
    "documents as they were before that; ask again once it has finished for an answer that includes the change."
)


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


def hint_html(text: str) -> str:
    return f'<p role="status">{escape(text)}</p>' if text else ""


# ----- while the documents are re-indexed -------------------------------------------------------------------


class DocumentUpdate:
    """An upload or removal re-indexing the documents (minutes for a large file). Meanwhile `Chatbot.ask`
    would wait for the new index; `answerer` offers the index as it was before instead, which answers at once,
    and a note to show with such answers, since they do not include the change."""

    def __init__(self, bot: Chatbot) -> None:
        self.bot = bot
        self.before: Chatbot | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around changing the documents folder and indexing it; the index in use is kept aside first."""
        try:
            self.before = self.bot.pinned()
        except ChatbotError:
            self.before = None  # no index to answer from meanwhile: questions wait for the new one
        try:
            yield
        finally:
            self.before = None

    def answerer(self) -> tuple[Chatbot, str]:
        """The chatbot to ask now, and the note its answers need ("" for the up-to-date index)."""
        before = self.before
        return (before, UPDATING) if before is not None else (self.bot, "")


class IndexingRun:
    """`bot.index()` on a thread of its own, so that the page can show how far it has got while it runs.

    Usage example:
        run = IndexingRun(bot)
        for done, total in run.progress():   # texts embedded so far, of how many; a new pair at most every second
            ...
        run.report, run.error                # the IndexReport, or the ChatbotError that stopped it
    """

    def __init__(self, bot: Chatbot) -> None:
        self.report: IndexReport | None = None
        self.error: ChatbotError | None = None
        self._crash: BaseException | None = None
        self._done = self._total = 0
        self._since: tuple[float, int] | None = None  # (when, texts done) at the first report of the build
        self._thread = threading.Thread(target=self._run, args=(bot,), daemon=True)
        self._thread.start()

    def progress(self) -> Iterator[tuple[int, int]]:
        shown = 0
        while self._thread.is_alive():
            self._thread.join(1.0)
            if self._total and self._done != shown:
                shown = self._done
                yield shown, self._total
        if self._crash is not None:
            raise self._crash

    def _run(self, bot: Chatbot) -> None:
        try:
            self.report = bot.index(on_progress=self._note)
        except ChatbotError as exc:
            self.error = exc
        except BaseException as exc:  # noqa: BLE001 (handed to the page's thread, which reports it as Gradio does)
            self._crash = exc

    def pace(self) -> tuple[float, float] | None:
        """(texts embedded a second, seconds left at that rate), measured since the build began embedding;
        None until there is a rate to tell."""
        if self._since is None:
            return None
        started, first = self._since
        elapsed, done = time.monotonic() - started, self._done - first
        if done <= 0 or elapsed <= 0:
            return None
        rate = done / elapsed
        return rate, (self._total - self._done) / rate

    def _note(self, done: int, total: int) -> None:
        if self._since is None:
            self._since = (time.monotonic(), done)
        self._done, self._total = done, total


def duration_text(seconds: float) -> str:
    """A time left in words: "8 s", "3 min 5 s", "2 h 10 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


# ----- the Documents panel -------------------------------------------------------------------------------


class DocumentsPanel:
    """The page's list of documents (each with where it is kept) and, unless uploads are off, uploading,
    removing and restoring uploads. Uploads go to the uploads folder (see uploads.py), never to the documents
    folder; only they can be removed, after a confirmation, and a removed one can be restored until the server
    stops. Every file Gradio received is deleted from its temporary folder as soon as it has been handled."""

    def __init__(self, bot: Chatbot, update: DocumentUpdate, uploads: Uploads | None, off: str = "") -> None:
        self.bot, self.update, self.uploads, self.off = bot, update, uploads, off

    def render(self, app: gr.Blocks) -> None:
        """Make the panel's components and events (inside `app`'s Blocks context)."""
        config = self.bot.config
        with gr.Accordion("Documents", open=False) as accordion:
            self.listing = gr.HTML(js_on_load=None, elem_id="qa-documents")
            if self.uploads is None:
                gr.HTML(status_html([self.off]), js_on_load=None, elem_id="qa-uploads-off")
            else:
                extensions = self.uploads.extensions
                self.upload = gr.File(
                    label=f"Add documents ({', '.join(extensions)}; up to {config.ui.max_upload_mb:g} MB each; "
                    "kept in the uploads folder)",
                    file_count="multiple",
                    file_types=list(extensions),
                    elem_id="qa-upload",
                )
                with gr.Row():
                    self.chosen = gr.Dropdown(
                        label="Uploaded document to remove", choices=[], scale=3, elem_id="qa-remove-choice"
                    )
                    remove = gr.Button("Remove…", variant="stop", scale=1, min_width=80, elem_id="qa-remove")
                with gr.Group(visible=False, elem_id="qa-confirm") as self.confirm_box:
                    self.question = gr.HTML(js_on_load=None, elem_id="qa-confirm-text")
                    self.pending = gr.Textbox(visible=False)  # the upload the question is about
                    with gr.Row():
                        confirm = gr.Button("Yes, remove it", variant="stop", elem_id="qa-confirm-remove")
                        cancel = gr.Button("Cancel", elem_id="qa-cancel-remove")
                with gr.Row(visible=False, elem_id="qa-restore-row") as self.restore_row:
                    self.removed = gr.Dropdown(
                        label="Removed uploads (they can be restored until the server stops)",
                        choices=[],
                        scale=3,
                        elem_id="qa-restore-choice",
                    )
                    restore = gr.Button("Restore", scale=1, min_width=80, elem_id="qa-restore")
            self.status = gr.HTML(js_on_load=None, elem_id="qa-status")

        shown = [self.listing, self.status]
        if self.uploads is not None:
            shown += [self.chosen, self.confirm_box, self.pending, self.restore_row, self.removed]
        private = {"api_visibility": "private"}
        changing = {**private, "concurrency_limit": 1, "concurrency_id": "documents"}
        app.load(self.show, None, shown, **private)
        accordion.expand(self.refresh, None, shown, **private)
        if self.uploads is None:
            return  # no handler that could change a document exists at all
        # preprocess=False: the handler gets Gradio's own record of each file (its path in Gradio's temporary
        # folder, which Gradio has checked, and its original name) even for a file of the wrong type, which
        # Gradio would otherwise refuse itself and leave in its temporary folder for a day.
        self.upload.upload(self.add, self.upload, [*shown, self.upload], preprocess=False, **changing)
        asking = [self.confirm_box, self.question, self.pending, self.status]
        remove.click(self.ask_to_remove, self.chosen, asking, **private)  # queued: it may wait for the index
        cancel.click(self.cancel, None, [self.confirm_box, self.pending, self.status], queue=False, **private)
        confirm.click(self.remove, self.pending, shown, **changing)
        restore.click(self.restore, self.removed, shown, **changing)

    def show(self, message: str = "") -> dict:
        """The list (during an update, as it was, rather than wait for the new one), the choices to remove
        and to restore, and `message` (or a note that the index is being updated)."""
        asker, note = self.update.answerer()
        try:
            documents = asker.data.documents
        except ChatbotError as exc:
            documents, message = [], message or status_html([str(exc)], error=True)
        config = self.bot.config
        out = {
            self.listing: documents_html(documents, config.paths.docs, config.paths.uploads_folder),
            self.status: message or (status_html([INDEXING]) if note else ""),
        }
        if self.uploads is not None:
            uploaded = [doc["path"] for doc in documents if doc["path"].startswith(UPLOADS)]
            removed = list(self.uploads.removed)
            out[self.chosen] = gr.Dropdown(choices=_named(uploaded), value=None)
            out[self.confirm_box] = gr.update(visible=False)
            out[self.pending] = ""
            out[self.restore_row] = gr.update(visible=bool(removed))
            out[self.removed] = gr.Dropdown(choices=_named(removed), value=None)
        return out

    def refresh(self) -> dict:
        """The list as it is now, each time the panel is opened: another visitor may have changed it."""
        out = self.show()
        del out[self.status]
        return out

    def add(self, files: list[dict[str, Any]] | None):
        """Save the uploads and index them; says at once that indexing has started, and then how it went,
        file by file, each line coloured by its own outcome."""
        shown, saved = [], []  # status lines as HTML; (name given, cited path) of the files saved
        asker, _ = self.update.answerer()
        try:
            indexed = {doc["sha256"]: doc["path"] for doc in asker.data.documents}
        except ChatbotError:
            indexed = {}
        with self.update.running():
            for item in files or []:
                path, name = _received(item)
                try:
                    saved.append((clean_name(name), self.uploads.add(path, name, indexed)))
                except ChatbotError as exc:
                    shown.append(status_html([str(exc)], error=True))
                finally:
                    _discard_received(path)
            if not saved:
                yield {**self.show("".join(shown)), self.upload: None}
                return
            adding = f"Adding {', '.join(cited for _, cited in saved)}. {INDEXING}"
            yield {self.status: "".join([*shown, status_html([adding])])}
            indexing = IndexingRun(self.bot)
            for done, total in indexing.progress():
                line = f"{adding} Embedded {done:,} of {total:,} sentences ({100 * done // total}%)"
                pace = indexing.pace()
                if pace is not None:
                    line += f", {pace[0]:,.0f} a second, about {duration_text(pace[1])} left"
                line += "."
                yield {self.status: "".join([*shown, status_html([line])])}
            if indexing.error is not None:
                for _, cited in saved:
                    self.uploads.discard(cited)
                failed = status_html([f"indexing failed, so nothing was added: {indexing.error}"], error=True)
                yield {**self.show("".join([*shown, failed])), self.upload: None}
                return
        documents = {doc["path"] for doc in self.bot.data.documents}
        for name, cited in saved:
            if cited in documents:
                shown.append(status_html([_added(name, cited, documents)]))
            else:
                self.uploads.discard(cited)  # unreadable (binary or empty): not kept
                shown.append(status_html([f"{name}: no text could be read from it, so it was not added"], error=True))
        yield {**self.show("".join(shown)), self.upload: None}

    def ask_to_remove(self, cited: str | None) -> dict:
        """The first step of removing: what would happen, and a button to confirm it (or cancel)."""
        try:
            self._check_removable(cited)
        except ChatbotError as exc:
            return {self.confirm_box: gr.update(visible=False), self.status: status_html([str(exc)], error=True)}
        question = (
            f"Remove {cited}? It is taken out of the uploads folder and the index; it can be restored here until "
            "the server stops."
        )
        return {
            self.confirm_box: gr.update(visible=True),
            self.question: status_html([question]),
            self.pending: cited,
            self.status: "",
        }

    def cancel(self) -> dict:
        nothing = status_html(["Nothing was removed."])
        return {self.confirm_box: gr.update(visible=False), self.pending: "", self.status: nothing}

    def remove(self, cited: str | None) -> dict:
        try:
            self._check_removable(cited)
            with self.update.running():
                self.uploads.remove(cited)
                self.bot.index()
        except ChatbotError as exc:
            return self.show(status_html([str(exc)], error=True))
        return self.show(status_html([f"{cited} was removed; it can be restored below until the server stops."]))

    def restore(self, cited: str | None) -> dict:
        if not cited or cited not in self.uploads.removed:
            return self.show(status_html(["Choose a removed upload to restore."], error=True))
        try:
            with self.update.running():
                now = self.uploads.restore(cited)
                self.bot.index()
        except ChatbotError as exc:
            return self.show(status_html([f"{cited} could not be restored: {exc}"], error=True))
        where = "" if now == cited else f" as {now} (an upload of its name was added meanwhile)"
        return self.show(status_html([f"{cited} was restored{where}."]))

    def _check_removable(self, cited: str | None) -> None:
        if not cited:
            raise ChatbotError("Choose an uploaded document to remove.")
        self.uploads.path_of(cited)  # an upload, in the uploads folder: nothing else can be removed
        if len(self.bot.data.documents) == 1:
            raise ChatbotError("The last document cannot be removed.")


def _named(cited: list[str]) -> list[tuple[str, str]]:
    """Dropdown choices for uploads: shown by their names in the uploads folder, valued by their cited paths."""
    return [(path.removeprefix(UPLOADS), path) for path in cited]


def _added(name: str, cited: str, documents: set[str]) -> str:
    kept = []
    if cited != UPLOADS + name:
        kept.append(f"the upload {UPLOADS}{name} that was already there is kept as it was")
    if name in documents:
        kept.append(f"the document {name} of the documents folder is kept as it was")
    why = "; ".join([f"added as {cited}", *kept])
    return f"{name} is indexed ({why}); you can ask about it now."


def _received(item: dict[str, Any] | str) -> tuple[Path, str]:
    """The path in Gradio's temporary folder of a file received, and the name it was uploaded under."""
    if isinstance(item, dict):
        path = Path(item.get("path") or "")
        return path, item.get("orig_name") or path.name
    return Path(item), Path(item).name


def _discard_received(path: Path) -> None:
    """Delete a file Gradio received (kept in a folder of its own under Gradio's temporary folder), and that
    folder when it is left empty: a refused upload is not left there for a day, nor is an accepted one, which
    the uploads folder now holds. Nothing outside Gradio's temporary folder is touched."""
    from gradio.utils import get_upload_folder

    try:
        folder = Path(get_upload_folder()).resolve()
        if not path.resolve().is_relative_to(folder):
            return
        path.unlink(missing_ok=True)
        if path.parent.resolve() != folder:
            with contextlib.suppress(OSError):
                path.parent.rmdir()
    except OSError:
        pass


# ----- the app ---------------------------------------------------------------------------------------------


def build_app(bot: Chatbot, examples: list[str] | None = None, uploads_off: str = "") -> gr.Blocks:
    """The page and its API for `bot`. Cheap: nothing is loaded until the first request (see `start`, which
    passes the example questions the documents answer). With `uploads_off`, the reason shown in their place,
    the page has no way to upload or remove documents: no such handler exists, so no request can reach one.
    """
    config = bot.config
    exports = tempfile.TemporaryDirectory(prefix="chatbot-exports-")  # lives as long as the app's handlers
    update = DocumentUpdate(bot)
    conversations = Conversations()
    panel = DocumentsPanel(bot, update, None if uploads_off else Uploads.of(config), uploads_off)

    def accept(question: str, order: float | None, max_quotes: float, min_confidence: float, request: gr.Request):
        """The fast first step (not queued): the question joins the conversation at once, so that the box
        is free for the next one and nothing typed meanwhile is lost."""
        question = (question or "").strip()
        if not question:
            return gr.skip(), hint_html(EMPTY)
        problem = bot.question_problem(question)  # no words in it, or too long: said at once, under the box
        if problem:
            return gr.skip(), hint_html(f"{problem[0].upper()}{problem[1:]}.")
        conversation = conversations.of(request)
        settings = {"max_quotes": int(max_quotes), "min_confidence": float(min_confidence)}
        ahead = conversation.add(question, settings, None if order is None else int(order))
        return chat_messages(conversation), hint_html(QUEUED if ahead else "")

    def accept_example(max_quotes: float, min_confidence: float, evt: gr.SelectData, request: gr.Request):
        return accept(evt.value["text"], None, max_quotes, min_confidence, request)

    def answer_waiting(request: gr.Request):
        """The slow step: answer the conversation's waiting questions in the order asked. A visitor's
        questions are answered one at a time; a request that finds another answering leaves it to that one."""
        conversation = conversations.of(request)
        unchanged = (gr.skip(),) * 5
        if not conversation.claim():
            yield unchanged
            return
        while (turn := conversation.next_waiting()) is not None:
            asker, turn.note = update.answerer()
            try:
                turn.answer = asker.ask(turn.question, answer=turn.settings)
            except ChatbotError as exc:
                turn.error = str(exc)
            answers = conversation.answers
            waiting = any(not t.started for t in conversation.turns)
            if not answers:
                yield chat_messages(conversation), gr.skip(), gr.skip(), gr.skip(), hint_html("")
                continue
            markdown, jsonl = _write_exports(answers, Path(exports.name) / _session_folder(request))
            yield (
                chat_messages(conversation),
                sources_html(answers),
                gr.DownloadButton(value=markdown, interactive=True),
                gr.DownloadButton(value=jsonl, interactive=True),
                hint_html(QUEUED if waiting else ""),
            )
        yield unchanged  # a generator that yields nothing would blank every output (the hint included)

    def forget(request: gr.Request):
        """After the chat's bin is clicked: the questions, answers, their sources and the downloads go too."""
        conversations.of(request).forget()
        nothing = gr.DownloadButton(value=None, interactive=False)
        return sources_html([]), nothing, nothing, hint_html("")

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

    examples = [{"text": question} for question in (config.ui.examples if examples is None else examples)]
    with gr.Blocks(title="Document Q&A", analytics_enabled=False, delete_cache=(3600, 86400)) as app:
        gr.Markdown(
            "## Ask the documents\nEvery answer is quoted word for word from the documents, with its source. "
            "When they do not answer, it says so."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                chat = gr.Chatbot(
                    label="Conversation",
                    height="60vh",
                    examples=examples or None,
                    render_markdown=False,
                    sanitize_html=True,
                    allow_tags=False,
                    latex_delimiters=[],
                    feedback_options=None,
                    buttons=[],
                    elem_id="qa-chat",
                )
                with gr.Row():
                    question = gr.Textbox(
                        label="Question",
                        placeholder="Ask about the documents and press Enter",
                        lines=1,
                        max_lines=4,
                        scale=5,
                        autofocus=True,
                        max_length=config.answer.max_question_chars,  # the browser takes no more
                        elem_id="qa-question",
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-send")
                hint = gr.HTML(elem_id="qa-hint")
                taken = gr.Textbox(visible=False)  # the question just taken out of the box, on its way
                order = gr.Number(visible=False, precision=0)  # and its number in the order asked
                with gr.Row():
                    download_md = gr.DownloadButton("Download Markdown", size="sm", interactive=False)
                    download_jsonl = gr.DownloadButton("Download JSON lines", size="sm", interactive=False)
                with gr.Accordion("Settings", open=False):
                    max_quotes = gr.Slider(
                        1,
                        MAX_QUOTES_CHOICE,
                        value=min(config.answer.max_quotes, MAX_QUOTES_CHOICE),
                        step=1,
                        precision=0,
                        label="Number of quotes (at most)",
                    )
                    min_confidence = gr.Slider(
                        0.0,
                        1.0,
                        value=config.answer.min_confidence,
                        step=0.05,
                        label="Abstention threshold (answers below this confidence are withheld)",
                    )
            with gr.Column(scale=2, min_width=300):
                sources = gr.HTML(sources_html([]), js_on_load=None, elem_id="qa-sources")
        panel.render(app)

        # Enter (or Ask) first moves the question out of the box in the browser itself, then hands it to
        # `accept`, then to `answer_waiting`; each step may run again while an earlier question is pending.
        settings = [max_quotes, min_confidence]
        answer_outputs = [chat, sources, download_md, download_jsonl, hint]
        quick = {"api_visibility": "private", "queue": False, "trigger_mode": "multiple"}
        slow = {**quick, "queue": True, "concurrency_limit": ASK_CONCURRENCY, "concurrency_id": "ask"}
        slow["show_progress"] = "hidden"  # the chat says "Finding the answer…" itself
        for trigger in (question.submit, send.click):
            trigger(None, question, [taken, question, order], js=TAKE_QUESTION, **quick).then(
                accept, [taken, order, *settings], [chat, hint], **quick
            ).then(answer_waiting, None, answer_outputs, **slow)
        chat.example_select(accept_example, settings, [chat, hint], **quick).then(
            answer_waiting, None, answer_outputs, **slow
        )
        # Whole quotes only: 2.5 typed in the slider's box becomes 3 there, as on the slider, not a silent 2.
        max_quotes.change(None, max_quotes, max_quotes, js="(n) => Math.round(n)", **quick)
        chat.clear(forget, None, [sources, download_md, download_jsonl, hint], **quick)
        gr.api(ask_api, api_name="ask", concurrency_limit=ASK_CONCURRENCY, concurrency_id="ask")

    return app


def start(
    bot: Chatbot,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    allow_uploads: bool = False,
) -> tuple[gr.Blocks, str]:
    """Load the model and index, then start the server without blocking; returns the app and its URL.

    Uploading and removing documents are off when the page listens beyond this machine without a password,
    unless `allow_uploads` (or config [ui] allow_uploads) says otherwise; see `uploads_refusal`.
    """
    check_port(host, port)  # before loading anything: a port in use is said at once, in our words
    bot.warm_up()  # the index and the model now, not on the first question
    off = uploads_refusal(host, auth, allow_uploads or bot.config.ui.allow_uploads, bot.config.ui.auth_env)
    app = build_app(bot, examples=offered_examples(bot), uploads_off=off)
    app.queue(max_size=256)
    try:
        _launch(app, bot, host, port, auth, off)
    except OSError as exc:  # taken since check_port looked: Gradio's message names its environment variable
        if "Cannot find empty port" in str(exc):
            raise ChatbotError(f"port {port} is in use; pass --port N") from None
        raise
    return app, app.local_url


def check_port(host: str, port: int) -> None:
    """ChatbotError, in one line, when the page could not listen on `host`:`port` (another program holds it)."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ChatbotError(f"cannot listen on {host}: {getattr(exc, 'strerror', None) or exc}") from None
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: a closed port's TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ChatbotError(f"port {port} is in use; pass --port N") from None
            raise ChatbotError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _launch(app: gr.Blocks, bot: Chatbot, host: str, port: int, auth: tuple[str, str] | None, off: str) -> None:
    app.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        prevent_thread_lock=True,
        # With uploads off, Gradio's own upload route (which every Gradio app has) takes no file either.
        max_file_size=0 if off else int(bot.config.ui.max_upload_mb * 1024 * 1024),
        footer_links=["api"],
        css=CSS,
        head=HEAD,
        theme=THEME,
        show_error=True,
        quiet=True,
    )


def serve(
    bot: Chatbot,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    allow_uploads: bool = False,
) -> None:
    """Run the web chat until interrupted."""
    app, url = start(bot, host=host, port=port, auth=auth, allow_uploads=allow_uploads)
    print(f"The chat is at {url} (Ctrl-C stops it)", flush=True)
    try:
        app.block_thread()
    finally:
        app.close()


def uploads_refusal(host: str, auth: tuple[str, str] | None, allow: bool, auth_env: str = "CHATBOT_AUTH") -> str:
    """Why the page may not upload or remove documents, or "" when it may: shared beyond this machine without a
    password, anyone who can reach it could change what it answers from, unless that is allowed explicitly."""
    if allow or auth or _is_loopback(host):
        return ""
    return (
        f"Adding and removing documents is turned off: this page listens on {host or 'every address'}, beyond this "
        f"machine, without a password, so anyone who can reach it could change its documents. Start it with "
        f"--auth USER:PASSWORD (or ${auth_env}) to turn them on, or with --allow-uploads to let every visitor "
        "add and remove uploads."
    )


def _is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def offered_examples(bot: Chatbot) -> list[str]:
    """The example questions the page offers: [ui] examples, only when the documents folder is the one they
    were written for ([ui] examples_for; seeds/ when unset), and of those the ones the documents answer. A
    folder of one's own is offered none of another folder's examples, however its documents score them."""
    settings = bot.config.ui
    written_for = settings.examples_for if settings.examples_for is not None else PROJECT_ROOT / "seeds"
    if Path(written_for).resolve() != Path(bot.config.paths.docs).resolve():
        return []
    return answered_examples(bot, settings.examples)


def answered_examples(bot: Chatbot, questions: tuple[str, ...] | list[str]) -> list[str]:
    """The example questions that the documents answer (asked together once, as the page starts: a few
    milliseconds), so that a folder of one's own is not offered questions about another's documents."""
    if not questions:
        return []
    try:
        answers = bot.ask_batch(list(questions))
    except ChatbotError:
        return []
    return [question for question, answer in zip(questions, answers) if not answer.abstained]


def _user_error(message: str) -> gr.Error:
    """An error for the caller to fix: reported to them, not logged as a crash with a traceback."""
    return gr.Error(message, print_exception=False)


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
