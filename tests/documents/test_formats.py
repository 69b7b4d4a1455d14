"""PDF, HTML and DOCX documents, made here with real libraries: extracted text, page numbers in citations,
offsets into the stored text, `chatbot source`, and broken files skipped."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from chatbot.documents.formats import CELL_GAP, PAGE_BREAK, Unreadable, extract, unseen_spans
from chatbot.documents.load import FileInfo, read_document
from chatbot.documents.segment import split_blocks

ROOT = Path(__file__).resolve().parent.parent.parent
EXTENSIONS = [".txt", ".md", ".pdf", ".html", ".htm", ".docx"]
PAGES = [
    "Apples grow on trees in orchards. Farmers pick them in the autumn.",
    "The Ascend 910C chip was designed by Huawei for training neural networks.",
    "Rice needs flooded fields to grow well. It feeds half of the world.",
]


def write_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


def write_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Rivers of the world", level=1)
    document.add_paragraph("The Danube flows through ten countries. It ends in the Black Sea.")
    document.add_paragraph("")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Nile"
    table.cell(0, 1).text = "The Nile is the longest river in Africa."
    document.add_paragraph("The Amazon carries more water than any other river.")
    document.save(str(path))
    return path


HTML = """<!doctype html>
<html><head><title>Page title</title><meta charset="utf-8">
<style>p { color: red }</style><script>var secret = "script text";</script></head>
<body><h1>Volcanoes</h1>
<p>Mount Etna is an   active
   volcano in Sicily.<br>It erupts often.</p>
<div hidden><p>Hidden text here.</p><div>Still hidden.</div></div>
<noscript>Enable scripts.</noscript>
<ul><li>Vesuvius destroyed Pompeii in 79 AD.</li><li>Krakatoa erupted in 1883.</li></ul>
<p>Caf&eacute; &amp; cr&egrave;me&nbsp;br&ucirc;l&eacute;e.</p>
<pre>line one
  line two</pre>
</body></html>"""


def info(path: Path, name: str | None = None) -> FileInfo:
    stat = path.stat()
    return FileInfo(name or path.name, path, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def test_pdf_text_is_extracted_per_page_with_page_starts(tmp_path):
    document = read_document(info(write_pdf(tmp_path / "report.pdf", PAGES)))
    assert len(document.pages) == 3 and document.pages[0] == 0
    for number, page in enumerate(PAGES):
        start = document.pages[number]
        end = document.pages[number + 1] - len(PAGE_BREAK) if number + 1 < len(PAGES) else len(document.text)
        assert " ".join(document.text[start:end].split()) == page
    assert document.text.count(PAGE_BREAK) == 2


def test_html_keeps_visible_text_only(tmp_path):
    (tmp_path / "page.html").write_text(HTML, encoding="utf-8")
    text = read_document(info(tmp_path / "page.html")).text
    assert text.startswith("Volcanoes\n\nMount Etna is an active volcano in Sicily.\nIt erupts often.\n\n")
    assert "Vesuvius destroyed Pompeii in 79 AD.\n\nKrakatoa erupted in 1883." in text
    assert "Café & crème\xa0brûlée." in text
    assert "line one\n  line two" in text
    for hidden in ("Page title", "color", "secret", "script text", "Hidden text", "Still hidden", "Enable scripts"):
        assert hidden not in text


NOT_SHOWN = """<!doctype html><html><head><title>Tenancy</title><body>
<nav><a href="/">Home</a> <a href="/p">Products</a> <a href="/s">Support</a> <a href="/login">Log in</a></nav>
<header><p>Acme tenancy guide</p></header>
<div role="navigation"><a href="/faq">FAQ</a> <a href="/contact">Contact</a></div>
<p>To log in, open the portal and enter your tenant number.</p>
<div style="display:none">Internal note one.</div>
<div style="color: red; DISPLAY : None !important">Internal note two.</div>
<p style="visibility:hidden;">Internal note three.</p>
<span aria-hidden=" TRUE ">Shown to sighted readers.</span>
<div aria-hidden="false">Shown to everyone.</div><div style="display: block">Shown as a block.</div>
<div hidden="until-found">Shown when searched for.</div>
<p><img src="plan.png" style="display:none"><br hidden>The caption stays.</p>
<div style="display:none"><br><img src="x.png"><hr><input><p>Unclosed note<div>nested <div/>deeper</div>
  <li>unclosed item</div>
