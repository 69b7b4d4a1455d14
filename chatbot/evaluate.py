"""Score answers against a question set with known answers (SQuAD JSON v1.1/v2.0, or JSONL).

Protocol (shared/eval/README.md): an answerable question is a hit when the answer is not an abstention
and a gold answer (case-, white-space- and quote-style-insensitive) lies within the first 400 characters
of the quotes joined in order; an unanswerable one is right when the answer is an abstention.

Usage example:
    items = read_questions(Path("dev.json"))
    report = evaluate(bot, items)           # Report with hit_rate, overall_accuracy, ...
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .answer import Answer
from .bot import Chatbot, Evidence
from .errors import ChatbotError
from .store import IndexData

WINDOW = 400  # characters of the joined quotes that count
_QUOTES = str.maketrans(
    {"‘": "'", "’": "'", "‚": "'", "`": "'", "´": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"'}
)


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answers: tuple[str, ...]
    impossible: bool
    article: str = ""  # the SQuAD article a question belongs to, when known


@dataclass
class Report:
    questions: int = 0
    answerable: int = 0
    unanswerable: int = 0
    hit_rate: float = 0.0
    false_abstention_rate: float = 0.0
    unanswerable_abstention_rate: float = 0.0
    overall_accuracy: float = 0.0
    recall_at_1: float = 0.0
    recall_at_5: float = 0.0
    median_answer_chars: float = 0.0
    answers_per_second: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("errors")
        return data

    def table(self) -> str:
        rows = [
            ("questions", f"{self.questions} ({self.answerable} answerable, {self.unanswerable} unanswerable)"),
            ("hit rate (answerable)", f"{self.hit_rate:.3f}"),
            ("false abstention (answerable)", f"{self.false_abstention_rate:.3f}"),
            ("abstention (unanswerable)", f"{self.unanswerable_abstention_rate:.3f}"),
            ("overall accuracy", f"{self.overall_accuracy:.3f}"),
            ("retrieval recall@1", f"{self.recall_at_1:.3f}"),
            ("retrieval recall@5", f"{self.recall_at_5:.3f}"),
            ("median answer length (chars)", f"{self.median_answer_chars:.0f}"),
            ("answers per second", f"{self.answers_per_second:.1f}"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def normalize(text: str) -> str:
    return " ".join(text.translate(_QUOTES).lower().split())


def quoted_text(answer: Answer) -> str:
    """An answer's quotes joined in order: what the protocol reads and measures ("" for an abstention)."""
    return " ".join(quote.text for quote in answer.quotes)


def quoted_window(answer: Answer) -> str:
    """The part of an answer that the protocol reads: its quoted text cut at 400 characters."""
    return quoted_text(answer)[:WINDOW]


def is_hit(answer: Answer, golds: Iterable[str]) -> bool:
    if answer.abstained:
        return False
    window = normalize(quoted_window(answer))
    return any(normalize(gold) and normalize(gold) in window for gold in golds)


def read_questions(path: Path) -> list[Item]:
    """Questions with gold answers from SQuAD JSON or JSONL (question, answers, optional impossible, id)."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChatbotError(f"question file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChatbotError(f"cannot read {path}: {exc}") from None
    if Path(path).suffix.lower() == ".jsonl":
        return _read_jsonl(raw, path)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ChatbotError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ChatbotError(f"{path} is not in SQuAD format (no top-level 'data' list)")
    items = []
    for article in data["data"]:
        title = str(article.get("title", ""))
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                answers = tuple(dict.fromkeys(answer["text"] for answer in qa.get("answers", [])))
                impossible = bool(qa.get("is_impossible", False)) or not answers
                items.append(Item(str(qa.get("id", len(items) + 1)), qa["question"], answers, impossible, title))
    return items


def _read_jsonl(raw: str, path: Path) -> list[Item]:
    items = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question = row["question"]
        except (ValueError, KeyError, TypeError):
            raise ChatbotError(f"{path}:{number}: expected a JSON object with a 'question'") from None
        answers = row.get("answers", [])
        answers = tuple(answer["text"] if isinstance(answer, dict) else str(answer) for answer in answers)
        impossible = bool(row.get("impossible", row.get("is_impossible", False))) or not answers
        items.append(Item(str(row.get("id", f"q{len(items) + 1}")), question, answers, impossible))
    return items


def build_corpus(squad_path: Path, folder: Path) -> list[Path]:
    """Write each SQuAD article as one plain-text document (paragraphs separated by a blank line)."""
    try:
        data = json.loads(Path(squad_path).read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ChatbotError(f"cannot build a corpus from {squad_path}: {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, article in enumerate(data, start=1):
        name = (
            re.sub(r"[^\w.-]+", "_", str(article.get("title") or f"article-{number}")).strip("._")
            or f"article-{number}"
        )
        path = folder / f"{name}.txt"
        text = "\n\n".join(paragraph["context"].strip() for paragraph in article.get("paragraphs", []))
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def evaluate(bot: Chatbot, items: list[Item], batch_size: int = 256, progress=None) -> Report:
    """Answer every item (in batches) and score the answers by the protocol."""
    report = Report(questions=len(items))
    hits = false_abstentions = right_abstentions = recall1 = recall5 = 0
    lengths = []
    data = bot.data  # build or load the index before the clock matters
    started = time.perf_counter()
    for lo in range(0, len(items), batch_size):
        batch = items[lo : lo + batch_size]
        for item, (answer, evidence) in zip(batch, bot.explain_batch([item.question for item in batch])):
            if not answer.abstained:
                lengths.append(len(quoted_text(answer)))
            if item.impossible:
                report.unanswerable += 1
                right_abstentions += answer.abstained
                if not answer.abstained:
                    report.errors.append(_error(item, answer, "answered an unanswerable question"))
                continue
            report.answerable += 1
            found = _retrieval_rank(data, evidence, item.answers)
            recall1 += found is not None and found < 1
            recall5 += found is not None and found < 5
            if is_hit(answer, item.answers):
                hits += 1
            else:
                false_abstentions += answer.abstained
                reason = "abstained" if answer.abstained else "quotes miss the answer"
                report.errors.append(_error(item, answer, reason))
        if progress:
            progress(min(lo + batch_size, len(items)))
    seconds = time.perf_counter() - started
    answerable, unanswerable = max(report.answerable, 1), max(report.unanswerable, 1)
    report.hit_rate = hits / answerable
    report.false_abstention_rate = false_abstentions / answerable
    report.unanswerable_abstention_rate = right_abstentions / unanswerable
    report.overall_accuracy = (hits + right_abstentions) / max(len(items), 1)
    report.recall_at_1 = recall1 / answerable
    report.recall_at_5 = recall5 / answerable
    report.median_answer_chars = statistics.median(lengths) if lengths else 0.0
    report.answers_per_second = len(items) / seconds if seconds else 0.0
    return report


def _retrieval_rank(data: IndexData, evidence: Evidence, golds: tuple[str, ...]) -> int | None:
    """Rank of the first retrieved passage holding a gold answer, or None."""
    wanted = [normalize(gold) for gold in golds if normalize(gold)]
    for rank, passage in enumerate(evidence.hits.passages.tolist()):
        doc, start, end = (int(value) for value in data.passages[passage, :3])
        text = normalize(data.texts[doc][start:end])
        if any(gold in text for gold in wanted):
            return rank
    return None


def _error(item: Item, answer: Answer, reason: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "question": item.question,
        "gold": list(item.answers),
        "impossible": item.impossible,
        "reason": reason,
        "confidence": round(answer.confidence, 4),
        "answer": answer.text,
    }
