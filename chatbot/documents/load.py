"""Find and read the documents under a folder: each becomes a Document with its text and the file's SHA-256.

Usage example:
    scan = scan_folder(Path("seeds"), (".txt", ".md", ".pdf"))
    for info in scan.files:
        document = read_document(info)          # raises Unreadable (with the reason) for a file to skip
"""

from __future__ import annotations

import bisect
import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ChatbotError
from .formats import Unreadable, decode_text, extract

__all__ = [
    "UPLOADS",
    "Document",
    "FileInfo",
    "Scan",
    "Skipped",
    "Unreadable",
    "decode_text",
    "file_sha256",
    "line_breaks",
    "line_on_page",
    "page_of",
    "read_document",
    "read_question_file",
    "scan_folder",
    "scan_with_uploads",
]


# How the path of a document uploaded through the web page begins (in citations, the index and `chatbot source`):
# it is kept in the uploads folder, apart from the documents folder, and a hidden name like this one is never
# the path of a document in the documents folder, where hidden files are passed over.
UPLOADS = ".uploads/"


@dataclass(frozen=True)
class FileInfo:
    """A document file as seen on disk, before reading it."""

    path: str  # relative to the documents folder, with forward slashes
    abspath: Path
    size: int
    mtime_ns: int
    # The inode's change time: any write sets it to now, and no copying tool (cp -p, rsync -a, tar) can set
    # it back, unlike the modification time. A same-size edit with its old mtime restored still shows here.
    ctime_ns: int


