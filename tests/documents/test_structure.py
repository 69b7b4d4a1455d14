"""Structure survives extraction: headings with levels, list items, terms with descriptions, table rows with
their header, and code blocks, in plain text, Markdown, reST, HTML and PDF; and quote units follow it."""

from chatbot.documents.formats import extract, parts_of, reflow
from chatbot.documents.load import scan_folder
from chatbot.documents.segment import sections, split_blocks, split_sentences
from chatbot.documents.structure import parse, syntax_of
from chatbot.index.lexical import content_words


def units(text, **kwargs):
    """(kind, unit text, context text) of every unit of `text`."""
    return [
        (block.kind, text[s:e], text[slice(*block.context)] if block.context else None)
        for block in split_blocks(text, **kwargs)
        for s, e in block.sentences
    ]


def test_markdown_headings_keep_their_levels_and_units_know_their_section():
    text = "# Guide\n\nIntro text.\n\n## Install\n\nRun it.\n\nSetup\n-----\n\nMore.\n\n### Deep\n\nDeepest."
    blocks = split_blocks(text, syntax="markdown")
    headings = [(text[b.start : b.end], b.level) for b in blocks if b.kind == "heading"]
    assert headings == [("Guide", 1), ("Install", 2), ("Setup", 2), ("Deep", 3)]
    flat = [text[s:e] for b in blocks for s, e in b.sentences]
    parent = {flat[i]: flat[h] if h >= 0 else None for i, h in enumerate(sections(blocks))}
    assert parent["Run it."] == "Install" and parent["More."] == "Setup" and parent["Deepest."] == "Deep"
    assert parent["Deep"] == "Setup" and parent["Setup"] == "Guide" and parent["Guide"] is None


def test_a_fenced_code_block_is_one_unit_without_its_fences_and_is_never_split_into_sentences():
    text = "Build it:\n\n```sh\n./configure. Then\nmake -j4\n```\n\nDone."
    assert units(text, syntax="markdown") == [
        ("paragraph", "Build it:", None),
        ("code", "./configure. Then\nmake -j4", "Build it:"),  # read with the line that introduces it
        ("paragraph", "Done.", None),
    ]


def test_a_term_and_its_indented_description_are_one_unit():
    text = "OPTIONS\n\n  -k --keep\n        Keep (don't delete) input files during compression.\n\n  -q\n        Quiet."
    found = units(text)
    assert ("term", "-k --keep\n        Keep (don't delete) input files during compression.", None) in found
    assert ("term", "-q\n        Quiet.", None) in found


def test_a_long_description_goes_on_in_sentences_read_with_their_term():
    description = " ".join(f"Sentence number {n} of the description says something." for n in range(10))
    text = f"  --verbose\n      {description}\n"
    found = units(text)
    assert found[0][0] == "term" and found[0][1].startswith("--verbose\n") and found[0][1].endswith("says something.")
    assert all(kind == "description" and context == "--verbose" for kind, _, context in found[1:])
    assert len(found) == 10


def test_plain_text_table_rows_carry_their_header_even_when_a_blank_line_stands_between():
    text = (
        "Details\n-------\n\n  Status      Pending   Remedy\n\n"
        "  unpacked    never     postinst configure\n  c.-failed   never     postinst configure (when requested)\n"
    )
    rows = [(body, context) for kind, body, context in units(text) if kind == "row"]
    assert rows == [
        ("unpacked    never     postinst configure", "Status      Pending   Remedy"),
        ("c.-failed   never     postinst configure (when requested)", "Status      Pending   Remedy"),
    ]


def test_prose_spaced_twice_after_full_stops_is_not_a_table():
    text = "The man and man-db packages forked in the mid-1990s.  The original goal\nof man-db was caching.  Today it is not."
    assert {kind for kind, _, _ in units(text)} == {"paragraph"}


def test_list_items_are_whole_units_and_a_line_ending_in_a_colon_introduces_them():
    text = "Expat understands these encodings:\n\n- UTF-8\n- UTF-16, which needs\n  a byte-order mark.\n- ISO-8859-1\n"
    found = units(text)
    assert found[1:] == [
        ("item", "UTF-8", "Expat understands these encodings:"),
        ("item", "UTF-16, which needs\n  a byte-order mark.", "Expat understands these encodings:"),
        ("item", "ISO-8859-1", "Expat understands these encodings:"),
    ]


