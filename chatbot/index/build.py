"""Build an index from documents: segment, chunk, embed (reusing an older build's vectors) and index for BM25.

By default only sentences are embedded: a passage's vector is derived from its sentences' vectors (their sum
weighted by length in word-pieces, made unit length), at half the cost of embedding passages too (`[chunk]
passage_vectors`; benchmarks/RESULTS.md, "Indexing as fast as this CPU allows"). Vectors are embedded in
chunks and streamed to the backend's sink (the new build's files, read into FAISS once embedding is done, or
rows in Milvus) as they come, so a large document never has all its texts to embed, or a second copy of its
vectors, in memory at once. A long build shows a progress bar on a terminal (texts embedded, rate, time
left).

Usage example:
    store = open_store(config)
    with store.new_build() as staging:        # a folder (FAISS), or a sink of rows (Milvus)
        data, embedded = build_data(documents, config, embedder, previous, staging)
        store.publish(data, staging)
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np

from ..config import Config, SearchConfig
from ..documents import formats, segment
from ..documents.chunk import group_sentences
from ..documents.load import Document
from ..documents.segment import indexed_text, split_blocks, unit_table
from ..documents.structure import syntax_of
from . import lexical
from .embed import ChildEmbedder, Embedder, effective_dtype, libraries_loaded
from .lexical import LexicalIndex, token_table
from .store import IndexData
from .vectors import VectorWriter, stored_vectors, vector_search

log = logging.getLogger("chatbot")

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed in all)
EMBED_CHUNK = 4096  # texts embedded (and held in memory) at a time
PROGRESS_FROM = 2000  # a build embedding at least this many texts shows a progress bar on a terminal
CHILD_FROM = 20_000  # a build embedding at least this many texts embeds them in a child process (see below)
# How passage vectors are made, by `[chunk] passage_vectors`; stored in the manifest, so that an index made
# another way is brought up to date (an index without it, from before issue 16, embedded them).
PASSAGE_VECTORS = {
    "derived": "sentence vectors summed, weighted by word-pieces, unit length",
    "embedded": "embedded",
}


def settings_of(config: Config) -> dict[str, Any]:
    """The settings that shape the index. A change to "search" rebuilds the FAISS indexes from the stored
    vectors; a change to any other means embedding everything again."""
    dtype = effective_dtype(config.model.dtype, config.model.device)
    search = asdict(config.search)
    del search["hnsw_ef_search"]  # applied at search time (vectors.search_vectors)
    return {
        "model": config.model.name if dtype == "float32" else f"{config.model.name} ({dtype})",
        "segment": {**asdict(config.segment), "version": segment.VERSION, "words": lexical.VERSION},
        "chunk": {key: value for key, value in asdict(config.chunk).items() if key != "passage_vectors"},
        "readers": formats.VERSION,
        "search": search,
        "passage_vectors": PASSAGE_VECTORS[config.chunk.passage_vectors],
    }


def passage_vectors_of(settings: dict[str, Any]) -> str:
    """How the passage vectors of an index with these manifest settings were made."""
    return settings.get("passage_vectors", PASSAGE_VECTORS["embedded"])


def build_data(
    documents: list[Document],
    config: Config,
    embedder: Embedder,
    previous: IndexData | None,
    staging: Path | VectorSink,
    on_progress: Progress | None = None,
) -> tuple[IndexData, int]:
    """Segment, chunk, embed (reusing `previous` vectors of unchanged documents) and index `documents`.

    The vectors go to `staging`: a folder from `store.new_build` (files and FAISS indexes), or another
    backend's sink (milvus.MilvusSink). `on_progress(done, total)` is called as texts are embedded, for a
    progress display of the caller's own.
    """
    sink = FileVectors(staging, config.search) if isinstance(staging, Path) else staging
    tables = _tables(documents, config, previous, sink.reuse_by_path)
    texts = [doc.text for doc in documents]
    # BM25 first: what it needs while it is built (about twice what it keeps) is then not on top of the model's
    # memory and the vectors'.
    sentence_lexical, passage_lexical = lexical_indexes(texts, tables.sentences, tables.passages, tables.units)
    release_freed_memory()
    vectors = _Vectors(tables, texts, config.chunk.passage_vectors, previous, on_progress)
    (sentence_vectors, sentence_search), (passage_vectors, passage_search) = vectors.write(sink, embedder)
    manifest = {
        "version": _package_version(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "documents_folder": str(config.paths.docs.resolve()),
        "settings": settings_of(config),
        "model": {"name": config.model.name, "dimension": int(vectors.dimension)},
        "counts": {"documents": len(documents), "sentences": len(tables.sentences), "passages": len(tables.passages)},
        "documents": tables.entries,
    }
    data = IndexData(
        manifest=manifest,
        texts=texts,
        sentences=tables.sentences,
        passages=tables.passages,
        units=tables.units,
        sentence_vectors=sentence_vectors,
        passage_vectors=passage_vectors,
        sentence_search=sentence_search,
        passage_search=passage_search,
        sentence_lexical=sentence_lexical,
        passage_lexical=passage_lexical,
    )
    sink.attach(data)
    return data, vectors.embedded


@dataclass
class _Tables:
    """The new index's tables of all documents (see IndexData), its manifest entries, and for each document the
    number of the previous build's document whose vectors it keeps (None: embedded anew)."""

    sentences: np.ndarray
    passages: np.ndarray
    units: np.ndarray
    entries: list[dict[str, Any]]
    reuse: list[int | None]


