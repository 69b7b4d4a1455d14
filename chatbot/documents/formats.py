"""Turn a file's bytes into the text that is indexed and quoted: plain text, PDF (per page), HTML, DOCX.

Offsets of quotes refer to the text returned here, which the index stores (`chatbot source PATH` prints it).
PDF pages are joined by a line holding a form feed, so a page break is also a paragraph break, and
`Extracted.pages` records where each page starts.

Usage example:
    extracted = extract(Path("report.pdf").read_bytes(), ".pdf", "report.pdf")   # raises Unreadable
    extracted.text, extracted.pages          # "First page...\n\f\nSecond page...", (0, 1532)
"""

from __future__ import annotations

import functools
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .html_text import VisibleText
from .structure import CELL_GAP, Part

log = logging.getLogger("chatbot")

# Bumped when a reader's output changes, so indexes built from the older text are rebuilt.
VERSION = 6  # 3: DOCX tables: every cell once, a row per line; DOCX notes; HTML: nav, aria-hidden, display:none
# 4: Markdown front matter and HTML comments are not quoted (unseen_spans)
# 5: DOCX: tracked insertions, content controls and simple fields are read, hidden and deleted text is not;
#    HTML: aria-hidden="true" is shown, role="navigation" is left out like <nav>
# 6: PDF: lines that only wrap a paragraph are joined (reflow); HTML: the structure is kept (headings, items, terms and descriptions, rows, code); a description follows its
#    term on the next line
PAGE_BREAK = "\n\f\n"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


# Markdown: YAML front matter at the very top, fenced code blocks, HTML comments.
# Front matter opens with a "key:" line; a file that opens with a --- rule and prose has none.
_FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*\r?\n[ \t]*[\w-]+[ \t]*:.*?\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL
)
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~).*?(?:^[ \t]{0,3}\1|\Z)", re.DOTALL | re.MULTILINE)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
MARKDOWN = (".md", ".markdown")


def unseen_spans(text: str, suffix: str) -> list[tuple[int, int]]:
    """(start, end) of the parts of a document's text that its reader never sees, which are not quoted: in
    Markdown, the front matter and HTML comments (outside code blocks, where they are shown)."""
    if suffix.lower() not in MARKDOWN:
        return []
    spans = [match.span() for match in _FRONT_MATTER.finditer(text)]
    fences = [match.span() for match in _FENCE.finditer(text)]
    for match in _HTML_COMMENT.finditer(text):
        if not any(start <= match.start() < end for start, end in fences):
            spans.append(match.span())
    return spans


class Unreadable(Exception):
    """A file that cannot be indexed; the message says why, for a one-line warning."""


@dataclass(frozen=True)
class Extracted:
    """The text of a document and, for paged formats, the offset where each page starts; for a format whose
    reader knows the structure (HTML), its blocks as (start, end, kind, level) (see structure.Part)."""

    text: str
    pages: tuple[int, ...] = ()
    structure: tuple[tuple[int, int, str, int], ...] = ()


def parts_of(structure) -> list[Part]:
    """A reader's structure (as Extracted and the index's manifest keep it) as structure.Part blocks."""
    return [Part(int(start), int(end), str(kind), int(level)) for start, end, kind, level in structure]