<p>After the hidden block.</p>
<section><div hidden><div>Unclosed hidden div</section><p>After the section.</p>
<p hidden>Hidden paragraph<p>Next paragraph shown.</p>
<ul><li hidden>Hidden item<li>Visible item</ul>
<table><tr><th>Charge</th> <th>Who pays</th></tr><tr><td>Water<td></td><td> Tenant</tr></table>
<footer><p>Call 555-0100 for repairs.</p></footer>
</body></html>"""


def test_html_leaves_out_what_a_reader_never_sees_and_site_navigation():
    text = extract(NOT_SHOWN.encode(), ".html", "guide.html").text
    assert text.split("\n\n") == [
        "Acme tenancy guide",
        "To log in, open the portal and enter your tenant number.",
        "Shown to sighted readers.",
        "Shown to everyone.",
        "Shown as a block.",
        "Shown when searched for.",
        "The caption stays.",
        "After the hidden block.",
        "After the section.",
        "Next paragraph shown.",
        "Visible item",
        "Charge | Who pays",
        "Water | Tenant",
        "Call 555-0100 for repairs.",
    ]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p hidden>Hidden paragraph<p>Shown.", "Shown."),
        ("<ul><li hidden>Hidden item<li>Shown</ul>", "Shown"),
        ("<section><div hidden><div>Unclosed</section>Shown", "Shown"),
        ("<table><tr><td hidden>Hidden<td>Shown</table>", "Shown"),
        ("<div style='display:none'><br><img src=x><hr><input><wbr>Hidden</div>Shown", "Shown"),
        ("<html><head><title>T</title><body><p>The head was never closed.", "The head was never closed."),
        ("<div hidden><p>note</p></div><div>shown</div><div hidden/>also shown", "shown\n\nalso shown"),
        ("<div role=navigation><div><div>a</div></div>b</div>c", "c"),
        ("<b>stray</i> end tags</p></div> are <i>ignored</b>.", "stray end tags\n\nare ignored."),
        ("<pre hidden>  no</pre><pre>  kept  as is</pre> then  <pre> spaced</pre>", "  kept  as is\n\nthen\n\n spaced"),
    ],
)
def test_html_hidden_elements_end_where_a_browser_ends_them(html, expected):
    assert extract(html.encode(), ".html", "page.html").text == expected


def test_html_aria_hidden_is_shown_because_only_screen_readers_skip_it():
    """A page saved with a modal open has aria-hidden="true" on everything behind the modal, which a sighted
    reader still sees; its site navigation is left out all the same."""
    page = (
        '<body><div id="app" aria-hidden="true"><nav><a href="/">Home</a></nav><ul role="navigation"><li>Plans'
        '<li>Classes</ul><main><h1>Membership</h1><p>The gym fee is 45 euros per month.</p></main></div>'
        '<div role="dialog" aria-modal="true"><p>We use cookies.</p></div></body>'
    )
    assert extract(page.encode(), ".html", "gym.html").text.split("\n\n") == [
        "Membership",
        "The gym fee is 45 euros per month.",
        "We use cookies.",
    ]


def test_docx_paragraphs_and_table_rows_in_order(tmp_path):
    text = read_document(info(write_docx(tmp_path / "rivers.docx"))).text
    assert text.split("\n\n") == [
        "Rivers of the world",
        "The Danube flows through ten countries. It ends in the Black Sea.",
        "Nile | The Nile is the longest river in Africa.",
        "The Amazon carries more water than any other river.",
    ]


def docx_bytes(document: docx.document.Document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


CHARGES = [
    ("Charge", "Who pays", "When"),
    ("Water", "Tenant", "Monthly"),
    ("Electricity", "Tenant", "Every quarter"),
    ("Gas", "Landlord", "Yearly"),
    ("Repairs", "Landlord", "On request"),
    ("Insurance", "Landlord", "Yearly"),
]


def test_docx_table_has_every_cell_once_a_row_per_line_the_same_every_time():
    """Merged cells were told apart by id() of short-lived lxml proxies, so cells went missing at random."""
    document = docx.Document()
    document.add_paragraph("Who pays for what:")
    table = document.add_table(rows=6, cols=3)
    for row, cells in enumerate(CHARGES):
        for column, text in enumerate(cells):
            table.cell(row, column).text = text
    data = docx_bytes(document)
    texts = {extract(data, ".docx", "charges.docx").text for _ in range(5)}
    assert len(texts) == 1
    assert texts.pop().split("\n\n") == ["Who pays for what:", *(CELL_GAP.join(cells) for cells in CHARGES)]


def test_docx_merged_cells_once_and_a_table_in_a_cell_after_its_row():
    document = docx.Document()
    table = document.add_table(rows=3, cols=3)
    table.cell(0, 0).merge(table.cell(0, 2)).text = "Charges from 2024"  # one cell across the row
    table.cell(1, 0).merge(table.cell(2, 0)).text = "Utilities"  # one cell down two rows
    table.cell(1, 1).text, table.cell(1, 2).text = "Water", "Tenant"
    table.cell(2, 1).text = "Gas"
    cell = table.cell(2, 2)
    cell.text = "Landlord, with"
    inner = cell.add_table(rows=1, cols=2)
    inner.cell(0, 0).text, inner.cell(0, 1).text = "Boiler service", "Yearly"
    text = extract(docx_bytes(document), ".docx", "merged.docx").text
    assert text.split("\n\n") == [
        "Charges from 2024",
        "Utilities | Water | Tenant",
        "Gas | Landlord, with",
        "Boiler service | Yearly",
    ]


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def add_notes(document: docx.document.Document, kind: str, texts: list[str], blob: bytes | None = None) -> None:
    """Give the document a footnotes or endnotes part as Word writes it (python-docx cannot): two separator
    notes, then one note per text, each referred to from the last paragraph of the body."""
    from docx.opc.constants import CONTENT_TYPE, RELATIONSHIP_TYPE
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part
    from docx.oxml import parse_xml

    notes = [
        f'<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{kind}>',
        f'<w:{kind} w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/></w:r></w:p>'
        f"</w:{kind}>",
    ]
    for number, text in enumerate(texts, 1):
        notes.append(
            f'<w:{kind} w:id="{number}"><w:p><w:r><w:{kind}Ref/></w:r><w:r><w:t xml:space="preserve"> {text}</w:t>'
            f"</w:r></w:p></w:{kind}>"
        )
        document.paragraphs[-1].add_run()._r.append(parse_xml(f'<w:{kind}Reference {W} w:id="{number}"/>'))
    if blob is None:
        blob = f'<?xml version="1.0" encoding="UTF-8"?><w:{kind}s {W}>{"".join(notes)}</w:{kind}s>'.encode()
    content_type = {"footnote": CONTENT_TYPE.WML_FOOTNOTES, "endnote": CONTENT_TYPE.WML_ENDNOTES}[kind]
    reltype = {"footnote": RELATIONSHIP_TYPE.FOOTNOTES, "endnote": RELATIONSHIP_TYPE.ENDNOTES}[kind]
    document.part.relate_to(Part(PackURI(f"/word/{kind}s.xml"), content_type, blob, document.part.package), reltype)


def test_docx_footnotes_and_endnotes_follow_the_body():
    document = docx.Document()
    document.add_paragraph("The landlord pays for repairs.")
    add_notes(document, "footnote", ["Labour costs are not covered after the first year.", "Parts are."])
    add_notes(document, "endnote", ["Signed in Leeds, 2024."])
    assert extract(docx_bytes(document), ".docx", "notes.docx").text.split("\n\n") == [
        "The landlord pays for repairs.",
        "Labour costs are not covered after the first year.",
        "Parts are.",
        "Signed in Leeds, 2024.",
    ]


def test_docx_with_damaged_footnotes_keeps_its_body(warnings_seen):
    document = docx.Document()
    document.add_paragraph("The landlord pays for repairs.")
    add_notes(document, "footnote", ["Lost."], blob=b"not XML")
    assert extract(docx_bytes(document), ".docx", "notes.docx").text == "The landlord pays for repairs."
    assert warnings_seen == [
        "notes.docx: its footnotes are damaged (Start tag expected, '<' not found, line 1, column 1); "
        "indexed without them"
    ]


def add_blocks(container, xml: str) -> None:
    """Append Word XML that python-docx cannot write (tracked changes, content controls, hidden text) to a
    w:body (before its section properties) or a w:tc."""
    from docx.oxml import parse_xml

    for element in parse_xml(f"<w:body {W} {V}>{xml}</w:body>"):
        if container.find(f"{{{NS_W}}}sectPr") is not None:
            container.insert_element_before(element, "w:sectPr")
        else:
            container.append(element)


NS_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
V = 'xmlns:v="urn:schemas-microsoft-com:vml" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'


def run(text: str, properties: str = "") -> str:
    return f'<w:r>{properties and f"<w:rPr>{properties}</w:rPr>"}<w:t xml:space="preserve">{text}</w:t></w:r>'


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        (  # a tracked change: the insertion is shown, the deletion is not
            run("The gym fee is ")
            + '<w:del w:id="1" w:author="Ann"><w:r><w:delText>40 euros</w:delText></w:r></w:del>'
            + f'<w:ins w:id="2" w:author="Ann">{run("45 euros")}</w:ins>' + run(" per month."),
            "The gym fee is 45 euros per month.",
        ),
        (  # text moved by a tracked change is shown where it went, once
            run("Classes run on ") + f'<w:moveFrom w:id="3" w:author="Ann">{run("Mondays and ")}</w:moveFrom>'
            + run("Fridays") + f'<w:moveTo w:id="4" w:author="Ann">{run(" and Mondays")}</w:moveTo>' + run("."),
            "Classes run on Fridays and Mondays.",
        ),
        (  # hidden text (w:vanish) is not shown; w:vanish w:val="false" is
            run("Lockers are free.") + run(" Staff code 4471.", "<w:vanish/>")
            + run(" Bring a padlock.", '<w:b/><w:vanish w:val="false"/>'),
            "Lockers are free. Bring a padlock.",
        ),
        (  # runs inside a hyperlink, smart tag, simple field and an inline content control
            run("Book at ") + f'<w:hyperlink w:anchor="desk">{run("the front desk")}</w:hyperlink>' + run(" in ")
            + f'<w:smartTag w:uri="urn:places" w:element="City">{run("Leeds")}</w:smartTag>' + run(", room ")
            + f'<w:fldSimple w:instr=" REF room ">{run("4")}</w:fldSimple>' + run(", by ")
            + f'<w:sdt><w:sdtPr><w:alias w:val="Day"/></w:sdtPr><w:sdtContent>{run("Friday")}</w:sdtContent></w:sdt>'
            + run("."),
            "Book at the front desk in Leeds, room 4, by Friday.",
        ),
        (  # tabs and line breaks; a text box anchored in a run is not glued into the sentence
            '<w:r><w:t>Opening hours</w:t><w:tab/><w:t>7-22</w:t><w:br/><w:t>Weekends</w:t><w:cr/><w:t>9-18</w:t>'
            '</w:r><w:r><w:pict><v:shape><v:textbox><w:txbxContent><w:p>' + run("Text box")
            + "</w:p></w:txbxContent></v:textbox></v:shape></w:pict></w:r>",
            "Opening hours\t7-22\nWeekends\n9-18",
        ),
    ],
    ids=["tracked-insertion", "tracked-move", "hidden-text", "inline-containers", "tabs-breaks-text-box"],
)
def test_docx_paragraph_text_is_what_word_shows_with_changes_accepted(inner, expected):
    document = docx.Document()
    add_blocks(document.element.body, f"<w:p>{inner}</w:p>")
    assert extract(docx_bytes(document), ".docx", "gym.docx").text == expected


def test_docx_content_controls_around_paragraphs_tables_rows_and_cells_are_walked_in_order():
    """A block-level content control (w:sdt) holds paragraphs and tables, a repeating section holds table rows,
    and one may hold a cell, or a paragraph of a cell or a footnote: each is read where it stands."""
    document = docx.Document()
    document.add_paragraph("Gym rules.")
    add_blocks(
        document.element.body,
        "<w:sdt><w:sdtPr><w:alias w:val='Sauna'/></w:sdtPr><w:sdtContent>"
        f"<w:p>{run('The sauna is open until 22:00.')}</w:p><w:sdt><w:sdtContent><w:p>{run('Towels are provided.')}</w:p></w:sdtContent></w:sdt></w:sdtContent>"
        "</w:sdt>",
    )
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Pool"
    add_blocks(table.cell(0, 1)._tc, f"<w:sdt><w:sdtContent><w:p>{run('Open 7-21')}</w:p></w:sdtContent></w:sdt>")
    cell = f"<w:sdt><w:sdtContent><w:tc><w:p>{run('Open 6-23')}</w:p></w:tc></w:sdtContent></w:sdt>"
    row = f"<w:tr><w:tc><w:p>{run('Gym')}</w:p></w:tc>{cell}</w:tr>"
    add_blocks(table._tbl, f"<w:sdt><w:sdtContent>{row}</w:sdtContent></w:sdt>")
    document.add_paragraph("Ask staff for help.")
    note = f"<w:footnote w:id='1'><w:sdt><w:sdtContent><w:p>{run('Members only.')}</w:p></w:sdtContent></w:sdt>"
    note += "</w:footnote>"
    add_notes(document, "footnote", ["Members only."], blob=f"<w:footnotes {W}>{note}</w:footnotes>".encode())
    assert extract(docx_bytes(document), ".docx", "gym.docx").text.split("\n\n") == [
        "Gym rules.",
        "The sauna is open until 22:00.",
        "Towels are provided.",
        "Pool | Open 7-21",
        "Gym | Open 6-23",
        "Ask staff for help.",
        "Members only.",
    ]


def zip_of(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def spreadsheet_named_docx() -> bytes:
    """A DOCX whose main part says it is a spreadsheet, as an .xlsx renamed to .docx would."""
    with zipfile.ZipFile(io.BytesIO(docx_bytes(docx.Document()))) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["[Content_Types].xml"] = files["[Content_Types].xml"].replace(
        b"wordprocessingml.document.main", b"spreadsheetml.sheet.main"
    )
    return zip_of(files)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"PK\x03\x04 not really a zip archive", "it is not a zip archive"),
        (zip_of({"notes.txt": "a zip of something else"}), "[Content_Types].xml is missing"),
        (zip_of({"[Content_Types].xml": "junk"}), "damaged XML: Start tag expected, '<' not found, line 1, column 1"),
        (spreadsheet_named_docx(), "content type is 'application/vnd.openxmlformats-officedocument.spreadsheetml"
         ".sheet.main+xml'"),
    ],
)
def test_a_file_that_is_not_a_word_document_is_skipped_saying_so(data, reason):
    with pytest.raises(Unreadable) as caught:
        extract(data, ".docx", "junk.docx")
    assert str(caught.value) == f"cannot read it as DOCX: not a Word document ({reason})"


@pytest.mark.parametrize(
    ("suffix", "data", "reason"),
    [
        (".pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n", "cannot read it as PDF"),
        (".pdf", random.Random(5).randbytes(2000), "cannot read it as PDF"),
        (".docx", b"PK\x03\x04 not really a zip archive", "cannot read it as DOCX"),
        (".html", b"<html><head><script>only()</script></head><body>  </body></html>", "no text could be extracted"),
        (".htm", b"\x00\x01\x02binary", "binary"),
    ],
)
def test_broken_files_are_unreadable_with_a_reason(suffix, data, reason):
    with pytest.raises(Unreadable, match=reason):
        extract(data, suffix, "broken" + suffix)


def test_pypdf_does_not_log_about_a_broken_pdf(caplog):
    """Our one-line warning says the file is skipped; pypdf's own ("EOF marker not found") only repeated it."""
    caplog.set_level(logging.WARNING)
    with pytest.raises(Unreadable, match="cannot read it as PDF"):
        extract(random.Random(5).randbytes(2000), ".pdf", "broken.pdf")
    assert [record.getMessage() for record in caplog.records] == []
    assert logging.getLogger("pypdf").level == logging.NOTSET  # quiet only while reading


