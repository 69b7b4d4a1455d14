"""Split a text into quote units with exact character offsets, grouped into blocks that follow its structure.

The structure (structure.py, or the HTML reader's) says what each block is; the units follow it:
- prose: sentences. A blank line ends a block; so does a line break after a heading or a full stop, and
  before a list item or a Markdown heading; other line breaks (hard-wrapped prose) are spaces. A sentence ends
  at . ! ? or … followed by a space and a capital, digit or opening quote, unless the word before is a known
  abbreviation or an initial, or the stop lies inside quoted speech (so never inside `ASN.1`, `v1.2.3`,
  `setup.py` or `e.g.`);
- a heading, a list item, a table row, a term with (the start of) its description, a short code block: one
  unit each (a long item or description goes on in sentences, a long code block in runs of lines);
- a unit longer than `max_chars` is cut at the last space before the limit.
Each block knows its kind, a heading its level, and a table row its header (a description's sentences their
term; the items, rows and code under a line ending in a colon, that line): the `context` read with it.

Usage example:
    blocks = split_blocks(text, syntax="markdown")   # [Block(start, end, sentences=[(start, end), ...], kind=...)]
    sections(blocks)                                 # per unit: the unit index of its heading, or -1
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .structure import Part, parse

ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft vs etc al cf ca approx dept est fig figs no nos vol vols ed eds
    inc ltd co corp bros gen gov lt col sgt capt cmdr adm rev hon pres sen rep jan feb mar apr jun jul aug
    sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun e.g i.e a.m p.m u.s u.k u.n e.u
    ph.d b.a m.a b.sc m.sc op p pp ch sec art para viz resp ibid""".split()
)
# Words that usually start a new sentence: after "U.S." or "etc." they make the stop a boundary.
SENTENCE_STARTERS = frozenset(
    """the this that these those it its he she they we i you there here in on at for but and so however
    a an as after before when while if then thus also yet our his her their some many most all""".split()
)
# Bumped when the same text splits differently, so that indexes split the old way are rebuilt.
VERSION = 7  # 2: Chinese and Japanese stops end sentences; a byte-order mark is not part of one
# 3: a table row (cells between "|") is a sentence of its own and never a heading; 4: no sentence holds an
# unseen span (a Markdown comment), however it stands; 5: units follow the document's structure (structure.py);
# 6: a line without a letter, or starting in lower case, is never taken for a heading; 7: an item's text
# starts past the white space after its marker
UNIT_CHARS = 400  # a list item, a description or a code block up to this long is one unit; longer ones are split
# What each kind of block is, as stored in the index (IndexData.units).
KIND_CODES = {"paragraph": 0, "heading": 1, "item": 2, "term": 3, "description": 4, "row": 5, "code": 6}
# A line ending in one of these continues on the next line, so it is not a heading.
CONTINUING_WORDS = frozenset(
    """the a an of and or to in on at for by with from as that which who whose is are was were be been
    but nor than into onto over under about its their his her our your this these those""".split()
)

_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+")
_HEADING = re.compile(r"[ \t]*#{1,6}[ \t]+")
# A table row: a Markdown one ("| a | b |") or one that the HTML and DOCX readers write ("a | b").
_TABLE_ROW = re.compile(r"[ \t]*\|.*\|[ \t]*$|.*\S \| \S")
_TERMINAL = re.compile(r"[.!?…:;][\"'”’)\]*_]*\s*$")
# A stop, then closing quotes or brackets, then white space; Chinese and Japanese stops need no space after.
_STOP = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+[」』”’）)]*")
_CJK_STOPS = "。！？"
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_OPEN_QUOTES = {"“": "”", "«": "»", '"': '"'}
_CLOSE_QUOTES = {"”", "»"}


@dataclass
class Block:
    """A paragraph, heading, list item, term, description, table row or code block: a run of text whose units
    belong together."""

    start: int
    end: int
    sentences: list[tuple[int, int]] = field(default_factory=list)  # its quote units
    heading: bool = False
    kind: str = "paragraph"  # a key of KIND_CODES
    level: int = 0  # a heading's level (1 is the top; 0: not known)
    context: tuple[int, int] | None = None  # what its units are read with: a row's header, a description's term


