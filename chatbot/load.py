"""Find and read the documents under a folder: each becomes a Document with its exact text and SHA-256."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ChatbotError

log = logging.getLogger("chatbot")


@dataclass(frozen=True)
class FileInfo:
    """A document file as seen on disk, before reading it."""

    path: str  # relative to the documents folder, with forward slashes
    abspath: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Document:
    path: str
    text: str
    sha256: str  # of the file's bytes, so `sha256sum` on the file gives the same value
    size: int
    mtime_ns: int


def scan_documents(folder: Path, extensions: tuple[str, ...]) -> list[FileInfo]:
    """Every file under `folder` with one of `extensions`, recursively, sorted by relative path.

    Links that lead outside the folder are not followed.
    """
    folder = Path(folder)
    if not folder.exists():
        raise ChatbotError(f"documents folder not found: {folder}")
    if not folder.is_dir():
        raise ChatbotError(f"documents path is not a folder: {folder}")
    root = folder.resolve()
    wanted = {ext.lower() for ext in extensions}
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in wanted:
                continue
            real = path.resolve()
            if not real.is_relative_to(root):
                log.warning("skipped %s: it links outside the documents folder", path)
                continue
            try:
                stat = path.stat()
            except OSError as exc:
                log.warning("skipped %s: %s", path, exc.strerror or exc)
                continue
            if not path.is_file():
                continue
            relative = path.relative_to(folder).as_posix()
            found.append(FileInfo(relative, path, stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda info: info.path)


def read_document(info: FileInfo) -> Document | None:
    """Read one file; None (with a warning) when it is empty, binary or unreadable."""
    try:
        data = info.abspath.read_bytes()
    except OSError as exc:
        log.warning("skipped %s: %s", info.path, exc.strerror or exc)
        return None
    text = decode_text(data, info.path)
    if text is None:
        return None
    if not text.strip():
        log.warning("skipped %s: it is empty", info.path)
        return None
    return Document(info.path, text, hashlib.sha256(data).hexdigest(), info.size, info.mtime_ns)


def decode_text(data: bytes, name: str) -> str | None:
    """UTF-8 as is (no newline translation, so offsets match the file); CP1252 or Latin-1 as a fallback."""
    if b"\x00" in data[:8192]:
        log.warning("skipped %s: it looks like a binary file", name)
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        log.warning("%s is not valid UTF-8; read it as %s", name, encoding.upper())
        return text
    return None  # unreachable: latin-1 decodes any bytes


def load_documents(folder: Path, extensions: tuple[str, ...]) -> list[Document]:
    """Read every document under `folder`; an error when there is none to answer from."""
    documents = [doc for info in scan_documents(folder, extensions) if (doc := read_document(info))]
    if not documents:
        kinds = ", ".join(extensions)
        raise ChatbotError(f"no documents ({kinds}) in {folder}")
    return documents
