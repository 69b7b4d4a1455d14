"""Which ranked sentences an answer quotes (runners-up close to the best, and a following sentence at a lower
bar), and how they are joined into quotes."""

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
    assert quoted(seed_bot, [10, 20, 11], [0.8, 0.5, 0.35], following_quote_ratio=0.2) == [[10], [20], [11]]


def test_a_sentence_between_two_quotes_needs_the_full_score(seed_bot):
    # 11 follows 10 but leads into 12: quoting it would only push 12 further from the start of the answer.
    assert quoted(seed_bot, [10, 12, 11], [0.8, 0.5, 0.3], following_quote_ratio=0.2) == [[10], [12]]
    assert quoted(seed_bot, [10, 12, 11], [0.8, 0.5, 0.45], following_quote_ratio=0.2) == [[10, 11, 12]]
    # Chosen before 12, it runs on from 10, and 12 then runs on from it.
    assert quoted(seed_bot, [10, 11, 12], [0.8, 0.3, 0.25], following_quote_ratio=0.2) == [[10, 11, 12]]


def test_a_sentence_joins_only_the_latest_quote(seed_bot):
    # Joined to 10, sentence 9 (or 11) would come before 20 and push the second best further from the start.
    assert quoted(seed_bot, [10, 20, 9], [0.8, 0.7, 0.7]) == [[10], [20], [9]]
    assert quoted(seed_bot, [10, 9, 20], [0.8, 0.7, 0.7]) == [[9, 10], [20]]
    # 12 does not touch 10; 11 joins 12, and then 10 too: the three are one quote, at the place of the best.
    assert quoted(seed_bot, [10, 12, 11], [0.8, 0.7, 0.7]) == [[10, 11, 12]]
    assert quoted(seed_bot, [10, 12, 11], [0.8, 0.7, 0.7], merge_adjacent=False) == [[10], [12], [11]]


def test_max_quotes_counts_sentences(seed_bot):
    assert quoted(seed_bot, [10, 11, 12, 13], [0.8, 0.7, 0.7, 0.7], following_quote_ratio=0.2) == [[10, 11, 12]]