def split_blocks(
    text: str,
    max_chars: int = 1000,
    unseen: Sequence[tuple[int, int]] = (),
    syntax: str = "plain",
    parts: Sequence[Part] | None = None,
) -> list[Block]:
    """Blocks of `text` with their units, as exact (start, end) offsets; empty blocks are dropped. The structure
    is `parts` (from a reader that knows it, such as HTML's) or else parsed from the text in `syntax`. No unit
    holds any of the `unseen` spans (say, Markdown comments): a unit around one keeps the parts before and after
    it, each a unit of its own."""
    blocks: list[Block] = []
    header: tuple[int, int] | None = None  # the header row of the table being read
    lead: tuple[int, int] | None = None  # a line ending in a colon that introduces the items, rows or code below it
    term: tuple[int, int] | None = None  # the term whose description comes next

    def units(spans: list[tuple[int, int]], markers: bool = True) -> list[tuple[int, int]]:
        """The spans cut around unseen text, trimmed (of a list or heading marker too, unless `markers` is
        false: in code, "# " is a comment) and cut when too long."""
        trim = _trim if markers else _trim_space
        return [
            piece
            for s, e in spans
            for seen in _outside(s, e, unseen)
            for piece in _cut_long(text, *trim(text, *seen), max_chars)
            if _has_word(text, *piece)
        ]

    def add(spans: list[tuple[int, int]], kind: str, level: int = 0, context: tuple[int, int] | None = None) -> None:
        found = units(spans, markers=kind != "code")
        if found:
            blocks.append(Block(found[0][0], found[-1][1], found, kind == "heading", kind, level, context))

    for part in parts if parts is not None else parse(text, syntax):
        kind, start, end = part.kind, part.start, part.end
        if kind != "row" and kind != "header":
            header = None
        if kind == "paragraph":
            for first, last, heading in _block_spans(text, start, end):
                add(_sentence_spans(text, first, last), "heading" if heading else "paragraph")
                if heading:
                    lead = None
                else:
                    final = blocks[-1].sentences[-1] if blocks and blocks[-1].kind == "paragraph" else None
                    lead = final if final and text[final[0] : final[1]].rstrip().endswith(":") else None
            term = None
        elif kind == "heading":
            add([(start, end)], "heading", part.level)
            lead = term = None
        elif kind == "header":
            header = _trim(text, start, end) if header is None else (header[0], _trim(text, start, end)[1])
        elif kind == "term":
            term = _trim(text, start, end)
            add([term], "term", context=lead)
        elif kind == "description" and term is not None and blocks and blocks[-1].sentences[-1] == term:
            sentences = _sentence_spans(text, start, end) if end - start > UNIT_CHARS else [(start, end)]
            first = units(sentences[:1])
            if first and first[0][1] - term[0] <= max_chars:  # the term and its description's start: one unit
                blocks[-1].sentences[-1] = (term[0], first[0][1])
                blocks[-1].end = first[0][1]
                sentences = sentences[1:]
            add(sentences, "description", context=term)
            term = None
        elif kind in ("item", "description"):
            spans = _sentence_spans(text, start, end) if end - start > UNIT_CHARS else [(start, end)]
            add(spans, kind, part.level, lead)
        elif kind == "row":
            add([(start, end)], "row", context=header or lead)
        elif kind == "code":
            add(_code_runs(text, start, end), "code", context=lead)
    return blocks


def unit_table(blocks: Sequence[Block], first: int = 0) -> list[tuple[int, int, int, int]]:
    """A row per unit of `blocks`, as the index stores it (IndexData.units): its kind's code, the id of its
    innermost heading's unit (its units numbered from `first`; -1 for none), and its context's start and end
    (-1, -1 for none)."""
    rows = []
    headings = sections(blocks)
    index = 0
    for block in blocks:
        context = block.context or (-1, -1)
        for _ in block.sentences:
            section = headings[index]
            rows.append((KIND_CODES[block.kind], section + first if section >= 0 else -1, *context))
            index += 1
    return rows


STRUCTURED = frozenset(code for kind, code in KIND_CODES.items() if kind not in ("paragraph", "heading"))


def context_text(texts: Sequence[str], sentences, units, row: int) -> str:
    """What a structured unit (an item, term, description, row or code) is read with: its section's heading
    and its own context (a row's header, a description's term, the line that introduces a list), one per line;
    "" for prose and headings, which are read with the sentence before them instead (verifier.context_of)."""
    kind, section, start, end = (int(value) for value in units[row])
    if kind not in STRUCTURED:
        return ""
    text = texts[int(sentences[row, 0])]
    lines = []
    if section >= 0:
        lines.append(text[int(sentences[section, 1]) : int(sentences[section, 2])])
    if start >= 0:
        lines.append(text[start:end])
    return "\n".join(lines)


