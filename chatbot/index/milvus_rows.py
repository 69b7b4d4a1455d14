"""A build's rows in Milvus, and reading them back: rows written as they are embedded, vectors fetched by row id,
and the four searches of retrieval (passages and sentences, by vector and by Milvus's BM25).

Usage example:
    with store.new_build() as sink:                        # milvus.MilvusStore: a MilvusSink
        data, embedded = build_data(documents, config, embedder, previous, sink)
    data.searcher.rankings(data, queries, vectors, k, ef_search)        # MilvusSearch, as retrieve.py asks
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np

from ..documents.segment import indexed_text
from ..errors import ChatbotError
from .lexical import tokenize
from .milvus_client import BATCH, PIECE, reason
from .store import IndexData


class RowsStore(Protocol):
    """What a sink needs of its store (milvus.MilvusStore, which makes the sinks): the client, and the
    collection for a kind of rows, created if need be."""

    client: Any

    def rows_collection(self, kind: str, dimension: int, rows: int) -> str: ...


class MilvusSink:
    """A build's rows: written to Milvus as they are embedded (rows of unchanged documents stay where they are)."""

    reuse_by_path = True  # a row holds its document's path: a renamed document's rows are written anew

    def __init__(self, store: RowsStore, build: str) -> None:
        self.store, self.build = store, build
        self.units = np.zeros((0, 4), dtype=np.int64)  # the new index's units (from place)
        self.names: dict[str, str] = {}
        self.entries: list[dict[str, Any]] = []
        self._tokens: dict[int, list[str]] = {}  # sentence id -> tokens, for the passages of new documents
        self.sentence_starts = np.zeros(1, dtype=np.int64)  # each document's first sentence id

    def place(
        self, entries: list[dict[str, Any]], reuse: list[int | None], previous: IndexData | None, units: np.ndarray
    ) -> None:
        self.entries, self.units = entries, units
        for number, (entry, before) in enumerate(zip(entries, reuse)):
            if before is None:
                entry["milvus"] = {"build": self.build, "key": number}
            else:
                entry["milvus"] = dict(previous.documents[before]["milvus"])

    @contextlib.contextmanager
    def open(self, kind: str, table: np.ndarray, texts: list[str], dimension: int, old: np.ndarray | None):
        name = self.names[kind] = self.store.rows_collection(kind, dimension, len(table))
        writer = _RowWriter(self, kind, name, table, texts)
        if kind == "sentences":
            self.sentence_starts = writer.starts
        yield writer
        if kind == "passages":
            self._tokens.clear()
            for entry, count in zip(self.entries, np.bincount(table[:, 0], minlength=len(self.entries)).tolist()):
                entry["milvus"]["passages"] = count
        writer.result = (MilvusVectors(self.store.client, name, RowKeys(self.entries, table), dimension), None)

    def attach(self, data: IndexData) -> None:
        data.searcher = MilvusSearch(data)


class _RowWriter:
    def __init__(self, sink: MilvusSink, kind: str, name: str, table: np.ndarray, texts: list[str]) -> None:
        self.sink, self.kind, self.name, self.table, self.texts = sink, kind, name, table, texts
        self.starts = np.searchsorted(table[:, 0], np.arange(len(sink.entries) + 1))
        self.result = None

    def put(self, rows: list[int], vectors: np.ndarray) -> None:
        records = []
        for row, vector in zip(rows, vectors):
            doc, start, end = (int(value) for value in self.table[row, :3])
            entry, text = self.sink.entries[doc], self.texts[doc][start:end]
            first = int(self.starts[doc])
            if self.kind == "sentences":
                read = indexed_text(self.texts, self.table, self.sink.units, row)
                tokens = self.sink._tokens[row] = tokenize(read)
            else:
                lo, hi = (int(value) for value in self.table[row, 3:5])
                tokens = [token for sentence in range(lo, hi) for token in self.sink._tokens.get(sentence, ())]
            record = {
                "id": _row_id(entry["milvus"], row - first),
                "build": entry["milvus"]["build"],
                "doc": entry["milvus"]["key"],
                "ordinal": row - first,
                "path": _cut(entry["path"], 1000),
                "sha256": entry["sha256"],
                "start_char": start,
                "end_char": end,
                "text": _cut(text, PIECE),
                "terms": _cut(" ".join(tokens), PIECE),
                "vector": np.asarray(vector, dtype=np.float32).tolist(),
            }
            if self.kind == "passages":
                first_sentence = lo - int(self.sink.sentence_starts[doc])
                record["first_sentence"], record["end_sentence"] = first_sentence, first_sentence + hi - lo
            records.append(record)
        self.sink.store.client.insert(self.name, records)

    def keep(self, rows: slice, old_rows: slice) -> None:
        pass  # the rows are in Milvus already, under the build that wrote them


