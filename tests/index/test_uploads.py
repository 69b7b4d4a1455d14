"""Uploads: kept in a folder of their own, apart from the documents folder, indexed with it and cited as
.uploads/NAME; never replacing a file; removed ones kept aside until the server stops and restorable."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbot import ChatbotError
from chatbot.app.cli import main
from chatbot.config import index_for, load_config
from chatbot.index.files import FILE_MODE
from chatbot.index.uploads import UPLOADS, Uploads, clean_name, save_upload

KNOWN = hashlib.sha256(b"Known.").hexdigest()
DOCS = {"a.txt": "The keeper of the lighthouse is Ann.\n"}
LIGHTHOUSE = "The Quenby lighthouse is painted green."


# ----- names and saving ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, cleaned",
    [
        ("notes.txt", "notes.txt"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.MD", "evil.md"),
        (".hidden.txt", "hidden.txt"),
        ("a..b.txt", "a.b.txt"),
        ("<img src=x onerror=alert(1)>.md", "img src_x onerror_alert_1.md"),
        ("...", "document"),
        ("Ünïcode résumé.txt", "Ünïcode résumé.txt"),
    ],
)
def test_clean_name(name, cleaned):
    assert clean_name(name) == cleaned


@given(st.text(max_size=300))
def test_clean_name_never_leaves_the_folder(name):
    cleaned = clean_name(name)
    assert cleaned and Path(cleaned).name == cleaned
    assert "/" not in cleaned and "\\" not in cleaned and ".." not in cleaned and "\x00" not in cleaned
    assert not cleaned.startswith((".", "-", " "))
    assert len(f"{cleaned} (999)".encode("utf-8")) <= 255  # even with a number added, when the name is taken


@pytest.mark.parametrize("character", ["文", "é", "𠀀", "a"])
def test_a_long_name_is_cut_to_255_bytes_on_a_character_boundary(tmp_path, character):
    """A name cut to 100 characters was still 300 bytes in Chinese: "File name too long"."""
    upload = tmp_path / "upload.bin"
    upload.write_text("The Quenby lighthouse is painted green.", encoding="utf-8")
    long_name = character * 300 + ".txt"
    cleaned = clean_name(long_name)
    assert cleaned.endswith(".txt") and set(cleaned[:-4]) == {character}
    assert 240 <= len(f"{cleaned} (999)".encode("utf-8")) <= 255
    folder = tmp_path / "uploads"
    assert save_upload(upload, folder, (".txt",), 1000, name=long_name) == cleaned
    second = save_upload(upload, folder, (".txt",), 1000, name=long_name)  # the name is taken: " (2)" added
    assert second == cleaned[:-4] + " (2).txt"
    assert sorted(path.name for path in folder.iterdir()) == sorted([cleaned, second])


def test_save_upload_writes_only_a_clean_name_inside_the_folder(tmp_path):
    uploads, outside = tmp_path / "uploads", tmp_path / "incoming"  # the uploads folder is made when needed
    outside.mkdir()
    upload = outside / "..Notes (draft).TXT"
    upload.write_text("Hello there.", encoding="utf-8")
    name = save_upload(upload, uploads, (".txt", ".md"), 1000)
    assert name == "Notes _draft.txt"
    assert [p.name for p in uploads.iterdir()] == [name]  # no temporary file left behind
    assert (uploads / name).read_text(encoding="utf-8") == "Hello there."
    assert (uploads / name).stat().st_mode & 0o777 == FILE_MODE  # readable as the umask allows, not private
    assert sorted(p.name for p in tmp_path.iterdir()) == ["incoming", "uploads"]


def test_the_same_file_twice_is_refused_the_second_time(uploads, tmp_path):
    (tmp_path / "notes.txt").write_text("Notes.", encoding="utf-8")
    indexed: dict[str, str] = {}
    assert uploads.add(tmp_path / "notes.txt", indexed=indexed) == ".uploads/notes.txt"
    with pytest.raises(ChatbotError, match="the same file is already indexed, as .uploads/notes.txt"):
        uploads.add(tmp_path / "notes.txt", "copy.txt", indexed)
    assert [path.name for path in uploads.folder.iterdir()] == ["notes.txt"]


def test_a_same_named_upload_is_kept_under_a_name_of_its_own(tmp_path):
    uploads = tmp_path / "uploads"
    for text in ("First.", "Second.", "Third."):
        (tmp_path / "notes.txt").write_text(text, encoding="utf-8")
        save_upload(tmp_path / "notes.txt", uploads, (".txt",), 1000)
    assert {p.name: p.read_text() for p in uploads.iterdir()} == {
        "notes.txt": "First.", "notes (2).txt": "Second.", "notes (3).txt": "Third."
    }


@pytest.mark.parametrize(
    "filename, content, problem",
    [
        ("tool.exe", b"MZ", "only .txt, .md files"),
        ("big.txt", b"x" * 2000, "larger than the limit"),
        ("empty.md", b"", "empty"),
        ("again.txt", b"Known.", "the same file is already indexed, as seen.txt"),
    ],
)
def test_save_upload_refuses_with_a_reason(tmp_path, filename, content, problem):
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / filename).write_bytes(content)
    with pytest.raises(ChatbotError, match=problem):
        save_upload(tmp_path / filename, docs, (".txt", ".md"), 1000, indexed={KNOWN: "seen.txt"})
    assert list(docs.iterdir()) == []


# ----- indexed apart, cited with a prefix -------------------------------------------------------------------


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_uploads_are_indexed_with_the_documents_and_cited_apart(make_bot, tmp_path, capsys):
    bot = make_bot(DOCS)
    bot.index()
    docs, uploads = bot.config.paths.docs, bot.config.paths.uploads_folder
    assert uploads == bot.config.paths.index / "uploads"
    before = _tree(docs)
    (tmp_path / "a.txt").write_text(f"{LIGHTHOUSE} Its lamp was lit in 1890.\n", encoding="utf-8")
    cited = Uploads.of(bot.config).add(tmp_path / "a.txt")  # the same name as a document of the folder
    assert cited == ".uploads/a.txt" and UPLOADS == ".uploads/"
    report = bot.index()
    assert report.added == [".uploads/a.txt"] and report.unchanged == 1
    assert _tree(docs) == before  # the documents folder is exactly as it was
    answer = bot.ask("What colour is the Quenby lighthouse painted?")
    quote = answer.quotes[0]
    assert quote.source == ".uploads/a.txt" and quote.text == LIGHTHOUSE
    text = (uploads / "a.txt").read_bytes().decode("utf-8")
    assert text[quote.start : quote.end] == quote.text  # offsets count in the file in the uploads folder
    assert "keeper" in bot.ask("Who keeps the lighthouse?").text  # the folder's own a.txt is still there
    # `chatbot source` takes the cited path, or the file's own path
    args = ["--docs", str(docs), "--index", str(bot.config.paths.index)]
    for path in (".uploads/a.txt", str(uploads / "a.txt")):
        assert main(["source", path, *args]) == 0
        assert capsys.readouterr().out == text


def test_each_documents_folder_has_uploads_of_its_own(tmp_path):
    mine, other = tmp_path / "mine", tmp_path / "other"
    config = load_config(docs=mine)
    assert config.paths.uploads_folder == index_for(load_config().paths.index, mine.resolve()) / "uploads"
    assert load_config(docs=other).paths.uploads_folder != config.paths.uploads_folder
    (tmp_path / "c.toml").write_text('[paths]\ndocs = "mine"\nuploads = "up"\n', encoding="utf-8")
    assert load_config(tmp_path / "c.toml").paths.uploads_folder == tmp_path / "up"
    assert load_config(tmp_path / "c.toml", docs=other).paths.uploads_folder == index_for(tmp_path / "up", other.resolve())


def test_an_uploads_folder_inside_the_documents_folder_is_refused(tmp_path):
    (tmp_path / "c.toml").write_text('[paths]\ndocs = "mine"\nuploads = "mine/up"\n', encoding="utf-8")
    with pytest.raises(ChatbotError, match="paths.uploads .* must not be inside the documents folder"):
        load_config(tmp_path / "c.toml")


def test_an_unreadable_uploads_folder_is_skipped_with_a_warning(make_bot, warnings_seen):
    bot = make_bot(DOCS)
    bot.config.paths.index.mkdir(parents=True, exist_ok=True)
    bot.config.paths.uploads_folder.write_text("a file where the folder should be\n", encoding="utf-8")
    assert bot.index().skipped[0]["path"] == ".uploads"
    assert any(line.startswith("skipped .uploads: the uploads folder cannot be read") for line in warnings_seen)
    assert "Ann" in bot.ask("Who is the keeper of the lighthouse?").text


# ----- removing and restoring -------------------------------------------------------------------------------


@pytest.fixture
def uploads(tmp_path) -> Uploads:
    store = Uploads(tmp_path / "uploads", (".txt", ".md"), 10_000)
    yield store
    store.close()


def _upload(uploads: Uploads, tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return uploads.add(tmp_path / name)


def test_a_removed_upload_is_kept_aside_and_can_be_restored(uploads, tmp_path):
    cited = _upload(uploads, tmp_path, "notes.txt", "First notes.")
    uploads.remove(cited)
    assert list(uploads.folder.iterdir()) == [] and list(uploads.removed) == [cited]
    assert uploads.restore(cited) == cited and uploads.removed == {}
    assert (uploads.folder / "notes.txt").read_text(encoding="utf-8") == "First notes."
    uploads.remove(cited)
    _upload(uploads, tmp_path, "notes.txt", "Newer notes.")  # its name is taken meanwhile
    assert uploads.restore(cited) == ".uploads/notes (2).txt"
    assert (uploads.folder / "notes.txt").read_text(encoding="utf-8") == "Newer notes."
    with pytest.raises(ChatbotError, match="not among the removed uploads"):
        uploads.restore(cited)


def test_what_is_still_removed_is_gone_when_the_server_stops(uploads, tmp_path):
    cited = _upload(uploads, tmp_path, "notes.txt", "Notes.")
    uploads.remove(cited)
    kept = uploads.removed[cited]
    assert kept.exists() and not kept.is_relative_to(uploads.folder)
    uploads.close()
    assert not kept.exists() and uploads.removed == {}


@pytest.mark.parametrize(
    "cited, problem",
    [
        ("a.txt", "not an uploaded document; only uploads can be removed"),
        (".uploads/../a.txt", "not an uploaded document"),
        (".uploads/.hidden.txt", "not an uploaded document"),
        (".uploads//etc/passwd", "not an uploaded document"),
        (".uploads/missing.txt", "not in the uploads folder"),
        (".uploads/link.txt", "not in the uploads folder"),
        (".uploads/folder.txt", "not in the uploads folder"),
    ],
)
def test_only_a_file_of_the_uploads_folder_can_be_removed(uploads, tmp_path, cited, problem):
    _upload(uploads, tmp_path, "kept.txt", "Kept.")
    (tmp_path / "a.txt").write_text("A document of the documents folder.", encoding="utf-8")
    os.symlink(tmp_path / "a.txt", uploads.folder / "link.txt")
    (uploads.folder / "folder.txt").mkdir()
    with pytest.raises(ChatbotError, match=problem.replace("(", r"\(")):
        uploads.remove(cited)
    assert (tmp_path / "a.txt").exists() and (uploads.folder / "kept.txt").exists() and not uploads.removed
