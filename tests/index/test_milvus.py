"""The Milvus backend on a real Milvus (Milvus Lite, embedded): the same answers as FAISS, incremental updates by
document, damaged state found and rebuilt, a build killed before or after its manifest switch, and index, ask,
batch and serve on it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chatbot import Chatbot
from chatbot.index.milvus import MilvusStore, release
from chatbot.training.evaluate import evaluate, read_questions
from tests.index.test_lifecycle import DOCS, ENV, ROOT

pytestmark = pytest.mark.slow  # a Milvus Lite server starts for each database: `make quick` leaves these out

MILVUS = {"backend": "milvus"}
# The verifier's quality is not under test here: quotes are asserted from the ranking model alone.
NO_VERIFIER = {"enabled": False}


@pytest.fixture
def lite(tmp_path):
    """The Milvus Lite file of a test; released at the end so that no server thread outlives it."""
    uri = str(tmp_path / "index" / "milvus.db")
    yield uri
    release(uri)


@pytest.fixture
def built(make_bot, lite):
    bot = make_bot(DOCS, store=MILVUS, verifier=NO_VERIFIER)
    report = bot.index()
    assert report.action == "built" and sorted(report.added) == sorted(DOCS)
    return bot


def store_of(bot: Chatbot) -> MilvusStore:
    return MilvusStore(bot.config)


def place_of(bot: Chatbot, path: str) -> dict:
    return next(entry["milvus"] for entry in bot.data.documents if entry["path"] == path)


def row_count(bot: Chatbot, kind: str) -> int:
    store = store_of(bot)
    name = bot.data.manifest["store"][kind]
    return store.client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]


def test_the_index_lives_in_milvus_with_text_offsets_vectors_and_bm25(built):
    data = built.data
    store = store_of(built)
    assert data.sentence_search is None and data.searcher is not None
    rows = store.client.query(
        data.manifest["store"]["sentences"], filter='path == "metals.txt"',
        output_fields=["text", "path", "sha256", "start_char", "end_char", "ordinal", "vector"],
    )
    text = (built.config.paths.docs / "metals.txt").read_text(encoding="utf-8")
    assert len(rows) == 3
    for row in rows:
        assert text[row["start_char"] : row["end_char"]] == row["text"]
        assert row["sha256"] == next(entry["sha256"] for entry in data.documents if entry["path"] == "metals.txt")
        assert np.isclose(np.linalg.norm(row["vector"]), 1.0, atol=1e-4)
    # BM25 is Milvus's own, over the stemmed words the FAISS backend counts.
    found = store.client.search(
        data.manifest["store"]["sentences"], data=["bronz tin"], anns_field="sparse", limit=1,
        search_params={"metric_type": "BM25"}, output_fields=["text"],
    )
    assert found[0][0]["entity"]["text"] == "Bronze is made by mixing copper with tin."
    answer = built.ask("What is bronze made of?")
    assert "Bronze is made by mixing copper with tin." in answer.text
    quote = answer.quotes[0]
    assert text[quote.start : quote.end] == quote.text


def test_same_answers_as_faiss_on_the_seed(seed_docs, tmp_path):
    """Both backends, same config (the verifier too), the seed question set: the same hits, nearly always the
    same quotes (equal BM25 scores may come back in another order)."""
    items = read_questions(ROOT / "benchmarks" / "seed_questions.jsonl")
    faiss_bot = Chatbot.from_config(docs=seed_docs, index=tmp_path / "faiss")
    milvus_bot = Chatbot.from_config(docs=seed_docs, index=tmp_path / "milvus", store=MILVUS)
    try:
        reports = [evaluate(bot, items) for bot in (faiss_bot, milvus_bot)]
        assert abs(reports[0].hit_rate - reports[1].hit_rate) <= 0.01
        assert reports[0].unanswerable_abstention_rate == reports[1].unanswerable_abstention_rate
        questions = [item.question for item in items]
        pairs = zip(faiss_bot.ask_batch(questions), milvus_bot.ask_batch(questions))
        same = sum(a.quotes == b.quotes and a.abstained == b.abstained for a, b in pairs)
        assert same >= 0.9 * len(questions)
    finally:
        release(str(tmp_path / "milvus" / "milvus.db"))


def test_incremental_updates_write_only_what_changed(built):
    docs = built.config.paths.docs
    moon = place_of(built, "space/moon.txt")
    (docs / "trees.txt").write_text("Oaks live for centuries. Their acorns feed many animals.\n", encoding="utf-8")
    report = built.index()
    assert (report.action, report.added, report.changed, report.removed, report.unchanged) == (
        "updated", ["trees.txt"], [], [], 3)
    assert report.sentences_embedded == 2
    assert place_of(built, "space/moon.txt") == moon  # its rows stay where they were written

    (docs / "rivers.md").write_text("# Rivers\n\nThe Nile is the longest river in Africa.\n", encoding="utf-8")
    report = built.index()
    assert (report.added, report.changed, report.removed, report.unchanged) == ([], ["rivers.md"], [], 3)
    assert report.sentences_embedded == 2
    assert "Nile" in built.ask("Which is the longest river in Africa?").text

    (docs / "metals.txt").unlink()
    report = built.index()
    assert (report.added, report.changed, report.removed, report.unchanged) == ([], [], ["metals.txt"], 3)
    assert all(quote.source != "metals.txt" for quote in built.ask("What is bronze made of?").quotes)
    # The old rows of the changed and removed documents are gone: Milvus holds what the manifest counts.
    assert row_count(built, "sentences") == len(built.data.sentences)
    assert row_count(built, "passages") == len(built.data.passages)

    os.utime(docs / "trees.txt", ns=(1, 1))
    assert built.index().action == "rewritten"
    assert built.index().summary().startswith("index is up to date: 0 added, 0 changed, 0 removed, 3 unchanged")


def _assert_passages_derived(bot: Chatbot) -> None:
    """Every passage's vector in Milvus is its sentences' vectors summed, weighted by word-pieces, unit length."""
    data = bot.data
    texts = [data.texts[d][s:e] for d, s, e in data.sentences.tolist()]
    lengths = bot.embedder.token_counts(texts)
    sentence_vectors = np.asarray(data.sentence_vectors[0 : len(data.sentences)], np.float64)
    passage_vectors = data.passage_vectors[0 : len(data.passages)]
    for passage, (lo, hi) in enumerate(data.passages[:, 3:5].tolist()):
        expected = (sentence_vectors[lo:hi] * lengths[lo:hi, None]).sum(axis=0)
        assert np.allclose(passage_vectors[passage], expected / np.linalg.norm(expected), atol=1e-5)


def test_passage_vectors_are_made_from_the_sentence_vectors(built, make_bot):
    _assert_passages_derived(built)
    docs = built.config.paths.docs
    (docs / "trees.txt").write_text("Oaks live for centuries. Their acorns feed many animals.\n", encoding="utf-8")
    report = built.index()
    assert (report.action, report.added, report.sentences_embedded) == ("updated", ["trees.txt"], 2)
    _assert_passages_derived(built)  # the new document's made, the others' kept
    # Milvus keeps an unchanged document's rows as they are: passage vectors made another way mean a rebuild.
    embedded = make_bot(docs=docs, store=MILVUS, verifier=NO_VERIFIER, chunk={"passage_vectors": "embedded"})
    report = embedded.index()
    assert (report.action, report.reason) == ("built", "the way passage vectors are made changed")
    assert report.sentences_embedded == len(embedded.data.sentences)
    data = embedded.data
    passage_texts = [data.texts[d][s:e] for d, s, e in data.passages[:, :3].tolist()]
    expected = embedded.embedder.encode_documents(passage_texts)
    assert np.allclose(data.passage_vectors[0 : len(data.passages)], expected, atol=1e-5)
    assert row_count(embedded, "passages") == len(data.passages)


def test_a_second_chatbot_reads_the_index_from_milvus_alone(built, make_bot):
    # Nothing in memory: as another process would.
    other = make_bot(docs=built.config.paths.docs, store=MILVUS, verifier=NO_VERIFIER)
    report = other.index()
    assert report.action == "unchanged"
    assert other.ask("What is bronze made of?").quotes == built.ask("What is bronze made of?").quotes


def test_a_read_only_process_answers_from_what_the_writer_publishes(built, make_bot):
    reader = make_bot(docs=built.config.paths.docs, store={**MILVUS, "read_only": True}, verifier=NO_VERIFIER)
    assert "Bronze is made by mixing copper with tin." in reader.ask("What is bronze made of?").text
    (built.config.paths.docs / "glass.txt").write_text("Glass is made from sand.\n", encoding="utf-8")
    reader.ask("What is glass made from?")
    assert "glass.txt" not in {entry["path"] for entry in reader.data.documents}  # a reader never builds
    built.index()  # the writer publishes a new build; the reader picks it up at its next question
    assert reader.ask("What is glass made from?").quotes[0].source == "glass.txt"


def test_changing_the_vector_search_keeps_the_rows(built, make_bot):
    flat = make_bot(docs=built.config.paths.docs, store=MILVUS, search={"kind": "flat"}, verifier=NO_VERIFIER)
    report = flat.index()
    assert (report.action, report.reason) == ("rewritten", "vector search settings changed")
    assert report.sentences_embedded == 0
    assert flat.ask("What is bronze made of?").quotes == built.ask("What is bronze made of?").quotes


def _alter_manifest(store: MilvusStore) -> None:
    build = store.current()["build"]
    row = store.client.query(store.meta, filter=f'blob == "manifest/{build}"', output_fields=["*"])[0]
    row["data"] = row["data"].replace('"sentences": 3', '"sentences": 4', 1)
    store.client.upsert(store.meta, [row])


def _garble_current(store: MilvusStore) -> None:
    row = store.client.query(store.meta, filter='kind == "current"', output_fields=["*"])[0]
    row["data"] = '{"build": "elsewhere'
    store.client.upsert(store.meta, [row])


def _point_current_nowhere(store: MilvusStore) -> None:
    row = store.client.query(store.meta, filter='kind == "current"', output_fields=["*"])[0]
    row["data"] = json.dumps({"build": "20000101-000000-gone", "parts": 1})
    store.client.upsert(store.meta, [row])


def _alter_text(store: MilvusStore) -> None:
    rows = store.client.query(store.meta, filter='kind == "doc"', output_fields=["*"])
    row = next(row for row in rows if "Copper" in row["data"])
    row["data"] = row["data"].replace("Copper", "Silver")
    store.client.upsert(store.meta, [row])


def _lose_rows(store: MilvusStore) -> None:
    name = store.read_manifest()["store"]["sentences"]
    store.client.delete(name, filter="ordinal == 0")


def _drop_passages(store: MilvusStore) -> None:
    store.client.drop_collection(store.read_manifest()["store"]["passages"])


@pytest.mark.parametrize(
    "damage", [_alter_manifest, _garble_current, _point_current_nowhere, _alter_text, _lose_rows, _drop_passages]
)
def test_damaged_state_is_found_and_rebuilt_with_a_warning(built, make_bot, damage, warnings_seen):
    damage(store_of(built))
    fresh = make_bot(docs=built.config.paths.docs, store=MILVUS, verifier=NO_VERIFIER)
    report = fresh.index()
    assert report.action == "built" and not (report.changed or report.removed)
    assert len(warnings_seen) == 1 and warnings_seen[0].endswith("; rebuilding the index")
    assert "Copper conducts electricity well." in fresh.ask("What conducts electricity?").text
    assert row_count(fresh, "sentences") == len(fresh.data.sentences)


# Damage to Milvus Lite's own files (what a disk error or a stray edit does): the database cannot be read at all,
# or a collection cannot be loaded. Each is reported in one warning line, and the database made anew.
def _zero_a_parquet_file(db: Path) -> None:
    path = sorted(db.glob("collections/*_meta/partitions/*/data/*.parquet"))[0]
    path.write_bytes(b"")


def _zero_the_sentences_parquet_file(db: Path) -> None:
    path = sorted(db.glob("collections/*_sentences_*/partitions/*/data/*.parquet"))[0]
    path.write_bytes(bytes(path.stat().st_size))


def _half_truncate_an_index_file(db: Path) -> None:
    path = sorted(db.glob("collections/*_sentences_*/partitions/*/indexes/*.flat.idx"))[0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble_a_schema(db: Path) -> None:
    sorted(db.glob("collections/*_meta/schema.json"))[0].write_text("garbage", encoding="utf-8")


def _flip_a_byte_of_a_collection_manifest(db: Path) -> None:
    path = sorted(db.glob("collections/*_meta/manifest.json"))[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _a_plain_file_in_its_place(db: Path) -> None:
    shutil.rmtree(db)
    db.write_text("not a database\n", encoding="utf-8")


LITE_DAMAGES = [
    _zero_a_parquet_file,
    _zero_the_sentences_parquet_file,
    _half_truncate_an_index_file,
    _garble_a_schema,
    _flip_a_byte_of_a_collection_manifest,
    _a_plain_file_in_its_place,
]


@pytest.mark.parametrize("force", [False, True], ids=["index", "rebuild"])
@pytest.mark.parametrize("damage", LITE_DAMAGES, ids=lambda damage: damage.__name__.strip("_"))
def test_a_damaged_milvus_lite_database_is_reported_in_one_line_and_made_anew(
    built, make_bot, lite, damage, force, warnings_seen
):
    release(lite)  # as if the process had ended: the files are damaged while no server holds them
    damage(Path(lite))
    fresh = make_bot(docs=built.config.paths.docs, store=MILVUS, verifier=NO_VERIFIER)
    fresh.index(force=force)
    assert "Copper conducts electricity well." in fresh.ask("What conducts electricity?").text
    assert row_count(fresh, "sentences") == len(fresh.data.sentences)
    damage_lines = [line for line in warnings_seen if "moved it to" not in line]
    assert len(damage_lines) <= 1 and all("\n" not in line for line in warnings_seen), warnings_seen
    if damage is _a_plain_file_in_its_place:  # not ours to delete: kept beside the new database
        aside = list(Path(lite).parent.glob("milvus.db.moved-aside-*"))
        assert len(aside) == 1 and aside[0].read_text(encoding="utf-8") == "not a database\n"
    assert Path(lite).is_dir()


def test_a_damaged_milvus_lite_database_on_the_command_line_is_one_warning_and_an_answer(built, lite, tmp_path):
    config = _config_file(built, tmp_path)
    release(lite)
    _zero_a_parquet_file(Path(lite))
    result = _run("-m", "chatbot", "ask", "What is bronze made of?", "--config", str(config))
    assert result.returncode == 0 and "Bronze is made by mixing copper with tin." in result.stdout, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "milvus.db is damaged" in warnings[0], result.stderr
    assert "Traceback" not in result.stderr and "serves one process at a time" not in result.stderr


class _FailingServer:
    """A stand-in for a Milvus server whose collections cannot be read: every call fails, none deletes."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append(name)
            raise RuntimeError("segment 7 not loaded: data corrupted")

        return call


