"""The answer types: frozen dataclasses that carry where every quoted character came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .recheck import QuoteCheck

ABSTENTION = "The documents do not answer this question."


# Shown as escapes where text is printed for a person (a terminal, a Markdown report): control characters (a
# newline in a file name breaks its citation line; an escape sequence would be run by a terminal) and the
# bidirectional overrides and isolates (U+202E shows a file name reversed). The answer JSON keeps exact text.
_UNPRINTABLE = (
    {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]}
    | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
    | {code: f"\\u{code:04x}" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
)


def printable(text: str, keep: str = "") -> str:
    """`text` with control and bidirectional-override characters (other than those in `keep`) as escapes."""
    return text.translate({code: shown for code, shown in _UNPRINTABLE.items() if chr(code) not in keep})


def confidence_label(confidence: float, high: float = 0.6, medium: float = 0.3) -> str:
    """A word for a confidence that people read at a glance: "high" from `high` up, "medium" from `medium`
    ([answer] high_confidence and medium_confidence, calibrated so that "high" answers were right at least 9
    times in 10 on every development set, "medium" 7 in 10)."""
    return "high" if confidence >= high else "medium" if confidence >= medium else "low"


@dataclass(frozen=True)
class Quote:
    """Verbatim text of a document: `document_text[start:end] == text`, cited as [citation]."""

    citation: int
    text: str
    source: str  # document path relative to the documents folder
    start: int
    end: int
    line: int  # 1-based line of `start`
    source_sha256: str
    page: int | None = None  # 1-based page of `start`, for documents with pages (PDF)
    # The answer's own words inside the quote, as document offsets (start <= a < b <= end), when the answer
    # verifier can point to them.
    answer_span: tuple[int, int] | None = None
    # Where it stands in its document: the headings above it ("Install › Options"; "" for none), and what a
    # table row or a description is read with: its table's header row, or its term ("" for none).
    section: str = ""
    context: str = ""

    def to_dict(self) -> dict[str, Any]:
        result = {
            "citation": self.citation,
            "text": self.text,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "line": self.line,
            "source_sha256": self.source_sha256,
        }
        if self.page is not None:
            result["page"] = self.page
        if self.answer_span is not None:
            result["answer_span"] = {"start": self.answer_span[0], "end": self.answer_span[1]}
        if self.section:
            result["section"] = self.section
        if self.context:
            result["context"] = self.context
        return result

    def parts(self) -> tuple[str, str, str]:
        """The quote's text as (before, answer phrase, after): ("whole text", "", "") when none is marked."""
        if self.answer_span is None:
            return self.text, "", ""
        start, end = self.answer_span[0] - self.start, self.answer_span[1] - self.start
        return self.text[:start], self.text[start:end], self.text[end:]


@dataclass(frozen=True)
class Source:
    """The passage around a quote (or, on abstention, one of the closest passages)."""

    citation: int
    source: str
    start: int
    end: int
    line: int
    text: str
    page: int | None = None  # 1-based page of `start`, for documents with pages (PDF)

    def to_dict(self) -> dict[str, Any]:
        result = {
            "citation": self.citation,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "line": self.line,
            "text": self.text,
        }
        if self.page is not None:
            result["page"] = self.page
        return result


@dataclass(frozen=True)
class Answer:
    question: str
    abstained: bool
    confidence: float
    text: str  # the quotes, each followed by its [n] marker; or the abstention message
    quotes: tuple[Quote, ...] = ()
    sources: tuple[Source, ...] = ()
    id: str | None = None
    label: str = ""  # "high", "medium" or "low": the confidence in a word, by the config's thresholds

    def to_dict(self) -> dict[str, Any]:
        """The answer JSON of DESIGN.md."""
        return {
            "id": self.id,
            "question": self.question,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "answer": self.text,
            "quotes": [quote.to_dict() for quote in self.quotes],
            "sources": [source.to_dict() for source in self.sources],
            "confidence_label": self.label or confidence_label(self.confidence),
        }

    def verify(self, docs: str | Path) -> list[QuoteCheck]:
        """Each quote checked against the documents under `docs` as they are now: ok, moved, changed or
        missing (see chatbot.recheck)."""
        from .recheck import check_answer

        return check_answer(self, docs)
