"""The answer types: frozen dataclasses that carry where every quoted character came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ABSTENTION = "The documents do not answer this question."


def confidence_label(confidence: float) -> str:
    """A word for a confidence that people read at a glance."""
    return "high" if confidence >= 0.6 else "medium" if confidence >= 0.3 else "low"


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
        return result


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
        }
