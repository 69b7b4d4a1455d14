"""Shared fixtures: the real bundled model (loaded once per session), seed documents in a temporary folder,
and no network beyond loopback."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

import pytest
from hypothesis import settings

# Timing belongs to the benchmarks: on a slow, busy CI machine one example can take longer than Hypothesis's
# default 200 ms deadline without anything being wrong.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from chatbot import Chatbot  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = "guangdong-tech-self-reliance.txt"
_real_connect = socket.socket.connect


def _loopback_only(self, address):
    if self.family == socket.AF_UNIX or (
        isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost")
    ):
        return _real_connect(self, address)
    raise OSError(f"network access in tests is not allowed: {address!r}")


@pytest.fixture(autouse=True, scope="session")
def no_network():
    socket.socket.connect = _loopback_only
    yield
    socket.socket.connect = _real_connect


@pytest.fixture(scope="session")
def seed_docs(tmp_path_factory) -> Path:
    """A private copy of seeds/ (tests must not touch the project's own folder)."""
    folder = tmp_path_factory.mktemp("seeds")
    shutil.copytree(SEEDS, folder, dirs_exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def seed_bot(seed_docs, tmp_path_factory) -> Chatbot:
    """A chatbot over the seed documents with its index built once for the session."""
    bot = Chatbot.from_config(docs=seed_docs, index=tmp_path_factory.mktemp("index"))
    bot.index()
    return bot


@pytest.fixture
def make_bot(tmp_path):
    """Build a chatbot over a folder of {name: text} documents written into a fresh temporary folder."""

    def make(files: dict[str, str] | None = None, docs: Path | None = None, **overrides) -> Chatbot:
        if docs is None:
            docs = tmp_path / "docs"
            docs.mkdir(exist_ok=True)
            for name, text in (files or {}).items():
                (docs / name).parent.mkdir(parents=True, exist_ok=True)
                (docs / name).write_text(text, encoding="utf-8")
        return Chatbot.from_config(docs=docs, index=overrides.pop("index", tmp_path / "index"), **overrides)

    return make


@pytest.fixture
def warnings_seen():
    """The warning lines the chatbot logs during the test (attached to its own logger, whatever the CLI set up)."""

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("chatbot")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def document_text(folder: Path, source: str) -> str:
    """A document's text exactly as the offsets count it: UTF-8, line endings untouched."""
    return (folder / source).read_bytes().decode("utf-8")
