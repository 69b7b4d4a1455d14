"""The verifier run by ONNX Runtime: the shipped weights exported once to an ONNX file (float32, or int8 by
dynamic quantization of its matrix products), kept in a cache folder, and read one candidate at a time at
its own length, so that no word-piece of padding is computed.

On a CPU without native bfloat16 this reads a seed question's six candidates in about 0.7 of the time of
PyTorch's float32 forward over the padded batch, with the same logits to 1e-5 (benchmarks/RESULTS.md,
"Speed on any CPU"). Int8 reads them in about 0.8 of float32's time on an AVX2 CPU (less, by ONNX
Runtime's account, where the CPU has VNNI; not measured here), but it moves the logits (by 0.12 at the
median on this project's questions) and so the confidence calibrated in float32: it runs only when asked
for by `[verifier] dtype = "int8"`.

Usage example:
    session = load_session(Path("chatbot/models/verifier"), "float32", 1, network=lambda: (model, tokenizer))
    logit, starts, ends = run(session, encoding)
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ChatbotError

EXPORT_FORMAT = 1  # bumped when the exported graph or its quantization changes, so that old cache files are not read
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("answer", "start", "end")
DTYPES = ("float32", "int8")

_lock = threading.Lock()
_sessions: dict[tuple[str, str, int], object] = {}


def available() -> bool:
    """Whether ONNX Runtime and the ONNX tools it needs to export and quantize are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def cache_folder() -> Path:
    """Where exported models are kept: $CHATBOT_CACHE, else $XDG_CACHE_HOME/chatbot, else ~/.cache/chatbot."""
    if os.environ.get("CHATBOT_CACHE"):
        return Path(os.environ["CHATBOT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chatbot"


def load_session(folder: Path, dtype: str, threads: int, network: Callable[[], tuple]):
    """An ONNX Runtime session for the verifier in `folder`, in `dtype`, on `threads` threads (0: Runtime's
    default); exported and cached on first use, made once per process. `network()` gives the float32
    PyTorch (model, tokenizer) to export, called only when the cache has no file for these weights."""
    if dtype not in DTYPES:
        raise ChatbotError(f"the ONNX verifier runs in {' or '.join(DTYPES)}, not {dtype!r}")
    key = (str(Path(folder).resolve()), dtype, threads)
    with _lock:
        if key not in _sessions:
            _sessions[key] = _session(exported(Path(folder), dtype, network), threads)
        return _sessions[key]


def _session(path: Path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initializers are not the user's concern
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(session, encoding: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The answer logits and start and end logits per token of a batch of encoded pairs."""
    answer, start, end = session.run(list(OUTPUTS), {name: encoding[name] for name in INPUTS})
    return answer.reshape(-1), start, end


def exported(folder: Path, dtype: str, network: Callable[[], tuple]) -> Path:
    """The cached ONNX file of the verifier in `folder` in `dtype`, exported (and quantized) if not there yet.
    Its name carries a digest of the weights, so a retrained verifier is exported anew."""
    weights = folder / "model.safetensors"
    try:
        digest = _digest(weights)
    except OSError as exc:
        raise ChatbotError(f"no answer verifier in {folder}: {exc}") from None
    target = cache_folder() / f"verifier-{digest}-v{EXPORT_FORMAT}-{dtype}.onnx"
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    except OSError:  # a cache that cannot be written: export for this process only
        scratch = Path(tempfile.mkdtemp(prefix="chatbot-verifier-"))
        target = scratch / target.name
    try:
        plain = scratch / "float32.onnx"
        _export(network, plain)
        made = plain
        if dtype == "int8":
            made = scratch / "int8.onnx"
            _quantize(plain, made)
        os.replace(made, target)  # whole or not at all: another process may be reading the cache meanwhile
    finally:
        for leftover in scratch.iterdir():
            if leftover != target:
                leftover.unlink()
        if scratch != target.parent:
            scratch.rmdir()
    return target


def _digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()[:16]


def _export(network: Callable[[], tuple], path: Path) -> None:
    """The float32 network to ONNX, batch and length dynamic (PyTorch's TorchScript exporter)."""
    import warnings

    import torch

    model, tokenizer = network()
    example = tokenizer(["Who?"], ["Ann did."], return_tensors="pt")
    dynamic = {name: {0: "batch", 1: "tokens"} for name in INPUTS + OUTPUTS[1:]} | {"answer": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(example[name] for name in INPUTS),
            str(path),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the encoder's matrix products, one scale per output channel (half the
    error of one per tensor on this project's questions); the two small heads stay in float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source)).graph
    heads = [node.name for node in graph.node if node.op_type in ("MatMul", "Gemm") and "/encoder/" not in node.name]
    # The quantizer logs advice through the root logger, which would also give the process a stderr handler.
    root, quiet = logging.getLogger(), logging.NullHandler()
    level = root.level
    root.addHandler(quiet)
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=heads
        )
    finally:
        root.setLevel(level)
        root.removeHandler(quiet)
