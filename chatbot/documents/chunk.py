"""Group a document's sentences into passages: runs of consecutive sentences within a section.

A passage never spans a heading (a heading opens the passage after it), packs short paragraphs and list
items together up to `size` sentences, and cuts a long paragraph into windows of `size` sentences that
share `overlap` sentences with the window before.

Usage example:
    passages = group_sentences(split_blocks(text), size=4, overlap=1)   # [(first, stop), ...]
"""

from __future__ import annotations

from .segment import Block


def group_sentences(blocks: list[Block], size: int, overlap: int) -> list[tuple[int, int]]:
    """Passages as (first sentence, one past the last sentence), indices into the document's sentences."""
    passages: list[tuple[int, int]] = []
    pending: list[int] = []  # sentence indices waiting to become a passage
    headings = 0  # how many of the pending sentences are headings
    index = 0
    for block in blocks:
        ids = list(range(index, index + len(block.sentences)))
        index += len(ids)
        if block.heading:
            if pending and headings < len(pending):
                passages.append((pending[0], pending[-1] + 1))
                pending, headings = [], 0
            pending += ids
            headings += len(ids)
        elif len(pending) + len(ids) <= size:
            pending += ids
        elif len(ids) <= size and headings < len(pending):
            passages.append((pending[0], pending[-1] + 1))
            pending, headings = ids, 0
        else:
            # A long paragraph: flush what is pending unless it is only headings, which lead the first window.
            if pending and headings < len(pending):
                passages.append((pending[0], pending[-1] + 1))
                pending = []
            lead = pending
            pending, headings = [], 0
            passages.extend(_windows(lead, ids, size, overlap))
    if pending:
        passages.append((pending[0], pending[-1] + 1))
    return passages


def _windows(lead: list[int], ids: list[int], size: int, overlap: int) -> list[tuple[int, int]]:
    step = size - overlap
    windows = []
    for offset in range(0, max(len(ids) - overlap, 1), step):
        part = ids[offset : offset + size]
        first = lead[0] if lead and offset == 0 else part[0]
        windows.append((first, part[-1] + 1))
        if offset + size >= len(ids):
            break
    return windows
