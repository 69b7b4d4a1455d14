"""Sentence splitting: exact offsets, headings and list items as boundaries, no splits inside
abbreviations, decimals or quoted speech."""

from hypothesis import given, settings
from hypothesis import strategies as st

from chatbot.documents.segment import split_blocks, split_sentences

from ..conftest import SEED_FILE, SEEDS, document_text


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in split_sentences(text)]


def test_seed_headings_and_list_items_are_their_own_sentences():
    text = document_text(SEEDS, SEED_FILE)
    found = sentences(text)
    assert "The Pressure to Innovate: Beyond Provincial Rivalry" in found
    assert "Huawei’s Ascend 910C: A Key Weapon in China’s Tech Arsenal" in found
    assert "Central to Guangdong’s narrative is Huawei’s Ascend 910C chip." in found
    assert "We can expect to see:" in found
    # List items start after their "- " marker and end at their line break.
    item = next(s for s in found if s.startswith("Increased Investment in R&D"))
    assert item.endswith("only going to increase.") and "\n" not in item
    blocks = split_blocks(text)
    assert blocks[0].heading and text[blocks[0].start : blocks[0].end].startswith("China’s Tech Self-Reliance")


def test_abbreviations_decimals_and_initials_do_not_split():
    text = "Mr. Smith paid $2.5 million to Dr. Wang at 3 p.m. on Monday. John F. Kennedy agreed, e.g. in May. Then he left."
    assert sentences(text) == [
        "Mr. Smith paid $2.5 million to Dr. Wang at 3 p.m. on Monday.",
        "John F. Kennedy agreed, e.g. in May.",
        "Then he left.",
    ]


def test_quoted_speech_stays_in_one_sentence():
    text = 'He said, “It is over. We lost.” Then he left. She replied: "No. Not yet." Nobody moved.'
    assert sentences(text) == [
        "He said, “It is over. We lost.”",
        "Then he left.",
        'She replied: "No. Not yet."',
        "Nobody moved.",
    ]


def test_abbreviation_before_a_clear_sentence_start_splits():
    assert sentences("Exports went to the U.S. The trade grew, etc. This is new.") == [
        "Exports went to the U.S.",
        "The trade grew, etc.",
        "This is new.",
    ]


def test_hard_wrapped_lines_join_and_blank_lines_separate():
    text = "A paragraph that is\nhard wrapped across\nseveral lines. And a second one.\n\nNew paragraph here"
    assert sentences(text) == [
        "A paragraph that is\nhard wrapped across\nseveral lines.",
        "And a second one.",
        "New paragraph here",
    ]


def test_markdown_headings_and_numbered_lists():
    text = "# Title\nSome text here. More text.\n1. first step\n2) second step\n* bullet"
    assert sentences(text) == ["Title", "Some text here.", "More text.", "first step", "second step", "bullet"]


def test_a_line_of_markup_alone_is_no_sentence():
    assert sentences("* *\n\nText after a rule.") == ["Text after a rule."]


def test_overlong_sentence_is_cut_at_a_space():
    text = "word " * 500 + "end."
    spans = split_sentences(text, max_chars=300)
    assert len(spans) > 1 and all(end - start <= 300 for start, end in spans)


def test_crlf_offsets_are_exact():
    text = "First line.\r\nSecond line here.\r\n\r\nThird."
    assert sentences(text) == ["First line.", "Second line here.", "Third."]


def test_chinese_stops_end_sentences_without_a_space():
    text = "长城有多长？长城长约两万公里。北京是中国的首都。\n“你好。”他说。"
    assert sentences(text) == ["长城有多长？", "长城长约两万公里。", "北京是中国的首都。", "“你好。”他说。"]


def test_a_byte_order_mark_is_not_quoted():
    text = "\ufeffThe first sentence. The second one."
    assert sentences(text) == ["The first sentence.", "The second one."]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list('ab .!?\n"“”’-#*1:,') + ["Mr. ", "U.S. ", "The ", "\n\n", "- "]), max_size=120))
def test_spans_are_ordered_trimmed_and_inside_the_text(pieces):
    text = "".join(pieces)
    previous_end = 0
    for start, end in split_sentences(text):
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and any(char.isalnum() for char in piece)
        previous_end = end


def test_an_item_whose_text_starts_on_the_next_line_is_quoted_from_its_first_word():
    text = "- \n a\n\n-\n  Second item here."
    assert [text[s:e] for s, e in split_sentences(text)] == ["a", "Second item here."]


def test_a_table_row_is_a_sentence_of_its_own_with_its_header_as_context_and_not_a_heading():
    text = (
        "## Expenses\n\n| Item | Limit |\n|------|-------|\n| Hotel | EUR 150 per night |\n| Taxi | EUR 60 |\n\n"
        "Weight | 249 g\n\nMax range | 12 km\n\nOutlook\n\nThe company grows."
    )
    blocks = split_blocks(text)
    rows = [block for block in blocks if block.kind == "row"]
    assert [text[slice(*block.context)] for block in rows] == ["| Item | Limit |"] * 2  # the header row
    assert [(text[s:e], block.heading) for block in blocks for s, e in block.sentences] == [
        ("Expenses", True),
        ("| Hotel | EUR 150 per night |", False),
        ("| Taxi | EUR 60 |", False),
        ("Weight | 249 g", False),  # a row as the HTML and DOCX readers write it
        ("Max range | 12 km", False),
        ("Outlook", True),
        ("The company grows.", False),
    ]


def test_page_numbers_and_lines_wrapped_in_mid_sentence_are_not_headings():
    """As PDF text has them: a page number alone, and a line that starts in lower case (the rest of a sentence
    wrapped there) are prose, never a section's heading; a short capitalised line still is one."""
    text = (
        "Licence\n\nPermission is granted to copy this document;\n"
        "with no Invariant Sections, no Front-Cover Texts, and no Back-Cover\n"
        "Texts. A copy of the license is included.\n\n24\n\nflags: additional flags\n\nThe end."
    )
    headings = [text[s:e] for block in split_blocks(text) if block.heading for s, e in block.sentences]
    assert headings == ["Licence"]
