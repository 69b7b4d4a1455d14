"""The index on disk: arrays, FAISS and BM25 files and a JSON manifest, written atomically and verified on load.

Layout of an index folder:
    CURRENT                  name of the build in use (replaced atomically)
    builds/<name>/           manifest.json, texts.json, sentences.npy, passages.npy,
                             sentence_vectors.npy, passage_vectors.npy, sentences.faiss, passages.faiss,
                             lexical_sentences/, lexical_passages/ (bm25s, JSON + .npy, no pickle)
    .lock                    held while a build is written

The manifest holds the SHA-256 of every other file and a checksum of itself, so a truncated, damaged or
hand-edited file is found on load (IndexDamaged) and the index rebuilt rather than used. A loaded index is
read into memory, never memory-mapped, so that a file changed or truncated under a running process cannot
change its answers or kill it (SIGBUS); `IndexData.changed_on_disk` tells such a process to load it again.

Usage example:
    with new_build(Path("index")) as staging:   # vectors may be written into it while embedding (VectorWriter)
        publish(data, staging, Path("index"))    # or simply: save_index(data, Path("index"))
    data = load_index(Path("index"))             # None when there is none; IndexDamaged when damaged
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ..documents.load import line_breaks, line_on_page, page_of
from ..documents.segment import KIND_CODES, context_text, indexed_text
from ..errors import ChatbotError
from .files import (
    FOLDER_MODE,
    NotRegular,
    fsync_tree,
    make_room,
    make_way,
    read_regular,
    sha256_of,
    write_atomic,
    write_json,
    write_texts,
)
from .lexical import LexicalIndex
from .vectors import stored_vectors

KIND_NAMES = {code: kind for kind, code in KIND_CODES.items()}

FORMAT = 4  # 2: manifest checksum, skipped files, page starts; 3: vectors stored in float16; 4: units.npy
log = logging.getLogger("chatbot")

# Names of the folders this module writes under builds/: a published build ("20261129-230000-ab12cd34") and
# a staging folder a killed process left behind. Nothing else there is ever removed: the folder may be one
# the user already had.
_BUILD_NAME = re.compile(r"\d{8}-\d{6}-[\w-]+")
_STAGING_PREFIX = ".staging-"


class IndexDamaged(Exception):
    """An index file is missing, truncated or altered: the index must be rebuilt."""


@dataclass
class IndexData:
    """Everything answering needs, in memory (for an index kept in Milvus, the vectors stay there: milvus.py)."""

    manifest: dict[str, Any]
    texts: list[str]  # document texts, in manifest["documents"] order
    sentences: np.ndarray  # int64 (n, 3): document, start, end
    passages: np.ndarray  # int64 (m, 5): document, start, end, first sentence, one past last sentence
    # int64 (n, 4), a row per sentence (quote unit): its kind (segment.KIND_CODES), the sentence id of its
    # heading (-1: none), and the start and end of its context in its document (-1: none; segment.unit_table)
    units: np.ndarray
    sentence_vectors: np.ndarray  # float16 (n, dim), unit length, as stored
    passage_vectors: np.ndarray  # float16 (m, dim), unit length
    sentence_search: faiss.Index | None  # None where the backend searches (Milvus: `searcher`)
    passage_search: faiss.Index | None
    sentence_lexical: LexicalIndex
    passage_lexical: LexicalIndex
    searcher: Any = None  # milvus.MilvusSearch for an index kept in Milvus; None for FAISS files

    _newlines: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _centroids: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    # Where it was loaded from or published to, and what its files looked like then (see changed_on_disk)
    origin: tuple[Path, tuple] | None = field(default=None, repr=False)

    def changed_on_disk(self) -> bool:
        """Whether the index folder no longer holds this very build as it was loaded (another build made
        current, or one of its files replaced or written to): cheap, a stat of each file."""
        if self.origin is None:
            return False
        build, stamp = self.origin
        try:
            return current_build(build.parent.parent) != build or _stamp(build, self.manifest["files"]) != stamp
        except (IndexDamaged, OSError):
            return True

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

    def centroid_of(self, document: int) -> np.ndarray:
        """The unit mean of a document's sentence vectors: what the document as a whole is about
        (computed on first use; a document's sentences are consecutive rows)."""
        if document not in self._centroids:
            lo, hi = np.searchsorted(self.sentences[:, 0], [document, document + 1])
            total = np.zeros(self.sentence_vectors.shape[1], dtype=np.float64)
            for start in range(lo, hi, 65536):  # a slice at a time: a memory map is not copied whole
                total += np.asarray(self.sentence_vectors[start : min(start + 65536, hi)]).sum(axis=0, dtype=np.float64)
            self._centroids[document] = (total / max(np.linalg.norm(total), 1e-12)).astype(np.float32)
        return self._centroids[document]

    def page_of(self, document: int, offset: int) -> int | None:
        """1-based page of a character offset in a paged document (PDF); None for documents without pages."""
        return page_of(self.documents[document].get("pages") or (), offset)

    def context_text(self, sentence: int) -> str:
        """What a structured unit is read with: its section's heading and its header, term or lead-in line."""
        return context_text(self.texts, self.sentences, self.units, sentence)

    def indexed_text(self, sentence: int) -> str:
        """A unit's text as retrieval reads it (segment.indexed_text)."""
        return indexed_text(self.texts, self.sentences, self.units, sentence)

    def section_path(self, sentence: int) -> list[str]:
        """The headings above a unit, outermost first (each heading's own text)."""
        path, heading = [], int(self.units[sentence, 1])
        while heading >= 0 and len(path) < 16:
            doc, start, end = (int(value) for value in self.sentences[heading])
            path.append(self.texts[doc][start:end])
            heading = int(self.units[heading, 1])
        return path[::-1]

    def own_context(self, sentence: int) -> str:
        """A unit's own context (a table row's header, a description's term, a list's lead-in line), or ""."""
        doc, start, end = int(self.sentences[sentence, 0]), int(self.units[sentence, 2]), int(self.units[sentence, 3])
        return self.texts[doc][start:end] if start >= 0 else ""

    def kind_of(self, sentence: int) -> str:
        """"paragraph", "heading", "item", "term", "description", "row" or "code"."""
        return KIND_NAMES[int(self.units[sentence, 0])]

    def text_of(self, path: str) -> str:
        """The stored text of the document at `path` (relative to the documents folder): what offsets count in."""
        for number, entry in enumerate(self.documents):
            if entry["path"] == path:
                return self.texts[number]
        for skipped in self.manifest.get("skipped", []):
            if skipped["path"] == path:
                raise ChatbotError(f"{path} is not in the index: it was skipped ({skipped['reason']})")
        raise ChatbotError(f"no document {path} in the index")

    def line_of(self, document: int, offset: int) -> int:
        """1-based line number of a character offset in a document (lines end at LF, CRLF or a lone CR); in a
        paged document (PDF), the line on its page, which is what a reader of the page counts."""
        if document not in self._newlines:
            self._newlines[document] = line_breaks(self.texts[document])
        return line_on_page(self._newlines[document], self.documents[document].get("pages") or (), offset)


class FileStore:
    """The default backend: FAISS and bm25s files in the index folder. Another backend (milvus.MilvusStore)
    has the same methods, which is all that indexer.py uses."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read_manifest(self) -> dict[str, Any] | None:
        return read_manifest(self.folder)

    def load(self, manifest: dict[str, Any] | None = None) -> IndexData | None:
        return load_index(self.folder, manifest)

    def lock(self) -> contextlib.AbstractContextManager:
        return build_lock(self.folder)

    def new_build(self) -> contextlib.AbstractContextManager[Path]:
        return new_build(self.folder)

    def publish(self, data: IndexData, staging: Path) -> None:
        publish(data, staging, self.folder)

    def current_name(self) -> str | None:
        """The build in use, or None: a change tells that another process published one meanwhile."""
        try:
            build = current_build(self.folder)
        except IndexDamaged:
            return None
        return build.name if build else None


def save_index(data: IndexData, folder: Path) -> Path:
    """Write `data` as a new build and make it current in one atomic step; returns the build folder."""
    with new_build(folder) as staging:
        return publish(data, staging, folder)


@contextlib.contextmanager
def new_build(folder: Path) -> Iterator[Path]:
    """A fresh staging folder for a build; removed on leaving unless `publish` made it the current build.

    A staging folder left by a killed process is never used, and the next `publish` removes it.
    """
    builds = folder / "builds"
    make_room(builds)
    builds.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=builds))
    os.chmod(staging, FOLDER_MODE)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # nothing is left there once published


def publish(data: IndexData, staging: Path, folder: Path) -> Path:
    """Write the rest of `data` into `staging`, then make it the current build in one atomic step."""
    files = _write_files(data, staging)
    manifest = {**data.manifest, "format": FORMAT, "files": files}
    manifest["checksum"] = manifest_checksum(manifest)
    write_json(staging / "manifest.json", manifest)
    fsync_tree(staging)
    name = time.strftime("%Y%m%d-%H%M%S-") + staging.name.removeprefix(_STAGING_PREFIX)
    final = folder / "builds" / name
    os.replace(staging, final)
    make_way(folder / "CURRENT")
    write_atomic(folder / "CURRENT", name + "\n")
    data.manifest = manifest
    # Vectors streamed into the build's files are memory maps of them: hold them in memory, as a load does.
    vectors = data.sentence_vectors
    data.sentence_vectors = _resident(data.sentence_search, vectors.shape, lambda: np.array(vectors))
    more = data.passage_vectors
    data.passage_vectors = _resident(data.passage_search, more.shape, lambda: np.array(more))
    data.origin = (final, _stamp(final, files))
    _remove_old_builds(folder / "builds", keep=name)
    return final


def current_build(folder: Path) -> Path | None:
    """The build that `CURRENT` names; None when there is none; IndexDamaged when `CURRENT` cannot be read
    (a folder, a link that leads nowhere readable, bytes that are not text) or names no build."""
    path = folder / "CURRENT"
    try:
        raw = read_regular(path, 256)  # a build's name is short; a huge file there is damage, not a name
        name = raw.decode("utf-8").strip()
    except FileNotFoundError:
        return None
    except NotRegular as exc:
        raise IndexDamaged(str(exc)) from None
    except OSError as exc:
        raise IndexDamaged(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise IndexDamaged(f"{path} is damaged (not text)") from None
    if not _BUILD_NAME.fullmatch(name):
        raise IndexDamaged(f"{path} names no build")
    return folder / "builds" / name


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The current build's manifest, or None when there is no index; IndexDamaged when unreadable."""
    build = current_build(folder)
    if build is None:
        return None
    try:
        manifest = json.loads(read_regular(build / "manifest.json").decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise IndexDamaged(f"manifest of {build} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexDamaged(f"{build} was written in another index format")
    if manifest.get("checksum") != manifest_checksum(manifest):
        raise IndexDamaged(f"manifest of {build} was altered or damaged")
    files = manifest.get("files")
    problem = manifest_problem(manifest) or (
        None
        if isinstance(files, dict) and all(isinstance(value, str) for value in files.values())
        else "'files' is not an object of checksums"
    )
    if problem:
        raise IndexDamaged(f"manifest of {build} is damaged: {problem}")
    return manifest


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a manifest whose checksum holds (one written by hand, or by a bug), or
    None: the fields the index code reads, of the types it reads them as."""
    if not isinstance(manifest.get("settings", {}), dict):
        return "'settings' is not an object"
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not _whole(model.get("dimension")):
        return "'model' has no name and dimension"
    documents = manifest.get("documents")
    if not isinstance(documents, list):
        return "'documents' is not a list"
    for number, entry in enumerate(documents, start=1):
        if not isinstance(entry, dict):
            return f"document {number} is not an object"
        for key, kind in (("path", str), ("sha256", str), ("size", int), ("mtime_ns", int), ("sentences", int)):
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                return f"document {number} has no {key!r}"
        if not _whole(entry.get("ctime_ns", 0)):
            return f"document {number} has no 'ctime_ns'"
        pages = entry.get("pages", [])
        if not isinstance(pages, list) or not all(_whole(page) for page in pages):
            return f"document {number} has 'pages' that are not a list of offsets"
    skipped = manifest.get("skipped", [])
    if not isinstance(skipped, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("reason"), str)
        for entry in skipped
    ):
        return "'skipped' is not a list of files with their reasons"
    return None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_index(folder: Path, manifest: dict[str, Any] | None = None, verify: bool = True) -> IndexData | None:
    """Load the current build (checking every file against its checksum), or None when there is none."""
    manifest = manifest if manifest is not None else read_manifest(folder)
    if manifest is None:
        return None
    build = current_build(folder)
    try:
        stamp = _stamp(build, manifest["files"])  # before reading: a change made meanwhile shows as a change
        if verify:
            for name, expected in manifest["files"].items():
                path = build / name
                if not path.is_file() or sha256_of(path) != expected:
                    raise IndexDamaged(f"index file {name} is missing or damaged")
        texts = json.loads((build / "texts.json").read_text(encoding="utf-8"))
        sentence_search = faiss.read_index(str(build / "sentences.faiss"))
        passage_search = faiss.read_index(str(build / "passages.faiss"))
        return IndexData(
            manifest=manifest,
            texts=texts,
            sentences=np.load(build / "sentences.npy", allow_pickle=False),
            passages=np.load(build / "passages.npy", allow_pickle=False),
            units=np.load(build / "units.npy", allow_pickle=False),
            sentence_vectors=_vectors(build / "sentence_vectors.npy", sentence_search),
            passage_vectors=_vectors(build / "passage_vectors.npy", passage_search),
            sentence_search=sentence_search,
            passage_search=passage_search,
            sentence_lexical=LexicalIndex.load(build / "lexical_sentences"),
            passage_lexical=LexicalIndex.load(build / "lexical_passages"),
            origin=(build, stamp),
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise IndexDamaged(f"index in {build} cannot be read: {exc}") from None


def _vectors(path: Path, search: faiss.Index) -> np.ndarray:
    """A build's vectors from `path`, in memory (see `_resident`)."""
    with open(path, "rb") as handle:  # the .npy header says what the file holds
        version = np.lib.format.read_magic(handle)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        shape, fortran, dtype = read_header[version](handle) if version in read_header else ((), True, None)
    if fortran or dtype != np.float16:
        return np.load(path, allow_pickle=False)
    return _resident(search, shape, lambda: np.load(path, allow_pickle=False))


def _resident(search: faiss.Index, shape: tuple[int, ...], read: Callable[[], np.ndarray]) -> np.ndarray:
    """Vectors in memory: the very ones `search` holds when it keeps them as they are (float16 codes, see
    `stored_vectors`), shared rather than held twice; else `read()` (a copy)."""
    stored = stored_vectors(search)
    return stored if stored is not None and stored.shape == tuple(shape) else read()


def _stamp(build: Path, names: Any) -> tuple:
    """What a build's files look like on disk (inode, size, modification and change times): any write or
    replacement changes it, even one that restores the modification time."""
    stamp = []
    for name in names:
        info = os.stat(build / name)
        stamp.append((name, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    return tuple(stamp)


@contextlib.contextmanager
def build_lock(folder: Path) -> Iterator[None]:
    """Hold the index folder's lock; a second process waits, and is told why."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / ".lock", "a+")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ChatbotError(f"the index in {folder} needs building or updating and cannot be written: {reason}") from None
    with handle:
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
    write_texts(folder / "texts.json", data.texts)
    np.save(folder / "sentences.npy", data.sentences.astype(np.int64), allow_pickle=False)
    np.save(folder / "passages.npy", data.passages.astype(np.int64), allow_pickle=False)
    np.save(folder / "units.npy", data.units.astype(np.int64), allow_pickle=False)
    _save_vectors(folder / "sentence_vectors.npy", data.sentence_vectors)
    _save_vectors(folder / "passage_vectors.npy", data.passage_vectors)
    faiss.write_index(data.sentence_search, str(folder / "sentences.faiss"))
    faiss.write_index(data.passage_search, str(folder / "passages.faiss"))
    data.sentence_lexical.save(folder / "lexical_sentences")
    data.passage_lexical.save(folder / "lexical_passages")
    return {path.relative_to(folder).as_posix(): sha256_of(path) for path in sorted(folder.rglob("*")) if path.is_file()}


def _save_vectors(path: Path, vectors: np.ndarray) -> None:
    """Save vectors, unless they are already the memory map of that very file (written by VectorWriter)."""
    if not (isinstance(vectors, np.memmap) and vectors.filename and Path(vectors.filename).resolve() == path.resolve()):
        np.save(path, np.asarray(vectors, dtype=np.float16), allow_pickle=False)


def manifest_checksum(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's content without its own checksum (keys sorted, so order does not matter)."""
    content = {key: value for key, value in manifest.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _remove_old_builds(builds: Path, keep: str) -> None:
    """Remove the builds and staging folders this module wrote, but `keep`; leave anything else alone."""
    for path in builds.iterdir():
        ours = path.name.startswith(_STAGING_PREFIX) or (
            _BUILD_NAME.fullmatch(path.name) is not None and (path / "manifest.json").is_file()
        )
        if ours and path.name != keep and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


