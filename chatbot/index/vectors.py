"""Vectors in FAISS: unit vectors stored in float16, searched by inner product (cosine), exact while few and HNSW
beyond, their memory shared with numpy rather than held twice; and written to .npy files piece by piece.

Usage example:
    search = vector_search(vectors, config.search)              # IndexScalarQuantizer or IndexHNSWSQ
    scores, ids = search_vectors(search, questions, k=10)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ..config import SearchConfig

_FP16 = faiss.ScalarQuantizer.QT_fp16


class VectorWriter:
    """Write a float16 (rows, dimension) .npy file piece by piece, so the vectors need not all sit in memory.

    Usage example:
        with VectorWriter(staging / "sentence_vectors.npy", rows, 384) as writer:
            writer.append(vectors)                       # as many times as needed, in row order
        vectors = writer.result                          # read-only memory map of the finished file
    """

    def __init__(self, path: Path, rows: int, dimension: int) -> None:
        self.path, self.rows, self.dimension, self.written = path, rows, dimension, 0
        self.result: np.ndarray | None = None
        self._handle = open(path, "wb")  # noqa: SIM115 (closed by __exit__)
        header = {"descr": "<f2", "fortran_order": False, "shape": (rows, dimension)}
        np.lib.format.write_array_header_1_0(self._handle, header)

    def append(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension or self.written + len(vectors) > self.rows:
            raise ValueError(f"vectors of shape {vectors.shape} do not fit {self.path.name}")
        self._handle.write(np.ascontiguousarray(vectors, dtype="<f2").tobytes())
        self.written += len(vectors)

    def __enter__(self) -> VectorWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self._handle.close()
        if kind is None:
            if self.written != self.rows:
                raise ValueError(f"{self.path.name}: {self.written} of {self.rows} rows written")
            shape = (self.rows, self.dimension)
            self.result = np.load(self.path, mmap_mode="r") if self.rows else np.zeros(shape, dtype=np.float16)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The finished file's vectors, `size` rows at a time, read rather than memory-mapped: a build reading
        them back does not keep the whole file's pages resident."""
        with open(self.path, "rb") as handle:
            np.lib.format.read_magic(handle)
            np.lib.format.read_array_header_1_0(handle)
            for lo in range(0, self.rows, size):
                count = min(size, self.rows - lo) * self.dimension
                yield np.fromfile(handle, dtype="<f2", count=count).reshape(-1, self.dimension)


def stored_vectors(search: faiss.Index) -> np.ndarray | None:
    """A read-only array over the float16 vectors a FAISS index stores (the codes of IndexScalarQuantizer
    and IndexHNSWSQ in QT_fp16 are the vectors in IEEE half precision), which keeps the index alive as long
    as the array (or any view of it) is; None for other kinds."""
    store = faiss.downcast_index(search.storage) if isinstance(search, faiss.IndexHNSW) else search
    if (
        not isinstance(store, faiss.IndexScalarQuantizer)
        or store.sq.qtype != faiss.ScalarQuantizer.QT_fp16
        or store.ntotal == 0
    ):
        return None
    shape = (store.ntotal, store.d)
    address = faiss.rev_swig_ptr(store.codes.data(), store.ntotal * store.code_size).__array_interface__["data"][0]
    owner = _Owner(search, {"shape": shape, "typestr": "<f2", "data": (address, True), "version": 3})
    return np.asarray(owner)


class _Owner:
    """Lends FAISS's memory to numpy: an array made from it has this as its base, which holds the index."""

    def __init__(self, index: faiss.Index, interface: dict[str, Any]) -> None:
        self.index = index
        self.__array_interface__ = interface


def vector_search(vectors: np.ndarray, settings: SearchConfig | None = None, expected: int = 0) -> faiss.Index:
    """An inner-product FAISS index over unit vectors (inner product = cosine), stored in float16 (half the
    memory of float32; cosines within about 1e-3), of the kind `settings` picks for max(len(vectors),
    expected) vectors: exact (IndexScalarQuantizer) while small, HNSW (IndexHNSWSQ) beyond
    `settings.exact_up_to`. Pass `expected` when more vectors will be added later (neither needs training).
    """
    settings = settings or SearchConfig()
    dimension = vectors.shape[1]
    size = max(len(vectors), expected)
    if settings.kind == "hnsw" or (settings.kind == "auto" and size > settings.exact_up_to):
        search = faiss.IndexHNSWSQ(dimension, _FP16, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        search.hnsw.efConstruction = settings.hnsw_ef_construction
        search.hnsw.efSearch = settings.hnsw_ef_search  # the default; search_vectors passes the current one
    else:
        search = faiss.IndexScalarQuantizer(dimension, _FP16, faiss.METRIC_INNER_PRODUCT)
    _reserve(search, size)
    for lo in range(0, len(vectors), 65536):  # a slice at a time: a memory map is not copied whole
        search.add(np.ascontiguousarray(vectors[lo : lo + 65536], dtype=np.float32))
    return search


def _reserve(search: faiss.Index, rows: int) -> None:
    """Make room in `search` for `rows` vectors before any is added. FAISS keeps vectors (and HNSW's links) in
    arrays that grow by doubling, copying what they hold: filled a slice at a time, they would briefly take
    twice their size (380 MB above the rest, measured on a 50 MB file). Grown to the full size and emptied
    again, they keep that capacity, and adding copies nothing."""
    store = faiss.downcast_index(search.storage) if isinstance(search, faiss.IndexHNSW) else search
    store.codes.resize(rows * store.code_size)
    store.codes.resize(0)
    if isinstance(search, faiss.IndexHNSW):  # links: 2 M at the bottom level, and about M / (M - 1) above
        links = search.hnsw.nb_neighbors(0) + search.hnsw.nb_neighbors(1) // 16 + 1
        search.hnsw.neighbors.resize(rows * links)
        search.hnsw.neighbors.resize(0)


def search_vectors(
    search: faiss.Index, vectors: np.ndarray, k: int, ef_search: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`search.search(vectors, k)`, with `ef_search` candidates kept if `search` is HNSW; a handful of
    queries run on this thread alone, because waking FAISS's OpenMP threads for one query costs more than
    the query (on a busy 2-core machine: 24 ms against 0.25 ms for 10,000 vectors). The results are the
    same either way."""
    params = (
        faiss.SearchParametersHNSW(efSearch=ef_search) if ef_search and isinstance(search, faiss.IndexHNSW) else None
    )
    if len(vectors) >= 20:
        return search.search(vectors, k, params=params)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return search.search(vectors, k, params=params)
    finally:
        faiss.omp_set_num_threads(threads)
