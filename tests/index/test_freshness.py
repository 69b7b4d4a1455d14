"""A stale index is never used: after a document changes, appears or goes, or the model or chunking
changes, the next question is answered from the new state."""

import os

from chatbot import Chatbot

ZEBRA = "Zebras are striped animals. The zebra population in Kenya is 2,000 according to the survey.\n"
OWL = "Owls hunt at night. The great grey owl has a wingspan of 150 centimetres.\n"


def quoted(answer) -> str:
    return " ".join(quote.text for quote in answer.quotes)


def test_change_add_and_delete_are_seen_by_the_next_question(make_bot, tmp_path):
    bot = make_bot({"zebra.txt": ZEBRA})
    assert "2,000" in quoted(bot.ask("How many zebras live in Kenya?"))

    (tmp_path / "docs" / "zebra.txt").write_text(ZEBRA.replace("2,000", "9,500"), encoding="utf-8")
    assert "9,500" in quoted(bot.ask("How many zebras live in Kenya?"))

    (tmp_path / "docs" / "owl.txt").write_text(OWL, encoding="utf-8")
    owl = bot.ask("What is the wingspan of the great grey owl?")
    assert "150 centimetres" in quoted(owl) and owl.quotes[0].source == "owl.txt"

    (tmp_path / "docs" / "owl.txt").unlink()
    after = bot.ask("What is the wingspan of the great grey owl?")
    assert all(quote.source == "zebra.txt" for quote in after.quotes)
    assert all(source.source == "zebra.txt" for source in after.sources)


def test_another_process_sees_the_change_too(make_bot, tmp_path):
    first = make_bot({"zebra.txt": ZEBRA})
    first.index()
    (tmp_path / "docs" / "zebra.txt").write_text(ZEBRA.replace("2,000", "7,700"), encoding="utf-8")
    second = Chatbot.from_config(docs=tmp_path / "docs", index=tmp_path / "index")
    assert "7,700" in quoted(second.ask("How many zebras live in Kenya?"))


def test_model_or_chunk_change_rebuilds(make_bot, tmp_path):
    bot = make_bot({"zebra.txt": ZEBRA})
    bot.index()
    manifest = bot.data.manifest
    assert manifest["settings"]["chunk"]["sentences_per_passage"] == 4

    rechunked = make_bot(docs=tmp_path / "docs", chunk={"sentences_per_passage": 1, "overlap": 0})
    report = rechunked.index()
    assert report.action == "built" and "chunking" in report.reason
    assert rechunked.data.manifest["settings"]["chunk"]["sentences_per_passage"] == 1
    assert len(rechunked.data.passages) == len(rechunked.data.sentences)

    # The same bundled weights under another name: a different model as far as the index can tell.
    renamed = make_bot(docs=tmp_path / "docs", model={"name": "sentence-transformers/all-MiniLM-L6-v2"})
    report = renamed.index()
    assert report.action == "built" and "model changed" in report.reason
    assert "2,000" in quoted(renamed.ask("How many zebras live in Kenya?"))


def test_up_to_date_index_is_loaded_not_rebuilt(make_bot):
    bot = make_bot({"zebra.txt": ZEBRA})
    assert bot.index().action == "built"
    assert bot.index().action == "unchanged"


def test_a_same_size_edit_with_its_old_modification_time_is_seen(make_bot, tmp_path):
    # As `cp -p`, `rsync -a` or unpacking an archive leave it: same size, the old mtime restored.
    bot = make_bot({"zebra.txt": ZEBRA})
    assert "2,000" in quoted(bot.ask("How many zebras live in Kenya?"))
    path = tmp_path / "docs" / "zebra.txt"
    before = path.stat()
    path.write_text(ZEBRA.replace("2,000", "3,000"), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert "3,000" in quoted(bot.ask("How many zebras live in Kenya?"))


def test_a_pinned_chatbot_answers_from_the_index_as_it_was(make_bot, tmp_path):
    bot = make_bot({"zebra.txt": ZEBRA})
    pinned = bot.pinned()
    (tmp_path / "docs" / "zebra.txt").write_text(ZEBRA.replace("2,000", "4,400"), encoding="utf-8")
    assert "2,000" in quoted(pinned.ask("How many zebras live in Kenya?"))  # no wait for a refresh
    assert "4,400" in quoted(bot.ask("How many zebras live in Kenya?"))
    assert "2,000" in quoted(pinned.ask("How many zebras live in Kenya?"))