@dataclass(frozen=True)
class Document:
    path: str
    text: str  # the file's text, or the text extracted from it (PDF, HTML, DOCX); offsets count in it
    sha256: str  # of the file's bytes, so `sha256sum` on the file gives the same value
    size: int
    mtime_ns: int
    ctime_ns: int
    pages: tuple[int, ...] = ()  # offset in `text` where each page starts, for paged formats (PDF)
    # The blocks of `text` as the reader found them, (start, end, kind, level), for formats whose reader knows
    # the structure (HTML); () for text, whose structure is read from its syntax (structure.py).
    structure: tuple[tuple[int, int, str, int], ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A file left out of the index, and why."""

    path: str
    reason: str


@dataclass
class Scan:
    """What a folder holds: the files to read, and those left out without reading them."""

    files: list[FileInfo] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # a file link's path -> its target's, both relative


def scan_with_uploads(
    folder: Path, extensions: tuple[str, ...], ignore: Iterable[Path] = (), uploads: Path | None = None
) -> Scan:
    """`scan_folder(folder, extensions, ignore)` and the documents uploaded through the web page, kept in the
    folder `uploads`, whose paths start with UPLOADS (".uploads/"): a hidden name, which no document of `folder`
    can have, since hidden files are passed over there. An uploads folder that cannot be read is listed as
    skipped; one that does not exist holds nothing."""
    ignore = tuple(ignore) + ((uploads,) if uploads is not None else ())
    scan = scan_folder(folder, extensions, ignore)
    if uploads is None or not os.path.lexists(uploads):  # the usual case: nothing uploaded yet
        return scan
    try:
        uploaded = scan_folder(uploads, extensions, prefix=UPLOADS)
    except ChatbotError as exc:
        scan.skipped.append(Skipped(UPLOADS.rstrip("/"), f"the uploads folder cannot be read: {exc}"))
        return scan
    scan.files = sorted(scan.files + uploaded.files, key=lambda info: info.path)
    scan.skipped = sorted(scan.skipped + uploaded.skipped, key=lambda skipped: skipped.path)
    return scan


def scan_folder(
    folder: Path, extensions: tuple[str, ...], ignore: Path | Iterable[Path] | None = (), prefix: str = ""
) -> Scan:
    """Every file under `folder` with one of `extensions`, recursively, sorted by relative path (each path
    starting with `prefix`). An extension is ".txt" or "" (no extension); an entry without a leading dot is a
    pattern of names (case-insensitive): "README*" takes README.Debian, whatever its extension.

    Hidden files and folders are passed over, and so are the folders in `ignore` (one or several: the index
    and the uploads, when they are kept inside the documents folder). Files of other types, links that lead
    outside the folder (they are not followed), links that lead back to themselves and files that cannot be
    examined are listed as skipped, with the reason.
    """
    ignore = () if ignore is None else (ignore,) if isinstance(ignore, (str, os.PathLike)) else tuple(ignore)
    folder = Path(folder)
    if not folder.exists():
        raise ChatbotError(f"documents folder not found: {folder}")
    if not folder.is_dir():
        raise ChatbotError(f"documents path is not a folder: {folder}")
    root = folder.resolve()
    wanted = _FileTypes.of(extensions)
    scan = Scan()
    try:
        _scan_into(scan, folder, prefix, root, wanted, tuple(Path(path).resolve() for path in ignore))
    except OSError as exc:
        raise ChatbotError(f"cannot read documents folder {folder}: {exc.strerror or exc}") from None
    if prefix:
        scan.links = {link: prefix + target for link, target in scan.links.items()}
    _skip_links_to_listed_files(scan)
    scan.files.sort(key=lambda info: info.path)
    scan.skipped.sort(key=lambda skipped: skipped.path)
    return scan


def _skip_links_to_listed_files(scan: Scan) -> None:
    """A link to a file that is indexed anyway would only quote the same sentences twice."""
    if not scan.links:  # the usual case, on the path of every question
        return
    listed = {info.path for info in scan.files} - set(scan.links)
    doubles = {link: target for link, target in scan.links.items() if target in listed}
    if doubles:
        scan.files = [info for info in scan.files if info.path not in doubles]
        scan.skipped.extend(Skipped(link, f"it links to {target}, which is indexed") for link, target in doubles.items())


def _scan_into(
    scan: Scan, directory: Path, prefix: str, root: Path, wanted: _FileTypes, ignore: tuple[Path, ...]
) -> None:
    """Add the files below `directory` (relative paths starting with `prefix`) to `scan`. Costs one stat
    per file: only a link is resolved, as nothing else under a folder not entered through a link can lead
    outside it (this runs before every question, so a large folder must stay cheap to check)."""
    with os.scandir(directory) as entries:
        entries = sorted((entry for entry in entries if not entry.name.startswith(".")), key=lambda e: e.name)
    for entry in entries:
        relative = prefix + entry.name
        path = directory / entry.name
        if not _is_utf8(entry.name):  # the index records paths as UTF-8 text, and citations show them
            shown = os.fsencode(relative).decode("utf-8", "replace")
            scan.skipped.append(Skipped(shown, "its name is not valid UTF-8 (rename it to index it)"))
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if not any(entry.name == folder.name and path.resolve() == folder for folder in ignore):
                    _scan_into(scan, path, relative + "/", root, wanted, ignore)
                continue
            target = path.resolve() if entry.is_symlink() else None  # RuntimeError for a loop (Python < 3.13)
            if target is not None and not target.is_relative_to(root):
                scan.skipped.append(Skipped(relative, "it links outside the documents folder"))
                continue
            if target is not None and target.is_dir():  # a linked folder is not entered
                continue
            suffix = os.path.splitext(entry.name)[1]
            if not wanted.match(entry.name, suffix):
                scan.skipped.append(Skipped(relative, f"unsupported file type ({suffix or 'no extension'})"))
                continue
            if target is not None:
                scan.links[relative] = target.relative_to(root).as_posix()
            info = entry.stat()
        except OSError as exc:
            scan.skipped.append(Skipped(relative, exc.strerror or str(exc)))
            continue
        except RuntimeError:
            scan.skipped.append(Skipped(relative, "it is a link that leads back to itself (a loop)"))
            continue
        if not stat.S_ISREG(info.st_mode):
            scan.skipped.append(Skipped(relative, "it is not a regular file"))
            continue
        scan.files.append(FileInfo(relative, path, info.st_size, info.st_mtime_ns, info.st_ctime_ns))


@dataclass(frozen=True)
class _FileTypes:
    """The files a scan takes: by extension (lower case; "" for none), or by a pattern of the whole name."""

    extensions: frozenset[str]
    patterns: tuple[re.Pattern, ...]

    @classmethod
    def of(cls, entries: Iterable[str]) -> _FileTypes:
        entries = list(entries)
        extensions = frozenset(entry.lower() for entry in entries if not entry or entry.startswith("."))
        patterns = tuple(re.compile(fnmatch.translate(entry.lower())) for entry in entries if entry and entry[0] != ".")
        return cls(extensions, patterns)

    def match(self, name: str, suffix: str) -> bool:
        lowered = name.lower()
        return suffix.lower() in self.extensions or any(pattern.match(lowered) for pattern in self.patterns)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 come out of os.scandir as lone surrogates
        return False
    return True


def read_document(info: FileInfo) -> Document:
    """Read and extract one file; Unreadable (with the reason) when it is empty, binary, broken or unreadable."""
    try:
        data = info.abspath.read_bytes()
    except OSError as exc:
        raise Unreadable(exc.strerror or str(exc)) from None
    extracted = extract(data, info.abspath.suffix, info.path)
    return Document(
        info.path,
        extracted.text,
        hashlib.sha256(data).hexdigest(),
        info.size,
        info.mtime_ns,
        info.ctime_ns,
        extracted.pages,
        extracted.structure,
    )


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes, read in blocks; None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def page_of(pages: Sequence[int], offset: int) -> int | None:
    """1-based page of a character offset, given where each page starts; None for a text without pages."""
    return bisect.bisect_right(pages, offset) if pages else None


def line_breaks(text: str) -> np.ndarray:
    """Offsets of the line breaks in `text`: each LF (a CRLF's included) and each lone CR."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    lone_return = (codes == ord("\r")) & np.append(codes[1:] != ord("\n"), True)
    return np.flatnonzero((codes == ord("\n")) | lone_return)


def line_on_page(breaks: np.ndarray, pages: Sequence[int], offset: int) -> int:
    """1-based line number of a character offset in a text with these `line_breaks`; in a paged text (PDF),
    the line on its page, which is what a reader of the page counts."""
    page = page_of(pages, offset)
    first = pages[page - 1] if page else 0
    return int(np.searchsorted(breaks, offset) - np.searchsorted(breaks, first)) + 1


def read_question_file(path: Path, what: str = "question file") -> str:
    """A question file's text (batch or eval; or, by `what` it is, another file a user names, such as saved
    answers), decoded as documents are, without a byte-order mark; a user's mistake is one ChatbotError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ChatbotError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ChatbotError(f"{what} is a folder: {path}") from None
    except OSError as exc:
        raise ChatbotError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return decode_text(data, path.name).removeprefix("\ufeff")
    except Unreadable as exc:
        raise ChatbotError(f"cannot read {what} {path}: {exc}") from None