def extract(data: bytes, suffix: str, name: str) -> Extracted:
    """The text of a file of type `suffix` (e.g. ".pdf"); any other suffix is read as plain text."""
    reader = _READERS.get(suffix.lower(), _read_plain)
    try:
        extracted = reader(data, name)
    except (Unreadable, MemoryError):
        raise
    except Exception as exc:  # parsers of untrusted files fail in many ways; one bad file must not stop indexing
        kind = suffix.lstrip(".").upper() or "text"
        raise Unreadable(f"cannot read it as {kind}: {_first_line(exc)}") from None
    if not extracted.text.strip():
        raise Unreadable("it is empty" if reader is _read_plain else "no text could be extracted from it")
    if _SURROGATE.search(extracted.text):  # broken PDF font maps give these; they cannot be encoded or embedded
        extracted = Extracted(_SURROGATE.sub("\ufffd", extracted.text), extracted.pages, extracted.structure)
    return extracted


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 as is (no newline translation, so offsets match the file); UTF-16 with a byte-order mark;
    CP1252 or else Latin-1 as a fallback, with a warning. A UTF-8 file with a few bad bytes (a truncated
    character, say) stays UTF-8, each bad sequence read as U+FFFD: decoding all of it as CP1252 would garble
    every other accented letter. Binary data raises Unreadable."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise Unreadable("it looks like a binary file") from None
        log.warning("%s is UTF-16, not UTF-8; read it as UTF-16", name)
        return _check_text(text)
    if b"\x00" in data[:8192]:
        raise Unreadable("it looks like a binary file")
    try:
        return _check_text(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    if sum(not char.isascii() for char in text) - bad > bad:  # more good multi-byte characters than bad ones
        log.warning("%s has %d byte sequence(s) that are not UTF-8; each reads as U+FFFD", name, bad)
        return _check_text(text)
    encoding = "cp1252"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        encoding, text = "latin-1", data.decode("latin-1")  # decodes any bytes
    text = _check_text(text)
    log.warning("%s is not valid UTF-8; read it as %s", name, encoding.upper())
    return text


def _check_text(text: str) -> str:
    """`text`, unless control characters make up more than a few per cent of its start (binary data)."""
    sample = text[:65536]
    if sample and len(_CONTROL.findall(sample)) > 0.05 * len(sample):
        raise Unreadable("it looks like a binary file")
    return text


def _read_plain(data: bytes, name: str) -> Extracted:
    return Extracted(decode_text(data, name))


def _read_pdf(data: bytes, name: str) -> Extracted:
    """Each page's text as pypdf extracts it, pages joined by PAGE_BREAK."""
    try:
        from pypdf import PdfReader
    except ImportError:
        raise Unreadable("reading PDF files needs the package pypdf (pip install pypdf)") from None
    with _quiet("pypdf"):
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("it is encrypted")
        pages, starts, offset = [], [], 0
        for page in reader.pages:
            text = reflow((page.extract_text() or "").rstrip())
            starts.append(offset)
            pages.append(text)
            offset += len(text) + len(PAGE_BREAK)
    return Extracted(PAGE_BREAK.join(pages), tuple(starts))


_LEADERS = re.compile(r"(?:\.\s?){3,}\s*[\divxlc]+\s*$")  # a table of contents' dot leaders and page number
_PDF_HEADING = re.compile(r"\s*\d{1,2}(?:\.\d{1,2})*\.?\s+[A-Z]")  # "2.2 Naming"
_PDF_ITEM = re.compile(r"\s*(?:[•◦▪‣·∙○●■□–—*-]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")


def reflow(page: str) -> str:
    """A PDF page's lines with the line breaks that only wrap a paragraph joined: a line that reaches the right
    margin (nearly as long as the page's full lines) runs on into the next, unless that one starts an item. A
    word hyphenated at the line's end is joined again ("man-" + "agement"); a hyphen before a capital stays
    ("Dss-Sig-" + "Value"). Short lines (headings, code, the last line of a paragraph) keep their breaks."""
    lines = page.split("\n")
    widths = sorted(len(line.strip()) for line in lines if line.strip())
    if len(widths) < 3:
        return page
    full = widths[int(0.9 * (len(widths) - 1))]
    out: list[str] = []
    last = ""  # the previous line as printed
    for line in lines:
        line = line.rstrip()
        wrapped = (
            out
            and line.strip()
            and last.strip()
            and len(last.strip()) >= 0.8 * full
            and not _PDF_ITEM.match(line)
            and not last.rstrip().endswith(":")
            and not _LEADERS.search(last)
            and not (_PDF_HEADING.match(line) and len(line.strip()) < 0.6 * full)
        )
        if not wrapped:
            out.append(line)
        elif last.endswith("-") and len(last) > 1 and last[-2].isalpha() and line.lstrip()[:1].islower():
            out[-1] = out[-1][:-1] + line.lstrip()
        elif last.endswith("-") and len(last) > 1 and last[-2].isalpha():
            out[-1] = out[-1] + line.lstrip()
        else:
            out[-1] = out[-1] + " " + line.lstrip()
        last = line
    return "\n".join(out)


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Hold back a library's warnings while it reads a file: about a broken file they repeat, in its own
    words, the one-line warning that the file is skipped. (Two reads at once may leave it quiet for good.)"""
    library = logging.getLogger(logger)
    level = library.level
    library.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        library.setLevel(level)


def _read_docx(data: bytes, name: str) -> Extracted:
    """The body's paragraphs and tables in document order, then the footnotes and endnotes, one block each.
    A table row is one block, its cells joined by CELL_GAP, so the row reads as one sentence."""
    document = _open_docx(data)
    blocks = list(_docx_blocks(document.element.body))
    blocks.extend(_docx_notes(document, name))
    return Extracted("\n\n".join(text.strip() for text in blocks if text.strip()))


def _open_docx(data: bytes):
    """The python-docx Document; a file that is not one raises Unreadable with a reason a person can follow."""
    try:
        import docx
    except ImportError:
        raise Unreadable("reading DOCX files needs the package python-docx (pip install python-docx)") from None
    from lxml.etree import XMLSyntaxError

    try:
        return docx.Document(io.BytesIO(data))
    except MemoryError:
        raise
    except zipfile.BadZipFile:
        detail = "it is not a zip archive"
    except KeyError as exc:  # "There is no item named 'word/document.xml' in the archive"
        missing = re.search(r"named '(.+?)'", str(exc))
        detail = f"{missing[1]} is missing" if missing else _first_line(exc)
    except XMLSyntaxError as exc:
        detail = f"damaged XML: {exc.msg}"
    except Exception as exc:  # e.g. "file '<_io.BytesIO …>' is not a Word file, content type is '…'"
        detail = re.sub(r"^file '.*?' is not a Word file, ", "", _first_line(exc))
    raise Unreadable(f"cannot read it as DOCX: not a Word document ({detail})")


def _docx_blocks(container) -> Iterator[str]:
    """The text of each paragraph and table row inside a w:body, w:footnote or w:endnote element, content
    controls included. Walks the XML itself: python-docx lists a merged cell once per grid column it spans."""
    from docx.oxml.ns import qn

    for child in _docx_children(container, qn("w:p"), qn("w:tbl")):
        if child.tag == qn("w:p"):
            yield _docx_text(child)
        else:
            yield from _docx_rows(child)


def _docx_rows(table) -> Iterator[str]:
    """Each row of a w:tbl as one line, the text of its cells (each w:tc once, so a merged cell once; the
    empty continuations of a vertical merge add nothing) joined by CELL_GAP. A table inside a cell follows
    the row it is in."""
    from docx.oxml.ns import qn

    for row in _docx_children(table, qn("w:tr")):
        cells, inner = [], []
        for cell in _docx_children(row, qn("w:tc")):
            texts = []
            for child in _docx_children(cell, qn("w:p"), qn("w:tbl")):
                if child.tag == qn("w:p"):
                    texts.append(" ".join(_docx_text(child).split()))
                else:
                    inner.append(child)
            cells.append(" ".join(text for text in texts if text))
        yield CELL_GAP.join(text for text in cells if text)
        for nested in inner:
            yield from _docx_rows(nested)


def _docx_children(element, *tags: str) -> Iterator:
    """The children of `element` with one of `tags`, in document order, also those wrapped in content controls
    (w:sdt, whose w:sdtContent holds paragraphs, tables, rows or cells) or custom XML (w:customXml)."""
    from docx.oxml.ns import qn

    for child in element.iterchildren():
        if child.tag in tags:
            yield child
        elif child.tag == qn("w:sdt"):
            for content in child.iterchildren(qn("w:sdtContent")):
                yield from _docx_children(content, *tags)
        elif child.tag == qn("w:customXml"):
            yield from _docx_children(child, *tags)


# What Word shows of a paragraph, tracked changes accepted: the text of its runs in document order, also of
# runs in insertions (w:ins, w:moveTo), hyperlinks, smart tags, simple fields and inline content controls;
# not deleted text (w:del, and w:moveFrom, moved elsewhere), hidden runs (w:vanish; w:val="false" shows them),
# the alternative an older Word would show (mc:Fallback), a ruby annotation (w:rt) or the paragraphs of a
# text box anchored in a run (those runs have one more w:p around them). python-docx's paragraph text takes
# only runs directly in the paragraph or a hyperlink, so an insertion, a content control or a field was lost.
_DOCX_TEXT = """.//w:r[count(ancestor::w:p) = $depth
    and not(ancestor::w:del or ancestor::w:moveFrom or ancestor::mc:Fallback or ancestor::w:rt)
    and not(w:rPr/w:vanish[not(@w:val = 'false' or @w:val = '0' or @w:val = 'off')])]
    /*[self::w:t or self::w:tab or self::w:ptab or self::w:br or self::w:cr or self::w:noBreakHyphen]"""
_DOCX_TEXT_OF = {"t": None, "tab": "\t", "ptab": "\t", "br": "\n", "cr": "\n", "noBreakHyphen": "-"}


def _docx_text(paragraph) -> str:
    """The text of a w:p as Word shows it (see _DOCX_TEXT); a page or column break ends a line too."""
    from docx.oxml.ns import qn
    from lxml.etree import QName

    depth = sum(1 for _ in paragraph.iterancestors(qn("w:p"))) + 1
    parts = []
    for node in _docx_text_xpath()(paragraph, depth=depth):
        text = _DOCX_TEXT_OF[QName(node).localname]
        parts.append(node.text or "" if text is None else text)
    return "".join(parts)


@functools.cache
def _docx_text_xpath():
    from docx.oxml.ns import nsmap
    from lxml.etree import XPath

    markup_compatibility = "http://schemas.openxmlformats.org/markup-compatibility/2006"
    return XPath(_DOCX_TEXT, namespaces={"w": nsmap["w"], "mc": markup_compatibility})


def _docx_notes(document, name: str) -> Iterator[str]:
    """The footnotes' and endnotes' paragraphs, in the order they are stored. python-docx has no API for
    them: they are the parts word/footnotes.xml and word/endnotes.xml, which also hold separator lines."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import parse_xml
    from docx.oxml.ns import qn
    from lxml.etree import XMLSyntaxError

    for reltype, tag in ((RELATIONSHIP_TYPE.FOOTNOTES, "w:footnote"), (RELATIONSHIP_TYPE.ENDNOTES, "w:endnote")):
        for relation in document.part.rels.values():
            if relation.reltype != reltype or relation.is_external:
                continue
            try:
                notes = parse_xml(relation.target_part.blob)
            except XMLSyntaxError as exc:
                log.warning("%s: its %ss are damaged (%s); indexed without them", name, tag[2:], exc.msg)
                continue
            for note in notes.iterchildren(qn(tag)):
                if note.get(qn("w:type"), "normal") == "normal":
                    yield from _docx_blocks(note)


def _read_html(data: bytes, name: str) -> Extracted:
    parser = VisibleText()
    parser.feed(decode_text(data, name))
    parser.close()
    text = parser.text()
    return Extracted(text, structure=parser.structure(len(text)))


_READERS = {".pdf": _read_pdf, ".docx": _read_docx, ".html": _read_html, ".htm": _read_html}


def _first_line(exc: Exception) -> str:
    message = str(exc).strip()
    return message.splitlines()[0][:200] if message else type(exc).__name__
