"""Files written so that a crash never leaves one half-written, and read so that nothing in their place can hang.

A file is written beside its final name and renamed over it (atomic), with the data and the folder synced to
disk first; a folder or file standing where one is written is moved aside with a warning, never deleted; a
file is read only if it is a regular file. New files get the permissions the user's umask gives.

Usage example:
    write_atomic(folder / "CURRENT", name + "\n")     # readers see the old text or the new, never a part
    read_regular(folder / "CURRENT", 256)             # NotRegular for a FIFO or a device put there
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("chatbot")

# Permissions for new files and folders as the user's umask would give them (tempfile's are private), so
# that an index built by one user can be read by others who may read the folder. Python cannot read the
# umask without setting it; this is done once, at import.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE, FOLDER_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


class NotRegular(OSError):
    """A path that should hold a file the index wrote holds something else (a FIFO, a device, a socket)."""


def read_regular(path: Path, limit: int = -1) -> bytes:
    """The bytes of `path` (at most `limit`), only if it is a regular file: a FIFO put in its place would block
    a plain open() until something writes to it (forever), a device could be read without end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit)
    finally:
        os.close(fd)


def make_way(path: Path) -> None:
    """Clear the place of a file the index writes when a folder stands there (nothing can replace a folder
    in one step): an empty one is removed, any other moved aside, with a warning; its content is kept."""
    if not path.is_dir() or path.is_symlink():
        return
    try:
        path.rmdir()
    except OSError:
        _move_aside(path, "was a folder")


def make_room(path: Path) -> None:
    """Clear the place of a folder the index writes when something else stands there (a file, a link that
    leads to no folder): it is moved aside, with a warning; its content is kept."""
    if path.is_dir() or not (path.exists() or path.is_symlink()):
        return
    _move_aside(path, "was not a folder")


def _move_aside(path: Path, what: str) -> None:
    aside = path.with_name(f"{path.name}.moved-aside-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(path, aside)
    log.warning("%s %s; moved it to %s", path, what, aside)


def write_texts(path: Path, texts: list[str]) -> None:
    """The documents' texts as the JSON list `write_json` writes, a megabyte of characters at a time: json
    escapes a string whole, and a 50 MB document would be held three times over (text, escaped, encoded)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        for number, text in enumerate(texts):
            handle.write(",\n " if number else "\n ")
            handle.write('"')
            for lo in range(0, len(text), 1 << 20):  # JSON escapes each character alone: slices join up
                handle.write(json.dumps(text[lo : lo + (1 << 20)], ensure_ascii=False)[1:-1])
            handle.write('"')
        handle.write("\n]" if texts else "]")


def write_json(path: Path, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:  # streamed: a large text is not encoded twice in memory
        json.dump(value, handle, ensure_ascii=False, indent=1)


def write_atomic(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