def _tables(documents: list[Document], config: Config, previous: IndexData | None, by_path: bool) -> _Tables:
    """Segment and chunk every document; a document the previous build holds unchanged (the same content, and the
    same path too when the backend keeps paths in its rows: `by_path`) keeps its vectors."""
    key = (lambda entry: (entry["path"], entry["sha256"])) if by_path else (lambda entry: entry["sha256"])
    reusable = {key(doc): number for number, doc in enumerate(previous.documents)} if previous else {}
    sentence_parts, passage_parts, unit_parts, entries, reuse = [], [], [], [], []
    sentence_count = 0
    for number, doc in enumerate(documents):
        unseen = formats.unseen_spans(doc.text, PurePosixPath(doc.path).suffix)
        parts = formats.parts_of(doc.structure) if doc.structure else None
        blocks = split_blocks(doc.text, config.segment.max_sentence_chars, unseen, syntax_of(doc.path), parts)
        spans = np.array([span for block in blocks for span in block.sentences], dtype=np.int64).reshape(-1, 2)
        unit_parts.append(np.array(unit_table(blocks, sentence_count), dtype=np.int64).reshape(-1, 4))
        groups = np.array(
            group_sentences(blocks, config.chunk.sentences_per_passage, config.chunk.overlap), dtype=np.int64
        ).reshape(-1, 2)
        del blocks
        sentence_parts.append(np.column_stack([np.full(len(spans), number), spans]))
        first, last = spans[groups[:, 0], 0], spans[groups[:, 1] - 1, 1]
        passage_parts.append(np.column_stack([np.full(len(groups), number), first, last, groups + sentence_count]))
        sentence_count += len(spans)
        entries.append(_entry(doc, len(spans)))
        reuse.append(reusable.get(key(entries[-1])))
    sentences = np.concatenate(sentence_parts).reshape(-1, 3) if sentence_parts else np.zeros((0, 3), np.int64)
    passages = np.concatenate(passage_parts).reshape(-1, 5) if passage_parts else np.zeros((0, 5), np.int64)
    units = np.concatenate(unit_parts).reshape(-1, 4) if unit_parts else np.zeros((0, 4), np.int64)
    return _Tables(sentences, passages, units, entries, reuse)


def _entry(doc: Document, sentences: int) -> dict[str, Any]:
    """A document's entry in the manifest."""
    entry = {
        "path": doc.path,
        "sha256": doc.sha256,
        "size": doc.size,
        "mtime_ns": doc.mtime_ns,
        "ctime_ns": doc.ctime_ns,
        "chars": len(doc.text),
        "sentences": sentences,
    }
    if doc.pages:
        entry["pages"] = list(doc.pages)
    if doc.structure:
        entry["structure"] = doc.structure
    return entry


