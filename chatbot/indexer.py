"""Keep the index in step with the documents: detect what changed, embed only that, save atomically.

Usage example:
    data, report = refresh_index(config, Embedder(config.model.name))
    print(report.summary())     # "index updated: 1 added, 0 changed, 0 removed, 3 unchanged; 42 sentences embedded"
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from .chunk import group_sentences
from .config import Config
from .embed import Embedder
from .lexical import LexicalIndex, tokenize
from .load import Document, FileInfo, read_document, scan_documents
from .errors import ChatbotError
from .segment import split_blocks
from .store import IndexDamaged, IndexData, build_lock, load_index, read_manifest, save_index, vector_search

log = logging.getLogger("chatbot")


@dataclass
class IndexReport:
    """What a refresh did, for people (`summary`) and machines (`to_dict`)."""

    action: str  # "unchanged", "built" (from scratch) or "updated" (unchanged documents reused)
    reason: str = ""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    sentences_embedded: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        counts = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged"
        )
        if self.action == "unchanged":
            return f"index is up to date: {counts}"
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"index {self.action}{why}: {counts}; {self.sentences_embedded} sentences embedded "
            f"in {self.seconds:.1f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def settings_of(config: Config) -> dict[str, Any]:
    """The settings that shape the index: a change to any of them means a full rebuild."""
    return {
        "model": config.model.name,
        "segment": asdict(config.segment),
        "chunk": asdict(config.chunk),
    }


def document_changes(manifest: dict[str, Any], files: list[FileInfo]) -> tuple[list[str], list[str], list[str], int]:
    """(added, changed, removed, unchanged count) between the manifest and the files on disk.

    A file whose size and modification time match the manifest is taken as unchanged; otherwise its
    content hash decides, so touching a file does not count as a change.
    """
    known = {doc["path"]: doc for doc in manifest["documents"]}
    added, changed, unchanged = [], [], 0
    for info in files:
        entry = known.pop(info.path, None)
        if entry is None:
            added.append(info.path)
        elif entry["size"] == info.size and entry["mtime_ns"] == info.mtime_ns:
            unchanged += 1
        else:
            document = read_document(info)
            if document is None or document.sha256 != entry["sha256"]:
                changed.append(info.path)
            else:
                unchanged += 1
    return added, changed, sorted(known), unchanged


def is_current(manifest: dict[str, Any], config: Config) -> bool:
    """Whether an index with this manifest still matches the documents and settings (cheap: stats files)."""
    if manifest.get("settings") != settings_of(config):
        return False
    files = scan_documents(config.paths.docs, config.documents.extensions)
    added, changed, removed, _ = document_changes(manifest, files)
    return not (added or changed or removed)


def refresh_index(config: Config, embedder: Embedder, force: bool = False) -> tuple[IndexData, IndexReport]:
    """Load the index if it matches the documents and settings, else (re)build it and say why."""
    folder = config.paths.index
    files = scan_documents(config.paths.docs, config.documents.extensions)
    if not files:
        raise ChatbotError(f"no documents ({', '.join(config.documents.extensions)}) in {config.paths.docs}")
    if not force:
        data, report = _load_if_current(config, files)
        if data is not None:
            return data, report
    with build_lock(folder):
        files = scan_documents(config.paths.docs, config.documents.extensions)
        if not force:  # another process may have built it while this one waited for the lock
            data, report = _load_if_current(config, files)
            if data is not None:
                return data, report
        return _build(config, embedder, files, force)


def _load_if_current(config: Config, files: list[FileInfo]) -> tuple[IndexData | None, IndexReport | None]:
    try:
        manifest = read_manifest(config.paths.index)
        if manifest is None or manifest.get("settings") != settings_of(config):
            return None, None
        added, changed, removed, unchanged = document_changes(manifest, files)
        if added or changed or removed:
            return None, None
        return load_index(config.paths.index, manifest), IndexReport("unchanged", unchanged=unchanged)
    except IndexDamaged as exc:
        log.warning("%s; rebuilding the index", exc)
        return None, None


def _build(config: Config, embedder: Embedder, files: list[FileInfo], force: bool) -> tuple[IndexData, IndexReport]:
    started = time.perf_counter()
    previous, reason = _previous(config, force)
    documents = [doc for info in files if (doc := read_document(info)) is not None]
    if not documents:
        raise ChatbotError(f"no readable documents in {config.paths.docs}")
    old = {doc["path"]: doc for doc in previous.documents} if previous else {}
    report = IndexReport("updated" if previous else "built", reason=reason)
    for doc in documents:
        entry = old.pop(doc.path, None)
        if entry is None:
            report.added.append(doc.path)
        elif entry["sha256"] != doc.sha256:
            report.changed.append(doc.path)
        else:
            report.unchanged += 1
    report.removed = sorted(old)
    if previous is not None and not (report.added or report.changed or report.removed):
        report.action = "rewritten"  # same content, new stats (e.g. files touched) or a damaged build
    data, report.sentences_embedded = build_data(documents, config, embedder, previous)
    save_index(data, config.paths.index)
    report.seconds = time.perf_counter() - started
    return data, report


def _previous(config: Config, force: bool) -> tuple[IndexData | None, str]:
    """The current index if its vectors can be reused, and why a full build is needed if not."""
    try:
        manifest = read_manifest(config.paths.index)
    except IndexDamaged as exc:
        return None, str(exc)
    if manifest is None:
        return None, "no index yet"
    if force:
        return None, "rebuild requested"
    if manifest["settings"]["model"] != config.model.name:
        return None, f"model changed from {manifest['settings']['model']} to {config.model.name}"
    if manifest["settings"] != settings_of(config):
        return None, "segmentation or chunking settings changed"
    try:
        return load_index(config.paths.index, manifest), ""
    except IndexDamaged as exc:
        log.warning("%s; rebuilding the index", exc)
        return None, str(exc)


def build_data(
    documents: list[Document], config: Config, embedder: Embedder, previous: IndexData | None = None
) -> tuple[IndexData, int]:
    """Segment, chunk, embed (reusing `previous` vectors of unchanged documents) and index `documents`."""
    reusable = {doc["sha256"]: number for number, doc in enumerate(previous.documents)} if previous else {}
    sentence_rows: list[tuple[int, int, int]] = []
    passage_rows: list[tuple[int, int, int, int, int]] = []
    entries = []
    sentence_source: list[tuple[str, Any]] = []  # per document: ("reuse", old number) or ("embed", None)
    for number, doc in enumerate(documents):
        blocks = split_blocks(doc.text, config.segment.max_sentence_chars)
        spans = [span for block in blocks for span in block.sentences]
        first = len(sentence_rows)
        sentence_rows.extend((number, start, end) for start, end in spans)
        for lo, hi in group_sentences(blocks, config.chunk.sentences_per_passage, config.chunk.overlap):
            passage_rows.append((number, spans[lo][0], spans[hi - 1][1], first + lo, first + hi))
        entries.append(
            {
                "path": doc.path,
                "sha256": doc.sha256,
                "size": doc.size,
                "mtime_ns": doc.mtime_ns,
                "chars": len(doc.text),
                "sentences": len(spans),
            }
        )
        sentence_source.append(("reuse", reusable[doc.sha256]) if doc.sha256 in reusable else ("embed", None))

    sentences = np.array(sentence_rows, dtype=np.int64).reshape(-1, 3)
    passages = np.array(passage_rows, dtype=np.int64).reshape(-1, 5)
    texts = [doc.text for doc in documents]
    sentence_vectors, passage_vectors, embedded = _vectors(
        texts, sentences, passages, sentence_source, embedder, previous
    )
    sentence_tokens = [tokenize(texts[d][s:e]) for d, s, e in sentences]
    passage_tokens = [[t for i in range(lo, hi) for t in sentence_tokens[i]] for *_, lo, hi in passages]
    manifest = {
        "version": _package_version(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "documents_folder": str(config.paths.docs.resolve()),
        "settings": settings_of(config),
        "model": {"name": config.model.name, "dimension": int(sentence_vectors.shape[1])},
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
        sentence_search=vector_search(sentence_vectors),
        passage_search=vector_search(passage_vectors),
        sentence_lexical=LexicalIndex.build(sentence_tokens),
        passage_lexical=LexicalIndex.build(passage_tokens),
    )
    return data, embedded


def _vectors(texts, sentences, passages, sources, embedder, previous) -> tuple[np.ndarray, np.ndarray, int]:
    """Sentence and passage vectors: copied from `previous` for reused documents, embedded in one batch otherwise."""
    new_sentences = [i for i, (doc, _, _) in enumerate(sentences) if sources[doc][0] == "embed"]
    new_passages = [i for i, row in enumerate(passages) if sources[row[0]][0] == "embed"]
    to_embed = [texts[d][s:e] for d, s, e in sentences[new_sentences]]
    to_embed += [texts[row[0]][row[1] : row[2]] for row in passages[new_passages]]
    show = sys.stderr.isatty() and len(to_embed) > 2000
    fresh = embedder.encode(to_embed, show_progress=show)
    dimension = fresh.shape[1] if len(to_embed) else previous.sentence_vectors.shape[1]
    sentence_vectors = np.zeros((len(sentences), dimension), dtype=np.float32)
    passage_vectors = np.zeros((len(passages), dimension), dtype=np.float32)
    sentence_vectors[new_sentences] = fresh[: len(new_sentences)]
    passage_vectors[new_passages] = fresh[len(new_sentences) :]
    for number, (kind, old) in enumerate(sources):
        if kind == "reuse":
            sentence_vectors[_rows(sentences, number)] = previous.sentence_vectors[_rows(previous.sentences, old)]
            passage_vectors[_rows(passages, number)] = previous.passage_vectors[_rows(previous.passages, old)]
    return sentence_vectors, passage_vectors, len(new_sentences)


def _rows(table: np.ndarray, document: int) -> slice:
    """The rows of one document in a table sorted by its first column (the document number)."""
    lo, hi = np.searchsorted(table[:, 0], [document, document + 1])
    return slice(int(lo), int(hi))


def _package_version() -> str:
    try:
        return version("chatbot")
    except PackageNotFoundError:
        return "unknown"