class RowKeys:
    """Row ids (positions in the sentence or passage table) to Milvus primary keys, and back."""

    def __init__(self, entries: list[dict[str, Any]], table: np.ndarray) -> None:
        self.places = [entry["milvus"] for entry in entries]
        self.starts = np.searchsorted(table[:, 0], np.arange(len(entries) + 1))
        self.numbers = {(place["build"], place["key"]): number for number, place in enumerate(self.places)}
        self.count = len(table)

    def key(self, row: int) -> str:
        doc = int(np.searchsorted(self.starts, row, side="right")) - 1
        return _row_id(self.places[doc], row - int(self.starts[doc]))

    def row(self, key: str) -> int | None:
        """The table row of a primary key; None for a row the manifest does not use (deleted soon)."""
        build, doc, ordinal = key.rsplit(":", 2)
        number = self.numbers.get((build, int(doc)))
        if number is None or int(ordinal) >= self.starts[number + 1] - self.starts[number]:
            return None
        return int(self.starts[number]) + int(ordinal)


class MilvusVectors:
    """The vectors of a table's rows, read from Milvus by row id as numpy indexing asks (`vectors[ids]`),
    with the most recent ones kept."""

    def __init__(self, client, collection: str, keys: RowKeys, dimension: int, keep: int = 50_000) -> None:
        self.client, self.collection, self.keys, self.keep = client, collection, keys, keep
        self.shape = (keys.count, dimension)
        self.dtype = np.dtype(np.float32)
        self.ndim = 2
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self[np.array([index])][0]
        if isinstance(index, slice):
            rows = np.arange(*index.indices(self.shape[0]))
        else:
            rows = np.asarray(index)
            rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64).ravel()
        missing = [row for row in dict.fromkeys(rows.tolist()) if row not in self._cache]
        for lo in range(0, len(missing), BATCH):
            chunk = missing[lo : lo + BATCH]
            keys = {self.keys.key(row): row for row in chunk}
            try:
                found = self.client.get(self.collection, ids=list(keys), output_fields=["vector"])
            except Exception as exc:
                raise ChatbotError(f"cannot read vectors from Milvus: {reason(exc)}") from None
            for item in found:
                self._cache[keys[item["id"]]] = np.asarray(item["vector"], dtype=np.float32)
            if len(found) < len(keys):
                raise ChatbotError(f"Milvus collection {self.collection} lacks rows; run `chatbot index --rebuild`")
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        for position, row in enumerate(rows.tolist()):
            out[position] = self._cache[row]
            self._cache.move_to_end(row)
        while len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return out


class MilvusSearch:
    """The four rankings of retrieve.py from Milvus: passages and sentences by vector, and by Milvus's BM25."""

    def __init__(self, data: IndexData) -> None:
        self.data = data

    def rankings(self, data, queries, vectors, k, ef_search):
        k_dense, k_sentences, k_lexical = k
        passages, sentences = self.data.passage_vectors, self.data.sentence_vectors
        dense = [v.tolist() for v in np.asarray(vectors, dtype=np.float32)]
        dense_passages = self._search(passages, dense, "vector", k_dense, ef_search)
        dense_sentences = self._search(sentences, dense, "vector", k_sentences, ef_search)
        asked = [number for number, tokens in enumerate(queries) if tokens]
        words = [" ".join(queries[number]) for number in asked]
        lexical_passages = dict(zip(asked, self._search(passages, words, "sparse", k_lexical)))
        lexical_sentences = dict(zip(asked, self._search(sentences, words, "sparse", k_lexical)))
        none = np.zeros(0, dtype=np.int64)
        return [
            (
                dense_passages[row],
                dense_sentences[row],
                lexical_passages.get(row, none),
                lexical_sentences.get(row, none),
            )
            for row in range(len(queries))
        ]

    def _search(
        self, vectors: MilvusVectors, data: list, field: str, limit: int, ef: int | None = None
    ) -> list[np.ndarray]:
        if not data or limit < 1:
            return [np.zeros(0, dtype=np.int64) for _ in data]
        if field == "sparse":
            params = {"metric_type": "BM25"}
        else:
            params = {"metric_type": "IP", "params": {"ef": max(ef or 0, limit)}}  # ef: for HNSW only
        try:
            found = vectors.client.search(
                vectors.collection, data=data, anns_field=field, limit=limit, filter=self.filter,
                search_params=params, output_fields=[],
            )
        except Exception as exc:
            raise ChatbotError(f"Milvus search failed: {reason(exc)}") from None
        rows = []
        for hits in found:  # BM25 finds only rows that share a term with the question
            scored = [(vectors.keys.row(hit["id"]), abs(hit["distance"])) for hit in hits]
            if field == "sparse":  # equal scores in row order, as the FAISS backend's stable sort gives them
                scored.sort(key=lambda item: (-round(item[1], 5), item[0] if item[0] is not None else -1))
            rows.append(np.array([row for row, _ in scored if row is not None], dtype=np.int64))
        return rows

    @property
    def filter(self) -> str:
        return f"build in {json.dumps(sorted({entry['milvus']['build'] for entry in self.data.documents}))}"


def _row_id(place: dict[str, Any], ordinal: int) -> str:
    return f"{place['build']}:{place['key']}:{ordinal}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]
