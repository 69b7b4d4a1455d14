"""Answer a file of questions: read .txt/.jsonl/.csv (or stdin), write JSONL/CSV/Markdown as it goes.

Usage example:
    rows = read_rows("questions.csv")
    with open("answers.jsonl", "w", encoding="utf-8") as stream:
        counts = answer_rows(bot, rows, Writer(stream, "jsonl"))
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..answering.answer import Answer, confidence_label, printable
from ..answering.bot import Chatbot
from ..documents.load import read_question_file
from ..errors import ChatbotError

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".md": "md", ".markdown": "md"}
QUESTION_FORMATS = {".txt": "txt", ".jsonl": "jsonl", ".csv": "csv"}
CSV_COLUMNS = ["id", "question", "abstained", "confidence", "answer", "citations", "error"]
CSV_DELIMITERS = (",", ";", "\t")  # Excel writes ";" where the decimal comma is usual, and "\t" for "Unicode text"


@dataclass
class Row:
    """One input question; `error` says why it cannot be asked (the run goes on); `line` is where it starts."""

    id: str
    question: str
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    line: int = 0


@dataclass
class Counts:
    questions: int = 0
    answered: int = 0
    abstained: int = 0
    errors: int = 0
    skipped: int = 0


def read_rows(source: str, kind: str | None = None) -> list[Row]:
    """Rows from a .txt (a question per line), .jsonl or .csv file, or '-' for stdin; `kind` ("txt", "jsonl" or
    "csv") says what the input holds when its name does not (stdin is read as text by default).

    A file is decoded as documents are (UTF-8 with or without a byte-order mark, UTF-16 with one, else CP1252),
    so that spreadsheet exports read as they are. A CSV file without a 'question' column is an error here, before
    any answering."""
    if source == "-":
        text, name, kind = sys.stdin.read(), "stdin", kind or "txt"
    else:
        path = Path(source)
        kind = kind or QUESTION_FORMATS.get(path.suffix.lower())
        if kind is None:
            raise ChatbotError(
                f"questions must be a .txt, .jsonl or .csv file (or - for stdin), got {path.name}; "
                "--format says what another file holds"
            )
        text, name = read_question_file(path), str(path)
    readers = {"txt": _text_rows, "jsonl": _jsonl_rows, "csv": _csv_rows}
    return _with_ids(readers[kind](text.removeprefix("\ufeff"), name))


def _text_rows(text: str, name: str) -> list[Row]:
    return [Row("", line.strip(), line=number) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _jsonl_rows(text: str, name: str) -> list[Row]:
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines(): JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            rows.append(Row("", "", error=f"invalid JSON ({exc.msg})", line=number))
            continue
        except RecursionError:  # arrays or objects nested thousands deep
            rows.append(Row("", "", error="invalid JSON (nested too deeply)", line=number))
            continue
        if not isinstance(record, dict):
            rows.append(Row("", "", error="expected a JSON object", line=number))
            continue
        question = record.pop("question", None)
        row_id = record.pop("id", None)
        text = question if isinstance(question, str) else ""
        error = None if isinstance(question, str) else "no 'question' text"
        rows.append(Row("" if row_id is None else str(row_id), text, record, error, number))
    return rows


def _csv_rows(text: str, name: str) -> list[Row]:
    """Rows of a CSV file whose header names a `question` column and optionally an `id` column, in any case and
    with any spaces around them; the delimiter is ",", ";" or a tab, whichever the header shows."""
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    if not header_line:
        return []
    headers = {
        sep: [cell.strip().lower() for cell in next(csv.reader([header_line], delimiter=sep))] for sep in CSV_DELIMITERS
    }
    delimiter = next(
        (sep for sep in CSV_DELIMITERS if "question" in headers[sep]),
        max(CSV_DELIMITERS, key=lambda sep: len(headers[sep])),
    )
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        names = [cell.strip() for cell in next(cells for cells in reader if cells)]
        keys = [cell.lower() for cell in names]
        if "question" not in keys:
            found = ", ".join(json.dumps(cell, ensure_ascii=False) for cell in names)
            raise ChatbotError(f"{name} has no 'question' column (columns found: {found})")
        asked, named = keys.index("question"), keys.index("id") if "id" in keys else None
        rows, start = [], reader.line_num + 1
        for cells in reader:
            if cells:
                cells += [""] * (len(names) - len(cells))  # a short row: the missing cells are empty
                extra = {key: cells[index] for index, key in enumerate(names) if index not in (asked, named)}
                row_id = cells[named].strip() if named is not None else ""
                rows.append(Row(row_id, cells[asked].strip(), extra, line=start))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ChatbotError(f"{name}: line {reader.line_num}: {exc}") from None
    return rows


def _with_ids(rows: list[Row]) -> list[Row]:
    """Give rows without an id one: q and the row's number (q1, q2, ...; blank lines are not rows), or, when the
    file gives that id to another row itself, the first of qN_2, qN_3, ... that it does not. Flag empty
    questions; error messages name the line of the file and the row (the number in a generated id)."""
    taken = {row.id for row in rows if row.id}
    for number, row in enumerate(rows, start=1):
        if not row.id:
            row.id, suffix = f"q{number}", 1
            while row.id in taken:
                suffix += 1
                row.id = f"q{number}_{suffix}"
        if row.error is None and not row.question.strip():
            row.error = "the question is empty"
        if row.error is not None:
            row.error = f"line {row.line} (row {number}): {row.error}"
    return rows


def repeated_ids(rows: list[Row]) -> list[str]:
    """Ids that more than one row has, in order of first appearance."""
    counts = Counter(row.id for row in rows)
    return [row_id for row_id, count in counts.items() if count > 1]


def answer_rows(
    bot: Chatbot,
    rows: list[Row],
    writer: Writer,
    skip: Collection[int] = frozenset(),
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    counts: Counts | None = None,
) -> Counts:
    """Answer rows in input order, in batches; each batch is written (and flushed) as soon as it is answered.
    Rows whose positions are in `skip` (see `resume_skips`) are passed over.

    Pass `counts` to have it kept up to date as the rows are written (so an interrupted run can say how far
    it got)."""
    counts = counts if counts is not None else Counts()
    counts.questions = len(rows)
    for number, row in enumerate(rows, start=1):  # no words, too long: an error line naming the row, as for empty
        problem = bot.question_problem(row.question) if row.error is None else None
        if problem:
            row.error = f"line {row.line} (row {number}): {problem}"
    for lo in range(0, len(rows), batch_size):
        batch = list(enumerate(rows[lo : lo + batch_size], start=lo))
        todo = [row for index, row in batch if index not in skip and row.error is None]
        answers = dict(zip((id(row) for row in todo), bot.ask_batch([row.question for row in todo]))) if todo else {}
        for index, row in batch:
            if index in skip:
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


def resume_skips(path: Path, rows: list[Row]) -> set[int]:
    """Positions of the rows already in an output file (for --resume), answered or ended in an error alike, in
    every output format: a bad row fails again the same way, and asking it again would only add a second error
    line. A row is matched by its id (the k-th row with an id to the k-th record with it) and must have the same
    question (spaces aside); if any differs, or the file has ids the rows do not, the question file changed since
    OUT was written and resuming would skip or repeat questions, so this raises ChatbotError.

    A last line cut short by a crash is removed from the file, so that appending starts on a new line."""
    if not path.exists():
        return set()
    text = path.read_text(encoding="utf-8")
    whole = text[: text.rfind("\n") + 1]
    waiting: dict[str, deque[str]] = {}
    for row_id, question in _records(whole, output_kind(path)):
        waiting.setdefault(row_id, deque()).append(question)
    skip = set()
    for index, row in enumerate(rows):
        if waiting.get(row.id):
            written = waiting[row.id].popleft()
            if written.split() != row.question.split():
                raise ChatbotError(
                    f"the question file changed since {path} was written ({row.id} was {_shown(written)}, is now "
                    f"{_shown(row.question)}); write to a new file, or delete {row.id} from {path.name} to ask it again"
                )
            skip.add(index)
    extra = [row_id for row_id, left in waiting.items() if left]
    if extra:
        raise ChatbotError(
            f"the question file changed since {path} was written ({extra[0]} is answered there but no longer "
            "asked); write to a new file"
        )
    if whole != text:
        with open(path, "r+", encoding="utf-8") as handle:
            handle.truncate(len(whole.encode("utf-8")))
    return skip


def _records(text: str, kind: str) -> list[tuple[str, str]]:
    """(id, question) of each record in an output file's text, in order."""
    if kind == "jsonl":
        records = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: that question is asked again
            if isinstance(record, dict):
                records.append((str(record.get("id")), str(record.get("question", ""))))
        return records
    if kind == "csv":
        return [(row["id"], row.get("question") or "") for row in csv.DictReader(io.StringIO(text))]
    return [(row_id, _unescape(question)) for row_id, question in re.findall(r"^## `([^`]+)` ?(.*)$", text, re.M)]


def _shown(question: str, limit: int = 80) -> str:
    question = " ".join(question.split())
    return json.dumps(question if len(question) <= limit else question[: limit - 1] + "…", ensure_ascii=False)


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
            lines += [f"- [{s['citation']}] {_escape(printable(s['source']))}, line {s['line']}" for s in record["sources"]]
            lines.append("")
    else:
        for quote in record["quotes"]:
            lines += [f"> {_escape(printable(' '.join(quote['text'].split())))} [{quote['citation']}]", ""]
        lines += [
            f"- [{q['citation']}] {_escape(printable(q['source']))}, line {q['line']}, characters {q['start']}-{q['end']}"
            for q in record["quotes"]
        ]
        lines.append("")
    label = record.get("confidence_label") or confidence_label(record["confidence"])
    return "\n".join(lines + [f"Confidence: {record['confidence']:.2f} ({label})", "", ""])


def _escape(text: str) -> str:
    """Markdown-inert text: document words show as written, never as links, HTML or formatting."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", text)


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\`*_{}\[\]()<>#+!|~])", r"\1", text)


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
