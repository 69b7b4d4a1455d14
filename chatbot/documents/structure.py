"""Find how the author structured a text: headings with their levels, paragraphs, list items, terms with their
descriptions, table rows with their header, and code blocks, as character ranges of the text.

Plain text, Markdown, reStructuredText and AsciiDoc are read from their syntax: ATX (`## Title`), underlined
(setext, reST) and AsciiDoc (`== Title`) headings; fenced code; bulleted and numbered items; pipe tables and
plain-text tables whose columns line up; a term line followed by its more deeply indented description (option
lists, changelogs, man pages). The HTML reader knows its structure from the tags and hands it over as blocks of
the same kinds (html_text.py), so a document of any format reaches segment.py as the same `Part`s.

Usage example:
    parts = parse(text, "markdown")        # [Part(start, end, kind="heading", level=2), Part(..., "row"), ...]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("paragraph", "heading", "item", "term", "description", "row", "header", "code")
CELL_GAP = " | "  # between the cells of a table row, which is one line (as the HTML and DOCX readers write it)
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
RST_SUFFIXES = (".rst", ".rest")
ASCIIDOC_SUFFIXES = (".adoc", ".asciidoc")

_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+\S")
_ASCIIDOC_HEADING = re.compile(r"(={1,6})[ \t]+\S")
_UNDERLINE = re.compile(r"[ \t]*([=\-~^*+#'\".:_])\1{2,}[ \t]*$")
# A numbered section heading of a plain text or PDF: "2 ASN.1 structure handling", "2.1 Syntax" (not "1. Item",
# a list item, nor a table of contents' "2.1 Syntax . . . 4").
_NUMBERED = re.compile(r"[ \t]*(\d{1,2}(?:\.\d{1,2})+|\d{1,2})[ \t]+[A-Z](?:[^.!?:;]|\.(?=\S))*$")
_RULE = re.compile(r"[ \t]*(?:([-*_=~])[ \t]*)(?:\1[ \t]*){2,}$")
_BULLET = re.compile(r"([ \t]*)(?:[-*+•◦▪‣·o]|\d{1,3}[.)]|\(?[a-zA-Z]\)|\(\d{1,3}\))[ \t]+(?=\S)")
_PIPE_ROW = re.compile(r"[ \t]*\|.*\|[ \t]*$|[^|]*\S \| \S")
_PIPE_SEPARATOR = re.compile(r"[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")
_BOX_SEPARATOR = re.compile(r"[ \t]*[-=+|: \t]*[-=]{3,}[-=+|: \t]*$")
# Two or more spaces, or a tab, between a column and the next; not after a full stop (sentences that are
# spaced twice).
_GAP = re.compile(r"(?<=[^\s.!?:;,])(?:\t+| {2,}\t*)(?=\S)")


@dataclass(frozen=True)
class Part:
    """A block of the text as its author structured it."""

    start: int
    end: int
    kind: str = "paragraph"  # one of KINDS
    level: int = 0  # a heading's level (1 is the top; 0: unknown); a list item's nesting (1 is the outermost)


def syntax_of(path: str) -> str:
    """"markdown", "rst", "asciidoc" or "plain": the syntax a file's name says its text is written in."""
    lower = path.lower()
    if lower.endswith(MARKDOWN_SUFFIXES):
        return "markdown"
    if lower.endswith(RST_SUFFIXES):
        return "rst"
    if lower.endswith(ASCIIDOC_SUFFIXES):
        return "asciidoc"
    return "plain"


