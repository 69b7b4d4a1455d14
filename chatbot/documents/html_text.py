"""The text a browser shows of an HTML page, with its structure: headings, items, terms and descriptions, table rows
(a header when all its cells are <th>) and code, as character ranges of that text.

Usage example:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    text = parser.text()
    blocks = parser.structure(len(text))      # ((start, end, kind, level), ...), as structure.Part takes them
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

from .structure import CELL_GAP

_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


# An inline style (lower-cased) that hides its element: "display: none", "visibility:hidden !important".
_INVISIBLE_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\s*(?:!\s*important)?\s*(?:;|$)"
)


class VisibleText(HTMLParser):
    """The text a browser shows, less site navigation: no scripts, styles, head, <nav> or role="navigation",
    nothing hidden by the hidden attribute or an inline display:none or visibility:hidden (a hidden block
    still ends the paragraph before it). aria-hidden="true" hides nothing: it keeps content from screen
    readers only, and a page saved with a modal open has it around all the content behind the modal.
    White space is collapsed; block elements become paragraph breaks, <br> a line break, and a table row one
    line, its cells joined by CELL_GAP.

    Hidden content ends where a browser ends it. Open elements are kept on a stack: an end tag closes all
    that were opened inside its element, and the end tags HTML lets authors leave out are implied (a new <li>
    ends the last item, a <div> a paragraph, <body> the head), so a missing or stray end tag cannot hide the
    rest of the page."""

    HIDDEN = frozenset("script style noscript template head title svg math iframe object nav".split())
    BLOCKS = frozenset(
        """address article aside blockquote body caption dd details dialog div dl dt fieldset figcaption figure
        footer form h1 h2 h3 h4 h5 h6 header hr html legend li main nav ol p pre section summary table tbody
        thead tfoot tr ul""".split()
    )
    VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())
    IN_HEAD = frozenset("base basefont bgsound link meta noscript script style template title".split())
    # The open elements a start tag ends, innermost first: HTML's optional end tags.
    _ENDS_P = """address article aside blockquote details dialog div dl fieldset figcaption figure footer form
        h1 h2 h3 h4 h5 h6 header hr main menu nav ol p pre section summary table ul""".split()
    _TABLE = ("td", "th", "tr", "tbody", "thead", "tfoot")
    ENDS = {
        **dict.fromkeys(_ENDS_P, ("p",)),
        "li": ("p", "li"),
        **dict.fromkeys(("dd", "dt"), ("p", "dd", "dt")),
        **dict.fromkeys(("td", "th"), _TABLE[:2]),
        "tr": _TABLE[:3],
        **dict.fromkeys(_TABLE[3:], _TABLE),
        "option": ("option",),
        "optgroup": ("option", "optgroup"),
    }
    # An open element is looked for (to end it) from the innermost outwards, up to the first of these.
    SCOPE = frozenset("applet button caption html marquee object table td template th".split())
    BOUNDS = {
        "li": SCOPE | {"ol", "ul"},
        **dict.fromkeys(("dd", "dt"), SCOPE | {"dl"}),
        **dict.fromkeys(("table", "caption", *_TABLE), frozenset({"html", "table", "template"})),
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.breaks = 0  # line breaks owed before the next text
        self.cell = False  # a new table cell began: CELL_GAP is owed if the next text continues the line
        self.stack: list[str] = []  # the open elements, outermost first
        self.open: Counter[str] = Counter()  # how many of each are in the stack
        self.hidden: int | None = None  # where in the stack the outermost hidden element is
        self.pre = 0  # open <pre> elements that are shown
        self.length = 0  # characters in self.parts
        self.blocks: list[list] = []  # [start, end, kind, level, cells of a row] of each block of text
        self.cells: list[str] = []  # the cell tags of the table row being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.IN_HEAD and self.stack and self.stack[-1] == "head":  # </head> may be left out too
            self._close(len(self.stack) - 1)
        for name in self.ENDS.get(tag, ()):
            index = self._find(name)
            if index is not None:
                self._close(index)
        if self.hidden is None and (tag in self.HIDDEN or _hides(attrs)):
            if tag in self.BLOCKS:
                self._break(2)
            if tag not in self.VOID:
                self.hidden = len(self.stack)
                self._push(tag)
            return
        if tag not in self.VOID:
            self._push(tag)
        if self.hidden is not None:
            return
        if tag == "br":
            self._break(1)
        elif tag in ("td", "th"):
            self.cell = True
            self.cells.append(tag)
        elif tag in self.BLOCKS:
            self._break(2)
            self.pre += tag == "pre"
            if tag == "tr":
                self.cells = []


    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:  # <div/>: opened and closed at once
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        index = self._find(tag)
        if index is not None:
            self._close(index)
        if self.hidden is None and tag in self.BLOCKS:
            self._break(2)

    def handle_data(self, data: str) -> None:
        if self.hidden is None:
            self._text(data)

    def _push(self, tag: str) -> None:
        self.stack.append(tag)
        self.open[tag] += 1

    def _find(self, tag: str) -> int | None:
        """Where the innermost open `tag` is in the stack, unless a scope boundary comes first."""
        if not self.open[tag]:
            return None
        bounds = self.BOUNDS.get(tag, self.SCOPE)
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index] == tag:
                return index
            if self.stack[index] in bounds:
                return None
        return None

    def _close(self, index: int) -> None:
        """Close the element at `index` in the stack and all opened inside it."""
        closed = self.stack[index:]
        self.open.subtract(closed)
        shown = closed if self.hidden is None else closed[: max(0, self.hidden - index)]
        self.pre -= shown.count("pre")
        if self.hidden is not None and index <= self.hidden:
            self.hidden = None
        del self.stack[index:]

    def _text(self, data: str) -> None:
        if not self.pre:
            data = _HTML_SPACE.sub(" ", data)
            if self.breaks or self.cell or not self.parts or self.parts[-1].endswith((" ", "\n")):
                data = data.lstrip(" ")
        if not data:
            return
        kind, level = self._kind()
        if self.breaks and kind == "description" and self.blocks and self.blocks[-1][2] == "term":
            self.breaks = 1  # a description on the line under its term: the two are read as one
        starts = not self.parts or self.breaks >= 2 or (self.breaks and kind != self.blocks[-1][2])
        if self.breaks and self.parts:
            self._append("\n" * self.breaks)
        elif self.cell and self.parts and not self.parts[-1].endswith("\n"):
            self._strip_last()
            self._append(CELL_GAP)
        self.breaks, self.cell = 0, False
        if starts:
            self.blocks.append([self.length, self.length, kind, level, self.cells])
        self._append(data)
        self.blocks[-1][1] = self.length

    def _append(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def _strip_last(self) -> None:
        stripped = self.parts[-1].rstrip(" ")
        self.length -= len(self.parts[-1]) - len(stripped)
        self.parts[-1] = stripped

    def _kind(self) -> tuple[str, int]:
        """What the text being read is, by the innermost element that says (structure.KINDS), and its level."""
        for tag in reversed(self.stack):
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                return "heading", int(tag[1])
            if tag == "pre":
                return "code", 0
            if tag == "tr":
                return "row", 0
            if tag == "li":
                return "item", sum(self.open[name] for name in ("ul", "ol", "menu")) or 1
            if tag == "dt":
                return "term", 0
            if tag == "dd":
                return "description", 0
            if tag in ("table", "body", "blockquote", "section", "article", "main"):
                break
        return "paragraph", 0

    def _break(self, count: int) -> None:
        if self.parts and not self.pre:
            self._strip_last()
        self.breaks = max(self.breaks, count)

    def text(self) -> str:
        return "".join(self.parts).rstrip()

    def structure(self, length: int) -> tuple[tuple[int, int, str, int], ...]:
        """The blocks of the text, as (start, end, kind, level); a row all of whose cells are <th> is a header."""
        result = []
        for start, end, kind, level, cells in self.blocks:
            end = min(end, length)
            if end <= start:
                continue
            if kind == "row" and cells and all(cell == "th" for cell in cells):
                kind = "header"
            result.append((start, end, kind, level))
        return tuple(result)


def _hides(attrs: list[tuple[str, str | None]]) -> bool:
    """Whether an element's attributes leave it out: hidden (but not hidden="until-found", which a search in
    the page shows), an inline style with display:none or visibility:hidden, or role="navigation" as the first
    of its roles (a browser takes the first it knows), which marks site navigation as <nav> does."""
    for key, value in attrs:
        value = (value or "").strip().lower()
        if (
            (key == "hidden" and value != "until-found")
            or (key == "style" and _INVISIBLE_STYLE.search(value))
            or (key == "role" and value.split()[:1] == ["navigation"])
        ):
            return True
    return False
