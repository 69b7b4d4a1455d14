"""Evaluation and calibration on a small SQuAD-format set made here, with exact expected numbers."""

import json

import numpy as np
import pytest

from chatbot.answering.answer import Answer, Quote
from chatbot.app.cli import main
from chatbot.config import DEFAULT_CONFIG, load_config
from chatbot.errors import ChatbotError
from chatbot.training.calibrate import QUOTE_GRID, QuotePoint, choose_quotes
from chatbot.training.evaluate import is_hit, read_questions

from ..conftest import ROOT

ZEBRA = [
    "Zebras are African equines with distinctive black-and-white striped coats. There are three living species.",
    "The plains zebra is the most common species. It lives in the grasslands of eastern and southern Africa.",
]
OWL = [
    "Owls are birds of prey that hunt mostly at night. Most owls are solitary.",
    "The snowy owl is native to the Arctic regions of North America and Eurasia.",
]


def qa(question, answers=(), impossible=False):
    return {
        "id": question[:12],
        "question": question,
        "answers": [{"text": text, "answer_start": 0} for text in answers],
        "is_impossible": impossible,
    }


SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Zebra",
            "paragraphs": [
                {"context": ZEBRA[0], "qas": [qa("How many living species of zebra are there?", ["three"])]},
                {"context": ZEBRA[1], "qas": [qa("What colour are the stripes of the plains zebra?", ["purple"])]},
            ],
        },
        {
            "title": "Owl",
            "paragraphs": [
                {"context": OWL[0], "qas": [qa("When do owls mostly hunt?", ["at night"])]},
                {
                    "context": OWL[1],
                    "qas": [
                        qa("Who won the 1954 football World Cup final?", impossible=True),
                        qa("What is the recipe for a lemon meringue pie?", impossible=True),
                    ],
                },
            ],
        },
    ],
}


@pytest.fixture
def squad_file(tmp_path):
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    return path


def answer_with(*texts: str, abstained: bool = False) -> Answer:
    quotes = tuple(Quote(i + 1, text, "x.txt", 0, len(text), 1, "0" * 64) for i, text in enumerate(texts))
    return Answer("q", abstained, 0.5, "", quotes)


def test_hit_is_case_space_and_quote_style_insensitive_within_400_characters():
    assert is_hit(answer_with("The  “Grand” Canal was dug."), ['the "grand" canal'])
    assert is_hit(answer_with("It’s here."), ["it's HERE"])
    assert not is_hit(answer_with("x" * 395, "the answer"), ["the answer"])  # past the first 400 characters
    assert not is_hit(answer_with("the answer", abstained=True), ["the answer"])


def test_reads_squad_and_jsonl(squad_file, tmp_path):
    items = read_questions(squad_file)
    assert [item.impossible for item in items] == [False, False, False, True, True]
    assert items[0].answers == ("three",) and items[0].article == "Zebra"
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"question": "A?", "answers": ["a", {"text": "b"}]}\n{"question": "B?", "impossible": true}\n')
    items = read_questions(jsonl)
    assert items[0].answers == ("a", "b") and not items[0].impossible and items[1].impossible


def test_a_single_answer_text_is_one_answer_and_a_bom_is_accepted(tmp_path):
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('\ufeff{"question": "When?", "answers": "2015"}\n', encoding="utf-8")
    (item,) = read_questions(jsonl)
    assert item.answers == ("2015",) and not item.impossible  # not "2", "0", "1", "5": any digit was a hit


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"question": "When?", "answers": 1998}', "line 2: 'answers' must be a list of texts, got 1998"),
        (
            '{"question": "When?", "answers": [{"answer": "1998"}]}',
            'line 2: each answer must be a text or an object with a \'text\', got {"answer": "1998"}',
        ),
        (
            '{"question": "When?"}',
            "line 2: no 'answers'; give [] with \"impossible\": true for a question the documents do not answer",
        ),
        ('{"question": "When?", "answers": []}', "line 2: 'answers' is empty; give [] with \"impossible\": true"),
        ('{"question": "When?", "impossible": "no"}', "line 2: 'impossible' must be true or false, got \"no\""),
        ('{"answers": ["a"]}', "line 2: no 'question' text"),
        ('{"question": " ", "answers": ["a"]}', "line 2: the question is empty"),
        ("[1, 2]", "line 2: expected a JSON object with a 'question'"),
        ("{not json", "line 2: invalid JSON (Expecting property name"),
        ('{"question": ' + "[" * 100_000 + "]" * 100_000 + "}", "line 2: invalid JSON (nested too deeply)"),
    ],
)
def test_a_malformed_jsonl_row_is_one_error_naming_the_line(tmp_path, row, message):
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(f'{{"question": "Where?", "answers": ["here"]}}\n{row}\n', encoding="utf-8")
    with pytest.raises(ChatbotError) as error:
        read_questions(jsonl)
    assert str(error.value).startswith(f"{jsonl}, {message}")


def test_a_malformed_squad_question_is_one_error_naming_its_id(tmp_path):
    data = json.loads(json.dumps(SQUAD))
    qas = data["data"][0]["paragraphs"][0]["qas"]
    del qas[0]["question"]
    data["data"][1]["paragraphs"][0]["qas"][0]["answers"] = [{"answer": "at night"}]
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ChatbotError) as error:
        read_questions(path)
    assert str(error.value) == f"{path}: question {qas[0]['id']}: no 'question' text (and 1 more problem)"