class _Vectors:
    """A build's vectors: which are embedded anew and which are kept from the previous build, embedded with a
    progress count and handed to the backend's sink in row order."""

    def __init__(
        self, tables: _Tables, texts: list[str], mode: str, previous: IndexData | None, on_progress: Progress | None
    ) -> None:
        self.tables, self.texts, self.mode, self.previous, self.on_progress = tables, texts, mode, previous, on_progress
        fresh = np.array([number is None for number in tables.reuse], dtype=bool)
        self.embedded = int(fresh[tables.sentences[:, 0]].sum())
        # An unchanged document keeps its passage vectors unless they were made another way.
        made_by = None if previous is None else passage_vectors_of(previous.manifest.get("settings", {}))
        made_alike = made_by == PASSAGE_VECTORS[mode]
        self.passage_reuse = tables.reuse if made_alike else [None] * len(tables.reuse)
        # per document: passages made anew
        self.remade = np.array([number is None for number in self.passage_reuse], dtype=bool)
        self.total = self.embedded
        if mode == "embedded":
            self.total += int(self.remade[tables.passages[:, 0]].sum())
        self.done, self.dimension = 0, 0
        self._encoder = self._bar = None

    def write(self, sink: VectorSink, embedder: Embedder) -> tuple[Any, Any]:
        """Every sentence's and passage's vector, embedded or kept, into `sink`; returns the sentences' and the
        passages' (vectors, FAISS index or None)."""
        tables, texts, previous, total = self.tables, self.texts, self.previous, self.total
        old_sentences = None if previous is None else previous.sentences
        old_passages = None if previous is None else previous.passages
        if total >= PROGRESS_FROM:
            more = f" and {total - self.embedded} passages" if total > self.embedded else ""
            log.info("embedding %d sentences%s", self.embedded, more)
        weights = None
        # Closed in reverse: the progress bar, the model (a child process ends), then the writers, whose vectors go
        # into FAISS as they close: never while the model is at work.
        with contextlib.ExitStack() as writers, _document_embedder(embedder, total) as encoder, _progress(total) as bar:
            self._encoder, self._bar = encoder, bar
            self.dimension = previous.sentence_vectors.shape[1] if previous is not None else encoder.document_dimension
            sink.place(tables.entries, tables.reuse, previous, tables.units)
            if self.on_progress is not None and total:
                encoder.document_dimension  # the model loaded before the clock of the rate starts
                self.on_progress(0, total)
            dimension = self.dimension
            sentences = writers.enter_context(sink.open("sentences", tables.sentences, texts, dimension, old_sentences))
            _stream_vectors(tables.sentences, tables.reuse, old_sentences, self._embedding(tables.sentences), sentences)
            if self.mode == "embedded":
                passages = writers.enter_context(sink.open("passages", tables.passages, texts, dimension, old_passages))
                embed = self._embedding(tables.passages)
                _stream_vectors(tables.passages, self.passage_reuse, old_passages, embed, passages)
            else:  # what each sentence weighs in the passages that are made again
                remade = np.flatnonzero(self.remade[tables.sentences[:, 0]])
                weights = _word_pieces(tables.sentences, remade, texts, encoder)
        self._encoder = self._bar = None
        if self.mode == "derived":
            passages = self._derive_passages(sink, sentences.result, weights, old_passages)
        return sentences.result, passages.result

    def _advance(self, count: int) -> None:
        self.done += count
        self._bar.update(count)
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def _embedding(self, table: np.ndarray) -> Callable[[list[int]], np.ndarray]:
        """What embeds rows of `table` (the sentences, or the passages)."""
        tables, texts = self.tables, self.texts

        def embed(rows: list[int]) -> np.ndarray:
            if table is tables.sentences:  # a unit as retrieval reads it: a table row after its header, say
                chunk = [indexed_text(texts, tables.sentences, tables.units, row) for row in rows]
            else:
                chunk = [texts[d][s:e] for d, s, e in table[rows, :3].tolist()]
            return self._encoder.encode_documents(chunk, on_batch=self._advance)

        return embed

    def _derive_passages(self, sink: VectorSink, sentences: tuple, weights: np.ndarray, old_passages):
        """The passages' vectors made from their sentences' (`sentences`: their (vectors, FAISS index or None)),
        into `sink`; returns the finished writer."""
        sentence_vectors, sentence_search = sentences
        # The sentence vectors the passages' are made from, in sentence order: FAISS's copy rather than paging
        # in the file's; read back from Milvus for that backend (only new documents' passages are made).
        held = None if sentence_search is None else stored_vectors(sentence_search)
        source = sentence_vectors if held is None else held
        passages = self.tables.passages

        def derive(rows: list[int]) -> np.ndarray:
            return _passage_vectors(passages[rows], source, weights)

        with sink.open("passages", passages, self.texts, self.dimension, old_passages) as writer:
            _stream_vectors(passages, self.passage_reuse, old_passages, derive, writer)
        return writer


