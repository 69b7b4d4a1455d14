"""Documents uploaded through the web page: kept in a folder of the chatbot's own, apart from the documents folder;
never replacing a file; a removed one kept aside until the server stops, so that it can be restored.

Nothing here writes, renames or deletes anything in the documents folder. The uploads folder is indexed together
with it (see indexer.scan_documents), and an uploaded document is cited as `.uploads/NAME` (load.UPLOADS).

Usage example:
    uploads = Uploads.of(config)                          # config.paths.uploads_folder, [documents] extensions
    cited = uploads.add(Path("/tmp/gradio/ab12/notes.txt"))   # ".uploads/notes.txt" (".uploads/notes (2).txt" if taken)
    uploads.remove(cited)                                 # kept aside ...
    uploads.restore(cited)                                # ... and put back, under a free name
    uploads.close()                                       # what is still removed is gone for good
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import unicodedata
from pathlib import Path

from ..config import Config
from ..documents.load import UPLOADS, file_sha256
from ..errors import ChatbotError
from .files import FILE_MODE

__all__ = ["UPLOADS", "Uploads", "clean_name", "save_upload", "size_text"]


class Uploads:
    """The uploads folder of one documents folder, and the uploads removed from it since this object was made."""

    def __init__(self, folder: Path, extensions: tuple[str, ...], max_bytes: int) -> None:
        self.folder = Path(folder)
        self.extensions = tuple(ext.lower() for ext in extensions)
        self.max_bytes = max_bytes
        self.removed: dict[str, Path] = {}  # cited path of a removed upload -> its file, kept aside
        self._aside: tempfile.TemporaryDirectory | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, config: Config) -> Uploads:
        return cls(config.paths.uploads_folder, config.documents.extensions, int(config.ui.max_upload_mb * 2**20))

    def add(self, upload: Path, name: str | None = None, indexed: dict[str, str] | None = None) -> str:
        """Copy an uploaded file in (named `name`, or as the file is) and return its cited path. Refused, with
        the reason, when of another type, too large, empty, or the same bytes as a document in `indexed`
        (SHA-256 -> cited path), to which it is added."""
        name = save_upload(upload, self.folder, self.extensions, self.max_bytes, name, indexed)
        if indexed is not None:  # so that the same file twice in one upload is refused the second time
            indexed[file_sha256(self.folder / name) or ""] = UPLOADS + name
        return UPLOADS + name

    def path_of(self, cited: str) -> Path:
        """The file of an upload in the uploads folder, by its cited path; ChatbotError for anything else (a
        document of the documents folder, a name leading out of the folder, a link, a folder)."""
        if not isinstance(cited, str) or not cited.startswith(UPLOADS):
            raise ChatbotError(f"{cited} is not an uploaded document; only uploads can be removed")
        relative = cited.removeprefix(UPLOADS)
        parts = Path(relative).parts
        if not parts or any(part.startswith(".") for part in parts) or Path(relative).is_absolute():
            raise ChatbotError(f"{cited} is not an uploaded document")
        path = self.folder / relative
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(self.folder.resolve()):
            raise ChatbotError(f"{cited} is not in the uploads folder")
        return path

    def remove(self, cited: str) -> None:
        """Take an upload out of the uploads folder, keeping it aside until `close`."""
        path = self.path_of(cited)
        with self._lock:
            if self._aside is None:
                self._aside = tempfile.TemporaryDirectory(prefix="chatbot-removed-")
            kept = Path(tempfile.mkdtemp(dir=self._aside.name)) / path.name
            shutil.move(path, kept)
            self.removed[cited] = kept

    def restore(self, cited: str) -> str:
        """Put a removed upload back, under its old name if it is free (else a free one like it); returns the
        cited path it now has."""
        with self._lock:
            kept = self.removed.pop(cited, None)
        if kept is None:
            raise ChatbotError(f"{cited} is not among the removed uploads")
        relative = Path(cited.removeprefix(UPLOADS))
        try:
            name = _copy_in(kept, self.folder / relative.parent, relative.name)
        except BaseException:
            with self._lock:
                self.removed[cited] = kept
            raise
        kept.unlink(missing_ok=True)
        return UPLOADS + (relative.parent / name).as_posix()

    def discard(self, cited: str) -> None:
        """Delete an upload for good (one that was never indexed: no text could be read from it)."""
        self.path_of(cited).unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._aside is not None:
                self._aside.cleanup()
                self._aside = None
            self.removed.clear()


# The longest file name that file systems take (Linux's NAME_MAX), in bytes: a name is cut to it, less the room
# that " (999)" needs when the name is taken, by bytes of UTF-8 (a character of Chinese is three), not characters.
NAME_BYTES = 255


def clean_name(name: str) -> str:
    """A safe file name from an uploaded one: no folders, no `..`, no hidden or odd characters, and short enough
    for any file system (NAME_BYTES), cut on a character boundary."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ]+", "_", name)
    name = re.sub(r"\.{2,}", ".", name).strip(" ._-")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    extension = _cut_utf8(extension.lower(), 32)
    room = NAME_BYTES - len(" (999)") - (len(extension.encode("utf-8")) + 1 if extension else 0)
    stem = _cut_utf8(stem.strip(" ._-"), room).rstrip(" ._-") or "document"
    return f"{stem}.{extension}" if extension else stem


