"""Split text into sentences with exact character offsets, grouped into blocks (paragraphs, headings, list items).

Rules, in order of strength:
- a blank line ends a block; so does a line break after a heading, a list item or a full stop, and before
  a list item or a Markdown heading; other line breaks (hard-wrapped prose) are spaces;
- inside a block, a sentence ends at . ! ? or … followed by a space and a capital, digit or opening quote,
  unless the word before is a known abbreviation or an initial, or the stop lies inside quoted speech;
- a sentence longer than `max_chars` is cut at the last space before the limit.

Usage example:
    blocks = split_blocks(text)          # [Block(start, end, sentences=[(start, end), ...], heading=False)]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

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
VERSION = 4  # 2: Chinese and Japanese stops end sentences; a byte-order mark is not part of one
# 3: a table row (cells between "|") is a sentence of its own and never a heading; 4: no sentence holds an
# unseen span (a Markdown comment), however it stands
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
_OPEN_QUOTES = {"“": "”", "«": "»", '"': '"'}
_CLOSE_QUOTES = {"”", "»"}


@dataclass
class Block:
    """A paragraph, heading or list item: a run of text whose sentences belong together."""

    start: int
    end: int
    sentences: list[tuple[int, int]] = field(default_factory=list)
    heading: bool = False


def split_blocks(text: str, max_chars: int = 1000, unseen: Sequence[tuple[int, int]] = ()) -> list[Block]:
    """Blocks of `text` with their sentences, as exact (start, end) offsets; empty blocks are dropped. No
    sentence holds any of the `unseen` spans (say, Markdown comments): a sentence around one keeps the parts
    before and after it, each a sentence of its own."""
    blocks = []
    for start, end, heading in _block_spans(text):
        sentences = [
            piece
            for s, e in _sentence_spans(text, start, end)
            for seen in _outside(s, e, unseen)
            for piece in _cut_long(text, *_trim(text, *seen), max_chars)
            if _has_word(text, *piece)
        ]
        if sentences:
            blocks.append(Block(sentences[0][0], sentences[-1][1], sentences, heading))
    return blocks


def split_sentences(text: str, max_chars: int = 1000) -> list[tuple[int, int]]:
    """All sentence spans of `text`, in order."""
    return [span for block in split_blocks(text, max_chars) for span in block.sentences]


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line, without its line break."""
    spans, start = [], 0
    for match in re.finditer(r"\r\n|\n|\r", text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def _block_spans(text: str) -> list[tuple[int, int, bool]]:
    """Group lines into blocks; the flag says the block is a heading."""
    blocks: list[tuple[int, int, bool]] = []
    current: list[tuple[int, int]] = []

    def flush() -> None:
        if current:
            first, last = current[0][0], current[-1][1]
            line = text[first:last]
            heading = len(current) == 1 and _reads_as_heading(line)
            blocks.append((first, last, heading))
            current.clear()

    for start, end in _lines(text):
        line = text[start:end]
        if not line.strip():
            flush()
            continue
        if current and _breaks_between(text[current[-1][0] : current[-1][1]], line, len(current)):
            flush()
        current.append((start, end))
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


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span past surrounding white space (and a byte-order mark) and a leading list or heading marker."""
    while start < end and (text[start].isspace() or text[start] == "\ufeff"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    marker = _LIST_ITEM.match(text, start, end) or _HEADING.match(text, start, end)
    if marker:
        start = marker.end()
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
