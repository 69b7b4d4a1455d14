"""The answer verifier: its training examples, its training command on a tiny slice, and the shipped model
choosing, verifying and marking answers on the seed article (and abstaining where the article is silent)."""

import fnmatch
import json
import random
import tomllib

import pytest

from chatbot.answering.verifier import DEFAULT_MODEL, Candidate, Verifier, best_span, pair_text
from chatbot.app.cli import main
from chatbot.config import load_config
from chatbot.errors import ChatbotError
from chatbot.training.verifier_data import Paragraph, make_examples, read_paragraphs, sentences_of

from ..conftest import ROOT, document_text

PARAGRAPH = (
    "Beyoncé was born in Houston, Texas. She rose to fame in the late 1990s as lead singer of Destiny's Child. "
    "The group was managed by her father, Mathew Knowles. Their hiatus saw the release of her debut album in 2003."
)
QUESTIONS = (
    {"id": "a", "question": "Who managed Destiny's Child?", "answers": [{"text": "Mathew Knowles", "answer_start": PARAGRAPH.index("Mathew")}]},
    {"id": "b", "question": "In which city was Beyoncé born?", "answers": [{"text": "Houston", "answer_start": PARAGRAPH.index("Houston")}]},
    {"id": "c", "question": "Who produced her debut album?", "answers": [], "is_impossible": True,
     "plausible_answers": [{"text": "Mathew Knowles", "answer_start": PARAGRAPH.index("Mathew")}]},
)


def test_examples_pair_each_question_with_its_answer_sentence_and_others_that_do_not_answer():
    examples = make_examples([Paragraph("test", "test:Beyoncé", PARAGRAPH, QUESTIONS)], random.Random(0), swap_share=0)
    positives = [e for e in examples if e.label]
    assert [(e.question_id, e.candidate.sentence) for e in positives] == [
        ("a", "The group was managed by her father, Mathew Knowles."),
        ("b", "Beyoncé was born in Houston, Texas."),
    ]
    first = positives[0]
    assert first.candidate.sentence[first.span[0] : first.span[1]] == "Mathew Knowles"
    assert first.candidate.context.startswith("She rose to fame")  # the sentence before, in the same paragraph
    for question in ("a", "b"):
        negatives = [e for e in examples if e.question_id == question and not e.label]
        assert len(negatives) == 3 and all(e.kind == "paragraph" for e in negatives)
    unanswerable = [e for e in examples if e.question_id == "c"]
    assert all(e.label == 0 and e.kind == "unanswerable" for e in unanswerable)
    assert unanswerable[0].candidate.sentence == "The group was managed by her father, Mathew Knowles."  # plausible first


def test_swapped_questions_name_something_the_paragraph_never_mentions():
    paragraphs = [Paragraph("test", "test:Beyoncé", PARAGRAPH, QUESTIONS)]
    other = {"id": "x", "question": "When did Kendrick Lamar release it?", "answers": []}
    paragraphs.append(Paragraph("test", "test:other", "Nothing here.", (other,)))
    swaps = [e for e in make_examples(paragraphs, random.Random(3), swap_share=1.0) if e.kind == "swap"]
    assert swaps, "every answerable question naming something its sentence says can be swapped"
    for example in swaps:
        assert example.label == 0 and example.question not in {qa["question"] for qa in QUESTIONS}
        assert "Kendrick Lamar" in example.question or any(ch.isdigit() for ch in example.question)


def test_a_heading_is_the_context_of_the_sentence_under_it_but_a_paragraph_before_is_not():
    text = "Vacation policy\nStaff get 25 days a year.\n\nCarry-over is capped. Unused days lapse."
    contexts = [context for _, _, context in sentences_of(text)]
    assert contexts == ["", "Vacation policy", "", "Carry-over is capped."]


def test_span_search_stays_inside_the_sentence():
    offsets = [(0, 0), (0, 3), (0, 0), (0, 4), (5, 9), (10, 15), (16, 21), (0, 0)]
    sequence_ids = [None, 0, None, 1, 1, 1, 1, None]
    starts = [0, 0, 0, 1, 0, 0, 9, 0]
    ends = [0, 0, 0, 0, 2, 0, 9, 0]
    import numpy as np

    span, _ = best_span(np.array(starts, float), np.array(ends, float), np.array(offsets), sequence_ids, limit=9)
    assert span == (0, 9)  # tokens 3-4; the high logits of token 6 lie in the context, past the sentence


@pytest.fixture
def tiny_squad(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"data": [{"title": "Beyoncé", "paragraphs": [{"context": PARAGRAPH, "qas": list(QUESTIONS)}]}]}))
    return path


@pytest.mark.slow
def test_train_verifier_writes_a_model_that_loads_and_scores(tiny_squad, tmp_path, capsys):
    out = tmp_path / "verifier"
    argv = ["train-verifier", "--data", str(tiny_squad), "--out", str(out), "--steps", "2", "--quiet"]
    assert main(argv) == 0
    assert "verifier written to" in capsys.readouterr().out
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "chatbot train-verifier --data" in card and "CC BY-SA 4.0" in card
    settings = json.loads((out / "verifier.json").read_text(encoding="utf-8"))
    assert settings["format"] == "chatbot-verifier/1" and settings["training"]["steps"] == 1
    assert (out / "model.safetensors").stat().st_size < 50 * 2**20
    scores = Verifier(out).score("Who managed the group?", [Candidate("Mathew Knowles managed it."), Candidate("Hi.")])
    assert scores.logits.shape == (2,) and all(span is None or span[1] <= 26 for span in scores.spans)


