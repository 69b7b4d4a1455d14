"""The answer: frozen, made of quotes (quote.py) that carry where every quoted character came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .quote import Quote, Source
from .recheck import QuoteCheck, check_answer

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
        missing (see chatbot.answering.recheck)."""
        return check_answer(self, docs)
