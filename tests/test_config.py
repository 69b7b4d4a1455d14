"""Config: the shipped file matches the built-in defaults; unknown keys and wrong types name the key."""

from pathlib import Path

import pytest

from chatbot.config import DEFAULT_CONFIG, Config, apply_overrides, load_config
from chatbot.errors import ChatbotError

from .conftest import ROOT


def test_default_file_documents_every_setting_with_its_default():
    from_file = load_config(DEFAULT_CONFIG).to_dict()
    built_in = Config().to_dict()
    for paths in (from_file, built_in):
        paths.pop("paths")
        paths["ui"].pop("examples_for")  # a path, resolved on load
    assert from_file == built_in
    loaded = load_config(DEFAULT_CONFIG)
    assert loaded.paths.docs == ROOT / "seeds" and loaded.paths.index == ROOT / "index"
    assert loaded.ui.examples_for == ROOT / "seeds"


def test_partial_file_overrides_defaults_and_paths_are_relative_to_it(tmp_path):
    path = tmp_path / "my.toml"
    path.write_text('[paths]\ndocs = "notes"\n[answer]\nmax_quotes = 3\n', encoding="utf-8")
    config = load_config(path)
    assert config.paths.docs == tmp_path / "notes"
    assert config.answer.max_quotes == 3 and config.chunk == Config().chunk


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[answer]\nmax_quote = 3\n", "unknown key answer.max_quote"),
        ("[colour]\nred = 1\n", "unknown key colour"),
        ('[answer]\nmax_quotes = "three"\n', "answer.max_quotes must be int"),
        ("[answer]\nmin_confidence = 1.5\n", "answer.min_confidence must be between 0 and 1"),
        ("[chunk]\nsentences_per_passage = 0\n", "chunk.sentences_per_passage must be between 1 and 1000, got 0"),
        ('[chunk]\npassage_vectors = "averaged"\n', "chunk.passage_vectors must be \"derived\" or \"embedded\""),
        ('[documents]\nextensions = "txt"\n', "documents.extensions must be a list of strings"),
        ("[documents]\nextensions = []\n", "documents.extensions must name at least one file type"),
        ("[answer\n", "not valid TOML"),
    ],
)
def test_bad_config_is_an_error_naming_the_key(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ChatbotError, match=message.replace("(", r"\(")):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ChatbotError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_overrides_from_python():
    config = apply_overrides(Config(), docs="somewhere", answer={"max_quotes": 1})
    assert config.paths.docs == Path("somewhere").resolve() and config.answer.max_quotes == 1
    with pytest.raises(ChatbotError, match="unknown setting: colour"):
        apply_overrides(Config(), colour={"red": 1})
    with pytest.raises(ChatbotError, match="unknown key answer.quotes"):
        apply_overrides(Config(), answer={"quotes": 1})
    with pytest.raises(ChatbotError, match=r"unknown setting: config \(settings are docs, index, uploads, paths,"):
        apply_overrides(Config(), config="my.toml")  # the file is from_config's first argument, not a setting


def test_the_ranking_only_file_turns_the_verifier_off_with_the_rankings_own_settings():
    ranking_only = load_config(ROOT / "config" / "ranking-only.toml")
    default = load_config(DEFAULT_CONFIG)
    assert not ranking_only.verifier.enabled and default.verifier.enabled
    assert ranking_only.paths == default.paths  # the same documents and index
    assert ranking_only.answer.min_confidence != default.answer.min_confidence
    assert ranking_only.ranking == default.ranking and ranking_only.confidence == default.confidence


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[ranking]\nbias = nan\n", "ranking.bias must be a finite number, got nan"),
        ("[confidence]\nrelevance = -inf\n", "confidence.relevance must be a finite number, got -inf"),
        ("[verifier]\nconfidence_bias = inf\n", "verifier.confidence_bias must be a finite number, got inf"),
        ("[answer]\nmin_confidence = nan\n", "answer.min_confidence must be a finite number, got nan"),
        ("[ui]\nmax_upload_mb = inf\n", "ui.max_upload_mb must be a finite number, got inf"),
        ("[ui]\nmax_upload_mb = 1e9\n", "ui.max_upload_mb must be between"),
        ("[model]\nanswer_threads = 1000000\n", "model.answer_threads must be between 0 and 1024, got 1000000"),
        ("[model]\nbatch_size = 100000000\n", "model.batch_size must be between"),
        ("[retrieve]\nrrf_k = 9223372036854775807\n", "retrieve.rrf_k must be between"),
        ("[verifier]\nmax_length = 100000\n", "verifier.max_length must be between 8 and 512"),
        ("[ranking]\nbias = 1e300\n", "ranking.bias must be between"),
        ("[answer]\nmax_question_chars = 0\n", "answer.max_question_chars must be between 1 and"),
    ],
)
def test_every_number_is_finite_and_in_range(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ChatbotError, match=message.replace("(", r"\(")) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_every_number_in_the_config_has_a_range():
    from chatbot.config import check_numbers

    check_numbers(Config())  # raises for a numeric key with no range in config._RANGES (nor a model weight)


def test_a_config_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff[answer]\nmax_quotes = 2\n".encode("utf-8"))
    assert load_config(path).answer.max_quotes == 2


def test_examples_are_for_the_folder_the_config_names(tmp_path):
    own = tmp_path / "own.toml"
    own.write_text('[paths]\ndocs = "notes"\n[ui]\nexamples = ["Who keeps the lighthouse?"]\n', encoding="utf-8")
    assert load_config(own).ui.examples_for == tmp_path / "notes"
    other = tmp_path / "other.toml"
    other.write_text('[paths]\ndocs = "notes"\n[ui]\nexamples_for = "manuals"\n', encoding="utf-8")
    assert load_config(other).ui.examples_for == tmp_path / "manuals"
    bare = tmp_path / "bare.toml"
    bare.write_text('[paths]\ndocs = "notes"\n', encoding="utf-8")
    assert load_config(bare).ui.examples_for == ROOT / "seeds"  # the built-in examples are the seed article's
