"""Passages: consecutive sentences within a section, every sentence in at least one passage."""

from hypothesis import given
from hypothesis import strategies as st

from chatbot.documents.chunk import group_sentences
from chatbot.documents.segment import Block, split_blocks

from ..conftest import SEED_FILE, SEEDS, document_text


def blocks_of(sizes: list[int], headings: set[int] = frozenset()) -> list[Block]:
    blocks, position = [], 0
    for number, size in enumerate(sizes):
        spans = [(position + i * 10, position + i * 10 + 5) for i in range(size)]
        position += size * 10
        blocks.append(Block(spans[0][0], spans[-1][1], spans, heading=number in headings))
    return blocks


def test_a_heading_opens_the_passage_after_it():
    # heading, paragraph of 2, heading, paragraph of 3
    passages = group_sentences(blocks_of([1, 2, 1, 3], headings={0, 2}), size=4, overlap=1)
    assert passages == [(0, 3), (3, 7)]


def test_long_paragraph_is_cut_into_overlapping_windows():
    assert group_sentences(blocks_of([7]), size=4, overlap=1) == [(0, 4), (3, 7)]


def test_short_paragraphs_are_packed_together():
    assert group_sentences(blocks_of([1, 1, 1, 1, 1]), size=3, overlap=0) == [(0, 3), (3, 5)]


def test_seed_passages_cover_every_sentence_and_stay_small():
    blocks = split_blocks(document_text(SEEDS, SEED_FILE))
    total = sum(len(block.sentences) for block in blocks)
    passages = group_sentences(blocks, size=4, overlap=1)
    covered = {sentence for lo, hi in passages for sentence in range(lo, hi)}
    assert covered == set(range(total))
    assert all(hi - lo <= 5 for lo, hi in passages)  # at most size, plus a heading leading a window


@given(
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=12),
    st.sets(st.integers(min_value=0, max_value=11)),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=0, max_value=5),
)
def test_passages_are_ordered_runs_that_cover_everything(sizes, headings, size, overlap):
    overlap = min(overlap, size - 1)
    passages = group_sentences(blocks_of(sizes, headings), size=size, overlap=overlap)
    covered = {sentence for lo, hi in passages for sentence in range(lo, hi)}
    assert covered == set(range(sum(sizes)))
    assert all(lo < hi for lo, hi in passages)
    assert [lo for lo, _ in passages] == sorted(lo for lo, _ in passages)
