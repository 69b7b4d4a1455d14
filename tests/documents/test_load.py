"""Finding and reading documents: a folder of junk is indexed as far as it can be, each bad file warned about
once with its reason; other encodings are decoded with a warning; links out of the folder are not followed."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from chatbot.documents.formats import Unreadable, decode_text
from chatbot.documents.load import scan_folder
from chatbot.errors import ChatbotError

GOOD = "Copper conducts electricity well. It is used in most electrical wiring.\n"


@pytest.fixture
def junk_folder(tmp_path) -> Path:
    """One good document next to every kind of file the loader must survive."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "good.txt").write_text(GOOD, encoding="utf-8")
    (docs / "random.txt").write_bytes(random.Random(1).randbytes(4096))
    (docs / "small-random.txt").write_bytes(bytes(b for b in random.Random(2).randbytes(300) if b))  # no NUL byte
    (docs / "latin1.txt").write_bytes("Le café coûte deux euros à Genève.\n".encode("latin-1"))
    (docs / "empty.txt").write_bytes(b"")
    (docs / "blank.md").write_text(" \n\t\n", encoding="utf-8")
    (docs / "x.md").mkdir()  # a folder whose name looks like a document
    (docs / "x.md" / "inner.md").write_text("Zinc protects steel from rust.\n", encoding="utf-8")
    (docs / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (docs / ".hidden.txt").write_text("Hidden files are passed over.\n", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Outside text must never be indexed.\n", encoding="utf-8")
    (docs / "link-out.txt").symlink_to(outside / "secret.txt")
    (docs / "folder-out").symlink_to(outside, target_is_directory=True)
    (docs / "sub" / "link-in.txt").symlink_to(docs / "good.txt")
    (docs / "dangling.txt").symlink_to(docs / "missing.txt")
    return docs


def test_scan_lists_documents_and_says_why_others_are_left_out(junk_folder):
    scan = scan_folder(junk_folder, (".txt", ".md"))
    assert [info.path for info in scan.files] == [
        "blank.md", "empty.txt", "good.txt", "latin1.txt", "random.txt", "small-random.txt", "x.md/inner.md",
    ]
    reasons = {skipped.path: skipped.reason for skipped in scan.skipped}
    assert reasons == {
        "dangling.txt": "No such file or directory",
        "folder-out": "it links outside the documents folder",
        "link-out.txt": "it links outside the documents folder",
        "picture.png": "unsupported file type (.png)",
        "sub/link-in.txt": "it links to good.txt, which is indexed",
    }


def test_a_junk_folder_is_indexed_as_far_as_it_can_be(junk_folder, make_bot, warnings_seen):
    bot = make_bot(docs=junk_folder)
    report = bot.index()
    assert sorted(report.added) == ["good.txt", "latin1.txt", "x.md/inner.md"]
    skipped = {entry["path"]: entry["reason"] for entry in report.skipped}
    assert skipped == {
        "blank.md": "it is empty",
        "dangling.txt": "No such file or directory",
        "empty.txt": "it is empty",
        "folder-out": "it links outside the documents folder",
        "link-out.txt": "it links outside the documents folder",
        "picture.png": "unsupported file type (.png)",
        "random.txt": "it looks like a binary file",
        "small-random.txt": "it looks like a binary file",
        "sub/link-in.txt": "it links to good.txt, which is indexed",
    }
    # one warning line per file, naming it and why; and one for the Latin-1 fallback
    assert sorted(warnings_seen) == sorted(
        [f"skipped {path}: {reason}" for path, reason in skipped.items()]
        + ["latin1.txt is not valid UTF-8; read it as CP1252"]
    )
    assert "9 files skipped" in report.summary()
    assert all("Outside text" not in text for text in bot.data.texts)


def test_skipped_files_are_warned_about_once_and_do_not_force_rebuilds(junk_folder, make_bot, warnings_seen):
    bot = make_bot(docs=junk_folder)
    bot.index()
    warnings_seen.clear()
    again = bot.index()
    assert again.action == "unchanged" and len(again.skipped) == 9
    (junk_folder / "new.txt").write_text("Tin is mixed with copper to make bronze.\n", encoding="utf-8")
    update = bot.index()
    assert update.action == "updated" and update.added == ["new.txt"] and update.unchanged == 3
    assert warnings_seen == []  # the old junk is not warned about again
    (junk_folder / "random.txt").write_bytes(random.Random(3).randbytes(4096))
    changed_junk = bot.index()
    assert changed_junk.action == "rewritten" and changed_junk.sentences_embedded == 0
    assert warnings_seen == ["skipped random.txt: it looks like a binary file"]


def test_a_fixed_file_joins_the_index(junk_folder, make_bot):
    bot = make_bot(docs=junk_folder)
    bot.index()
    (junk_folder / "empty.txt").write_text("Lead is a heavy and soft metal.\n", encoding="utf-8")
    report = bot.index()
    assert report.added == ["empty.txt"] and report.sentences_embedded == 1


def test_latin1_text_is_decoded_and_quoted_exactly(junk_folder, make_bot):
    bot = make_bot(docs=junk_folder)
    answer = bot.ask("Combien coûte le café à Genève ?")
    quote = next(quote for quote in answer.quotes if quote.source == "latin1.txt")
    assert quote.text == "Le café coûte deux euros à Genève."
    raw = (junk_folder / "latin1.txt").read_bytes().decode("cp1252")
    assert raw[quote.start : quote.end] == quote.text


def test_decoding_keeps_utf8_offsets_and_handles_other_encodings(warnings_seen):
    assert decode_text("a\r\nb — ü\n".encode(), "x.txt") == "a\r\nb — ü\n"
    assert decode_text("Smart “quotes” €5".encode("cp1252"), "w.txt") == "Smart “quotes” €5"
    stray = b"Stra\xdfe with one stray \x81 byte, which CP1252 lacks, in a long enough line."
    assert decode_text(stray, "l.txt") == stray.decode("latin-1")
    assert decode_text("Grüße aus Köln".encode("utf-16"), "u.txt") == "Grüße aus Köln"
    assert warnings_seen == [
        "w.txt is not valid UTF-8; read it as CP1252",
        "l.txt is not valid UTF-8; read it as LATIN-1",
        "u.txt is UTF-16, not UTF-8; read it as UTF-16",
    ]
    with pytest.raises(Unreadable, match="binary"):
        decode_text(b"ELF\x00\x01\x02", "prog.txt")


def test_missing_folder_and_file_instead_of_folder_are_clear_errors(tmp_path, make_bot):
    with pytest.raises(ChatbotError, match="documents folder not found"):
        scan_folder(tmp_path / "nope", (".txt",))
    (tmp_path / "file.txt").write_text(GOOD, encoding="utf-8")
    with pytest.raises(ChatbotError, match="not a folder"):
        scan_folder(tmp_path / "file.txt", (".txt",))


def test_a_folder_of_only_junk_is_a_clear_error(tmp_path, make_bot, warnings_seen):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.txt").write_bytes(b"")
    (docs / "bin.md").write_bytes(b"\x00" * 100)
    with pytest.raises(ChatbotError, match="no readable documents"):
        make_bot(docs=docs).index()
    assert sorted(warnings_seen) == ["skipped bin.md: it looks like a binary file", "skipped empty.txt: it is empty"]


def test_a_file_name_that_is_not_utf8_is_skipped_not_fatal(tmp_path, make_bot):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text(GOOD, encoding="utf-8")
    with open(os.path.join(os.fsencode(docs), b"bad\xffname.txt"), "w", encoding="utf-8") as handle:
        handle.write("The octopus has three hearts.\n")
    scan = scan_folder(docs, (".txt",))
    assert [info.path for info in scan.files] == ["good.txt"]
    assert [(skipped.path, skipped.reason) for skipped in scan.skipped] == [
        ("bad\ufffdname.txt", "its name is not valid UTF-8 (rename it to index it)")
    ]
    answer = make_bot(docs=docs).ask("What conducts electricity?")
    assert answer.quotes[0].source == "good.txt"


def test_a_utf8_file_with_one_bad_byte_stays_utf8(warnings_seen):
    data = "Le café ouvre à 7 heures. 北京是中国的首都。\nTruncated at the end ".encode() + b"\xe2\x82\n"
    assert decode_text(data, "m.txt") == "Le café ouvre à 7 heures. 北京是中国的首都。\nTruncated at the end \ufffd\n"
    assert warnings_seen == ["m.txt has 1 byte sequence(s) that are not UTF-8; each reads as U+FFFD"]


def test_an_index_kept_inside_the_documents_folder_is_not_scanned(tmp_path, make_bot, warnings_seen):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text(GOOD, encoding="utf-8")
    bot = make_bot(docs=docs, index=docs / "index")
    bot.index()
    (docs / "more.txt").write_text("Zinc protects steel from rust.\n", encoding="utf-8")
    report = bot.index()
    assert report.added == ["more.txt"] and report.skipped == [] and warnings_seen == []


def test_folders_to_pass_over_may_be_one_several_or_none(tmp_path):
    docs = tmp_path / "docs"
    (docs / "index").mkdir(parents=True)
    (docs / "up").mkdir()
    for name in ("good.txt", "index/built.txt", "up/uploaded.txt"):
        (docs / name).write_text(GOOD, encoding="utf-8")
    paths = lambda ignore: [info.path for info in scan_folder(docs, (".txt",), ignore).files]  # noqa: E731
    assert paths(None) == paths(()) == ["good.txt", "index/built.txt", "up/uploaded.txt"]
    assert paths(docs / "index") == paths((docs / "index",)) == ["good.txt", "up/uploaded.txt"]
    assert paths([docs / "index", docs / "up"]) == ["good.txt"]