def test_squad_json_nested_too_deeply_is_one_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(ChatbotError) as error:
        read_questions(path)
    assert str(error.value) == f"{path} is not valid JSON: nested too deeply"


def test_calibrate_without_write_or_plot_writes_no_file(squad_file, tmp_path, monkeypatch, capsys):
    """Files only where asked: no calibration.png in the working directory unless --plot names it."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    argv = ["calibrate", str(squad_file), "--build-corpus", str(tmp_path / "corpus"), "--index", str(tmp_path / "index")]
    assert main(argv) == 0
    assert list(here.iterdir()) == []
    assert "plot written" not in capsys.readouterr().out


def test_the_project_question_sets_load():
    for path in sorted((ROOT / "benchmarks").glob("seed_questions*.jsonl")):
        items = read_questions(path)
        assert items and all(item.answers or item.impossible for item in items), path


def test_eval_gives_the_expected_numbers(squad_file, tmp_path, capsys):
    corpus, report = tmp_path / "corpus", tmp_path / "report.json"
    errors = tmp_path / "errors.jsonl"
    argv = ["eval", str(squad_file), "--build-corpus", str(corpus), "--index", str(tmp_path / "index")]
    assert main([*argv, "--report", str(report), "--errors", str(errors)]) == 0
    assert sorted(path.name for path in corpus.glob("*.txt")) == ["Owl.txt", "Zebra.txt"]
    assert (corpus / "Zebra.txt").read_text(encoding="utf-8") == "\n\n".join(ZEBRA)
    scores = json.loads(report.read_text(encoding="utf-8"))
    assert scores["questions"] == 5 and scores["answerable"] == 3 and scores["unanswerable"] == 2
    assert scores["hit_rate"] == pytest.approx(2 / 3)
    assert scores["false_abstention_rate"] == 0.0
    assert scores["unanswerable_abstention_rate"] == 1.0
    assert scores["overall_accuracy"] == pytest.approx(4 / 5)
    assert scores["recall_at_5"] == pytest.approx(2 / 3)
    misses = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    assert [miss["gold"] for miss in misses] == [["purple"]]
    assert "hit rate (answerable)" in capsys.readouterr().out


@pytest.mark.parametrize("verifier", [True, False])
def test_calibrate_writes_a_config_that_loads(squad_file, tmp_path, capsys, verifier):
    config = tmp_path / "config.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    config.write_text(text if verifier else text.replace("\nenabled = true\n", "\nenabled = false\n", 1))
    plot = tmp_path / "trade-off.png"
    argv = [
        "calibrate",
        str(squad_file),
        "--build-corpus",
        str(tmp_path / "corpus"),
        "--index",
        str(tmp_path / "index"),
    ]
    assert main([*argv, "--config", str(config), "--write", str(config), "--plot", str(plot)]) == 0
    loaded = load_config(config)
    default = load_config(DEFAULT_CONFIG)
    out = capsys.readouterr().out
    assert loaded.verifier.enabled is verifier
    if verifier:  # the ranking model only picks what the verifier reads; the verifier's own models are fitted
        assert loaded.ranking == default.ranking and loaded.confidence == default.confidence
        assert (loaded.verifier.rank_verifier, loaded.verifier.confidence_verifier) != (
            default.verifier.rank_verifier,
            default.verifier.confidence_verifier,
        )
        assert "verifier weights:" in out
    else:
        assert loaded.ranking != default.ranking and loaded.confidence != default.confidence
    assert 0.0 <= loaded.answer.min_confidence <= 1.0
    answer = loaded.answer
    assert (answer.max_quotes, answer.second_quote_ratio, answer.following_quote_ratio) in QUOTE_GRID
    assert loaded.chunk == default.chunk and "# Logistic model" in config.read_text(encoding="utf-8")
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "<- chosen" in out and f"* chosen: max_quotes = {answer.max_quotes}," in out


def test_quote_settings_are_the_best_hit_rate_within_the_length_budget():
    points = [
        QuotePoint(1, 0.2, 0.2, 0.80, 160),
        QuotePoint(2, 0.2, 0.2, 0.86, 310),
        QuotePoint(2, 0.4, 0.2, 0.85, 250),
        QuotePoint(3, 0.4, 0.2, 0.85, 290),
    ]
    assert choose_quotes(points, 300) == points[2]  # same hit rate as 3 quotes, shorter
    assert choose_quotes(points, 400) == points[1]
    assert choose_quotes(points, 100) == points[0]  # nothing fits: the shortest


def test_longer_answers_must_win_by_more_than_a_standard_error():
    def point(max_quotes, median, wrong):  # 400 questions, all hits but the `wrong` ones
        hits = np.ones(400, dtype=bool)
        hits[list(wrong)] = False
        return QuotePoint(max_quotes, 0.5, 0.2, hits.mean(), median, hits)

    short = point(2, 250, range(60))
    # The longer answers win 5 questions and lose 3: 2 more, against a standard error of sqrt(8) questions.
    longer = point(3, 290, [*range(5, 60), 60, 61, 62])
    assert longer.hit_rate > short.hit_rate and choose_quotes([short, longer], 300) == short
    many = point(3, 290, range(20, 60))  # 20 more and none lost: a real gain, worth the longer answers
    assert choose_quotes([short, many], 300) == many
