"""Keep the index in step with the documents: detect what changed, embed only that, save atomically.

Unchanged documents (same size and modification time, or else the same SHA-256) keep their stored text
and vectors; files that cannot be read are remembered in the manifest with the reason, so each is warned
about once rather than on every refresh.

Usage example:
    data, report = refresh_index(config, Embedder(config.model.name))
    print(report.summary())     # "index updated: 1 added, 0 changed, 0 removed, 3 unchanged; 42 sentences embedded"
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config
from ..documents.load import Document, FileInfo, Scan, Unreadable, file_sha256, read_document, scan_with_uploads
from ..errors import ChatbotError
from .backend import open_store
from .build import Progress, build_data, passage_vectors_of, settings_of
from .embed import Embedder
from .store import FileStore, IndexDamaged, IndexData

log = logging.getLogger("chatbot")
# Settings whose change is made good from the stored vectors (embedding, at most, the passages again).
_DERIVED = {"passage_vectors": "the way passage vectors are made", "search": "vector search settings"}


@dataclass
class IndexReport:
    """What a refresh did, for people (`summary`) and machines (`to_dict`)."""

    action: str  # "unchanged", "built" (from scratch), "updated" (unchanged documents reused) or "rewritten"
    reason: str = ""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    sentences_embedded: int = 0
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"} of files left out

    def summary(self) -> str:
        counts = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{self.unchanged} unchanged"
        )
        count = len(self.skipped)
        skipped = f"; {count} file{'' if count == 1 else 's'} skipped" if count else ""
        if self.action == "unchanged":
            return f"index is up to date: {counts}{skipped}"
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"index {self.action}{why}: {counts}; {self.sentences_embedded} sentences embedded "
            f"in {self.seconds:.1f} s{skipped}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def document_changes(
    manifest: dict[str, Any], files: list[FileInfo]
) -> tuple[list[str], list[str], list[str], int, list[str]]:
    """(added, changed, removed, unchanged count, touched) between the manifest and the files on disk.

    A file whose size, modification time and change time (ctime) match the manifest is unchanged; otherwise
    its content hash decides, so a file touched (new times, same content) is unchanged too, and also listed
    as touched. A file skipped before (say, binary) counts as changed only when its content changed.
    """
    known = {doc["path"]: doc for doc in manifest["documents"]}
    skipped = {entry["path"]: entry for entry in manifest.get("skipped", []) if "sha256" in entry}
    added, changed, touched, unchanged = [], [], [], 0
    for info in files:
        entry = known.pop(info.path, None)
        was_skipped = entry is None and info.path in skipped
        entry = entry if entry is not None else skipped.get(info.path)
        if entry is None:
            added.append(info.path)
        elif _same_stat(entry, info):
            unchanged += not was_skipped
        elif file_sha256(info.abspath) == entry["sha256"]:
            unchanged += not was_skipped
            touched.append(info.path)
        else:
            changed.append(info.path)
    return added, changed, sorted(known), unchanged, touched


def scan_documents(config: Config) -> Scan:
    """The configured documents folder's files (the index folder left out, should it be inside it) and the
    documents uploaded through the web page (see load.scan_with_uploads)."""
    extensions = config.documents.file_types
    return scan_with_uploads(config.paths.docs, extensions, (config.paths.index,), config.paths.uploads_folder)


def is_current(manifest: dict[str, Any], config: Config) -> bool:
    """Whether an index with this manifest still matches the documents and settings (cheap: stats files). With
    [store] read_only, whether it is still the one published (the indexing process keeps it in step)."""
    if config.store.read_only:
        return manifest.get("build") == open_store(config).current_name()
    if manifest.get("settings") != settings_of(config):
        return False
    scan = scan_documents(config)
    added, changed, removed, _, touched = document_changes(manifest, scan.files)
    return not (added or changed or removed or _restat_due(touched, config))


def refresh_index(
    config: Config, embedder: Embedder, force: bool = False, on_progress: Progress | None = None
) -> tuple[IndexData, IndexReport]:
    """Load the index if it matches the documents and settings, else (re)build it and say why; a build calls
    `on_progress(done, total)` as it embeds texts."""
    folder = config.paths.index
    if folder.exists() and not folder.is_dir():
        raise ChatbotError(f"index path is not a folder: {folder}")
    if config.store.read_only:
        if force:
            raise ChatbotError("store.read_only is set: this process answers from the index but never writes it")
        return _published(config)
    scan = scan_documents(config)
    if not scan.files:
        for skipped in scan.skipped:
            log.warning("skipped %s: %s", skipped.path, skipped.reason)
        kinds = ", ".join(ext or "no extension" for ext in config.documents.extensions)
        raise ChatbotError(f"no documents ({kinds}) in {config.paths.docs}")
    store = open_store(config)
    if not force:
        data, report = _load_if_current(store, config, scan.files)
        if data is not None:
            return data, report
    with store.lock():
        scan = scan_documents(config)
        if not force:  # another process may have built it while this one waited for the lock
            data, report = _load_if_current(store, config, scan.files, warn=False)
            if data is not None:
                return data, report
        return _build(store, config, embedder, scan, force, on_progress)


def _published(config: Config) -> tuple[IndexData, IndexReport]:
    """The index as the indexing process last published it ([store] read_only: this process never writes)."""
    store = open_store(config)
    try:
        data = store.load()
    except IndexDamaged as exc:
        raise ChatbotError(f"the index is damaged ({exc}); run `chatbot index` where the index is written") from None
    if data is None:
        raise ChatbotError("there is no index yet; run `chatbot index` where the index is written")
    if data.manifest.get("settings") != settings_of(config):
        log.warning("the published index was built with other settings than this process's config; answering from it")
    return data, IndexReport("unchanged", unchanged=len(data.documents), skipped=_skip_list(data.manifest))


def _load_if_current(
    store: FileStore, config: Config, files: list[FileInfo], warn: bool = True
) -> tuple[IndexData | None, IndexReport | None]:
    for attempt in range(2):
        before = store.current_name()
        try:
            manifest = store.read_manifest()
            if manifest is None or manifest.get("settings") != settings_of(config):
                return None, None
            added, changed, removed, unchanged, touched = document_changes(manifest, files)
            if added or changed or removed or _restat_due(touched, config):
                return None, None
            report = IndexReport("unchanged", unchanged=unchanged, skipped=_skip_list(manifest))
            return store.load(manifest), report
        except IndexDamaged as exc:
            if attempt == 0 and store.current_name() != before:
                continue  # another process published a new build (and removed this one) meanwhile
            if warn:
                log.warning("%s; rebuilding the index", exc)
            return None, None
    return None, None


def _build(
    store: FileStore, config: Config, embedder: Embedder, scan: Scan, force: bool, on_progress: Progress | None
) -> tuple[IndexData, IndexReport]:
    started = time.perf_counter()
    previous, reason = _previous(store, config, force)
    folder = previous.manifest.get("documents_folder") if previous else None
    if folder and Path(folder) != config.paths.docs.resolve():
        log.warning("the index in %s was of %s; it now indexes %s instead", config.paths.index, folder, config.paths.docs)
    old = {entry["path"]: number for number, entry in enumerate(previous.documents)} if previous else {}
    old_skips = {entry["path"]: entry for entry in previous.manifest.get("skipped", [])} if previous else {}
    documents, skipped = _read_all(scan, previous, old, old_skips)
    if not documents:
        raise ChatbotError(f"no readable documents in {config.paths.docs}")
    report = IndexReport("updated" if previous else "built", reason=reason, skipped=_skip_list({"skipped": skipped}))
    known = _known_documents(store, previous)
    for doc in documents:
        before = known.pop(doc.path, None)
        if before is None:
            report.added.append(doc.path)
        elif before != doc.sha256:
            report.changed.append(doc.path)
        else:
            report.unchanged += 1
    report.removed = sorted(known)
    if previous is not None and not (report.added or report.changed or report.removed):
        report.action = "rewritten"  # same content, new stats (e.g. files touched) or a damaged build
    with store.new_build() as staging:
        data, report.sentences_embedded = build_data(documents, config, embedder, previous, staging, on_progress)
        data.manifest["skipped"] = skipped
        store.publish(data, staging)
    report.seconds = time.perf_counter() - started
    return data, report


def _read_all(
    scan: Scan, previous: IndexData | None, old: dict[str, int], old_skips: dict[str, dict[str, Any]]
) -> tuple[list[Document], list[dict[str, Any]]]:
    """The documents to index (unchanged ones taken from `previous`, not read again) and the files skipped,
    each skipped file warned about unless it was skipped for the same reason last time."""
    documents, skipped = [], []
    for item in scan.skipped:
        entry = {"path": item.path, "reason": item.reason}
        skipped.append(entry)
        if old_skips.get(item.path) != entry:
            log.warning("skipped %s: %s", item.path, item.reason)
    for info in scan.files:
        number = old.get(info.path)
        if number is not None and _same_stat(previous.documents[number], info):
            documents.append(_stored_document(previous, number))
            continue
        before = old_skips.get(info.path)
        if before is not None and _same_stat(before, info):
            skipped.append(before)
            continue
        try:
            documents.append(read_document(info))
        except Unreadable as exc:
            entry = {
                "path": info.path,
                "reason": str(exc),
                "size": info.size,
                "mtime_ns": info.mtime_ns,
                "ctime_ns": info.ctime_ns,
                "sha256": file_sha256(info.abspath) or "",
            }
            skipped.append(entry)
            if before is None or (before.get("sha256"), before["reason"]) != (entry["sha256"], entry["reason"]):
                log.warning("skipped %s: %s", info.path, exc)
    skipped.sort(key=lambda entry: entry["path"])
    return documents, skipped


def _known_documents(store: FileStore, previous: IndexData | None) -> dict[str, str]:
    """path -> SHA-256 of the documents the index held before this build, even one not reused (a rebuild,
    a new model), so that the report says what changed in the documents."""
    if previous is not None:
        return {entry["path"]: entry["sha256"] for entry in previous.documents}
    try:
        manifest = store.read_manifest()
    except IndexDamaged:
        return {}
    return {entry["path"]: entry["sha256"] for entry in manifest.get("documents", [])} if manifest else {}


def _stored_document(previous: IndexData, number: int) -> Document:
    entry = previous.documents[number]
    pages = tuple(entry.get("pages", ()))
    stats = entry["size"], entry["mtime_ns"], entry.get("ctime_ns", 0)  # older indexes kept no ctime
    structure = tuple(tuple(block) for block in entry.get("structure", ()))
    return Document(entry["path"], previous.texts[number], entry["sha256"], *stats, pages, structure)


def _previous(store: FileStore, config: Config, force: bool) -> tuple[IndexData | None, str]:
    """The current index if its texts and vectors can be reused, and why a full build is needed if not."""
    try:
        manifest = store.read_manifest()
    except IndexDamaged as exc:
        return None, str(exc)
    if manifest is None:
        return None, "no index yet"
    if force:
        return None, "rebuild requested"
    old, new = manifest.get("settings", {}), settings_of(config)
    if old.get("model") != new["model"]:
        return None, f"model changed from {old.get('model')} to {new['model']}"
    if (old.get("segment"), old.get("chunk")) != (new["segment"], new["chunk"]):
        return None, "segmentation or chunking settings changed"
    if old.get("readers") != new["readers"]:
        return None, "document readers changed"
    old = {**old, "passage_vectors": passage_vectors_of(old)}
    if old["passage_vectors"] != new["passage_vectors"] and not isinstance(store, FileStore):
        # Milvus keeps an unchanged document's rows where they are: they are not written again.
        return None, "the way passage vectors are made changed"
    changed = [what for key, what in _DERIVED.items() if old.get(key) != new[key]]  # made again, see build_data
    reason = f"{' and '.join(changed)} changed" if changed else ""
    try:
        return store.load(manifest), reason
    except IndexDamaged as exc:
        return None, str(exc)


def _restat_due(touched: list[str], config: Config) -> bool:
    """Whether to write the index again for files touched but not changed: once, rather than hash them on
    every question (after `cp -a` or `chmod -R`, that is every file). Not for an index this process cannot
    write: it is still right, only slower to check."""
    return bool(touched) and os.access(config.paths.index, os.W_OK)


def _same_stat(entry: dict[str, Any], info: FileInfo) -> bool:
    return (entry.get("size"), entry.get("mtime_ns"), entry.get("ctime_ns")) == (info.size, info.mtime_ns, info.ctime_ns)


def _skip_list(manifest: dict[str, Any]) -> list[dict[str, str]]:
    return [{"path": entry["path"], "reason": entry["reason"]} for entry in manifest.get("skipped", [])]
