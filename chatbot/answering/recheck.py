"""Re-check saved answers against the documents as they are now: each quote is ok, moved, changed or missing.

Only the documents are read, by the readers the index uses (a PDF's, HTML page's or DOCX file's quote is
checked against its extracted text, as its offsets count in it); neither the model nor the index is needed.

Usage example:
    checks = check_answer(answer, "seeds")           # an Answer, or its JSON as a dict
    [check.status for check in checks]               # ["ok", "moved"]
    checks[1].now.start, checks[1].now.line          # where the moved quote is now
    rechecker = Rechecker("seeds")                   # reads each document once for many answers
    fixed = rechecker.fix(record, rechecker.check(record))   # the answer JSON brought up to date
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np

from ..config import Config, DocumentsConfig
from ..documents.formats import Unreadable, unseen_spans
from ..documents.load import (
    Document,
    line_breaks,
    line_on_page,
    page_of,
    read_document,
    read_question_file,
    scan_with_uploads,
)
from ..errors import ChatbotError
from .quote import Quote

OK, MOVED, CHANGED, MISSING = "ok", "moved", "changed", "missing"
STATUSES = (OK, MOVED, CHANGED, MISSING)
MARK = "recheck"  # the field --fix adds to a quote or source whose text is gone: {"status", "detail"}


class Quoted(Protocol):
    """An answer as a check sees it: its quotes. answer.Answer is one (its `verify` calls this module, which
    therefore knows it by this shape only, not by importing it)."""

    quotes: tuple[Quote, ...]


@dataclass(frozen=True)
class QuoteCheck:
    """What became of one quote. `now` is the quote as the document holds it today (ok and moved: offsets,
    line, page and SHA-256 as they are now); None when its text is gone (changed) or its document (missing)."""

    quote: Quote  # as the saved answer gives it
    status: str  # one of STATUSES
    now: Quote | None = None
    occurrences: int = 0  # moved: how often the text occurs in the document now (the nearest one is taken)
    detail: str = ""  # why, in a few words for people; empty for a quote that is where it was

    @property
    def holds(self) -> bool:
        """Whether the quote still stands in its document (ok or moved)."""
        return self.status in (OK, MOVED)

    def to_dict(self) -> dict[str, Any]:
        result = {
            "citation": self.quote.citation,
            "source": self.quote.source,
            "start": self.quote.start,
            "end": self.quote.end,
            "status": self.status,
        }
        if self.status == MOVED:
            now = self.now.to_dict()
            result["now"] = {key: now[key] for key in ("start", "end", "line", "page", "source_sha256") if key in now}
            result["occurrences"] = self.occurrences
        if self.detail:
            result["detail"] = self.detail
        return result


@dataclass(frozen=True)
class _Found:
    """Where a saved span of text is in its document now."""

    status: str
    start: int = 0
    occurrences: int = 0
    detail: str = ""
    document: Document | None = None


class Rechecker:
    """Checks quotes against the documents under one folder (and those uploaded through the web page, cited as
    ".uploads/NAME"), reading each document (once) when a quote needs it. Only files the index would read
    count: a file of another type, a hidden one or one outside the folder is missing. A documents folder that does not exist is a ChatbotError here."""

    def __init__(
        self,
        docs: str | Path,
        extensions: Sequence[str] = DocumentsConfig().file_types,
        ignore: str | Path | None = None,
        uploads: str | Path | None = None,
    ) -> None:
        self.docs = Path(docs)
        ignored = (Path(ignore),) if ignore is not None else ()
        scan = scan_with_uploads(self.docs, tuple(extensions), ignored, Path(uploads) if uploads is not None else None)
        self._files = {info.path: info for info in scan.files}
        self._skipped = {skipped.path: skipped.reason for skipped in scan.skipped}
        self._documents: dict[str, Document | str] = {}  # path -> the document, or why it cannot be read
        self._breaks: dict[str, np.ndarray] = {}

    @classmethod
    def from_config(cls, config: Config) -> Rechecker:
        """For the configured documents folder, its uploads and file types (the index folder left out, as the
        index does)."""
        return cls(config.paths.docs, config.documents.file_types, config.paths.index, config.paths.uploads_folder)

    def check(self, answer: Quoted | dict[str, Any]) -> list[QuoteCheck]:
        """One result per quote of `answer`, in its order."""
        return self.check_batch([answer])[0]

    def check_batch(self, answers: Iterable[Quoted | dict[str, Any]]) -> list[list[QuoteCheck]]:
        """`check` of each answer; a dict that is not answer JSON raises ChatbotError."""
        return [[self._check_quote(quote) for quote in quotes_of(answer)] for answer in answers]

    def fix(self, record: dict[str, Any], checks: Sequence[QuoteCheck]) -> dict[str, Any]:
        """A copy of answer JSON `record` (with `checks`, its quotes' results) brought up to date: each quote
        that holds gets its offsets, line, page and SHA-256 as they are now (an `answer_span` moves with it);
        one whose text or document is gone is marked {"recheck": {"status", "detail"}}. Each source passage is
        moved to where its text is now, or marked the same way. No field is removed."""
        fixed = copy.deepcopy(record)
        for quote, check in zip(fixed.get("quotes") or [], checks, strict=True):
            if check.holds:
                _move(quote, check.now.to_dict(), check.now.start - check.quote.start)
            if check.holds and MARK not in quote:
                continue
            quote[MARK] = {"status": check.status, **({"detail": check.detail} if check.detail else {})}
        for source in fixed.get("sources") or []:
            self._fix_source(source)
        return fixed

    def _check_quote(self, quote: Quote) -> QuoteCheck:
        found = self._find(quote.source, quote.text, quote.start, quote.end)
        if found.status in (CHANGED, MISSING):
            return QuoteCheck(quote, found.status, detail=found.detail)
        document, start = found.document, found.start
        end = start + len(quote.text)
        shift = start - quote.start
        span = quote.answer_span
        now = dataclasses.replace(
            quote,
            start=start,
            end=end,
            answer_span=None if span is None else (span[0] + shift, span[1] + shift),
            line=self._line(document, start),
            source_sha256=document.sha256,
            page=page_of(document.pages, start),
        )
        if found.status == MOVED:
            where = f"{start}-{end}, " + (f"page {now.page}, " if now.page is not None else "") + f"line {now.line}"
            detail = f"now at {where}{found.detail}"
        elif quote.source_sha256 and quote.source_sha256 != document.sha256:
            detail = "the document changed, but the quote is still where it was"
        else:
            detail = ""
        return QuoteCheck(quote, found.status, now, found.occurrences, detail)

    def _fix_source(self, source: Any) -> None:
        """Move a source passage (a dict of answer JSON) to where its text is now, or mark it."""
        if not isinstance(source, dict) or not _is_span(source):
            return
        found = self._find(source["source"], source["text"], source["start"], source["end"])
        if found.status in (CHANGED, MISSING):
            source[MARK] = {"status": found.status, "detail": found.detail}
            return
        start, document = found.start, found.document
        now = {"start": start, "end": start + len(source["text"]), "line": self._line(document, start)}
        if document.pages:
            now["page"] = page_of(document.pages, start)
        _move(source, now, 0)
        if MARK in source:
            source[MARK] = {"status": found.status}

    def _find(self, path: str, text: str, start: int, end: int) -> _Found:
        """Where `text`, saved as `path`'s characters start:end, is now: still there (ok); else the
        occurrence nearest the old offset (moved), among the text a reader sees (not Markdown front matter
        or comments, which are never quoted); else changed; or missing with its document."""
        document = self._document(path)
        if isinstance(document, str):
            return _Found(MISSING, detail=document)
        body = document.text
        if body[start:end] == text:
            return _Found(OK, start, document=document)
        unseen = unseen_spans(body, PurePosixPath(path).suffix)
        places = [place for place in _occurrences(body, text) if not any(lo <= place < hi for lo, hi in unseen)]
        if not places:
            return _Found(CHANGED, detail="the text is no longer in the document")
        nearest = min(places, key=lambda place: (abs(place - start), place))
        detail = f" (it occurs {len(places)} times; the nearest to {start} is taken)" if len(places) > 1 else ""
        return _Found(MOVED, nearest, len(places), detail, document)

    def _document(self, path: str) -> Document | str:
        """The document at `path` (relative to the folder) as the index reads it, or why there is none."""
        if path not in self._documents:
            info = self._files.get(path)
            if info is None:
                reason = self._skipped.get(path)
                self._documents[path] = (
                    f"the document is no longer read: {reason}"
                    if reason
                    else "the document is not in the documents folder"
                )
            else:
                try:
                    self._documents[path] = read_document(info)
                except Unreadable as exc:
                    self._documents[path] = f"the document can no longer be read: {exc}"
        return self._documents[path]

    def _line(self, document: Document, offset: int) -> int:
        if document.path not in self._breaks:
            self._breaks[document.path] = line_breaks(document.text)
        return line_on_page(self._breaks[document.path], document.pages, offset)


def check_answer(answer: Quoted | dict[str, Any], docs: str | Path) -> list[QuoteCheck]:
    """Each quote of `answer` (an Answer or its JSON) checked against the documents under `docs`."""
    return Rechecker(docs).check(answer)


def _occurrences(body: str, text: str) -> list[int]:
    """Every offset where `text` starts in `body` (overlapping ones too)."""
    places, place = [], body.find(text)
    while place >= 0:
        places.append(place)
        place = body.find(text, place + 1)
    return places


def _move(item: dict[str, Any], now: dict[str, Any], shift: int) -> None:
    """Set a quote's or source's location fields to `now`, and shift the quote's answer span with it."""
    item.update({key: now[key] for key in ("start", "end", "line", "page", "source_sha256") if key in now})
    span = item.get("answer_span")
    if shift and isinstance(span, dict) and all(_is_int(span.get(key)) for key in ("start", "end")):
        span["start"] += shift
        span["end"] += shift


# ----- reading saved answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedAnswers:
    """Answer JSON as read from a file: the records, the line each starts on, and whether the file held JSON
    lines (`batch`, the web page's export) or indented objects (`ask --json`, one or several)."""

    records: list[dict[str, Any]]
    lines: list[int]
    json_lines: bool

    def dumps(self, records: Sequence[dict[str, Any]]) -> str:
        """`records` written the way these were: one object per line, or indented objects."""
        return "".join(json_text(record, None if self.json_lines else 1) + "\n" for record in records)


def json_text(record: dict[str, Any], indent: int | None = None) -> str:
    """`record` as JSON, in UTF-8 characters; as escapes where it holds a lone surrogate (JSON read by Python
    may), which UTF-8 cannot hold."""
    text = json.dumps(record, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record, indent=indent)
    return text


def read_answers(source: str) -> SavedAnswers:
    """The answers in a file (or '-' for stdin): JSON lines, or one or more indented answer JSON objects.
    A file that cannot be read, or anything in it that is not answer JSON (a quote without offsets, say), is
    a ChatbotError that names the line. A `batch` line for a question that got an error has no quotes."""
    name = "stdin" if source == "-" else source
    text = sys.stdin.read() if source == "-" else read_question_file(Path(source), "answers file")
    lines = text.removeprefix("\ufeff").split("\n")  # not splitlines(): JSON strings may hold U+2028
    numbers = [number for number, line in enumerate(lines, 1) if line.strip()]
    if not numbers:
        raise ChatbotError(f"no answers in {name}")
    try:
        json.loads(lines[numbers[0] - 1])
        json_lines = True
    except RecursionError:  # a line of its own, nested too deeply: _parse_line says so
        json_lines = True
    except ValueError:  # the first line is not JSON of its own: indented objects (ask --json)
        json_lines = False
    if json_lines:
        records = [_parse_line(lines[number - 1], name, number, number == numbers[0]) for number in numbers]
    else:
        records, numbers = _parse_objects("\n".join(lines), name)
    for record, number in zip(records, numbers):
        try:
            quotes_of(record)
        except ChatbotError as exc:
            raise ChatbotError(f"{name} line {number}: {exc}") from None
    return SavedAnswers(records, numbers, json_lines)


def _parse_line(line: str, name: str, number: int, first: bool) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        hint = _HINT if first else ""
        raise ChatbotError(f"{name} line {number}: not answer JSON ({getattr(exc, 'msg', exc)}){hint}") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise ChatbotError(f"{name} line {number}: not answer JSON (nested too deeply)") from None


def _parse_objects(text: str, name: str) -> tuple[list[Any], list[int]]:
    """The JSON values in `text`, one after another (white space between them), and the line each starts on."""
    decoder, records, numbers, position = json.JSONDecoder(), [], [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return records, numbers
        try:
            record, position_after = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            hint = "" if records else _HINT
            raise ChatbotError(f"{name} line {exc.lineno}: not answer JSON ({exc.msg}){hint}") from None
        except RecursionError:
            line = text.count("\n", 0, position) + 1
            raise ChatbotError(f"{name} line {line}: not answer JSON (nested too deeply)") from None
        records.append(record)
        numbers.append(text.count("\n", 0, position) + 1)
        position = position_after


_HINT = "; verify reads answer JSON: ask --json, batch's JSON lines or the web page's JSON lines export"


def quotes_of(answer: Quoted | dict[str, Any]) -> tuple[Quote, ...]:
    """The quotes of an Answer or of answer JSON; a dict that is not answer JSON raises ChatbotError. A
    `batch` record of a question that failed ({"question", "error"}) has none."""
    if not isinstance(answer, dict):
        if isinstance(getattr(answer, "quotes", None), tuple):  # an Answer
            return answer.quotes
        raise ChatbotError(f"not answer JSON (an answer is an object, not {_kind(answer)})")
    quotes = answer.get("quotes")
    if quotes is None and "error" in answer:
        return ()
    if not isinstance(quotes, list):
        raise ChatbotError("not answer JSON (it has no 'quotes' list)")
    return tuple(_quote(record, number) for number, record in enumerate(quotes, start=1))


def _quote(record: Any, number: int) -> Quote:
    if not isinstance(record, dict):
        raise ChatbotError(f"quote {number} is not an object")
    for key in ("text", "source"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ChatbotError(f"quote {number} has no '{key}'")
    if not _is_span(record):
        raise ChatbotError(f"quote {number} has no character offsets (whole numbers 'start' <= 'end')")
    citation, line, page = (record.get(key) for key in ("citation", "line", "page"))
    return Quote(
        citation=citation if _is_int(citation) else number,
        text=record["text"],
        source=record["source"],
        start=record["start"],
        end=record["end"],
        line=line if _is_int(line) else 0,
        source_sha256=record.get("source_sha256") if isinstance(record.get("source_sha256"), str) else "",
        page=page if _is_int(page) else None,
        answer_span=_answer_span(record),
        section=record.get("section") if isinstance(record.get("section"), str) else "",
        context=record.get("context") if isinstance(record.get("context"), str) else "",
    )


def _answer_span(record: dict[str, Any]) -> tuple[int, int] | None:
    """A quote's `answer_span` as (start, end) when it is one inside the quote; anything else is passed over."""
    span = record.get("answer_span")
    if not isinstance(span, dict) or not all(_is_int(span.get(key)) for key in ("start", "end")):
        return None
    start, end = span["start"], span["end"]
    return (start, end) if record["start"] <= start <= end <= record["end"] else None


def _is_span(record: dict[str, Any]) -> bool:
    """Whether a quote or source has text, a source and offsets 0 <= start <= end."""
    start, end = record.get("start"), record.get("end")
    return (
        isinstance(record.get("text"), str)
        and isinstance(record.get("source"), str)
        and _is_int(start)
        and _is_int(end)
        and 0 <= start <= end
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {list: "a list", str: "text", type(None): "null", bool: "true/false"}.get(type(value), "a number")


def summary(results: Sequence[Sequence[QuoteCheck]]) -> str:
    """'212 quotes: 205 ok, 4 moved, 2 changed, 1 missing'."""
    counts = dict.fromkeys(STATUSES, 0)
    for checks in results:
        for check in checks:
            counts[check.status] += 1
    total = sum(counts.values())
    return f"{total} quote{'s' * (total != 1)}: " + ", ".join(f"{counts[status]} {status}" for status in STATUSES)