def indexed_text(texts: Sequence[str], sentences, units, row: int) -> str:
    """The text of unit `row` as retrieval reads it (embedded and counted for BM25): a structured unit after its
    context (see `context_text`), so that a table row is found by its header's words and an option by its
    section's; prose as it stands."""
    doc, start, end = (int(value) for value in sentences[row])
    context = context_text(texts, sentences, units, row)
    return f"{context}\n{texts[doc][start:end]}" if context else texts[doc][start:end]


def sections(blocks: Sequence[Block]) -> list[int]:
    """For each unit of `blocks` (in order), the index of the unit that is its innermost heading, or -1; a
    heading's own is the heading above it. A heading of unknown level (0) ranks below every known level."""
    result: list[int] = []
    open_headings: list[tuple[int, int]] = []  # (level, unit index), outermost first
    index = 0
    for block in blocks:
        if block.kind == "heading":
            level = block.level or 7
            while open_headings and open_headings[-1][0] >= level:
                open_headings.pop()
            for _ in block.sentences:
                result.append(open_headings[-1][1] if open_headings else -1)
                open_headings.append((level, index))
                index += 1
            continue
        for _ in block.sentences:
            result.append(open_headings[-1][1] if open_headings else -1)
            index += 1
    return result


def _code_runs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A code block as one unit when it is short, else in runs of whole lines of up to UNIT_CHARS (a blank line
    ends a run)."""
    if end - start <= UNIT_CHARS:
        return [(start, end)]
    runs, first, last = [], None, 0
    for line_start, line_end in _lines(text, start, end):
        blank = not text[line_start:line_end].strip()
        if first is not None and (blank or line_end - first > UNIT_CHARS):
            runs.append((first, last))
            first = None
        if not blank:
            first = line_start if first is None else first
            last = line_end
    if first is not None:
        runs.append((first, last))
    return runs


def split_sentences(text: str, max_chars: int = 1000) -> list[tuple[int, int]]:
    """All sentence spans of `text`, in order."""
    return [span for block in split_blocks(text, max_chars) for span in block.sentences]


def _lines(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each line of text[start:end], without its line break."""
    end = len(text) if end is None else end
    spans = []
    for match in _LINE_BREAK.finditer(text, start, end):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, end))
    return spans


def _block_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int, bool]]:
    """Group the lines of text[start:end] into blocks of prose; the flag says the block is a heading."""
    blocks: list[tuple[int, int, bool]] = []
    current: list[tuple[int, int]] = []
    end = len(text) if end is None else end

    def flush() -> None:
        if current:
            first, last = current[0][0], current[-1][1]
            line = text[first:last]
            heading = len(current) == 1 and _reads_as_heading(line)
            blocks.append((first, last, heading))
            current.clear()

    for line_start, line_end in _lines(text, start, end):
        line = text[line_start:line_end]
        if not line.strip():
            flush()
            continue
        if current and _breaks_between(text[current[-1][0] : current[-1][1]], line, len(current)):
            flush()
        current.append((line_start, line_end))
    flush()
    return blocks


def _breaks_between(previous: str, line: str, lines_in_block: int) -> bool:
    """Whether the line break between two non-blank lines ends a block."""
    if _LIST_ITEM.match(line) or _HEADING.match(line) or _HEADING.match(previous):
        return True
    if _TABLE_ROW.match(line) and _TABLE_ROW.match(previous):
        return True
    if _LIST_ITEM.match(previous):
        return not line[:1].isspace()  # an indented line continues the list item
    if _TERMINAL.search(previous):
        return True
    first = line.lstrip()[:1]
    if lines_in_block == 1 and _is_title(previous) and (first.isupper() or first.isdigit()):
        # A short first line without a full stop, followed by a capital: a heading, unless the
        # following line is no longer than it (then it is more likely hard-wrapped prose).
        return len(previous.strip()) < 0.7 * len(line.strip()) or len(line.strip()) > 100
    return False