def test_a_milvus_server_is_never_deleted_and_its_failure_names_the_collection(make_bot, monkeypatch, tmp_path):
    from chatbot.errors import ChatbotError
    from chatbot.index import milvus

    server = _FailingServer()
    monkeypatch.setattr(milvus, "connect", lambda uri, token_env="": server)
    bot = make_bot(DOCS, store={"backend": "milvus", "uri": "http://127.0.0.1:9", "collection": "handbook"})
    with pytest.raises(ChatbotError) as caught:
        bot.index()
    message = str(caught.value)
    assert "Milvus at http://127.0.0.1:9 failed on collection handbook_" in message and "\n" not in message
    assert "segment 7 not loaded: data corrupted" in message and "never deleted" in message
    assert not [call for call in server.calls if call.startswith(("drop", "delete"))]
    with pytest.raises(ChatbotError, match="will not delete the Milvus server database"):
        MilvusStore(bot.config).reset()


def _config_file(bot: Chatbot, tmp_path: Path) -> Path:
    path = tmp_path / "milvus.toml"
    path.write_text(
        f'[paths]\ndocs = "{bot.config.paths.docs}"\nindex = "{bot.config.paths.index}"\n[store]\nbackend = "milvus"\n'
        "[verifier]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


# In a child process: index, but die (SIGKILL) at a given point of publishing the new build.
KILLED_INDEX = """
import os, signal, sys
from chatbot.index import milvus
from chatbot.app.cli import main
point = sys.argv[1]
if point == "before-switch":
    milvus.MilvusStore.publish = lambda self, data, sink: os.kill(os.getpid(), signal.SIGKILL)
else:
    publish, remove = milvus.MilvusStore.publish, milvus.MilvusStore._remove_unused
    def publish_flagged(self, data, sink):
        self.publishing = True
        publish(self, data, sink)
    def remove_then_die(self, manifest, build):
        if getattr(self, "publishing", False):  # the manifest is switched; the old rows are not yet deleted
            os.kill(os.getpid(), signal.SIGKILL)
        remove(self, manifest, build)
    milvus.MilvusStore.publish, milvus.MilvusStore._remove_unused = publish_flagged, remove_then_die
sys.exit(main(["index", "--config", sys.argv[2]]))
"""


@pytest.mark.parametrize("point", ["before-switch", "after-switch"])
def test_a_build_killed_mid_way_leaves_the_last_complete_index_answerable(built, lite, tmp_path, point):
    docs = built.config.paths.docs
    old = {entry["path"] for entry in built.data.documents}
    extra = {f"extra-{number}.txt" for number in range(5)}
    for name in extra:
        (docs / name).write_text(f"Fact {name} is about the colour of the sky.\n", encoding="utf-8")
    (docs / "metals.txt").unlink()
    config = _config_file(built, tmp_path)
    release(lite)  # Milvus Lite serves one process at a time
    result = _run("-c", KILLED_INDEX, point, str(config))
    assert result.returncode == -signal.SIGKILL, result.stderr

    store = store_of(built)
    data = store.load()  # the index in use is whole: every row and text it counts on is there
    paths = {entry["path"] for entry in data.documents}
    assert paths == (old if point == "before-switch" else (old - {"metals.txt"}) | extra)
    fresh = Chatbot(built.config)
    fresh._data, fresh._pinned = data, True  # answer from that index as it is, without refreshing it first
    assert fresh.ask("What orbits the Earth?").quotes[0].source == "space/moon.txt"
    fresh = Chatbot(built.config)
    report = fresh.index()  # the next build finishes the job and clears what the killed one left
    if point == "before-switch":
        assert (sorted(report.added), report.removed) == (sorted(extra), ["metals.txt"])
    else:  # the new index is whole; the old rows left are never used, and the next build deletes them
        assert report.action == "unchanged"
        assert all(quote.source != "metals.txt" for quote in fresh.ask("What is bronze made of?").quotes)
        (docs / "trees.txt").write_text("Oaks live for centuries.\n", encoding="utf-8")
        assert fresh.index().added == ["trees.txt"]
    assert row_count(fresh, "sentences") == len(fresh.data.sentences)
    assert row_count(fresh, "passages") == len(fresh.data.passages)


def test_index_ask_batch_on_the_command_line(built, lite, tmp_path):
    docs = built.config.paths.docs
    (docs / "rivers.md").write_text("# Rivers\n\nThe Rhine flows into the North Sea.\n", encoding="utf-8")
    (docs / "new.txt").write_text("Glass is made from sand.\n", encoding="utf-8")
    config = _config_file(built, tmp_path)
    release(lite)
    result = _run("-m", "chatbot", "index", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["action"], report["added"], report["changed"], report["removed"], report["unchanged"]) == (
        "updated", ["new.txt"], ["rivers.md"], [], 2)
    assert report["sentences_embedded"] == 3
    result = _run("-m", "chatbot", "ask", "What is glass made from?", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["quotes"][0]["text"] == "Glass is made from sand."
    questions = tmp_path / "questions.txt"
    questions.write_text("Where does the Rhine flow?\nWhat is glass made from?\n", encoding="utf-8")
    result = _run("-m", "chatbot", "batch", str(questions), "--config", str(config))
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert "North Sea" in answers[0]["answer"] and "sand" in answers[1]["answer"]


def test_a_second_process_on_a_milvus_lite_file_is_told_why_it_cannot(built, tmp_path):
    config = _config_file(built, tmp_path)  # this process holds the Milvus Lite file open
    result = _run("-m", "chatbot", "ask", "What is glass made from?", "--config", str(config))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Milvus Lite serves one process at a time" in result.stderr


def test_serve_answers_from_milvus(built):
    from gradio_client import Client

    from chatbot.app.web.server import start
    from tests.app.test_ui import free_port

    app, url = start(built, host="127.0.0.1", port=free_port())
    try:
        answer = Client(url, verbose=False, download_files=False).predict("What is bronze made of?", api_name="/ask")
    finally:
        app.close()
    assert "Bronze is made by mixing copper with tin." in answer["answer"]


def test_config_names_a_milvus_server_or_a_lite_file(make_bot, monkeypatch):
    from chatbot.errors import ChatbotError

    with pytest.raises(ChatbotError, match="store.uri must be a Milvus Lite file"):
        make_bot(DOCS, store={"backend": "milvus", "uri": "index/milvus"})
    bot = make_bot(DOCS, store={"backend": "milvus", "uri": "http://127.0.0.1:9", "token_env": "CHATBOT_TEST_TOKEN"})
    monkeypatch.delenv("CHATBOT_TEST_TOKEN", raising=False)
    with pytest.raises(ChatbotError, match="CHATBOT_TEST_TOKEN, which is not set"):
        bot.index()
