"""Answers about the seed article: the right sentence, quoted exactly, cited correctly; off-topic abstained."""

import hashlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbot import Answer
from chatbot.answering.answer import ABSTENTION
from chatbot.answering.bot import question_problem

from ..conftest import SEED_FILE, document_text

KNOWN = [
    ("Which Huawei chip does the province present as a breakthrough?", "Ascend 910C chip"),
    ("Who heads the province's science and technology department?", "Wang Yueqin"),
    ("For how many years in a row has the province led China in innovation?", "nine consecutive years"),
    ("In which province is the AI company DeepSeek located?", "Zhejiang province"),
    ("What is the name of Huawei's operating system?", "HarmonyOS"),
    ("Into which advanced fields is the province pouring money?", "quantum computing"),
    ("Whose chips is the Ascend 910C meant to replace?", "Nvidia"),
]
OFF_TOPIC = [
    "Who won the 2014 football World Cup final?",
    "How many minutes should pasta be boiled?",
    "What is the capital city of Canada?",
    "Which ocean is the largest on Earth?",
    "How do you make a sourdough starter?",
    "Who holds the record for the 100 metres sprint?",
]


def check_quotes(answer: Answer, docs) -> None:
    """The contract every answer keeps: exact text, right line and hash, citations 1, 2, 3 in order."""
    cited = []
    for quote in answer.quotes:
        text = document_text(docs, quote.source)
        assert text[quote.start : quote.end] == quote.text
        assert quote.line == text.count("\n", 0, quote.start) + 1
        assert quote.source_sha256 == hashlib.sha256((docs / quote.source).read_bytes()).hexdigest()
        assert f"“{quote.text}” [{quote.citation}]" in answer.text
        if quote.citation not in cited:
            cited.append(quote.citation)
    assert cited == list(range(1, len(cited) + 1))
    for source in answer.sources:
        assert document_text(docs, source.source)[source.start : source.end] == source.text
    assert 0.0 <= answer.confidence <= 1.0


@pytest.mark.parametrize(("question", "fact"), KNOWN)
def test_paraphrased_questions_quote_the_sentence_with_the_fact(seed_bot, seed_docs, question, fact):
    answer = seed_bot.ask(question)
    assert not answer.abstained, answer
    assert any(fact in quote.text for quote in answer.quotes)
    check_quotes(answer, seed_docs)


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_are_abstained(seed_bot, seed_docs, question):
    answer = seed_bot.ask(question)
    assert answer.abstained and answer.quotes == () and answer.text == ABSTENTION
    assert answer.sources, "an abstention still offers the nearest passages"
    check_quotes(answer, seed_docs)


def test_batch_gives_the_same_answers_as_one_by_one(seed_bot):
    questions = [question for question, _ in KNOWN] + OFF_TOPIC[:2]
    for together, alone in zip(seed_bot.ask_batch(questions), [seed_bot.ask(question) for question in questions]):
        # Batched encoding differs from single encoding only by float rounding (about 1e-7).
        assert together.confidence == pytest.approx(alone.confidence, abs=1e-5)
        assert (together.abstained, together.text, together.quotes, together.sources) == (
            alone.abstained,
            alone.text,
            alone.quotes,
            alone.sources,
        )


def test_answer_json_matches_the_contract(seed_bot):
    data = seed_bot.ask(KNOWN[0][0]).to_dict()
    assert list(data) == ["id", "question", "abstained", "confidence", "answer", "quotes", "sources", "confidence_label"]
    assert data["confidence_label"] in ("high", "medium", "low")
    quote = data["quotes"][0]
    required = {"citation", "text", "source", "start", "end", "line", "source_sha256"}
    assert required <= set(quote) <= required | {"answer_span", "page", "section", "context"}
    assert quote["source"] == SEED_FILE
    assert set(data["sources"][0]) >= {"citation", "source", "start", "end", "text"}


ARTICLE_WORDS = re.findall(r"\w+", document_text(__import__("tests.conftest").conftest.SEEDS, SEED_FILE))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.lists(st.sampled_from(ARTICLE_WORDS), min_size=1, max_size=12).map(lambda words: " ".join(words) + "?"),
        st.text(min_size=1, max_size=80).filter(lambda text: question_problem(text, 2000) is None),  # askable
    )
)
def test_every_quote_of_any_question_is_exact(seed_bot, seed_docs, question):
    check_quotes(seed_bot.ask(question), seed_docs)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_numbers_follow_every_kind_of_line_ending(make_bot, newline):
    text = newline.join(["Zebras have stripes.", "", "The great grey owl hunts at night.", ""])
    answer = make_bot({"animals.txt": text}).ask("When does the great grey owl hunt?")
    quote = answer.quotes[0]
    assert quote.text == "The great grey owl hunts at night." and quote.line == 3