def test_rst_underlined_headings_take_levels_in_the_order_they_appear():
    text = "=====\nTitle\n=====\n\nIntro.\n\nPart\n====\n\nBody.\n\nDetail\n------\n\nMore."
    parts = [(text[p.start : p.end], p.level) for p in parse(text, "rst") if p.kind == "heading"]
    assert parts == [("Title", 1), ("Part", 2), ("Detail", 3)]


def test_sentences_do_not_break_inside_dotted_names_versions_options_or_abbreviations():
    text = "It handles ASN.1 and v1.2.3 of setup.py with -O2, e.g. for speed. The next sentence starts here."
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "It handles ASN.1 and v1.2.3 of setup.py with -O2, e.g. for speed.",
        "The next sentence starts here.",
    ]


def test_html_structure_reaches_the_units():
    html = (
        b"<html><body><h2>Options</h2><dl><dt>--repeat</dt><dd><p>Run the transformation 20 times.</p></dd></dl>"
        b"<table><tr><th>Code</th><th>Meaning</th></tr><tr><td>6</td><td>Error in one of the documents</td></tr></table>"
        b"<ul><li>First item</li><li>Second item</li></ul><pre>int x = 1;\nint y = 2;</pre></body></html>"
    )
    extracted = extract(html, ".html", "page.html")
    text = extracted.text
    found = units(text, parts=parts_of(extracted.structure))
    assert ("heading", "Options", None) in found
    assert ("term", "--repeat\nRun the transformation 20 times.", None) in found  # the term, its description
    assert ("row", "6 | Error in one of the documents", "Code | Meaning") in found
    assert ("item", "First item", None) in found and ("item", "Second item", None) in found
    assert ("code", "int x = 1;\nint y = 2;", None) in found


def test_pdf_lines_that_only_wrap_a_paragraph_are_joined_and_hyphenation_undone():
    page = "\n".join(
        [
            "2.1 ASN.1 syntax",
            "This chapter describes the data structures and their man-",
            "agement by the library, which is released under the terms of",
            "the GNU Lesser General Public License, version 2.1 or later, as",
            "published.",
            "A new paragraph.",
            "• INTEGER;",
            "• BOOLEAN;",
        ]
    )
    assert reflow(page).split("\n") == [
        "2.1 ASN.1 syntax",
        "This chapter describes the data structures and their management by the library, which is released under "
        "the terms of the GNU Lesser General Public License, version 2.1 or later, as published.",
        "A new paragraph.",
        "• INTEGER;",
        "• BOOLEAN;",
    ]


def test_text_files_are_read_whatever_their_name(tmp_path):
    for name in ("FAQ", "README.Debian", "notes.markdown", "guide.rst", "plain.text", "data.bin", "picture.png"):
        (tmp_path / name).write_text("Some text.\n")
    extensions = (".txt", ".text", ".md", ".markdown", ".rst", "", "README*")
    scan = scan_folder(tmp_path, extensions)
    assert [info.path for info in scan.files] == ["FAQ", "README.Debian", "guide.rst", "notes.markdown", "plain.text"]
    assert {skipped.path for skipped in scan.skipped} == {"data.bin", "picture.png"}
    assert (syntax_of("notes.markdown"), syntax_of("guide.rst"), syntax_of("FAQ")) == ("markdown", "rst", "plain")


def test_versions_and_dotted_names_are_words_of_their_own():
    assert "3.3" in content_words("When did libffi 3.3 come out?")
    assert "x86-64" in content_words("Who ported it to x86-64?")
    assert "well-known" not in content_words("a well-known name")  # without a digit, only the parts count


def test_numbered_section_headings_of_plain_text_and_pdf_are_headings_with_levels():
    text = "2\n2 ASN.1 structure handling\n2.1 ASN.1 syntax\nThe parser is case sensitive.\n1. An item, not a heading\n"
    found = units(text)
    assert found[1:4] == [
        ("heading", "2 ASN.1 structure handling", None),
        ("heading", "2.1 ASN.1 syntax", None),
        ("paragraph", "The parser is case sensitive.", None),
    ]
    assert found[4][0] == "item"
    levels = [p.level for p in parse(text) if p.kind == "heading"]
    assert levels == [1, 2]


def test_a_line_before_a_code_fence_is_not_a_heading_underlined_by_the_fence():
    text = "To disable lookups, use an empty file:\n```\n# /etc/mdns.allow\n```\n"
    assert units(text, syntax="markdown") == [
        ("paragraph", "To disable lookups, use an empty file:", None),
        ("code", "# /etc/mdns.allow", "To disable lookups, use an empty file:"),
    ]