def lexical_indexes(
    texts: list[str], sentences: np.ndarray, passages: np.ndarray, units: np.ndarray
) -> tuple[LexicalIndex, LexicalIndex]:
    """BM25 indexes of the sentences (each as retrieval reads it: segment.indexed_text) and of the passages. A
    passage's sentences are consecutive: its tokens are one slice of the sentences' token table (compact: lists
    of tokens for a million sentences take gigabytes)."""
    ids, offsets, vocab = token_table(indexed_text(texts, sentences, units, row) for row in range(len(sentences)))
    sentence_lexical = LexicalIndex.build_from_table(ids, offsets[:-1], offsets[1:], vocab)
    passage_lexical = LexicalIndex.build_from_table(ids, offsets[passages[:, 3]], offsets[passages[:, 4]], vocab)
    return sentence_lexical, passage_lexical


class VectorSink(Protocol):
    """Where a build's vectors go (FileVectors: files and FAISS; milvus.MilvusSink: rows in Milvus)."""

    reuse_by_path: bool  # whether an unchanged document is known by path and content, or by content alone

    def place(
        self, entries: list[dict[str, Any]], reuse: list[int | None], previous: IndexData | None, units: np.ndarray
    ) -> None:
        """Note in each manifest entry where its vectors are kept, before any is written (`units`: the new
        index's IndexData.units, for a backend that indexes each unit's text itself)."""

    def open(self, kind: str, table: np.ndarray, texts: list[str], dimension: int, old: np.ndarray | None) -> Any:
        """A context manager with put(rows, vectors), keep(rows, old_rows) and, after it, `result`:
        (vectors, FAISS index or None)."""

    def attach(self, data: IndexData) -> None:
        """Give the finished data what it needs to search this backend."""


class FileVectors:
    """A build's vectors written as .npy files into a staging folder as they come, then read back into FAISS
    indexes once all are written. The FAISS index is not filled while embedding: the vectors (the index's
    largest part) and the model's working memory are never in memory together, which keeps a large build's
    peak lower (benchmarks/RESULTS.md, "Memory for a 50 MB text file")."""

    reuse_by_path = False

    def __init__(self, staging: Path, settings: SearchConfig) -> None:
        self.staging, self.settings, self.previous = staging, settings, None

    def place(self, entries, reuse, previous, units) -> None:
        self.previous = previous

    @contextlib.contextmanager
    def open(self, kind, table, texts, dimension, old):
        old_vectors = None if self.previous is None else getattr(self.previous, kind[:-1] + "_vectors")
        writer = _FileTable(old_vectors)
        with VectorWriter(self.staging / f"{kind[:-1]}_vectors.npy", len(table), dimension) as writer.file:
            yield writer
        release_freed_memory()  # what embedding freed goes back to the system before the index grows
        search = vector_search(np.zeros((0, dimension), dtype=np.float32), self.settings, expected=len(table))
        for vectors in writer.file.chunks(65536):
            search.add(vectors.astype(np.float32))
        writer.result = (writer.file.result, search)

    def attach(self, data: IndexData) -> None:
        pass


class _FileTable:
    def __init__(self, old_vectors) -> None:
        self.old_vectors, self.file, self.result = old_vectors, None, None

    def put(self, rows, vectors: np.ndarray) -> None:
        self.file.append(vectors)

    def keep(self, rows: slice, old_rows: slice) -> None:
        for lo in range(old_rows.start, old_rows.stop, EMBED_CHUNK):
            self.put(None, np.asarray(self.old_vectors[lo : min(lo + EMBED_CHUNK, old_rows.stop)]))