def test_pdf_without_text_is_unreadable(tmp_path):
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)  # a drawing, no text (like a scanned page)
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(Unreadable, match="no text could be extracted"):
        read_document(info(tmp_path / "scan.pdf"))


@pytest.fixture
def mixed_bot(make_bot, tmp_path):
    """A chatbot over a PDF, a DOCX, an HTML page and a text file."""
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "report.pdf", PAGES)
    write_docx(docs / "rivers.docx")
    (docs / "page.htm").write_text(HTML, encoding="utf-8")
    (docs / "notes.txt").write_text("Tea is grown on the slopes of Darjeeling. It is picked by hand.\n")
    bot = make_bot(docs=docs, documents={"extensions": EXTENSIONS})
    report = bot.index()
    assert sorted(report.added) == ["notes.txt", "page.htm", "report.pdf", "rivers.docx"]
    return bot


def test_pdf_quotes_cite_their_page_and_offsets_into_the_stored_text(mixed_bot):
    answer = mixed_bot.ask("Who designed the Ascend 910C chip?")
    assert not answer.abstained
    quote = answer.quotes[0]
    assert quote.source == "report.pdf" and quote.page == 2
    text = mixed_bot.data.text_of("report.pdf")
    assert text[quote.start : quote.end] == quote.text
    page_start = text.rindex("\f", 0, quote.start) + 2  # after the page break "\n\f\n"
    assert quote.line == text.count("\n", page_start, quote.start) + 1  # the line on its page
    assert quote.to_dict()["page"] == 2
    source = answer.sources[0]
    assert source.page is not None and source.to_dict()["page"] == source.page


