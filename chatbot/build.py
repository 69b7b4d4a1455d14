"""Build an index from documents: segment, chunk, embed (reusing an older build's vectors) and index for BM25.

Only sentences are embedded: a passage's vector is derived from its sentences' vectors (their sum weighted
by length in word-pieces, made unit length), which answers as well as embedding the passage did, at half the cost
(benchmarks/RESULTS.md, "Index build"). Vectors are embedded in chunks and streamed into the new build's
files and its FAISS index as they come, so a large document never has all its texts to embed, or a second
copy of its vectors, in memory at once. A long build shows a progress bar on a terminal (texts embedded,
rate, time left).

Usage example:
    with new_build(config.paths.index) as staging:
        data, embedded = build_data(documents, config, embedder, previous, staging)
        publish(data, staging, config.paths.index)
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from . import formats, segment
from .chunk import group_sentences
from .config import Config
from .embed import Embedder, effective_dtype
from .lexical import LexicalIndex, token_table
from .load import Document
from .segment import split_blocks
from .store import IndexData, VectorWriter, stored_vectors, vector_search

log = logging.getLogger("chatbot")

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed in all)
EMBED_CHUNK = 4096  # texts embedded (and held in memory) at a time
PROGRESS_FROM = 2000  # a build embedding at least this many texts shows a progress bar on a terminal
# How passage vectors are made; stored in the manifest, so that an index made another way is brought up to date.
PASSAGE_VECTORS = "sentence vectors summed, weighted by word-pieces, unit length"


def settings_of(config: Config) -> dict[str, Any]:
    """The settings that shape the index. A change to "search" rebuilds the FAISS indexes from the stored
    vectors; a change to any other means embedding everything again."""
    dtype = effective_dtype(config.model.dtype, config.model.device)
    search = asdict(config.search)
    del search["hnsw_ef_search"]  # applied at search time (store.search_vectors)
    return {
        "model": config.model.name if dtype == "float32" else f"{config.model.name} ({dtype})",
        "segment": {**asdict(config.segment), "version": segment.VERSION},
        "chunk": asdict(config.chunk),
        "readers": formats.VERSION,
        "search": search,
        "passage_vectors": PASSAGE_VECTORS,
    }


def build_data(
    documents: list[Document],
    config: Config,
    embedder: Embedder,
    previous: IndexData | None,
    staging: Path,
    on_progress: Progress | None = None,
) -> tuple[IndexData, int]:
    """Segment, chunk, embed (reusing `previous` vectors of unchanged documents) and index `documents`.

    The vectors are written into files in `staging` (a folder from `store.new_build`). `on_progress(done,
    total)` is called as texts are embedded, for a progress display of the caller's own.
    """
    reusable = {doc["sha256"]: number for number, doc in enumerate(previous.documents)} if previous else {}
    sentence_parts, passage_parts, entries, reuse = [], [], [], []
    sentence_count = 0
    for number, doc in enumerate(documents):
        unseen = formats.unseen_spans(doc.text, PurePosixPath(doc.path).suffix)
        blocks = split_blocks(doc.text, config.segment.max_sentence_chars, unseen)
        spans = np.array([span for block in blocks for span in block.sentences], dtype=np.int64).reshape(-1, 2)
        groups = np.array(
            group_sentences(blocks, config.chunk.sentences_per_passage, config.chunk.overlap), dtype=np.int64
        ).reshape(-1, 2)
        del blocks
        sentence_parts.append(np.column_stack([np.full(len(spans), number), spans]))
        first, last = spans[groups[:, 0], 0], spans[groups[:, 1] - 1, 1]
        passage_parts.append(np.column_stack([np.full(len(groups), number), first, last, groups + sentence_count]))
        sentence_count += len(spans)
        entry = {
            "path": doc.path,
            "sha256": doc.sha256,
            "size": doc.size,
            "mtime_ns": doc.mtime_ns,
            "ctime_ns": doc.ctime_ns,
            "chars": len(doc.text),
            "sentences": len(spans),
        }
        if doc.pages:
            entry["pages"] = list(doc.pages)
        entries.append(entry)
        reuse.append(reusable.get(doc.sha256))

    sentences = np.concatenate(sentence_parts).reshape(-1, 3) if sentence_parts else np.zeros((0, 3), np.int64)
    passages = np.concatenate(passage_parts).reshape(-1, 5) if passage_parts else np.zeros((0, 5), np.int64)
    del sentence_parts, passage_parts
    texts = [doc.text for doc in documents]
    dimension = previous.sentence_vectors.shape[1] if previous is not None else embedder.document_dimension
    fresh = np.array([number is None for number in reuse], dtype=bool)
    embedded = int(fresh[sentences[:, 0]].sum())
    if embedded >= PROGRESS_FROM:
        log.info("embedding %d sentences", embedded)
    with _progress(embedded) as bar:
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            bar.update(count)
            if on_progress is not None:
                on_progress(done, embedded)

        if on_progress is not None and embedded:
            embedder.document_model  # loaded before the clock of the rate starts
            on_progress(0, embedded)
        old = (previous.sentences, previous.sentence_vectors) if previous is not None else None
        sentence_vectors, sentence_search = _stream_vectors(
            staging / "sentence_vectors.npy", sentences, texts, reuse, old, embedder, dimension, advance, config.search
        )
    held = stored_vectors(sentence_search)  # FAISS's copy, rather than paging in the file's
    passage_vectors, passage_search = _passage_vectors(
        staging / "passage_vectors.npy",
        passages,
        sentences,
        sentence_vectors if held is None else held,
        texts,
        embedder,
        config.search,
    )

    ids, offsets, vocab = token_table(texts[d][s:e] for d, s, e in sentences.tolist())
    sentence_lexical = LexicalIndex.build_from_table(ids, offsets[:-1], offsets[1:], vocab)
    # A passage's sentences are consecutive: its tokens are one slice of the same table.
    passage_lexical = LexicalIndex.build_from_table(ids, offsets[passages[:, 3]], offsets[passages[:, 4]], vocab)
    del ids, offsets, vocab
    manifest = {
        "version": _package_version(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "documents_folder": str(config.paths.docs.resolve()),
        "settings": settings_of(config),
        "model": {"name": config.model.name, "dimension": int(dimension)},
        "counts": {"documents": len(documents), "sentences": len(sentences), "passages": len(passages)},
        "documents": entries,
    }
    data = IndexData(
        manifest=manifest,
        texts=texts,
        sentences=sentences,
        passages=passages,
        sentence_vectors=sentence_vectors,
        passage_vectors=passage_vectors,
        sentence_search=sentence_search,
        passage_search=passage_search,
        sentence_lexical=sentence_lexical,
        passage_lexical=passage_lexical,
    )
    return data, embedded


def _stream_vectors(path, table, texts, reuse, old, embedder, dimension, advance, search_settings):
    """Vectors for the rows of `table` (sentences or passages), written to `path` in row order and added to a
    FAISS index as they come: copied from the old build (`old` = its table and vectors) for reused documents,
    embedded in batches of EMBED_CHUNK texts otherwise. Returns (memory-mapped vectors, FAISS index)."""
    search = vector_search(np.zeros((0, dimension), dtype=np.float32), search_settings, expected=len(table))
    pending: list[int] = []  # rows waiting to be embedded

    def put(vectors: np.ndarray) -> None:
        writer.append(vectors)
        search.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def embed_pending(everything: bool = True) -> None:
        """Embed whole chunks of the pending rows (and the rest too when `everything`): full chunks let the
        model sort texts by length over many documents, which saves padding."""
        done = 0
        while len(pending) - done >= EMBED_CHUNK or (everything and done < len(pending)):
            chunk = table[pending[done : done + EMBED_CHUNK], :3].tolist()
            put(embedder.encode_documents([texts[d][s:e] for d, s, e in chunk], on_batch=advance))
            done += len(chunk)
        del pending[:done]

    with VectorWriter(path, len(table), dimension) as writer:
        for number, previous in enumerate(reuse):
            rows = _rows(table, number)
            if previous is None:
                pending.extend(range(rows.start, rows.stop))
                embed_pending(everything=False)
                continue
            embed_pending()
            kept = _rows(old[0], previous)
            for lo in range(kept.start, kept.stop, EMBED_CHUNK):
                put(np.asarray(old[1][lo : min(lo + EMBED_CHUNK, kept.stop)]))
        embed_pending()
    return writer.result, search


def _passage_vectors(path, passages, sentences, sentence_vectors, texts, embedder, search_settings):
    """Each passage's vector from its sentences' (`sentence_vectors`, in sentence order): their sum weighted by
    the word-pieces the model reads of each, as its mean over a passage's tokens weighs them, made unit
    length. Written to `path` and added to a FAISS index a chunk at a time; returns both."""
    dimension = sentence_vectors.shape[1]
    search = vector_search(np.zeros((0, dimension), dtype=np.float32), search_settings, expected=len(passages))
    with VectorWriter(path, len(passages), dimension) as writer:
        for lo in range(0, len(passages), EMBED_CHUNK):
            first, last = passages[lo : lo + EMBED_CHUNK, 3], passages[lo : lo + EMBED_CHUNK, 4]
            start, end = int(first.min()), int(last.max())
            weights = embedder.token_counts([texts[d][s:e] for d, s, e in sentences[start:end].tolist()])
            weighted = np.asarray(sentence_vectors[start:end], dtype=np.float64) * weights[:, None]
            sums = np.concatenate([np.zeros((1, dimension)), np.cumsum(weighted, axis=0)])
            vectors = sums[last - start] - sums[first - start]  # each passage's sentences, first to last
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            writer.append(vectors)
            search.add(vectors)
    return writer.result, search


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
