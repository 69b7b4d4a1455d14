"""Which ranked sentences an answer quotes: runners-up close to the best, and a following sentence at a lower bar."""

import numpy as np

from chatbot.compose import compose
from chatbot.rank import RANKING_FEATURES, Ranked
from chatbot.retrieve import Hits


def quoted(bot, sentences, scores, **answer):
    data = bot.data
    ids = np.array(sentences, dtype=np.int64)
    ranked = Ranked(
        sentences=ids,
        passages=data.sentence_passage[ids],
        scores=np.array(scores, dtype=np.float64),
        features=np.zeros((len(ids), len(RANKING_FEATURES))),
        confidence=0.9,
    )
    hits = Hits(np.unique(data.sentence_passage[ids]), np.ones(1, dtype=np.float32), ids)
    settings = bot.replace(answer={"max_quotes": 3, "second_quote_ratio": 0.5, **answer}).config.answer
    answer = compose("a question", ranked, hits, data, settings)
    return [
        [int(s) for s in np.flatnonzero((data.sentences[:, 1] >= q.start) & (data.sentences[:, 2] <= q.end))]
        for q in answer.quotes
    ]


def test_a_sentence_following_a_quoted_one_needs_a_lower_score(seed_bot):
    # 11 follows 10; 20 stands apart; 9 comes before 10: only the following sentence gets the lower bar.
    ranked = ([10, 11, 9, 20], [0.8, 0.3, 0.3, 0.3])
    assert quoted(seed_bot, *ranked, following_quote_ratio=0.2) == [[10, 11]]
    assert quoted(seed_bot, *ranked, following_quote_ratio=0.5) == [[10]]
    assert quoted(seed_bot, [10, 20, 11], [0.8, 0.35, 0.35], following_quote_ratio=0.2) == [[10, 11]]
    assert quoted(seed_bot, [10, 20, 11], [0.8, 0.5, 0.35], following_quote_ratio=0.2) == [[10, 11], [20]]


def test_max_quotes_counts_sentences(seed_bot):
    assert quoted(seed_bot, [10, 11, 12, 13], [0.8, 0.7, 0.7, 0.7], following_quote_ratio=0.2) == [[10, 11, 12]]