@pytest.mark.parametrize(
    ("question", "source", "expected"),
    [
        ("Where does the Danube end?", "rivers.docx", "It ends in the Black Sea."),
        ("Which is the longest river in Africa?", "rivers.docx", "Nile | The Nile is the longest river in Africa."),
        ("Which volcano destroyed Pompeii?", "page.htm", "Vesuvius destroyed Pompeii in 79 AD."),
        ("Where is tea grown?", "notes.txt", "Tea is grown on the slopes of Darjeeling."),
    ],
)
def test_other_formats_are_quoted_without_pages(mixed_bot, question, source, expected):
    answer = mixed_bot.ask(question)
    quote = next(quote for quote in answer.quotes if quote.source == source)
    assert expected in quote.text
    assert mixed_bot.data.text_of(source)[quote.start : quote.end] == quote.text
    assert quote.page is None and "page" not in quote.to_dict()
    # answer_span (the answer's words inside the quote) only when the verifier marked them
    assert set(quote.to_dict()) - {"answer_span", "section", "context"} == {"citation", "text", "source", "start", "end", "line", "source_sha256"}


def test_pages_are_recorded_in_the_manifest(mixed_bot):
    entries = {entry["path"]: entry for entry in mixed_bot.data.documents}
    assert len(entries["report.pdf"]["pages"]) == 3
    assert "pages" not in entries["notes.txt"] and "pages" not in entries["page.htm"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "chatbot", *args], cwd=ROOT, env=env, capture_output=True, timeout=600
    )