def _stream_vectors(table, reuse, old, make, writer):
    """Vectors for the rows of `table` (sentences or passages), handed to `writer` in row order: kept from the
    old build (`old` = its table) for reused documents, `make(rows)` for the others, EMBED_CHUNK rows at a
    time."""
    pending: list[int] = []  # rows waiting for their vectors

    def make_pending(everything: bool = True) -> None:
        """Make whole chunks of the pending rows (and the rest too when `everything`): full chunks let the
        model sort texts by length over many documents, which saves padding."""
        done = 0
        while len(pending) - done >= EMBED_CHUNK or (everything and done < len(pending)):
            rows = pending[done : done + EMBED_CHUNK]
            writer.put(rows, make(rows))
            done += len(rows)
        del pending[:done]

    for number, previous in enumerate(reuse):
        rows = _rows(table, number)
        if previous is None:
            pending.extend(range(rows.start, rows.stop))
            make_pending(everything=False)
            continue
        make_pending()
        writer.keep(rows, _rows(old, previous))
    make_pending()


def _word_pieces(sentences: np.ndarray, rows: np.ndarray, texts: list[str], encoder) -> np.ndarray:
    """Per sentence, the word-pieces the model reads of it (0 for those not in `rows`), counted by `encoder`."""
    counts = np.zeros(len(sentences))
    for lo in range(0, len(rows), EMBED_CHUNK):
        part = rows[lo : lo + EMBED_CHUNK]
        counts[part] = encoder.token_counts([texts[d][s:e] for d, s, e in sentences[part].tolist()])
    return counts


def _passage_vectors(passages: np.ndarray, sentence_vectors, weights: np.ndarray) -> np.ndarray:
    """The vectors of `passages` (rows of the passage table) from their sentences' (`sentence_vectors`, in
    sentence order, indexable by a slice): their sum weighted by `weights` (the word-pieces the model reads of
    each, as its mean over a passage's tokens weighs them), made unit length."""
    vectors = np.zeros((len(passages), sentence_vectors.shape[1]), dtype=np.float32)
    for lo in range(0, len(passages), 512):  # a few at a time: the float64 sums of thousands take 100 MB
        part = passages[lo : lo + 512]
        first, last = part[:, 3], part[:, 4]
        start, end = int(first.min()), int(last.max())
        weighted = np.asarray(sentence_vectors[start:end], dtype=np.float64) * weights[start:end, None]
        sums = np.concatenate([np.zeros((1, weighted.shape[1])), np.cumsum(weighted, axis=0)])
        summed = sums[last - start] - sums[first - start]  # each passage's sentences, first to last
        vectors[lo : lo + len(part)] = summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
    return vectors


@contextlib.contextmanager
def _document_embedder(embedder: Embedder, texts: int):
    """What embeds this build's documents: `embedder` itself, or for a build of at least CHILD_FROM texts in
    a process that has not imported the model's libraries (the command line's `chatbot index`), a child
    process running it (embed.ChildEmbedder), so that the model's memory is never added to the index's. A
    process that has them already (the web page, answering) embeds in itself: a child would load them again."""
    if texts < CHILD_FROM or libraries_loaded():
        yield embedder
        return
    with ChildEmbedder(embedder) as child:
        yield child


def release_freed_memory() -> None:
    """Hand the memory the C allocator holds freed (torch's activations, a finished chunk's arrays) back to
    the system (glibc's malloc_trim; nothing elsewhere), so that what a build holds next is not added on top."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _progress(total: int):
    """A progress bar on a terminal for long builds; silent otherwise."""
    from tqdm import tqdm

    show = total >= PROGRESS_FROM and sys.stderr.isatty()
    return tqdm(total=total, disable=not show, unit="texts", desc="embedding", file=sys.stderr, leave=False)


def _rows(table: np.ndarray, document: int) -> slice:
    """The rows of one document in a table sorted by its first column (the document number)."""
    lo, hi = np.searchsorted(table[:, 0], [document, document + 1])
    return slice(int(lo), int(hi))


def _package_version() -> str:
    try:
        return version("chatbot")
    except PackageNotFoundError:
        return "unknown"
