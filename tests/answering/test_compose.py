"""Which ranked sentences an answer quotes (runners-up close to the best, and a following sentence at a lower
bar), and how they are joined into quotes."""

import numpy as np

from chatbot.answering.compose import compose
from chatbot.answering.rank import RANKING_FEATURES, Ranked
from chatbot.answering.retrieve import Hits


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
    # 13 follows 12; 21 stands apart; 11 comes before 12: only the following sentence gets the lower bar.
    ranked = ([12, 13, 11, 21], [0.8, 0.3, 0.3, 0.3])
    assert quoted(seed_bot, *ranked, following_quote_ratio=0.2) == [[12, 13]]
    assert quoted(seed_bot, *ranked, following_quote_ratio=0.5) == [[12]]
    assert quoted(seed_bot, [12, 21, 13], [0.8, 0.35, 0.35], following_quote_ratio=0.2) == [[12, 13]]
    assert quoted(seed_bot, [12, 21, 13], [0.8, 0.5, 0.35], following_quote_ratio=0.2) == [[12], [21], [13]]


def test_a_sentence_between_two_quotes_needs_the_full_score(seed_bot):
    # 13 follows 12 but leads into 14: quoting it would only push 14 further from the start of the answer.
    assert quoted(seed_bot, [12, 14, 13], [0.8, 0.5, 0.3], following_quote_ratio=0.2) == [[12], [14]]
    assert quoted(seed_bot, [12, 14, 13], [0.8, 0.5, 0.45], following_quote_ratio=0.2) == [[12, 13, 14]]
    # Chosen before 14, it runs on from 12, and 14 then runs on from it.
    assert quoted(seed_bot, [12, 13, 14], [0.8, 0.3, 0.25], following_quote_ratio=0.2) == [[12, 13, 14]]


def test_a_sentence_joins_only_the_latest_quote(seed_bot):
    # Joined to 12, sentence 11 (or 13) would come before 21 and push the second best further from the start.
    assert quoted(seed_bot, [12, 21, 11], [0.8, 0.7, 0.7]) == [[12], [21], [11]]
    assert quoted(seed_bot, [12, 11, 21], [0.8, 0.7, 0.7]) == [[11, 12], [21]]
    # 14 does not touch 12; 13 joins 14, and then 12 too: the three are one quote, at the place of the best.
    assert quoted(seed_bot, [12, 14, 13], [0.8, 0.7, 0.7]) == [[12, 13, 14]]
    assert quoted(seed_bot, [12, 14, 13], [0.8, 0.7, 0.7], merge_adjacent=False) == [[12], [14], [13]]


def test_max_quotes_counts_sentences(seed_bot):
    assert quoted(seed_bot, [12, 13, 14, 15], [0.8, 0.7, 0.7, 0.7], following_quote_ratio=0.2) == [[12, 13, 14]]


def heading(bot, text: str) -> int:
    """The id of the seed sentence with this text."""
    data = bot.data
    for sentence, (doc, start, end) in enumerate(data.sentences[:, :3].tolist()):
        if data.texts[doc][start:end] == text:
            return sentence
    raise AssertionError(f"no sentence {text!r}")


def test_a_heading_is_quoted_with_the_sentence_under_it(seed_bot):
    chip = heading(seed_bot, "Huawei’s Ascend 910C: A Key Weapon in China’s Tech Arsenal")
    assert quoted(seed_bot, [chip, 20], [0.8, 0.1]) == [[chip, chip + 1]]
    assert quoted(seed_bot, [chip, 20], [0.8, 0.1], max_quotes=1) == [[chip, chip + 1]]  # one quote, not one sentence
    assert quoted(seed_bot, [chip, chip + 1, 20], [0.8, 0.7, 0.6]) == [[chip, chip + 1], [20]]  # not quoted twice


def test_a_question_in_the_text_is_quoted_with_its_answer(make_bot):
    """Headings and the questions of a FAQ name a subject; the text under them is what answers."""
    bot = make_bot(
        {
            "handbook.md": "# Handbook\n\n## Vacation policy\n\nFull-time staff receive 25 days of paid leave a year. "
            "Unused days lapse in March.\n\n## Expenses\n\nMeals are refunded up to 40 euros a day.\n",
            "faq.txt": "How do I reset my password?\nOpen Settings, choose Security and press Reset.\n\n"
            "Can I pay by card?\nYes, all major cards are accepted.\n",
        }
    )
    vacation = bot.ask("What is the vacation policy?")
    assert vacation.quotes[0].text.startswith("Vacation policy") and "25 days" in vacation.quotes[0].text
    reset = bot.ask("How do I reset my password?")
    assert reset.quotes[0].text == "How do I reset my password?\nOpen Settings, choose Security and press Reset."


def test_a_heading_brings_only_the_sentence_right_under_it(make_bot):
    """Never a sentence from another section or page: an empty section, a heading over a subheading, or a
    heading at the foot of a page is quoted as it is."""
    bot = make_bot(
        {
            "faq.md": "# Help\n\nIs there parking?\n\n## Shipping\n\n## Returns\n\nItems can be returned within 14 days.\n",
            "report.txt": "Sales rose in every region.\n\nRegional outlook\n\f\nThe company expects growth of 8 percent.\n",
        }
    )
    parking = bot.ask("Is there parking?", answer={"min_confidence": 0.0})
    assert parking.quotes[0].text == "Is there parking?"
    assert not any("returned" in quote.text for quote in parking.quotes[:1])
    outlook = bot.ask("What is the regional outlook?", answer={"min_confidence": 0.0, "max_quotes": 1})
    assert [quote.text for quote in outlook.quotes] == ["Regional outlook"]


def test_one_citation_number_stands_for_one_quoted_range(seed_bot):
    """Two quotes from one passage once shared a number ("[1] line 6 / [1] line 7"): now each range has its own,
    numbered 1, 2, 3 in the order they appear, with a source each."""
    questions = ["When was the Ascend 910C first released?", "Which chip did Guangdong highlight?"]
    for answer in seed_bot.ask_batch(questions, answer={"max_quotes": 3, "min_confidence": 0.0}):
        numbers = [quote.citation for quote in answer.quotes]
        assert numbers == list(range(1, len(numbers) + 1))
        assert len({(quote.start, quote.end) for quote in answer.quotes}) == len(numbers)
        assert [source.citation for source in answer.sources] == numbers
        for quote, source in zip(answer.quotes, answer.sources):
            assert source.start <= quote.start and quote.end <= source.end


def test_a_quote_says_its_section(seed_bot):
    answer = seed_bot.ask("Which chip did Guangdong highlight?", answer={"min_confidence": 0.0})
    assert any(quote.section for quote in answer.quotes)  # the seed article's headings
    assert all("section" in quote.to_dict() for quote in answer.quotes if quote.section)