def test_a_broken_pdf_is_skipped_with_one_line_on_stderr(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("Tea is grown on the slopes of Darjeeling.\n", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)))
    config = tmp_path / "formats.toml"
    config.write_text(f"[documents]\nextensions = {json.dumps(EXTENSIONS)}\n", encoding="utf-8")
    run = run_cli("index", "--config", str(config), "--docs", str(docs), "--index", str(tmp_path / "index"))
    assert run.returncode == 0, run.stderr
    lines = run.stderr.decode().splitlines()  # pypdf's "EOF marker not found" came here too
    assert len(lines) == 1 and lines[0].startswith("warning: skipped broken.pdf: cannot read it as PDF: "), lines


def test_source_command_prints_the_stored_text(mixed_bot, tmp_path):
    config = tmp_path / "formats.toml"
    config.write_text(f"[documents]\nextensions = {json.dumps(EXTENSIONS)}\n", encoding="utf-8")
    paths = mixed_bot.config.paths
    where = ["--config", str(config), "--docs", str(paths.docs), "--index", str(paths.index)]

    pdf = run_cli("source", "report.pdf", *where)
    assert pdf.returncode == 0, pdf.stderr
    assert pdf.stdout.decode("utf-8") == mixed_bot.data.text_of("report.pdf")

    text = run_cli("source", "notes.txt", *where)
    assert text.stdout == (mixed_bot.config.paths.docs / "notes.txt").read_bytes()

    missing = run_cli("source", "nowhere.pdf", *where)
    assert missing.returncode == 1
    assert missing.stderr.decode().strip() == "error: no document nowhere.pdf in the index"


