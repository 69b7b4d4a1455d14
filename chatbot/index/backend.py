"""Which store keeps the index ([store] backend): FAISS and BM25 files in the index folder, or Milvus.

The one module that knows both backends; what is above it (indexer.py) uses either through the same methods.

Usage example:
    store = open_store(config)            # store.FileStore, or milvus.MilvusStore for backend = "milvus"
    data = store.load()                   # None when there is no index; IndexDamaged when damaged
"""

from __future__ import annotations

from ..config import Config
from .milvus import MilvusStore
from .store import FileStore


def open_store(config: Config) -> FileStore | MilvusStore:
    """The configured backend's store ([store] backend) for `config`'s index."""
    if config.store.backend == "milvus":
        return MilvusStore(config)  # pymilvus itself is imported only inside milvus.py's functions that use it
    return FileStore(config.paths.index)
