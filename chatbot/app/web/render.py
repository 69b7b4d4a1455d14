"""What the page shows of answers and their sources, as HTML that displays exactly the documents' text (every
character that could be markup escaped), and the conversation exported as Markdown or JSON lines.

Usage example:
    answer_html(answer, turn=1)            # a chat message: the quotes with citation links, the confidence
    sources_html(answers)                  # the sources panel: each quote highlighted in its passage
"""

from __future__ import annotations

import json
import re

from ...answering.answer import Answer, confidence_label
from ...answering.quote import Quote, Source

HEADING_CHARS = 120  # a question longer than this is shortened where it heads its sources (in full on hover)

# Every ASCII character that means something to HTML, Markdown, LaTeX or a JS template becomes a numeric
# entity; line breaks become <br>; other control characters go. Letters, digits and spaces stay as they are.
_ESCAPES: dict[int, str | None] = {code: f"&#{code};" for code in range(33, 128) if not chr(code).isalnum()}
_ESCAPES.update({code: None for code in range(32) if code not in (9, 10)})
_ESCAPES.update({9: "&#9;", 10: "<br>", 127: None})
# The ASCII characters that can begin Markdown (emphasis, links, images, code, headings, tables, maths) or HTML
# (tags, entities) or a highlight (==) within a line; "-", "+", "." and the like matter only at a line's start,
# where none is put.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]<>#!&|~$=]")


def escape(text: str) -> str:
    """`text` as HTML that displays exactly this text and nothing else, even after Markdown rendering."""
    return text.translate(_ESCAPES)


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


def hint_html(text: str) -> str:
    return f'<p role="status">{escape(text)}</p>' if text else ""
