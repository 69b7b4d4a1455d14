"""Ranking features that the calibration data cannot teach on its own, and how calibration treats them."""

import re

import numpy as np

from chatbot.answering.rank import RANKING_FEATURES, _word_match, expected_kind, holds_kind
from chatbot.config import RankingConfig
from chatbot.documents.segment import is_heading, split_sentences
from chatbot.training.calibrate import MIN_SUPPORT, fit_logistic

from ..conftest import SEED_FILE, SEEDS, document_text


def test_headings_are_told_from_sentences():
    text = document_text(SEEDS, SEED_FILE)
    headings = [text[s:e] for s, e in split_sentences(text) if is_heading(text, s, e)]
    assert headings == [
        "China’s Tech Self-Reliance: Guangdong Doubles Down on Huawei as the US Tightens its Grip",
        "The Pressure to Innovate: Beyond Provincial Rivalry",
        "Huawei’s Ascend 910C: A Key Weapon in China’s Tech Arsenal",
        "The Rise of Domestic Alternatives: Beyond Huawei",
    ]  # "Future Trends: What’s Next …?" ends in a question mark: a question, not a title.
    markdown = "## Results\nThe model works. It is fast\nand small.\n\nShort line without a stop"
    assert [is_heading(markdown, s, e) for s, e in split_sentences(markdown)] == [True, False, False, True]


def test_why_questions_ask_for_a_reason():
    assert expected_kind("Why is the province investing in many fields?") == "reason"
    assert expected_kind("What is the purpose of the new chip?") == "reason"
    assert expected_kind("The aim of the law was to do what?") == "reason"
    assert holds_kind("reason", "This diversification is essential to mitigate risks.", "why?") == 1.0
    assert holds_kind("reason", "HarmonyOS is an operating system.", "why?") == -1.0


def test_the_first_wh_word_says_what_kind_of_answer_is_asked_for():
    assert expected_kind("When was Huawei founded?") == "date"
    assert expected_kind("In what year was HarmonyOS launched?") == "date"
    assert expected_kind("What was the official alluding to when he talked about embargoes?") is None
    assert expected_kind("Who led the province when the chip was shown?") == "name"
    assert expected_kind("How old was the firm when it moved to Zhejiang?") == "number"
    assert expected_kind("Tell me where DeepSeek is based.") == "name"


def test_headings_questions_and_references_back_are_features(seed_bot):
    ((_, evidence),) = seed_bot.explain_batch(["Why does the province invest in biotechnology and new materials?"])
    data, ranked = seed_bot.data, evidence.ranked
    column = {name: ranked.features[:, RANKING_FEATURES.index(name)] for name in RANKING_FEATURES}
    texts = [data.texts[d][s:e] for d, s, e in data.sentences[ranked.sentences]]
    for text, fragment, continuation, previous in zip(
        texts, column["fragment"], column["continuation"], column["previous_cosine"]
    ):
        assert fragment == (not text.endswith((".", "!", ".”", ":"))), text
        refers_back = re.match(r"(?:This|These|That|It|Its|They|Furthermore|In fact|But|However|Also)\b", text)
        assert continuation == (previous if refers_back else 0.0), text
    assert column["fragment"].any() and column["continuation"].any()
    # Centrality: the cosine to the unit mean of the document's sentence vectors.
    centroid = np.asarray(data.sentence_vectors, dtype=np.float64).mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    assert np.allclose(data.centroid_of(0), centroid, atol=1e-6)
    expected = np.asarray(data.sentence_vectors[ranked.sentences]) @ centroid
    assert np.allclose(column["centrality"], expected, atol=1e-5)
    # A heading that echoes the question does not come before the sentence under it that answers.
    answer = seed_bot.ask("Why is Huawei's Ascend 910C a key weapon?")
    assert answer.quotes[0].text.startswith("The Ascend 910C is designed to reduce China’s reliance")


def test_word_match_gives_partial_credit_for_near_words(seed_bot):
    lexical, word_vectors = seed_bot.data.sentence_lexical, seed_bot.embedder.word_vectors
    question = "Which semiconductor sales did the US restrict?"
    exact, near, unrelated = _word_match(
        question,
        [
            "The US did restrict semiconductor sales to China.",
            "US restrictions on the sale of advanced chips.",
            "HarmonyOS is gaining traction in the Chinese market.",
        ],
        lexical,
        word_vectors,
    )
    assert np.isclose(exact, 1.0)  # every word of the question is there
    assert unrelated < near < exact
    # Words weigh by how rare they are in the documents: "semiconductors" is used once, "Huawei" often.
    assert lexical.document_frequency("huawei") > lexical.document_frequency("semiconductor") == 1
    rare, common = _word_match("Huawei semiconductors?", ["Semiconductors.", "Huawei."], lexical, word_vectors)
    assert rare > 0.6 > common
    assert not _word_match("What is it?", ["Anything at all."], lexical, word_vectors).any()  # no content words


def test_calibration_keeps_the_weight_of_a_feature_too_rare_to_fit():
    rng = np.random.default_rng(0)
    rows = 2000
    features = rng.normal(size=(rows, len(RANKING_FEATURES)))
    rare = RANKING_FEATURES.index("fragment")
    features[:, rare] = 0.0
    features[: int(rows * MIN_SUPPORT) - 1, rare] = 1.0  # just under the support needed
    labels = features[:, 0] + 0.3 * rng.normal(size=rows) > 0
    weights = fit_logistic(features, labels, RANKING_FEATURES, RankingConfig(fragment=-7.0))
    assert weights["fragment"] == -7.0
    assert weights[RANKING_FEATURES[0]] > 1.0  # the informative feature is fitted
    features[: int(rows * MIN_SUPPORT) + 1, rare] = 1.0
    assert fit_logistic(features, labels, RANKING_FEATURES, RankingConfig(fragment=-7.0))["fragment"] != -7.0
