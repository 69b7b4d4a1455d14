"""BM25 indexes: built from a compact table of token ids, the same as from token lists."""

import numpy as np

from chatbot.index.lexical import LexicalIndex, token_table, tokenize

TEXTS = [
    "Copper conducts electricity well.",
    "It is used in most electrical wiring.",
    "The and of",  # no tokens: stop words only
    "Bronze is made by mixing copper with tin; copper comes first.",
    "The Danube flows through ten countries.",
]


def test_an_index_built_from_a_token_table_scores_as_one_built_from_token_lists():
    ids, offsets, vocab = token_table(TEXTS)
    assert offsets[0] == 0 and offsets[-1] == len(ids) and len(offsets) == len(TEXTS) + 1
    assert offsets[3] == offsets[2]  # the text without tokens
    passages = [(0, 2), (1, 4), (2, 3), (3, 5)]  # runs of consecutive texts, overlapping, one empty
    lists = [tokenize(text) for text in TEXTS]
    expected = [
        LexicalIndex.build(lists),
        LexicalIndex.build([[token for i in range(lo, hi) for token in lists[i]] for lo, hi in passages]),
    ]
    starts, ends = np.array([lo for lo, _ in passages]), np.array([hi for _, hi in passages])
    built = [
        LexicalIndex.build_from_table(ids, offsets[:-1], offsets[1:], vocab),
        LexicalIndex.build_from_table(ids, offsets[starts], offsets[ends], vocab),
    ]
    for old, new in zip(expected, built):
        assert old.size == new.size
        assert np.array_equal(old.distinct_terms, new.distinct_terms)
        for query in (["copper"], ["copper", "wire", "danub"], ["tin", "tin"], ["unknown"], []):
            assert np.allclose(old.scores(query), new.scores(query))
            assert np.allclose(old.coverage(query), new.coverage(query))
            assert np.array_equal(old.shared_terms(query), new.shared_terms(query))
