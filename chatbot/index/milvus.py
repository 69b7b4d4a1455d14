"""The index in Milvus ([store] backend = "milvus"): Milvus Lite in a file, or a Milvus server or cluster.

Collections, named from [store] collection or else from the documents folder's path (`<prefix>` below):
    <prefix>_sentences_<dim>d,   a row per sentence / passage: its text, document path, SHA-256, character
    <prefix>_passages_<dim>d     offsets, dense vector, and the sparse vector of Milvus's own BM25 function
                                 over its terms (the stemmed words that the FAISS backend's bm25s counts, so
                                 that both rank alike). Two collections, because BM25's statistics
                                 (document frequencies, mean length) are a collection's.
    <prefix>_meta                the manifest, each document's text with its sentence and passage offsets
                                 (both in pieces of at most 16,000 characters), and "current": the manifest in use

A build writes its rows and pieces under a new build id, switches "current" to its manifest last, then deletes
what that manifest does not use. A build killed before the switch leaves the last complete index in use (the
next build deletes its leftovers); rows of unchanged documents stay where they are, so an update embeds and
writes only what changed. Answering reads the manifest, texts and offsets, and leaves the vectors in Milvus:
searches run there, and the few vectors ranking reads are fetched by id. This module keeps the collections,
the manifest and the texts; milvus_rows.py writes and reads the rows, milvus_client.py holds the clients.

Usage example:
    store = MilvusStore(config)                 # what backend.open_store(config) gives for backend = "milvus"
    data = store.load()                         # None when there is no index; IndexDamaged when damaged
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config
from ..errors import ChatbotError
from .build import lexical_indexes
from .milvus_client import BATCH, PIECE, Guarded, collection_prefix, connect, loaded, reason, release
from .milvus_rows import MilvusSearch, MilvusSink, MilvusVectors, RowKeys
from .store import IndexDamaged, IndexData, build_lock, manifest_checksum, manifest_problem

log = logging.getLogger("chatbot")
FORMAT = 2  # 2: each document's units (IndexData.units) are kept with its text
# BM25 as bm25s scores it (k1, b): Milvus's default k1 is 1.2, bm25s's 1.5.
BM25_PARAMS = {"bm25_k1": 1.5, "bm25_b": 0.75}


class LiteDamaged(IndexDamaged):
    """The Milvus Lite database itself cannot be read (a data file zeroed or truncated, a schema garbled, the
    folder replaced by a file): it is deleted and built anew (it is this program's to recreate)."""


class MilvusStore:
    """The index of one documents folder in Milvus, with the methods of store.FileStore."""

    def __init__(self, config: Config) -> None:
        self.config = config
        settings = config.store
        self.uri = settings.uri or str(config.paths.index / "milvus.db")
        self.lite = not settings.server
        self.prefix = settings.collection or collection_prefix(config.paths.docs)
        self.meta = f"{self.prefix}_meta"
        self.damaged = False  # a Milvus Lite database found unreadable: the next build starts it anew
        self._client = None

    @property
    def client(self):
        """The client, through `Guarded`: a failure of Milvus itself is a LiteDamaged (Milvus Lite) or a
        ChatbotError naming the collection (a server, whose collections are never deleted here), in one line."""
        if self._client is None:
            if self.lite and (Path(self.uri).exists() or Path(self.uri).is_symlink()) and not Path(self.uri).is_dir():
                self.damaged = True  # Milvus Lite keeps a database in a folder
                raise LiteDamaged(f"the Milvus Lite database {self.uri} is not a folder")
            self._client = Guarded(connect(self.uri, self.config.store.token_env), self.failure)
        return self._client

    def failure(self, exc: Exception, collection: str | None) -> Exception:
        """What a failed Milvus call raises instead of pymilvus's own exception."""
        where = f"collection {collection}" if collection else "the database"
        if self.lite:
            self.damaged = True
            return LiteDamaged(f"the Milvus Lite database {self.uri} is damaged ({where}: {reason(exc)})")
        return ChatbotError(
            f"Milvus at {self.uri} failed on {where}: {reason(exc)} (a server's collections are never deleted "
            "by the chatbot: repair or drop it on the server, then run `chatbot index`)"
        )

    def reset(self) -> None:
        """Delete a damaged Milvus Lite database (a file in its place is moved aside), so that a build starts
        anew. Never a server's: only Milvus Lite's database is this program's to recreate."""
        if not self.lite:
            raise ChatbotError(f"will not delete the Milvus server database at {self.uri}")
        with contextlib.suppress(Exception):
            release(self.uri)
        self._client, path = None, Path(self.uri)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            aside = path.with_name(f"{path.name}.moved-aside-{time.strftime('%Y%m%d-%H%M%S')}")
            os.rename(path, aside)
            log.warning("%s was not a Milvus Lite database folder; moved it to %s", path, aside)
        self.damaged = False

    def has(self, collection: str) -> bool:
        """Whether `collection` exists; it is loaded for searching and reading if so (once per process)."""
        if not self.client.has_collection(collection):
            loaded.get(self.uri, set()).discard(collection)
            return False
        if collection not in loaded.get(self.uri, set()):
            self.client.load_collection(collection)
            loaded.setdefault(self.uri, set()).add(collection)
        return True

    def lock(self) -> contextlib.AbstractContextManager:
        """The index folder's lock: one build at a time from this machine (see the README on clusters)."""
        return build_lock(self.config.paths.index)

    def current(self) -> dict[str, Any] | None:
        if not self.has(self.meta):
            return None
        rows = self._query(self.meta, 'kind == "current"', ["data"])
        if not rows:
            return None
        try:
            return json.loads(rows[0]["data"])
        except ValueError:
            raise IndexDamaged(f"the manifest pointer in Milvus collection {self.meta} is damaged") from None

    def current_name(self) -> str | None:
        try:
            current = self.current()
        except (IndexDamaged, ChatbotError):
            return None
        return current.get("build") if current else None

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest in use, or None when there is no index; IndexDamaged when unreadable or altered."""
        current = self.current()
        if current is None:
            return None
        build = current.get("build")
        text = self._read_blob(f"manifest/{build}", current.get("parts"))
        try:
            manifest = json.loads(text)
        except ValueError:
            raise IndexDamaged(f"manifest {build} in Milvus collection {self.meta} is unreadable") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "store" not in manifest:
            raise IndexDamaged(f"manifest {build} in Milvus was written in another index format")
        if manifest.get("checksum") != manifest_checksum(manifest):
            raise IndexDamaged(f"manifest {build} in Milvus was altered or damaged")
        problem = manifest_problem(manifest) or _placement_problem(manifest)
        if problem:
            raise IndexDamaged(f"manifest {build} in Milvus is damaged: {problem}")
        return manifest

    def load(self, manifest: dict[str, Any] | None = None) -> IndexData | None:
        """The index in use: texts and offsets read (each document's checked against its checksum), vectors
        left in Milvus; IndexDamaged when rows or pieces are missing."""
        manifest = manifest if manifest is not None else self.read_manifest()
        if manifest is None:
            return None
        names = manifest["store"]
        for collection in (names["sentences"], names["passages"]):
            if not self.has(collection):
                raise IndexDamaged(f"Milvus collection {collection} is missing")
        self._check_rows(manifest)
        entries = manifest["documents"]
        blobs: dict[str, list[tuple[int, str]]] = {}
        builds = sorted({entry["milvus"]["build"] for entry in entries})
        pieces_of = f'kind == "doc" and build in {json.dumps(builds)}'
        for row in self._iterate(self.meta, pieces_of, ["blob", "part", "data"]):
            blobs.setdefault(row["blob"], []).append((row["part"], row["data"]))
        texts, sentence_parts, passage_parts, unit_parts, first = [], [], [], [], 0
        for number, entry in enumerate(entries):
            place = entry["milvus"]
            pieces = sorted(blobs.get(_doc_blob(place), []))
            blob = "".join(piece for _, piece in pieces)
            if [part for part, _ in pieces] != list(range(place["parts"])) or _sha256(blob) != place["sha256"]:
                raise IndexDamaged(f"the stored text of {entry['path']} in Milvus is missing or damaged")
            stored = json.loads(blob)
            texts.append(stored["text"])
            spans = np.array(stored["sentences"], dtype=np.int64).reshape(-1, 2)
            groups = np.array(stored["passages"], dtype=np.int64).reshape(-1, 4)
            units = np.array(stored["units"], dtype=np.int64).reshape(-1, 4)
            units[:, 1] = np.where(units[:, 1] >= 0, units[:, 1] + first, -1)  # stored per document
            unit_parts.append(units)
            sentence_parts.append(np.column_stack([np.full(len(spans), number), spans]))
            passage_parts.append(np.column_stack([np.full(len(groups), number), groups[:, :2], groups[:, 2:] + first]))
            first += len(spans)
        sentences = np.concatenate(sentence_parts).reshape(-1, 3) if entries else np.zeros((0, 3), np.int64)
        passages = np.concatenate(passage_parts).reshape(-1, 5) if entries else np.zeros((0, 5), np.int64)
        units = np.concatenate(unit_parts).reshape(-1, 4) if entries else np.zeros((0, 4), np.int64)
        sentence_lexical, passage_lexical = lexical_indexes(texts, sentences, passages, units)
        dimension = manifest["model"]["dimension"]
        data = IndexData(
            manifest=manifest,
            texts=texts,
            sentences=sentences,
            passages=passages,
            units=units,
            sentence_vectors=MilvusVectors(self.client, names["sentences"], RowKeys(entries, sentences), dimension),
            passage_vectors=MilvusVectors(self.client, names["passages"], RowKeys(entries, passages), dimension),
            sentence_search=None,
            passage_search=None,
            sentence_lexical=sentence_lexical,
            passage_lexical=passage_lexical,
        )
        data.searcher = MilvusSearch(data)
        return data

    @contextlib.contextmanager
    def new_build(self) -> Iterator[MilvusSink]:
        """A sink for a new build's rows; what a failed or killed build wrote is deleted (now, or by the next).
        A Milvus Lite database found damaged is deleted first, and the build starts from nothing."""
        for attempt in range(2):
            try:
                if self.damaged:
                    self.reset()
                self._ensure_meta()
                manifest = self._manifest_or_none()
                in_use = self.current_name() if manifest else None
                self._remove_unused(manifest, in_use)  # a killed build's leftovers
                if self.damaged and not attempt:  # found only now (reading the manifest, say, which says nothing)
                    raise LiteDamaged(f"the Milvus Lite database {self.uri} is damaged")
                break
            except LiteDamaged as exc:
                if attempt:
                    raise ChatbotError(f"{exc}, and could not be made anew") from None
                if not self.damaged:
                    raise
                log.warning("%s; deleting it and building the index anew", exc)
        sink = MilvusSink(self, time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8])
        try:
            yield sink
        except BaseException:
            if self.current_name() != sink.build:
                with contextlib.suppress(Exception):
                    self._remove_unused(manifest, in_use)
            raise

    def publish(self, data: IndexData, sink: MilvusSink) -> None:
        """Write the new documents' texts and the manifest, switch "current" to it, then delete what it does
        not use."""
        entries = data.manifest["documents"]
        sentence_starts = np.searchsorted(data.sentences[:, 0], np.arange(len(entries) + 1))
        passage_starts = np.searchsorted(data.passages[:, 0], np.arange(len(entries) + 1))
        for number, entry in enumerate(entries):
            place = entry["milvus"]
            if place["build"] != sink.build:
                continue
            lo, hi = sentence_starts[number], sentence_starts[number + 1]
            groups = data.passages[passage_starts[number] : passage_starts[number + 1]]
            units = data.units[lo:hi].copy()
            units[:, 1] = np.where(units[:, 1] >= 0, units[:, 1] - lo, -1)
            blob = json.dumps(
                {
                    "text": data.texts[number],
                    "sentences": data.sentences[lo:hi, 1:].ravel().tolist(),
                    "units": units.ravel().tolist(),
                    "passages": np.column_stack([groups[:, 1:3], groups[:, 3:5] - lo]).ravel().tolist(),
                },
                ensure_ascii=False,
            )
            place["sha256"], place["parts"] = _sha256(blob), self._write_blob("doc", _doc_blob(place), sink.build, blob)
        manifest = {
            **data.manifest,
            "format": FORMAT,
            "build": sink.build,
            "store": {"backend": "milvus", "sentences": sink.names["sentences"], "passages": sink.names["passages"]},
        }
        manifest["checksum"] = manifest_checksum(manifest)
        text = json.dumps(manifest, ensure_ascii=False)
        parts = self._write_blob("manifest", f"manifest/{sink.build}", sink.build, text)
        pointer = json.dumps({"build": sink.build, "parts": parts})
        self.client.upsert(self.meta, [_meta_row("current", 0, "current", "", pointer)])  # the switch
        data.manifest = manifest
        self._remove_unused(manifest, sink.build)
        for collection in (self.meta, *sink.names.values()):
            self.client.flush(collection)  # sealed: a later process loads it without replaying its log

    # Writing and reading

    def rows_collection(self, kind: str, dimension: int, rows: int) -> str:
        """The collection of `kind` ("sentences" or "passages") rows of this dimension, created if need be, with
        the vector index [search] picks for `rows` rows."""
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        name = f"{self.prefix}_{kind}_{dimension}d"
        if self.has(name):
            self._ensure_vector_index(name, rows)
            return name
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("build", DataType.VARCHAR, max_length=64)
        schema.add_field("doc", DataType.INT64)  # the document's number in the build that wrote it
        schema.add_field("ordinal", DataType.INT64)  # the row's number in its document
        schema.add_field("path", DataType.VARCHAR, max_length=4096)
        schema.add_field("sha256", DataType.VARCHAR, max_length=64)
        schema.add_field("start_char", DataType.INT64)
        schema.add_field("end_char", DataType.INT64)
        if kind == "passages":
            schema.add_field("first_sentence", DataType.INT64)  # in its document, like ordinal
            schema.add_field("end_sentence", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=65535)
        schema.add_field("terms", DataType.VARCHAR, max_length=65535, enable_analyzer=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"], output_field_names=["sparse"]
            )
        )
        index = self.client.prepare_index_params()
        index.add_index("vector", **self._vector_index(rows))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=BM25_PARAMS)
        self.client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        return name

    def _vector_index(self, rows: int) -> dict[str, Any]:
        """As vectors.vector_search picks: exact search while small ("auto" up to exact_up_to), HNSW beyond."""
        search = self.config.search
        if search.kind == "flat" or (search.kind == "auto" and rows <= search.exact_up_to):
            return {"index_type": "FLAT", "metric_type": "IP", "params": {}}
        params = {"M": search.hnsw_m, "efConstruction": search.hnsw_ef_construction}
        return {"index_type": "HNSW", "metric_type": "IP", "params": params}

    def _ensure_vector_index(self, name: str, rows: int) -> None:
        """Rebuild the vector index when [search] changed it (the vectors stay; nothing is embedded again)."""
        wanted = self._vector_index(rows)
        described = self.client.describe_index(name, "vector")
        if described.get("index_type") == wanted["index_type"] and all(
            str(described.get(key)) == str(value) for key, value in wanted["params"].items()
        ):
            return
        self.client.release_collection(name)
        self.client.drop_index(name, "vector")
        index = self.client.prepare_index_params()
        index.add_index("vector", **wanted)
        self.client.create_index(name, index)
        self.client.load_collection(name)

    def _ensure_meta(self) -> None:
        from pymilvus import DataType, MilvusClient

        if self.has(self.meta):
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("kind", DataType.VARCHAR, max_length=16)  # "current", "manifest" or "doc"
        schema.add_field("blob", DataType.VARCHAR, max_length=1024)
        schema.add_field("build", DataType.VARCHAR, max_length=64)
        schema.add_field("part", DataType.INT64)
        schema.add_field("data", DataType.VARCHAR, max_length=65535)
        schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector in every collection
        index = self.client.prepare_index_params()
        index.add_index("unused", index_type="FLAT", metric_type="L2")
        self.client.create_collection(self.meta, schema=schema, index_params=index, consistency_level="Strong")

    def _write_blob(self, kind: str, blob: str, build: str, text: str) -> int:
        pieces = [text[lo : lo + PIECE] for lo in range(0, len(text), PIECE)] or [""]
        for lo in range(0, len(pieces), 64):
            rows = [_meta_row(kind, part, blob, build, pieces[part]) for part in range(lo, min(lo + 64, len(pieces)))]
            self.client.insert(self.meta, rows)
        return len(pieces)

    def _read_blob(self, blob: str, parts: Any) -> str:
        found = self._iterate(self.meta, f"blob == {json.dumps(blob)}", ["part", "data"])
        rows = sorted((row["part"], row["data"]) for row in found)
        if not isinstance(parts, int) or [part for part, _ in rows] != list(range(parts)):
            raise IndexDamaged(f"{blob} in Milvus collection {self.meta} is missing or incomplete")
        return "".join(data for _, data in rows)

    def _manifest_or_none(self) -> dict[str, Any] | None:
        try:
            return self.read_manifest()
        except IndexDamaged:
            return None

    def _check_rows(self, manifest: dict[str, Any]) -> None:
        """Every row the manifest counts on is there (more may be, until a build's deletions finish)."""
        expected: dict[tuple[str, str], int] = {}
        for entry in manifest["documents"]:
            place = entry["milvus"]
            for kind, count in (("sentences", entry["sentences"]), ("passages", place["passages"])):
                key = (manifest["store"][kind], place["build"])
                expected[key] = expected.get(key, 0) + count
        for (collection, build), count in expected.items():
            found = self._query(collection, f"build == {json.dumps(build)}", ["count(*)"])[0]["count(*)"]
            if found < count:
                raise IndexDamaged(f"Milvus collection {collection} lacks {count - found} rows of build {build}")

    def _remove_unused(self, manifest: dict[str, Any] | None, build: str | None) -> None:
        """Delete the rows, texts and manifests that `manifest` (the one in use, of `build`) does not use."""
        keys: dict[str, set[int]] = {}
        for entry in manifest["documents"] if manifest else []:
            keys.setdefault(entry["milvus"]["build"], set()).add(entry["milvus"]["key"])
        names = manifest["store"] if manifest else {}
        rows_collection = re.compile(rf"{re.escape(self.prefix)}_(sentences|passages)_\d+d")
        for collection in self.client.list_collections():  # of another dimension (an earlier model)
            used = collection in (names.get("sentences"), names.get("passages"))
            if not used and rows_collection.fullmatch(collection):
                self.client.drop_collection(collection)
                loaded.get(self.uri, set()).discard(collection)
        for collection in (names.get("sentences"), names.get("passages")):
            if collection and self.has(collection):
                self.client.delete(collection, filter=f"build not in {json.dumps(sorted(keys))}")
                for written, used in keys.items():
                    unused = f"build == {json.dumps(written)} and doc not in {sorted(used)}"
                    self.client.delete(collection, filter=unused)
        if not self.has(self.meta):
            return
        self.client.delete(self.meta, filter=f'kind == "doc" and build not in {json.dumps(sorted(keys))}')
        for written, used in keys.items():
            blobs = sorted(_doc_blob({"build": written, "key": key}) for key in used)
            unused = f'kind == "doc" and build == {json.dumps(written)} and blob not in {json.dumps(blobs)}'
            self.client.delete(self.meta, filter=unused)
        self.client.delete(self.meta, filter=f'kind == "manifest" and blob != {json.dumps(f"manifest/{build}")}')

    def _query(self, collection: str, filter: str, fields: list[str]) -> list[dict[str, Any]]:
        try:
            return self.client.query(collection, filter=filter, output_fields=fields)
        except Exception as exc:
            raise IndexDamaged(f"cannot read Milvus collection {collection}: {reason(exc)}") from None

    def _iterate(self, collection: str, filter: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        try:
            iterator = self.client.query_iterator(collection, batch_size=BATCH, filter=filter, output_fields=fields)
            while page := iterator.next():
                yield from page
            iterator.close()
        except Exception as exc:
            raise IndexDamaged(f"cannot read Milvus collection {collection}: {reason(exc)}") from None


def _placement_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with where a manifest says its rows and texts are in Milvus, or None."""
    names = manifest.get("store")
    if not isinstance(names, dict) or not all(isinstance(names.get(kind), str) for kind in ("sentences", "passages")):
        return "'store' does not name the collections"
    for number, entry in enumerate(manifest["documents"], start=1):
        place = entry.get("milvus")
        if not isinstance(place, dict) or not isinstance(place.get("build"), str) or not isinstance(place.get("sha256"), str):
            return f"document {number} has no place in Milvus"
        if not all(isinstance(place.get(key), int) and not isinstance(place.get(key), bool) for key in ("key", "parts", "passages")):
            return f"document {number} has no place in Milvus"
    return None


def _doc_blob(place: dict[str, Any]) -> str:
    return f"doc/{place['build']}/{place['key']}"


def _meta_row(kind: str, part: int, blob: str, build: str, data: str) -> dict[str, Any]:
    return {"id": f"{blob}#{part}", "kind": kind, "blob": blob, "build": build, "part": part, "data": data,
            "unused": [0.0, 0.0]}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


