"""Talking to Milvus: one client per process and URI (Milvus Lite for a .db file, else a server), Milvus Lite let
go for another process, and a failed call said in one line rather than pymilvus's traceback.

Usage example:
    client = Guarded(connect(uri, token_env), failure)   # failure(exception, collection) -> what to raise
    release(uri)                                         # another process may open a Milvus Lite file now
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ChatbotError
from .store import IndexDamaged

PIECE = 16_000  # characters of a text piece: at most 64,000 bytes of UTF-8, under Milvus's 65,535 for a VARCHAR
BATCH = 1000  # ids per get, rows per query page
_clients: dict[tuple[str, str], Any] = {}
loaded: dict[str, set[str]] = {}  # uri -> collections loaded by this process


def _quiet() -> None:
    """pymilvus and Milvus Lite log every failed call with a traceback; this module says what went wrong."""
    for name in ("pymilvus", "pymilvus.decorators", "milvus_lite", "milvus_lite.server_manager", "grpc._server"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class Guarded:
    """A MilvusClient whose failed calls raise what `failure(exception, collection)` gives (milvus.MilvusStore's:
    one line, naming the collection), not pymilvus's exceptions with their tracebacks."""

    def __init__(self, client, failure: Callable[[Exception, str | None], Exception]) -> None:
        self._inner, self._failure = client, failure

    def __getattr__(self, name: str):
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            try:
                return attribute(*args, **kwargs)
            except (ChatbotError, IndexDamaged):
                raise
            except Exception as exc:
                collection = kwargs.get("collection_name", args[0] if args and isinstance(args[0], str) else None)
                raise self._failure(exc, collection) from None

        return call


def connect(uri: str, token_env: str = ""):
    """A client for `uri` (one per process and uri): Milvus Lite for a .db file, else a server."""
    token = ""
    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            raise ChatbotError(f"store.token_env names {token_env}, which is not set")
    if (uri, token) in _clients:
        return _clients[(uri, token)]
    from pymilvus import MilvusClient

    _quiet()  # after the import, which sets its loggers' levels

    options = {}
    if uri.endswith(".db"):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        # Milvus Lite's gRPC server takes the library's defaults, which refuse pings more often than every 5
        # minutes: pymilvus's 10-second keepalive gets the connection dropped during a long embedding.
        options = {"grpc_options": {"grpc.keepalive_time_ms": 600_000, "grpc.keepalive_permit_without_calls": False}}
    try:
        client = MilvusClient(uri=uri, token=token, timeout=30, **options)
    except Exception as exc:
        if uri.endswith(".db"):
            raise ChatbotError(
                f"cannot open the Milvus Lite index {uri}: {reason(exc)} (Milvus Lite serves one process at a "
                "time; is another chatbot using it? Several processes need a Milvus server: see the README)"
            ) from None
        raise ChatbotError(f"cannot reach Milvus at {uri}: {reason(exc)}") from None
    _clients[(uri, token)] = client
    return client


def release(uri: str) -> None:
    """Close this process's clients of `uri` and, for Milvus Lite, let another process open the file."""
    loaded.pop(uri, None)
    for key in [key for key in _clients if key[0] == uri]:
        with contextlib.suppress(Exception):
            _clients.pop(key).close()
    if uri.endswith(".db"):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)


def collection_prefix(docs: Path) -> str:
    """A collection name prefix of a documents folder: its name (letters, digits, _) and a hash of its path."""
    name = re.sub(r"\W+", "_", docs.name.encode("ascii", "ignore").decode()).strip("_")[:40] or "docs"
    return f"chatbot_{name}_{hashlib.sha256(str(docs.resolve()).encode('utf-8')).hexdigest()[:10]}"


def reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
