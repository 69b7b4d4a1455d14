"""What an answer quotes: frozen dataclasses that carry where every quoted character came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
