"""The index on disk: arrays, FAISS and BM25 files and a JSON manifest, written atomically and verified on load.

Layout of an index folder:
    CURRENT                  name of the build in use (replaced atomically)
    builds/<name>/           manifest.json, texts.json, sentences.npy, passages.npy,
                             sentence_vectors.npy, passage_vectors.npy, sentences.faiss, passages.faiss,
                             lexical_sentences/, lexical_passages/ (bm25s, JSON + .npy, no pickle)
    .lock                    held while a build is written

Usage example:
    data = IndexData(...); save_index(data, Path("index"))
    data = load_index(Path("index"))        # None when there is none; ChatbotError when damaged
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import faiss
import numpy as np

from .lexical import LexicalIndex

FORMAT = 1
log = logging.getLogger("chatbot")


class IndexDamaged(Exception):
    """An index file is missing, truncated or altered: the index must be rebuilt."""


@dataclass
class IndexData:
    """Everything answering needs, in memory (vectors memory-mapped once loaded from disk)."""

    manifest: dict[str, Any]
    texts: list[str]  # document texts, in manifest["documents"] order
    sentences: np.ndarray  # int64 (n, 3): document, start, end
    passages: np.ndarray  # int64 (m, 5): document, start, end, first sentence, one past last sentence
    sentence_vectors: np.ndarray  # float32 (n, dim), unit length
    passage_vectors: np.ndarray  # float32 (m, dim), unit length
    sentence_search: faiss.Index
    passage_search: faiss.Index
    sentence_lexical: LexicalIndex
    passage_lexical: LexicalIndex

    _newlines: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def documents(self) -> list[dict[str, Any]]:
        return self.manifest["documents"]

    @functools.cached_property
    def sentence_passage(self) -> np.ndarray:
        """For each sentence, the first passage that holds it."""
        owner = np.full(len(self.sentences), -1, dtype=np.int64)
        for passage in range(len(self.passages) - 1, -1, -1):  # backwards, so the first passage wins
            owner[self.passages[passage, 3] : self.passages[passage, 4]] = passage
        return owner

    def line_of(self, document: int, offset: int) -> int:
        """1-based line number of a character offset in a document."""
        if document not in self._newlines:
            codes = np.frombuffer(self.texts[document].encode("utf-32-le"), dtype=np.uint32)
            self._newlines[document] = np.flatnonzero(codes == ord("\n"))
        return int(np.searchsorted(self._newlines[document], offset)) + 1


def save_index(data: IndexData, folder: Path) -> Path:
    """Write `data` as a new build and make it current in one atomic step; returns the build folder."""
    folder.mkdir(parents=True, exist_ok=True)
    builds = folder / "builds"
    builds.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=builds))
    try:
        files = _write_files(data, staging)
        manifest = {**data.manifest, "format": FORMAT, "files": files}
        _write_json(staging / "manifest.json", manifest)
        _fsync_tree(staging)
        name = time.strftime("%Y%m%d-%H%M%S-") + staging.name.removeprefix(".staging-")
        final = builds / name
        os.replace(staging, final)
        _write_atomic(folder / "CURRENT", name + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    data.manifest = manifest
    _remove_old_builds(builds, keep=name)
    return final


def current_build(folder: Path) -> Path | None:
    try:
        name = (folder / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexDamaged(f"cannot read {folder / 'CURRENT'}: {exc}") from None
    if not name or "/" in name or name.startswith("."):
        raise IndexDamaged(f"{folder / 'CURRENT'} names no build")
    return folder / "builds" / name


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The current build's manifest, or None when there is no index; IndexDamaged when unreadable."""
    build = current_build(folder)
    if build is None:
        return None
    try:
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexDamaged(f"manifest of {build} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexDamaged(f"{build} was written in another index format")
    return manifest


def load_index(folder: Path, manifest: dict[str, Any] | None = None, verify: bool = True) -> IndexData | None:
    """Load the current build (checking every file against its checksum), or None when there is none."""
    manifest = manifest if manifest is not None else read_manifest(folder)
    if manifest is None:
        return None
    build = current_build(folder)
    if verify:
        for name, expected in manifest["files"].items():
            path = build / name
            if not path.is_file() or _sha256(path) != expected:
                raise IndexDamaged(f"index file {name} is missing or damaged")
    try:
        texts = json.loads((build / "texts.json").read_text(encoding="utf-8"))
        return IndexData(
            manifest=manifest,
            texts=texts,
            sentences=np.load(build / "sentences.npy", allow_pickle=False),
            passages=np.load(build / "passages.npy", allow_pickle=False),
            sentence_vectors=np.load(build / "sentence_vectors.npy", mmap_mode="r", allow_pickle=False),
            passage_vectors=np.load(build / "passage_vectors.npy", mmap_mode="r", allow_pickle=False),
            sentence_search=faiss.read_index(str(build / "sentences.faiss")),
            passage_search=faiss.read_index(str(build / "passages.faiss")),
            sentence_lexical=LexicalIndex.load(build / "lexical_sentences"),
            passage_lexical=LexicalIndex.load(build / "lexical_passages"),
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise IndexDamaged(f"index in {build} cannot be read: {exc}") from None


def vector_search(vectors: np.ndarray) -> faiss.Index:
    """An exact inner-product FAISS index over unit vectors (inner product = cosine)."""
    search = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        search.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return search


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Hold the index folder's lock; a second process waits, and is told why."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another process is building the index in %s; waiting for it", folder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_files(data: IndexData, folder: Path) -> dict[str, str]:
    _write_json(folder / "texts.json", data.texts)
    np.save(folder / "sentences.npy", data.sentences.astype(np.int64), allow_pickle=False)
    np.save(folder / "passages.npy", data.passages.astype(np.int64), allow_pickle=False)
    np.save(folder / "sentence_vectors.npy", np.asarray(data.sentence_vectors, dtype=np.float32), allow_pickle=False)
    np.save(folder / "passage_vectors.npy", np.asarray(data.passage_vectors, dtype=np.float32), allow_pickle=False)
    faiss.write_index(data.sentence_search, str(folder / "sentences.faiss"))
    faiss.write_index(data.passage_search, str(folder / "passages.faiss"))
    data.sentence_lexical.save(folder / "lexical_sentences")
    data.passage_lexical.save(folder / "lexical_passages")
    return {
        path.relative_to(folder).as_posix(): _sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _remove_old_builds(builds: Path, keep: str) -> None:
    for path in builds.iterdir():
        if path.name != keep:
            shutil.rmtree(path, ignore_errors=True)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")


def _write_atomic(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
