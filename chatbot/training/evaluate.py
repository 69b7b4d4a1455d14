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

from ..answering.answer import Answer
from ..answering.bot import Chatbot, Evidence
from ..documents.load import read_question_file
from ..errors import ChatbotError
from ..index.store import IndexData

WINDOW = 400  # characters of the joined quotes that count
IMPOSSIBLE = '"impossible": true'  # how a JSONL row says the documents do not answer it
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
    # Of the hits, the share whose first marked answer phrase (answer_span) is a gold answer exactly
    # (normalised as hits are), and the share with a marked phrase at all.
    span_exact_match: float = 0.0
    span_marked: float = 0.0
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
            ("answer phrase = gold, of hits", f"{self.span_exact_match:.3f} ({self.span_marked:.3f} marked)"),
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


def marked_phrase(answer: Answer) -> str | None:
    """The text of the first answer phrase marked in an answer's quotes, or None."""
    for quote in answer.quotes:
        if quote.answer_span is not None:
            return quote.text[quote.answer_span[0] - quote.start : quote.answer_span[1] - quote.start]
    return None


def is_hit(answer: Answer, golds: Iterable[str]) -> bool:
    if answer.abstained:
        return False
    window = normalize(quoted_window(answer))
    return any(normalize(gold) and normalize(gold) in window for gold in golds)


def read_questions(path: Path) -> list[Item]:
    """Questions with gold answers from SQuAD JSON or JSONL (question, answers, optional impossible, id).

    The file is checked whole before any answering: a malformed question is a ChatbotError that names the file
    and the line (or the SQuAD question id), since a wrong type would otherwise give wrong scores silently."""
    raw = read_question_file(Path(path))
    if Path(path).suffix.lower() == ".jsonl":
        return _read_jsonl(raw, path)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ChatbotError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ChatbotError(f"{path} is not valid JSON: nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ChatbotError(f"{path} is not in SQuAD format (no top-level 'data' list)")
    items, problems = [], []
    for article in data["data"]:
        article = article if isinstance(article, dict) else {}
        title = str(article.get("title", ""))
        for paragraph in _list(article.get("paragraphs")):
            for qa in _list(paragraph.get("qas") if isinstance(paragraph, dict) else None):
                try:
                    question = _question(qa)
                    answers = _answers(qa.get("answers", []))
                except ValueError as exc:
                    number = len(items) + len(problems) + 1
                    name = qa.get("id", f"#{number}") if isinstance(qa, dict) else f"#{number}"
                    problems.append(f"{path}: question {name}: {exc}")
                    continue
                impossible = bool(qa.get("is_impossible", False)) or not answers
                items.append(Item(str(qa.get("id", len(items) + 1)), question, answers, impossible, title))
    _raise_first(problems)
    return items


def _read_jsonl(raw: str, path: Path) -> list[Item]:
    items, problems = [], []
    for number, line in enumerate(raw.split("\n"), start=1):  # not splitlines(): JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            problems.append(f"{path}, line {number}: invalid JSON ({exc.msg})")
            continue
        except RecursionError:
            problems.append(f"{path}, line {number}: invalid JSON (nested too deeply)")
            continue
        try:
            question = _question(row)
            answers = _answers(row.get("answers", []))
            impossible = row.get("impossible", row.get("is_impossible", False))
            if not isinstance(impossible, bool):
                raise ValueError(f"'impossible' must be true or false, got {json.dumps(impossible)}")
            if not answers and not impossible:  # not taken for unanswerable: a forgotten answer would score as one
                missing = "no 'answers'" if "answers" not in row else "'answers' is empty"
                raise ValueError(f"{missing}; give [] with {IMPOSSIBLE} for a question the documents do not answer")
        except ValueError as exc:
            problems.append(f"{path}, line {number}: {exc}")
            continue
        items.append(Item(str(row.get("id", f"q{len(items) + 1}")), question, answers, impossible))
    _raise_first(problems)
    return items


def _question(record: Any) -> str:
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object with a 'question'")
    question = record.get("question")
    if not isinstance(question, str):
        raise ValueError("no 'question' text")
    if not question.strip():
        raise ValueError("the question is empty")
    return question


def _answers(value: Any) -> tuple[str, ...]:
    """Gold answers as texts: a list of texts or of {"text": ...} objects (SQuAD's), or a single text."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"'answers' must be a list of texts, got {json.dumps(value, ensure_ascii=False)[:60]}")
    texts = []
    for answer in value:
        text = answer.get("text") if isinstance(answer, dict) else answer
        if not isinstance(text, str):
            shown = json.dumps(answer, ensure_ascii=False)[:60]
            raise ValueError(f"each answer must be a text or an object with a 'text', got {shown}")
        texts.append(text)
    return tuple(dict.fromkeys(texts))


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _raise_first(problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' * (len(problems) > 2)})" if len(problems) > 1 else ""
        raise ChatbotError(problems[0] + more)


def build_corpus(squad_path: Path, folder: Path) -> list[Path]:
    """Write each SQuAD article as one plain-text document (paragraphs separated by a blank line)."""
    try:
        data = json.loads(read_question_file(Path(squad_path)))["data"]
        contexts = [
            [paragraph["context"].strip() for paragraph in article.get("paragraphs", [])] for article in data
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ChatbotError(f"cannot build a corpus from {squad_path}: {type(exc).__name__}: {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, (article, paragraphs) in enumerate(zip(data, contexts), start=1):
        name = (
            re.sub(r"[^\w.-]+", "_", str(article.get("title") or f"article-{number}")).strip("._")
            or f"article-{number}"
        )
        path = folder / f"{name}.txt"
        text = "\n\n".join(paragraphs)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def evaluate(bot: Chatbot, items: list[Item], batch_size: int = 256, progress=None) -> Report:
    """Answer every item (in batches) and score the answers by the protocol."""
    report = Report(questions=len(items))
    hits = false_abstentions = right_abstentions = recall1 = recall5 = exact = marked = 0
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
                phrase = marked_phrase(answer)
                marked += phrase is not None
                exact += phrase is not None and normalize(phrase) in {normalize(gold) for gold in item.answers}
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
    report.span_exact_match = exact / max(hits, 1)
    report.span_marked = marked / max(hits, 1)
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