def _cut_utf8(text: str, size: int) -> str:
    """`text` cut to at most `size` bytes of UTF-8, on a character boundary."""
    return text.encode("utf-8")[:size].decode("utf-8", "ignore")


def save_upload(
    upload: Path,
    folder: Path,
    extensions: tuple[str, ...],
    max_bytes: int,
    name: str | None = None,
    indexed: dict[str, str] | None = None,
) -> str:
    """Copy an uploaded file into `folder` (created if need be) under a clean name, `name` or else the file's own;
    returns the name it got: that one, or `STEM (2).EXT` and so on when a file already has it, which is never
    replaced. Raises ChatbotError, with the reason, for a file it will not take (see Uploads.add).
    """
    name = clean_name(name or upload.name)
    extension = Path(name).suffix.lower()
    if extension not in extensions:
        raise ChatbotError(f"{name}: only {', '.join(extensions)} files can be added")
    try:
        size = upload.stat().st_size
    except OSError as exc:
        raise ChatbotError(f"{name}: cannot be read: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise ChatbotError(f"{name}: {size_text(size)} is larger than the limit of {size_text(max_bytes)}")
    if size == 0:
        raise ChatbotError(f"{name}: the file is empty")
    same = (indexed or {}).get(file_sha256(upload) or "")
    if same is not None:
        raise ChatbotError(f"{name}: the same file is already indexed, as {same}")
    return _copy_in(upload, folder, name)


def _copy_in(source: Path, folder: Path, name: str) -> str:
    """Copy `source` into `folder` as `name` or the first free `STEM (n).EXT`; returns the name used. Written to
    a hidden temporary file first (the scanner passes over hidden files) and then linked under its name, which
    fails rather than replace a file that has it, so the indexer never reads half a file and nothing is lost."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".upload-", dir=folder)
    except OSError as exc:
        raise ChatbotError(f"{name}: cannot write to the uploads folder {folder}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as out, open(source, "rb") as data:
            os.fchmod(out.fileno(), FILE_MODE)  # as any file saved there would be, not private as mkstemp makes it
            shutil.copyfileobj(data, out, 1 << 20)
        return _link_free_name(Path(temporary), folder, name)
    except OSError as exc:
        raise ChatbotError(f"{name}: cannot be saved: {exc.strerror or exc}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def _link_free_name(temporary: Path, folder: Path, name: str) -> str:
    stem, extension = os.path.splitext(name)
    for number in range(1, 1000):
        candidate = name if number == 1 else f"{stem} ({number}){extension}"
        try:
            os.link(temporary, folder / candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: check, then rename (a narrow race, but no loss in it)
            if not os.path.lexists(folder / candidate):
                os.rename(temporary, folder / candidate)
                return candidate
    raise ChatbotError(f"{name}: too many uploads of that name")


def size_text(size: int) -> str:
    """A file size for people: "512 B", "2.0 KB", "1.5 MB"."""
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"
