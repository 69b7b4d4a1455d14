"""Answer a file of questions: read .txt/.jsonl/.csv (or stdin), write JSONL/CSV/Markdown as it goes.

Usage example:
    rows = read_rows("questions.csv")
    with open_writer(Path("answers.jsonl")) as writer:
        counts = answer_rows(bot, rows, writer)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .answer import Answer, confidence_label
from .bot import Chatbot
from .errors import ChatbotError

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".md": "md", ".markdown": "md"}
CSV_COLUMNS = ["id", "question", "abstained", "confidence", "answer", "citations", "error"]


@dataclass
class Row:
    """One input question; `error` says why it cannot be asked (the run goes on)."""

    id: str
    question: str
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Counts:
    questions: int = 0
    answered: int = 0
    abstained: int = 0
    errors: int = 0
    skipped: int = 0


def read_rows(source: str) -> list[Row]:
    """Rows from a .txt (a question per line), .jsonl or .csv file, or '-' for lines on stdin."""
    if source == "-":
        return _with_ids(_text_rows(sys.stdin.read()))
    path = Path(source)
    kind = path.suffix.lower()
    if kind not in (".txt", ".jsonl", ".csv"):
        raise ChatbotError(f"questions must be a .txt, .jsonl or .csv file (or - for stdin), got {path.name}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ChatbotError(f"question file not found: {path}") from None
    except IsADirectoryError:
        raise ChatbotError(f"question file is a folder: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChatbotError(f"cannot read question file {path}: {exc}") from None
    rows = {".txt": _text_rows, ".jsonl": _jsonl_rows, ".csv": _csv_rows}[kind](text)
    return _with_ids(rows)


def _text_rows(text: str) -> list[Row]:
    return [Row("", line.strip()) for line in text.splitlines() if line.strip()]


def _jsonl_rows(text: str) -> list[Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            rows.append(Row("", "", error=f"line {number}: invalid JSON ({exc.msg})"))
            continue
        if not isinstance(record, dict):
            rows.append(Row("", "", error=f"line {number}: expected a JSON object"))
            continue
        question = record.pop("question", None)
        row_id = record.pop("id", None)
        row = Row("" if row_id is None else str(row_id), question if isinstance(question, str) else "", record)
        if not isinstance(question, str):
            row.error = f"line {number}: no 'question' text"
        rows.append(row)
    return rows


def _csv_rows(text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text))
    missing = not reader.fieldnames or "question" not in reader.fieldnames
    rows = []
    for record in reader:
        question = record.pop("question", None) or ""
        row_id = record.pop("id", None) or ""
        row = Row(row_id, question, {key: value for key, value in record.items() if key is not None})
        row.error = "the CSV file has no 'question' column" if missing else None
        rows.append(row)
    return rows


def _with_ids(rows: list[Row]) -> list[Row]:
    """Give rows without an id one: q1, q2, ... by input position; flag empty questions."""
    for number, row in enumerate(rows, start=1):
        row.id = row.id or f"q{number}"
        if row.error is None and not row.question.strip():
            row.error = "the question is empty"
    return rows


def answer_rows(
    bot: Chatbot,
    rows: list[Row],
    writer: Writer,
    done: set[str] = frozenset(),
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    counts: Counts | None = None,
) -> Counts:
    """Answer rows in input order, in batches; each batch is written (and flushed) as soon as it is answered.

    Pass `counts` to have it kept up to date as the rows are written (so an interrupted run can say how far
    it got)."""
    counts = counts if counts is not None else Counts()
    counts.questions = len(rows)
    for lo in range(0, len(rows), batch_size):
        batch = rows[lo : lo + batch_size]
        todo = [row for row in batch if row.id not in done and row.error is None]
        answers = dict(zip((id(row) for row in todo), bot.ask_batch([row.question for row in todo]))) if todo else {}
        for row in batch:
            if row.id in done:
                counts.skipped += 1
            elif row.error is not None:
                writer.write({"id": row.id, "question": row.question, "error": row.error, **row.extra})
                counts.errors += 1
            else:
                answer = answers[id(row)]
                writer.write(record_of(row, answer))
                counts.answered += 1
                counts.abstained += answer.abstained
        writer.flush()
        if progress:
            progress(len(batch))
    return counts


def record_of(row: Row, answer: Answer) -> dict[str, Any]:
    """The answer JSON with the row's id, then the input's other fields (which never replace answer keys)."""
    record = answer.to_dict()
    record["id"] = row.id
    return {**record, **{key: value for key, value in row.extra.items() if key not in record}}


class Writer:
    """Writes answer records to a stream in one format."""

    def __init__(self, stream: TextIO, kind: str, append: bool = False) -> None:
        self.stream, self.kind = stream, kind
        self._csv = csv.DictWriter(stream, CSV_COLUMNS, extrasaction="ignore") if kind == "csv" else None
        if self._csv and not append:
            self._csv.writeheader()
        if kind == "md" and not append:
            stream.write("# Answers\n\n")

    def write(self, record: dict[str, Any]) -> None:
        if self.kind == "jsonl":
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif self.kind == "csv":
            self._csv.writerow(_csv_row(record))
        else:
            self.stream.write(_markdown(record))

    def flush(self) -> None:
        self.stream.flush()


def output_kind(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ChatbotError(f"output must end in .jsonl, .csv or .md, got {path.name}")
    return kind


def answered_ids(path: Path) -> set[str]:
    """Ids already in an output file (for --resume), answered or ended in an error alike, in every output
    format: a bad row fails again the same way, and asking it again would only add a second error line.

    A last line cut short by a crash is removed from the file, so that appending starts on a new line.
    """
    if not path.exists():
        return set()
    kind = output_kind(path)
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        with open(path, "r+", encoding="utf-8") as handle:
            handle.truncate(len(text.encode("utf-8")))
    if kind == "jsonl":
        ids = set()
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: that question is asked again
            if isinstance(record, dict):
                ids.add(str(record.get("id")))
        return ids
    if kind == "csv":
        return {row["id"] for row in csv.DictReader(io.StringIO(text))}
    return set(re.findall(r"^## `([^`]+)`", text, re.M))


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    citations = "; ".join(f"{quote['source']}:{quote['start']}-{quote['end']}" for quote in record.get("quotes", []))
    return {
        "id": record["id"],
        "question": record.get("question", ""),
        "abstained": record.get("abstained", ""),
        "confidence": record.get("confidence", ""),
        "answer": record.get("answer", ""),
        "citations": citations,
        "error": record.get("error", ""),
    }


def _markdown(record: dict[str, Any]) -> str:
    question = " ".join(str(record.get("question", "")).split())
    lines = [f"## `{record['id']}` {_escape(question)}", ""]
    if "error" in record:
        return "\n".join(lines + [f"**Error:** {_escape(record['error'])}", "", ""])
    if record["abstained"]:
        lines += [f"*{record['answer']}*", ""]
        if record["sources"]:
            lines += ["Nearest text (not an answer):", ""]
            lines += [f"- [{s['citation']}] {_escape(s['source'])}, line {s['line']}" for s in record["sources"]]
            lines.append("")
    else:
        for quote in record["quotes"]:
            lines += [f"> {_escape(' '.join(quote['text'].split()))} [{quote['citation']}]", ""]
        lines += [
            f"- [{q['citation']}] {_escape(q['source'])}, line {q['line']}, characters {q['start']}-{q['end']}"
            for q in record["quotes"]
        ]
        lines.append("")
    label = confidence_label(record["confidence"])
    return "\n".join(lines + [f"Confidence: {record['confidence']:.2f} ({label})", "", ""])


def _escape(text: str) -> str:
    """Markdown-inert text: document words show as written, never as links, HTML or formatting."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", text)


def write_meta(
    path: Path, bot: Chatbot, source: str, counts: Counts, started: float, resumed: bool = False, interrupted: bool = False
) -> None:
    """The provenance of a run: what answered (model, index, config, version), when, how many, and whether it
    was cut short. A resumed run keeps the records of the runs before it, whose answers are in the file too."""
    manifest = bot.data.manifest
    record = {
        "input": source,
        "version": manifest.get("version"),
        "model": manifest["model"],
        "index": {
            "folder": str(bot.config.paths.index),
            "manifest_sha256": manifest_digest(manifest),
            "built_at": manifest.get("built_at"),
            "documents": len(manifest["documents"]),
        },
        "config": bot.config.to_dict(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": asdict(counts),
        "interrupted": interrupted,
    }
    earlier = _read_meta(path) if resumed else None
    if earlier is not None:
        record["earlier_runs"] = earlier.pop("earlier_runs", []) + [earlier]
    path.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def manifest_digest(manifest: dict[str, Any]) -> str:
    """A fingerprint of an index version: the SHA-256 of its manifest in canonical JSON."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def iterate_progress(total: int, quiet: bool):
    """A progress bar on stderr (count, rate, time left) when it is a terminal; None otherwise."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit="q", dynamic_ncols=True)