def _lines(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in re.finditer(r"\r\n|\n|\r", text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


class _Parser:
    def __init__(self, text: str, syntax: str) -> None:
        self.text, self.syntax = text, syntax
        self.lines = _lines(text)
        self.parts: list[Part] = []
        self.underlines: list[str] = []  # reST: heading levels in the order their underline characters appear
        self.list_indents: set[int] = set()  # the indentations of the items of the list being read

    def line(self, number: int) -> str:
        start, end = self.lines[number]
        return self.text[start:end]

    def blank(self, number: int) -> bool:
        return number >= len(self.lines) or not self.line(number).strip()

    def add(self, first: int, last: int, kind: str, level: int = 0) -> None:
        """A part from the start of line `first` to the end of line `last`, without surrounding white space."""
        start, end = self.lines[first][0], self.lines[last][1]
        while start < end and self.text[start] in " \t\ufeff":
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        if end > start:
            self.parts.append(Part(start, end, kind, level))

    def run(self) -> list[Part]:
        number, count = 0, len(self.lines)
        while number < count:
            if self.blank(number):
                number += 1
                continue
            for rule in (self.fence, self.heading, self.table, self.item, self.columns, self.definition):
                following = rule(number)
                if following is not None:
                    number = following
                    break
            else:
                number = self.paragraph(number)
        return self.parts

    # Each rule reads the construct starting at line `number`, adds its parts and returns the line after it,
    # or returns None when the line does not start such a construct.

    def fence(self, number: int) -> int | None:
        opened = _FENCE.match(self.line(number))
        if not opened:
            return None
        mark = opened.group(1)
        closing = re.compile(rf"[ \t]{{0,3}}{re.escape(mark[0])}{{{len(mark)},}}[ \t]*$")
        last = number + 1
        while last < len(self.lines) and not closing.match(self.line(last)):
            last += 1
        if last > number + 1:
            self.add(number + 1, last - 1, "code")
        return last + 1

    def heading(self, number: int) -> int | None:
        line = self.line(number)
        atx = _ATX.match(line)
        if atx and self.syntax != "asciidoc":
            self.add(number, number, "heading", len(atx.group(1)))
            return number + 1
        asciidoc = _ASCIIDOC_HEADING.match(line)
        if asciidoc and self.syntax == "asciidoc":
            self.add(number, number, "heading", len(asciidoc.group(1)))
            return number + 1
        overline = _UNDERLINE.match(line)
        if overline and number + 2 < len(self.lines) and _UNDERLINE.match(self.line(number + 2)):
            if not self.blank(number + 1) and len(self.line(number + 1).strip()) <= len(line.strip()) + 2:
                self.add(number + 1, number + 1, "heading", self.level_of(overline.group(1) * 2))
                return number + 3
        if _RULE.match(line) or overline:
            return number + 1  # a horizontal rule, or a stray underline: no text
        numbered = _NUMBERED.match(line)
        if numbered and self.syntax == "plain" and len(line.strip()) <= 80:
            self.add(number, number, "heading", numbered.group(1).count(".") + 1)
            return number + 1
        if number + 1 < len(self.lines):
            under = _UNDERLINE.match(self.line(number + 1))
            if under and _FENCE.match(self.line(number + 1)) and self.syntax != "rst":
                under = None  # ~~~ opens a code block
            title = line.strip()
            if (
                under
                and len(title) <= 150
                and len(self.line(number + 1).strip()) >= min(3, len(title))
                and not _BULLET.match(line)
                and not _PIPE_ROW.match(line)
            ):
                self.add(number, number, "heading", self.level_of(under.group(1)))
                return number + 2
        return None

    def level_of(self, mark: str) -> int:
        """A setext or reST heading's level: Markdown's = and - are 1 and 2; in reST (and plain text) levels go
        by the order in which the underline styles first appear."""
        if self.syntax == "markdown" and mark in ("=", "-"):
            return 1 if mark == "=" else 2
        if mark not in self.underlines:
            self.underlines.append(mark)
        return self.underlines.index(mark) + 1

    def table(self, number: int) -> int | None:
        """Pipe tables: Markdown's (| a | b |, a separator row under the header) and the rows the DOCX reader
        writes (a | b). The rows above a separator are the header; without one, the first row of three or more."""
        if not _PIPE_ROW.match(self.line(number)) or _BULLET.match(self.line(number)):
            return None
        last = number
        while last + 1 < len(self.lines) and (
            _PIPE_ROW.match(self.line(last + 1)) or _PIPE_SEPARATOR.match(self.line(last + 1))
        ):
            last += 1
        rows = [row for row in range(number, last + 1) if not _PIPE_SEPARATOR.match(self.line(row))]
        separated = any(_PIPE_SEPARATOR.match(self.line(row)) for row in range(number, last + 1))
        if len(rows) < 2 and not separated:
            return None
        header_until = next((row for row in range(number, last + 1) if _PIPE_SEPARATOR.match(self.line(row))), None)
        if header_until is None and len(rows) >= 3:
            header_until = number + 1
        for row in rows:
            self.add(row, row, "header" if header_until is not None and row < header_until else "row")
        return last + 1

    def item(self, number: int) -> int | None:
        """A list item: its marker line and the lines that continue it (indented past the marker, or running
        on without a blank line); paragraphs under it after a blank line follow as paragraphs of their own."""
        line = self.line(number)
        bullet = _BULLET.match(line)
        if not bullet or (line.lstrip().startswith("o ") and not self._more_items(number, "o")):
            return None
        indent = _indent(line)
        last = number
        while last + 1 < len(self.lines) and not self.blank(last + 1):
            following = self.line(last + 1)
            if _BULLET.match(following) or _ATX.match(following) or _FENCE.match(following):
                break
            if _UNDERLINE.match(following) or (_indent(following) <= indent and _PIPE_ROW.match(following)):
                break
            last += 1
        self.add(number, last, "item", self._nesting(indent))
        return last + 1

    def _more_items(self, number: int, marker: str) -> bool:
        """Whether a line starting with "o " is one of several such items (a plain-text bullet), not a word."""
        for other in (number - 1, number + 1, number - 2, number + 2):
            if 0 <= other < len(self.lines) and self.line(other).lstrip().startswith(marker + " "):
                return True
        return False

    def _nesting(self, indent: int) -> int:
        """1 for an item at the outermost indentation of the list it is in, 2 one step in, and so on."""
        if not self.parts or self.parts[-1].kind != "item":
            self.list_indents = set()
        self.list_indents.add(indent)
        return 1 + sum(1 for other in self.list_indents if other < indent)

    def columns(self, number: int) -> int | None:
        """A plain-text table: two or more lines in a row whose columns line up (cells apart by two or more
        spaces or a tab, at the same columns). A line that only continues a cell (indented to a column) joins
        the row above. The header is the rows above a separator line (---  ---, ---+---) or, for a table right
        after a block of one or two such lines, that block."""
        if self.syntax == "markdown" and not self._indented(number):
            return None
        last, rows = number, []
        starts: list[set[int]] = []
        while last < len(self.lines) and not self.blank(last):
            line = self.line(last)
            cells = _cell_starts(line)
            if _BOX_SEPARATOR.match(line):
                rows.append((last, "separator"))
            elif cells:
                rows.append((last, "row"))
                starts.append(cells)
            elif rows and rows[-1][1] == "row" and _indent(line) > _indent(self.line(rows[-1][0])) + 1:
                rows.append((last, "continued"))
            else:
                break
            last += 1
        body = [row for row, kind in rows if kind == "row"]
        if len(body) in (1, 2) and len(rows) == len(body) and self._table_below(rows[-1][0] + 1, starts):
            for row in body:  # a header standing apart, a blank line above its rows
                self.add(row, row, "header")
            return rows[-1][0] + 1
        if len(body) < 2 or not _aligned(starts):
            return None
        end = rows[-1][0]
        separator = next((index for index, (_, kind) in enumerate(rows) if kind == "separator"), None)
        header_rows = {row for row, kind in rows[:separator] if kind != "separator"} if separator else set()
        groups: list[list[int]] = []
        for row, kind in rows:
            if kind == "row":
                groups.append([row])
            elif kind == "continued" and groups:
                groups[-1].append(row)
        for group in groups:
            self.add(group[0], group[-1], "header" if group[0] in header_rows else "row")
        return end + 1

    def _table_below(self, number: int, starts: list[set[int]]) -> bool:
        """Whether, after blank lines, two or more lines follow whose cells line up with each other and with
        these lines' (`starts`)."""
        while number < len(self.lines) and self.blank(number):
            number += 1
        if number == len(self.lines) or number - 1 < 0 or not self.blank(number - 1):
            return False
        below = []
        while number < len(self.lines) and not self.blank(number) and _cell_starts(self.line(number)):
            below.append(_cell_starts(self.line(number)))
            number += 1
        return len(below) >= 2 and _aligned(below) and _aligned(below + starts)

    def _indented(self, number: int) -> bool:
        return _indent(self.line(number)) >= 4

    def definition(self, number: int) -> int | None:
        """A term line followed by its description indented deeper (an option list, a changelog entry, a man
        page's options): the term, then the description's lines up to a blank line or a line indented less."""
        if number + 1 >= len(self.lines) or self.blank(number + 1):
            return None
        term, below = self.line(number), self.line(number + 1)
        indent, deeper = _indent(term), _indent(below)
        if deeper < indent + 2 or len(term.strip()) > 80 or _BULLET.match(below) and deeper <= indent + 4:
            return None
        if term.rstrip().endswith((".", ",", ";")) and not term.strip().startswith("-"):
            return None  # a sentence whose next line is indented (a quotation, a code sample), not a term
        last = number + 1
        while last + 1 < len(self.lines) and not self.blank(last + 1) and _indent(self.line(last + 1)) >= deeper:
            last += 1
        self.add(number, number, "term")
        self.add(number + 1, last, "description")
        return last + 1

    def paragraph(self, number: int) -> int:
        """Lines up to a blank line or the start of another construct: prose, read into sentences later."""
        last = number
        while last + 1 < len(self.lines) and not self.blank(last + 1):
            following = self.line(last + 1)
            if (
                _FENCE.match(following)
                or _ATX.match(following)
                or (_BULLET.match(following) and not _BULLET.match(self.line(number)) and self._starts_list(last + 1))
                or (_PIPE_ROW.match(following) and last + 2 < len(self.lines) and _PIPE_ROW.match(self.line(last + 2)))
                or (self.syntax == "plain" and _NUMBERED.match(following) and len(following.strip()) <= 80)
            ):
                break
            if last + 2 < len(self.lines) and _UNDERLINE.match(self.line(last + 2)) and not _RULE.match(following):
                if len(following.strip()) <= 150 and not self.blank(last + 1):
                    break  # the next line is an underlined heading
            last += 1
        self.add(number, last, "paragraph")
        return last + 1

    def _starts_list(self, number: int) -> bool:
        line = self.line(number)
        return not line.lstrip().startswith("o ") or self._more_items(number, "o")


def _cell_starts(line: str) -> set[int]:
    """Columns (tabs expanded) where a cell after a gap of two or more spaces or a tab starts."""
    expanded = line.expandtabs(8)
    return {match.end() for match in _GAP.finditer(expanded) if match.start() > len(expanded) - len(expanded.lstrip())}


def _aligned(starts: list[set[int]]) -> bool:
    """Whether most lines share a column where a cell starts (give or take one), as a table's do."""
    if len(starts) < 2:
        return False
    counts: dict[int, int] = {}
    for cells in starts:
        for column in {c + d for c in cells for d in (-1, 0, 1)}:
            counts[column] = counts.get(column, 0) + 1
    return max(counts.values()) >= max(2, 0.7 * len(starts))


def parse(text: str, syntax: str = "plain") -> list[Part]:
    """The parts of `text` in order. Paragraph parts may hold several blocks of prose (segment.py splits them
    as before); every other part is one heading, item, term, description, row, header row or code block."""
    parts = _Parser(text, syntax).run()
    return _headers_above(parts, text)


def _headers_above(parts: list[Part], text: str) -> list[Part]:
    """A plain-text table whose header stands apart (a blank line between): a short block of rows of one or two
    lines right above a longer block of rows becomes its header."""
    result = list(parts)
    for index in range(1, len(result)):
        part, before = result[index], result[index - 1]
        if part.kind != "row" or before.kind != "row":
            continue
        gap = text[before.end : part.start]
        if gap.count("\n") < 2:
            continue
        run = index
        while run + 1 < len(result) and result[run + 1].kind == "row" and text[result[run].end : result[run + 1].start].count("\n") < 2:
            run += 1
        top = index - 1
        while top - 1 >= 0 and result[top - 1].kind == "row" and text[result[top - 1].end : result[top].start].count("\n") < 2:
            top -= 1
        if index - top <= 2 and run - index + 1 >= 2 and (top == 0 or result[top - 1].kind != "row"):
            for header in range(top, index):
                result[header] = Part(result[header].start, result[header].end, "header", 0)
    return result