def test_markdown_front_matter_and_comments_are_never_quoted(make_bot):
    """A Markdown reader sees neither the front matter nor HTML comments (a comment in a code block is shown,
    and stays); a .txt file has no such thing, so there the same text is quoted like any other."""
    note = "<!-- TODO: the parking garage code is 4471, remove before publishing -->"
    text = (
        "---\ntitle: Office guide\nparking: level 2\n---\n# Office guide\n\nVisitors park on level 2 of the garage.\n\n"
        f"{note}\n\nThe garage opens at seven.\n\n```html\n<!-- the garage code goes here -->\n```\n"
    )
    bot = make_bot({"guide.md": text, "copy.txt": text})
    data = bot.data
    quoted = {(data.documents[d]["path"], data.texts[d][s:e]) for d, s, e in data.sentences[:, :3].tolist()}
    assert ("guide.md", "Visitors park on level 2 of the garage.") in quoted
    assert ("guide.md", "<!-- the garage code goes here -->") in quoted  # a code block: its lines, not its fences
    assert not {sentence for path, sentence in quoted if path == "guide.md" and ("4471" in sentence or "title:" in sentence)}
    assert ("copy.txt", note) in quoted
    answer = bot.ask("What is the parking garage code?")
    assert all(quote.source == "copy.txt" or "4471" not in quote.text for quote in answer.quotes)


def test_markdown_comments_inside_a_paragraph_are_cut_out_of_its_sentences():
    text = (
        "<!-- TODO: the release date of version 3 is secret -->\nVersion 2 came out in March.\n\n"
        "Version 2.1 fixes the login bug. <!-- it was rushed --> It also adds dark mode.\n"
    )
    blocks = split_blocks(text, unseen=unseen_spans(text, ".md"))
    assert [text[s:e] for block in blocks for s, e in block.sentences] == [
        "Version 2 came out in March.",
        "Version 2.1 fixes the login bug.",
        "It also adds dark mode.",
    ]


def test_a_markdown_file_opening_with_a_rule_has_no_front_matter():
    text = "---\nThe first section explains the install.\n\n---\n\nThe second section explains the upgrade.\n"
    assert unseen_spans(text, ".md") == []
    assert unseen_spans("---\ntitle: Guide\n---\nText.", ".md") == [(0, len("---\ntitle: Guide\n---\n"))]