@pytest.mark.slow
def test_training_the_same_slice_twice_gives_the_same_weights(tiny_squad, tmp_path):
    for name in ("one", "two"):
        assert main(["train-verifier", "--data", str(tiny_squad), "--out", str(tmp_path / name), "--steps", "1", "--quiet"]) == 0
    assert (tmp_path / "one" / "model.safetensors").read_bytes() == (tmp_path / "two" / "model.safetensors").read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "missing.json"], "training data not found: missing.json"),
        (["--fold", "2/x"], "--fold takes K/N"),
        (["--fold", "3/2"], "K must be between 1 and N"),
        (["--steps", "0"], "--steps must be positive"),
    ],
)
def test_train_verifier_mistakes_are_one_line(tiny_squad, argv, message, capsys):
    full = ["train-verifier", *(argv if argv[0] == "--data" else ["--data", str(tiny_squad), *argv])]
    assert main(full) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unreadable_training_data_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["train-verifier", "--data", str(bad), "--out", str(tmp_path / "m")]) == 1
    assert "cannot read training data" in capsys.readouterr().err
    with pytest.raises(ChatbotError, match="cannot read training data"):
        read_paragraphs(bad)


def test_a_missing_verifier_is_a_clear_error(make_bot, tmp_path):
    bot = make_bot({"a.txt": "The keeper is Ann."}, verifier={"model": str(tmp_path / "nowhere")})
    with pytest.raises(ChatbotError, match="no answer verifier in"):
        bot.ask("Who is the keeper?")


# ----- the shipped model on the seed article ------------------------------------------------------------

# Near-topic questions: about things the article names, asking for facts it does not hold. The shipped
# model abstains on these; others it still answers (see benchmarks/RESULTS.md, "Answer verifier": 2 of the
# 30 of seed_questions_neartopic.jsonl are abstained, "Who founded DeepSeek?" is not one).
NOT_IN_THE_ARTICLE = [
    "In which year was Shenzhen founded?",
    "When was the first version of HarmonyOS released?",
    "What is Guangdong's GDP in US dollars?",
]

# (answered by the article, asked of the same subject but not answered by it)
ANSWERED_AND_NOT = [
    ("What is the Ascend 910C designed to do?", "What does an Ascend 910C cost?"),
    ("Who heads the province's science and technology department?", "How many engineers work at Huawei?"),
]


def test_the_shipped_verifier_is_package_data():
    """A plain `pip install .` (not editable) carries every file of the model."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = setuptools["package-data"]["chatbot"]
    files = [path.relative_to(ROOT / "chatbot").as_posix() for path in DEFAULT_MODEL.iterdir()]
    assert "models/verifier/model.safetensors" in files
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in files)


def test_the_shipped_verifier_is_small_enough_to_ship():
    assert sum(path.stat().st_size for path in DEFAULT_MODEL.iterdir()) < 50 * 2**20
    assert "## Metrics on held-out articles" in (DEFAULT_MODEL / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("question", NOT_IN_THE_ARTICLE)
def test_near_topic_questions_the_article_does_not_answer_are_abstained(seed_bot, question):
    answer = seed_bot.ask(question)
    assert answer.abstained, answer.text


@pytest.mark.parametrize(("answered", "not_answered"), ANSWERED_AND_NOT)
def test_an_answer_is_trusted_more_than_a_sentence_merely_on_its_subject(seed_bot, answered, not_answered):
    sure, unsure = seed_bot.ask_batch([answered, not_answered])
    assert not sure.abstained
    assert sure.confidence > unsure.confidence + 0.3, (sure.confidence, unsure.confidence)


def test_the_answer_phrase_is_marked_inside_the_quote(seed_bot, seed_docs):
    answer = seed_bot.ask("Who heads the province's science and technology department?")
    quote = answer.quotes[0]
    assert quote.answer_span is not None
    start, end = quote.answer_span
    assert quote.start <= start < end <= quote.end
    assert "Wang Yueqin" in document_text(seed_docs, quote.source)[start:end]
    assert answer.to_dict()["quotes"][0]["answer_span"] == {"start": start, "end": end}
    before, phrase, after = quote.parts()
    assert before + phrase + after == quote.text and phrase == quote.text[start - quote.start : end - quote.start]


def test_the_ranking_alone_is_still_selectable(seed_docs, tmp_path):
    from chatbot import Chatbot

    bot = Chatbot.from_config(docs=seed_docs, index=tmp_path / "index", verifier={"enabled": False})
    answer, evidence = bot.explain_batch(["Which Huawei chip does the province present as a breakthrough?"])[0]
    assert evidence.verification is None and evidence.ranked.verified is None
    assert any("Ascend 910C" in quote.text for quote in answer.quotes)
    assert all(quote.answer_span is None for quote in answer.quotes)


def test_verifier_settings_are_checked():
    with pytest.raises(ChatbotError, match="verifier.dtype"):
        load_config(verifier={"dtype": "int4"})
    with pytest.raises(ChatbotError, match="verifier.candidates must be between 1 and"):
        load_config(verifier={"candidates": 0})


def test_pair_text_puts_the_sentence_first():
    assert pair_text(Candidate("It was built in 1850.", "The bridge spans the river.")) == (
        "It was built in 1850. [SEP] The bridge spans the river."
    )
