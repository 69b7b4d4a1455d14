"""The verifier on ONNX Runtime: the same readings as PyTorch's in float32, int8 close to them, the exported
file cached by the weights' digest, and precisions and runtimes that cannot go together refused in one line."""

import logging

import numpy as np
import pytest

from chatbot.answering import verifier_onnx
from chatbot.answering.verifier import DEFAULT_MODEL, Candidate, Verifier, effective_runtime
from chatbot.config import load_config
from chatbot.errors import ChatbotError

QUESTION = "Which chip did Guangdong highlight?"
CANDIDATES = [
    Candidate("Central to Guangdong's narrative is Huawei's Ascend 910C chip.", "Chips"),
    Candidate("The province also plans to expand its talent pipeline.", ""),
    Candidate("Short.", "A heading over it [with] odd text, and a context long enough to need more word-pieces."),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHATBOT_CACHE", str(folder))
        patch.setattr(verifier_onnx, "_sessions", {})  # sessions other tests opened came from another cache
        yield folder


def test_onnx_float32_reads_each_candidate_as_pytorch_does_in_its_padded_batch(cache):
    torch_scores = Verifier(DEFAULT_MODEL, "float32", runtime="torch").score(QUESTION, CANDIDATES)
    onnx_scores = Verifier(DEFAULT_MODEL, "float32", runtime="onnx").score(QUESTION, CANDIDATES)
    np.testing.assert_allclose(onnx_scores.logits, torch_scores.logits, atol=1e-3)
    np.testing.assert_allclose(onnx_scores.margins, torch_scores.margins, atol=1e-3)
    assert onnx_scores.spans == torch_scores.spans
    chip = CANDIDATES[0].sentence
    start, end = onnx_scores.spans[0]
    assert "910C" in chip[start:end]
    assert int(np.argmax(onnx_scores.logits)) == 0
    assert [path.name.endswith("-float32.onnx") for path in cache.glob("verifier-*.onnx")] == [True]


def test_int8_stays_close_to_float32_and_its_file_is_exported_once(cache, monkeypatch):
    handlers = list(logging.getLogger().handlers)
    plain = Verifier(DEFAULT_MODEL, "float32", runtime="onnx").score(QUESTION, CANDIDATES)
    quick = Verifier(DEFAULT_MODEL, "int8", runtime="onnx").score(QUESTION, CANDIDATES)
    assert logging.getLogger().handlers == handlers  # the quantizer's advice gave the process no stderr handler
    assert np.abs(quick.logits - plain.logits).max() < 1.5
    assert int(np.argmax(quick.logits)) == 0
    exported = sorted(path.name for path in cache.glob("verifier-*.onnx"))
    assert len(exported) == 2 and exported[1].endswith("-int8.onnx")
    assert not [path for path in cache.iterdir() if path.name.startswith(".export-")]  # no scratch left behind

    def no_export(*args):
        raise AssertionError("exported again although the cache holds the file")

    monkeypatch.setattr(verifier_onnx, "_export", no_export)
    assert verifier_onnx.exported(DEFAULT_MODEL, "int8", network=no_export).name == exported[1]


def test_a_cache_that_cannot_be_written_still_gives_a_verifier(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("CHATBOT_CACHE", str(blocker / "cache"))
    path = verifier_onnx.exported(DEFAULT_MODEL, "float32", network=lambda: _float32_network())
    assert path.is_file() and blocker.read_text().startswith("a file")


def _float32_network():
    from chatbot.answering.verifier import _load

    return _load(DEFAULT_MODEL, "float32")[:2]


def test_auto_takes_onnx_for_float32_and_int8_and_pytorch_for_bfloat16():
    assert effective_runtime("auto", "float32") == "onnx"
    assert effective_runtime("auto", "int8") == "onnx"
    assert effective_runtime("auto", "bfloat16") == "torch"
    assert effective_runtime("torch", "float32") == "torch"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dtype": "int8", "runtime": "torch"}, "int8 on ONNX Runtime only"),
        ({"dtype": "bfloat16", "runtime": "onnx"}, "float32 or int8, not bfloat16"),
    ],
)
def test_a_precision_the_runtime_cannot_compute_is_refused_in_one_line(settings, message):
    with pytest.raises(ChatbotError, match=message) as caught:
        Verifier.from_config(load_config(None, verifier=settings).verifier)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("key", "value"), [("runtime", "gpu"), ("dtype", "int4")])
def test_config_names_the_runtimes_and_precisions_there_are(key, value):
    with pytest.raises(ChatbotError, match=f"verifier.{key} must be"):
        load_config(None, verifier={key: value})