def line_around(text: str, start: int, end: int) -> tuple[int, str]:
    """The line holding text[start:end] (from the line break before `start` to the one after `end`), and
    where it starts."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return line_start, text[line_start : len(text) if line_end < 0 else line_end]


def is_heading(text: str, start: int, end: int) -> bool:
    """Whether the sentence text[start:end] is a line to itself that reads as a title or Markdown heading."""
    line_start, line = line_around(text, start, end)
    alone = not text[line_start:start].strip(" \t#") and not text[end : line_start + len(line)].strip()
    return alone and _reads_as_heading(line)


def _reads_as_heading(line: str) -> bool:
    return bool(_HEADING.match(line)) or _is_title(line)


def _is_title(line: str) -> bool:
    stripped = line.strip().strip("*_").strip()
    if not stripped or len(stripped) > 150 or _TERMINAL.search(stripped) or _TABLE_ROW.match(stripped):
        return False
    letters = [char for char in stripped if char.isalpha()]
    if not letters or letters[0].islower():
        return False  # a page number, or a line that starts in lower case: prose wrapped in mid-sentence, a field
    last_word = stripped.rsplit(None, 1)[-1].lower().strip(",")
    return not stripped.endswith(",") and last_word not in CONTINUING_WORDS


def _sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    begin = start
    for match in _STOP.finditer(text, start, end):
        stop = match.end()
        if _is_boundary(text, begin, match.start(), stop, end):
            spans.append((begin, stop))
            begin = stop
    spans.append((begin, end))
    return spans


def _is_boundary(text: str, begin: int, dot: int, stop: int, end: int) -> bool:
    """Whether the stop at text[dot:stop] ends the sentence that began at `begin`."""
    rest = text[stop:end].lstrip()
    if not rest:
        return False  # the block's end closes the sentence anyway
    if text[dot] in _CJK_STOPS:  # no capitals to go by; a quote closed right after the stop runs on ("…。”他说")
        runs_on = text[stop - 1] in "」』”’" and not text[stop].isspace()
        return not runs_on and not _inside_quote(text, begin, stop, end)
    following = rest[0]
    if not (following.isupper() or following.isdigit() or following in "\"'“‘«([*_"):
        return False
    if _inside_quote(text, begin, stop, end):
        return False
    if text[dot] != ".":
        return True
    word = re.search(r"(\S+)$", text[begin:dot])
    if word is None:
        return True
    token = word.group(1).lstrip("\"'“‘([").lower()
    next_word = re.match(r"[\w']+", rest)
    starter = next_word is not None and next_word.group(0).lower() in SENTENCE_STARTERS
    if len(token) == 1 and token.isalpha():
        return starter  # an initial ("J. Smith") unless a sentence clearly starts ("plan B. The")
    if token in ABBREVIATIONS or re.fullmatch(r"(?:[a-z]\.)+[a-z]", token):
        return starter and token in {"etc", "u.s", "u.k", "u.n", "e.u", "a.m", "p.m"}
    return True


def _inside_quote(text: str, begin: int, stop: int, end: int) -> bool:
    """Whether `stop` falls inside quoted speech that closes later in the same block."""
    closer = None
    for char in text[begin:stop]:
        if closer is None and char in _OPEN_QUOTES:
            closer = _OPEN_QUOTES[char]
        elif closer is not None and char == closer:
            closer = None
    if closer is None:
        return False
    return closer in text[stop:end]


def _outside(start: int, end: int, unseen: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the span (start, end) that no unseen span covers."""
    parts = [(start, end)]
    for lo, hi in unseen:
        if lo < end and hi > start:
            parts = [piece for a, b in parts for piece in ((a, min(b, lo)), (max(a, hi), b)) if piece[0] < piece[1]]
    return parts


def _trim_space(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span past surrounding white space (and a byte-order mark)."""
    while start < end and (text[start].isspace() or text[start] == "\ufeff"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span past surrounding white space (and a byte-order mark) and a leading list or heading marker."""
    start, end = _trim_space(text, start, end)
    marker = _LIST_ITEM.match(text, start, end) or _HEADING.match(text, start, end)
    if marker:  # and past white space after it: an item whose text starts on the next line
        start = _trim_space(text, marker.end(), end)[0]
    return start, end


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars)
        cut = cut if cut > start else start + max_chars
        pieces.append(_trim(text, start, cut))
        start = _trim(text, cut, end)[0]
    pieces.append((start, end))
    return pieces


def _has_word(text: str, start: int, end: int) -> bool:
    return end > start and any(char.isalnum() for char in text[start:end])
