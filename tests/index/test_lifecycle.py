"""The index follows the folder: incremental counts, full rebuilds when settings change, damaged files found and
rebuilt, a build killed with SIGKILL, two processes at once, and `chatbot index --watch`."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from chatbot.index.embed import resolve_model
from chatbot.index.indexer import is_current
from chatbot.index.store import build_lock, load_index, read_manifest

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = {
    "metals.txt": "Copper conducts electricity well. It is used in most electrical wiring.\n\n"
    "Bronze is made by mixing copper with tin.\n",
    "rivers.md": "# Rivers\n\nThe Danube flows through ten countries. It ends in the Black Sea.\n",
    "space/moon.txt": "The Moon orbits the Earth every 27 days. Its surface is covered in craters.\n",
}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture
def built(make_bot):
    """A chatbot over DOCS with its index built."""
    bot = make_bot(DOCS)
    report = bot.index()
    assert report.action == "built" and sorted(report.added) == sorted(DOCS)
    return bot


def sentences_of(bot, path: str) -> int:
    return next(entry["sentences"] for entry in bot.data.documents if entry["path"] == path)


def vectors_of(bot, path: str) -> np.ndarray:
    data = bot.data
    number = next(i for i, entry in enumerate(data.documents) if entry["path"] == path)
    return np.array(data.sentence_vectors[data.sentences[:, 0] == number])


def test_incremental_counts_after_add_change_delete_and_touch(built):
    docs = built.config.paths.docs
    moon = vectors_of(built, "space/moon.txt")

    (docs / "trees.txt").write_text("Oaks live for centuries. Their acorns feed many animals.\n", encoding="utf-8")
    report = built.index()
    assert (report.action, report.added, report.changed, report.removed, report.unchanged) == (
        "updated", ["trees.txt"], [], [], 3)
    assert report.sentences_embedded == sentences_of(built, "trees.txt") == 2
    assert np.array_equal(vectors_of(built, "space/moon.txt"), moon)  # reused, not embedded again

    (docs / "rivers.md").write_text("# Rivers\n\nThe Nile is the longest river in Africa.\n", encoding="utf-8")
    report = built.index()
    assert (report.added, report.changed, report.removed, report.unchanged) == ([], ["rivers.md"], [], 3)
    assert report.sentences_embedded == sentences_of(built, "rivers.md") == 2
    assert "Nile" in built.ask("Which is the longest river in Africa?").text

    (docs / "metals.txt").unlink()
    report = built.index()
    assert (report.added, report.changed, report.removed, report.unchanged) == ([], [], ["metals.txt"], 3)
    assert report.sentences_embedded == 0
    assert all(quote.source != "metals.txt" for quote in built.ask("What is bronze made of?").quotes)

    os.utime(docs / "trees.txt", ns=(1, 1))  # touched: new time, same content
    assert not is_current(read_manifest(built.config.paths.index), built.config)
    report = built.index()  # written again once, so that the file is not hashed on every question
    assert (report.action, report.changed, report.unchanged, report.sentences_embedded) == ("rewritten", [], 3, 0)
    assert is_current(read_manifest(built.config.paths.index), built.config)
    assert built.index().summary().startswith("index is up to date: 0 added, 0 changed, 0 removed, 3 unchanged")


def test_changing_the_model_rebuilds_everything_and_says_so(built, make_bot):
    same_model_by_path = resolve_model(built.config.model.name)
    other = make_bot(docs=built.config.paths.docs, model={"name": same_model_by_path})
    report = other.index()
    before, after = built.data.manifest["settings"]["model"], other.data.manifest["settings"]["model"]
    assert after == before.replace(built.config.model.name, same_model_by_path)  # "(bfloat16)" kept, if there
    assert report.action == "built"
    assert report.reason == f"model changed from {before} to {after}"
    assert report.sentences_embedded == len(other.data.sentences)
    assert f"index built (model changed from {before}" in report.summary()


def test_changing_segmentation_or_chunking_rebuilds_everything(built, make_bot):
    docs = built.config.paths.docs
    report = make_bot(docs=docs, segment={"max_sentence_chars": 40}).index()
    assert (report.action, report.reason) == ("built", "segmentation or chunking settings changed")
    report = make_bot(docs=docs, segment={"max_sentence_chars": 40}, chunk={"sentences_per_passage": 2}).index()
    assert (report.action, report.reason) == ("built", "segmentation or chunking settings changed")
    report = built.index(force=True)
    assert report.reason == "rebuild requested"
    # The documents are the same: a rebuild says so rather than calling them all new.
    assert (report.added, report.changed, report.removed, report.unchanged) == ([], [], [], 3)


def test_changing_the_vector_search_rebuilds_it_without_embedding_again(built, make_bot):
    docs, question = built.config.paths.docs, "What is bronze made of?"
    flat = built.ask(question)
    hnsw = make_bot(docs=docs, search={"kind": "hnsw"})
    report = hnsw.index()
    assert (report.action, report.reason, report.sentences_embedded) == (
        "rewritten", "vector search settings changed", 0)
    assert isinstance(hnsw.data.sentence_search, faiss.IndexHNSW)
    assert isinstance(hnsw.data.passage_search, faiss.IndexHNSW)
    assert hnsw.ask(question).quotes == flat.quotes  # a graph this small is searched exactly
    # How many candidates an HNSW search keeps is read at search time: no rebuild.
    assert make_bot(docs=docs, search={"kind": "hnsw", "hnsw_ef_search": 16}).index().action == "unchanged"
    back = make_bot(docs=docs).index()
    assert (back.reason, back.sentences_embedded) == ("vector search settings changed", 0)


def test_passage_vectors_derived_or_embedded_and_switching_embeds_only_what_it_must(built, make_bot):
    data = built.data
    texts = [data.texts[d][s:e] for d, s, e in data.sentences.tolist()]
    lengths = built.embedder.token_counts(texts)
    assert lengths.tolist() == [len(built.embedder.document_model.tokenizer(text)["input_ids"]) for text in texts]
    for passage, (lo, hi) in enumerate(data.passages[:, 3:5].tolist()):  # weighted by word-pieces, unit length
        expected = (np.asarray(data.sentence_vectors[lo:hi], np.float64) * lengths[lo:hi, None]).sum(axis=0)
        assert np.allclose(data.passage_vectors[passage], expected / np.linalg.norm(expected), atol=1e-3)  # stored in float16

    docs = built.config.paths.docs
    embedded = make_bot(docs=docs, chunk={"passage_vectors": "embedded"})
    assert not is_current(read_manifest(built.config.paths.index), embedded.config)
    report = embedded.index()  # the passages are embedded; the sentences' vectors are kept
    assert (report.action, report.reason, report.sentences_embedded) == (
        "rewritten", "the way passage vectors are made changed", 0)
    assert np.array_equal(embedded.data.sentence_vectors, data.sentence_vectors)
    passage_texts = [data.texts[d][s:e] for d, s, e in data.passages[:, :3].tolist()]
    assert np.allclose(embedded.data.passage_vectors, embedded.embedder.encode_documents(passage_texts), atol=1e-3)
    assert not np.allclose(embedded.data.passage_vectors, data.passage_vectors, atol=1e-2)

    (docs / "new.txt").write_text("Glass is made from sand. It melts in a furnace.\n", encoding="utf-8")
    report = embedded.index()  # an update embeds the new document's sentences and passages, keeps the rest
    assert (report.action, report.added, report.sentences_embedded) == ("updated", ["new.txt"], 2)
    new = embedded.data.passages[:, 0] == next(
        i for i, entry in enumerate(embedded.data.documents) if entry["path"] == "new.txt")
    new_texts = [embedded.data.texts[d][s:e] for d, s, e in embedded.data.passages[new, :3].tolist()]
    assert np.allclose(embedded.data.passage_vectors[new], embedded.embedder.encode_documents(new_texts), atol=1e-3)

    derived = make_bot(docs=docs)  # and back: made from the stored sentence vectors, nothing embedded
    report = derived.index()
    assert (report.action, report.reason, report.sentences_embedded) == (
        "rewritten", "the way passage vectors are made changed", 0)
    kept = ~new
    assert np.array_equal(derived.data.passage_vectors[kept], data.passage_vectors)


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chatbot", *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def test_index_json_reports_counts(built):
    docs, index = built.config.paths.docs, built.config.paths.index
    (docs / "rivers.md").write_text("# Rivers\n\nThe Rhine flows into the North Sea.\n", encoding="utf-8")
    (docs / "new.txt").write_text("Glass is made from sand.\n", encoding="utf-8")
    (docs / "junk.txt").write_bytes(b"\x00\xff" * 50)
    result = run_cli("index", "--json", "--docs", str(docs), "--index", str(index))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["action"] == "updated"
    assert (report["added"], report["changed"], report["removed"], report["unchanged"]) == (
        ["new.txt"], ["rivers.md"], [], 2)
    assert report["sentences_embedded"] == 3  # "Rivers", the Rhine, glass
    assert report["skipped"] == [{"path": "junk.txt", "reason": "it looks like a binary file"}]
    assert "warning: skipped junk.txt: it looks like a binary file" in result.stderr.splitlines()


def _truncate(build: Path) -> None:
    path = build / "sentence_vectors.npy"
    path.write_bytes(path.read_bytes()[:-100])


def _flip_byte(build: Path) -> None:
    path = build / "passages.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_texts(build: Path) -> None:
    path = build / "texts.json"
    path.write_text(path.read_text(encoding="utf-8").replace("Copper", "Silver"), encoding="utf-8")


def _edit_manifest(build: Path) -> None:
    path = build / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["documents"][0]["sentences"] += 1
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _garble_manifest(build: Path) -> None:
    (build / "manifest.json").write_text('{"format": 1, "documents": [', encoding="utf-8")


def _remove_lexical(build: Path) -> None:
    for path in (build / "lexical_passages").iterdir():
        path.unlink()


def _garble_current(build: Path) -> None:
    (build.parent.parent / "CURRENT").write_text("../../elsewhere\n", encoding="utf-8")


def _lose_build(build: Path) -> None:
    for path in sorted(build.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    build.rmdir()


DAMAGES = [
    _truncate, _flip_byte, _edit_texts, _edit_manifest, _garble_manifest, _remove_lexical, _garble_current, _lose_build
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_index_is_detected_and_rebuilt_with_a_warning(built, make_bot, damage, warnings_seen):
    index = built.config.paths.index
    build = index / "builds" / (index / "CURRENT").read_text().strip()
    damage(build)
    fresh = make_bot(docs=built.config.paths.docs)  # a new process's view: nothing in memory
    report = fresh.index()
    # The documents count as unchanged when the manifest still says what they were, else as added.
    assert report.action == "built" and not (report.changed or report.removed)
    assert sorted(report.added) == sorted(DOCS) or (report.added, report.unchanged) == ([], len(DOCS))
    assert len(warnings_seen) == 1 and warnings_seen[0].endswith("; rebuilding the index")
    assert load_index(index) is not None  # verifies every checksum
    assert "Copper conducts electricity well." in fresh.ask("What conducts electricity?").text


def test_an_index_pointed_at_another_folder_says_so(built, tmp_path, make_bot, warnings_seen):
    """Naming an index that was built for another documents folder replaces it: never silently."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "tides.txt").write_text("The tide turns every six hours.\n", encoding="utf-8")
    report = make_bot(docs=other).index()  # the same --index
    assert report.added == ["tides.txt"] and sorted(report.removed) == sorted(DOCS)
    docs = built.config.paths.docs
    assert warnings_seen == [f"the index in {built.config.paths.index} was of {docs}; it now indexes {other} instead"]


def start_cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "chatbot", *args], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, **kwargs
    )


def test_a_build_killed_mid_way_leaves_a_usable_index(built):
    docs, index = built.config.paths.docs, built.config.paths.index
    old = {entry["path"] for entry in read_manifest(index)["documents"]}
    for number in range(20):
        (docs / f"extra-{number}.txt").write_text(f"Fact number {number} is about the colour of the sky.\n" * 5)
    process = start_cli("index", "--docs", str(docs), "--index", str(index))
    while process.poll() is None and not list((index / "builds").glob(".staging-*")):
        time.sleep(0.01)  # wait until the new build is being written
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=120)

    data = load_index(index)  # checksums verified: no half-written file is used
    paths = {entry["path"] for entry in data.documents}
    assert paths in (old, old | {f"extra-{number}.txt" for number in range(20)})
    if killed:
        assert process.returncode == -signal.SIGKILL
    report = built.index()  # the next run finishes the job and clears what the killed one left
    assert sorted(report.added) == sorted(f"extra-{number}.txt" for number in range(20)) or report.action == "unchanged"
    assert not list((index / "builds").glob(".staging-*"))
    assert len(list((index / "builds").iterdir())) == 1


@pytest.mark.slow
def test_two_processes_indexing_at_once_build_once(tmp_path):
    docs = tmp_path / "docs"
    for name, text in DOCS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    index = tmp_path / "index"
    processes = [start_cli("index", "--docs", str(docs), "--index", str(index)) for _ in range(2)]
    results = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], results
    outputs = sorted(stdout.split(":")[0] for stdout, _ in results)
    assert outputs == ["index built (no index yet)", "index is up to date"]
    for _, stderr in results:
        assert "Traceback" not in stderr
    assert {entry["path"] for entry in load_index(index).documents} == set(DOCS)


@pytest.mark.slow
def test_a_second_process_is_told_it_waits_for_the_lock(tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    (docs / "metals.txt").write_text(DOCS["metals.txt"], encoding="utf-8")
    with build_lock(index):  # this test plays the first process
        process = start_cli("index", "--docs", str(docs), "--index", str(index))
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True).start()
        waiting = _wait_for(lines, "another process", [])
    assert waiting == f"warning: another process is building the index in {index}; waiting for it"
    stdout, _ = process.communicate(timeout=600)
    assert process.returncode == 0 and stdout.startswith("index built (no index yet)")


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


def _wait_for(lines: queue.Queue, text: str, seen: list[str]) -> str:
    """The next line holding `text`; fails after a generous limit (a hang guard, not a timing check)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    pytest.fail(f"no line with {text!r}; saw {seen}")


@pytest.mark.slow
def test_watch_follows_the_folder_and_stops_cleanly_on_ctrl_c(built):
    docs, index = built.config.paths.docs, built.config.paths.index
    # As in a terminal, Ctrl-C (SIGINT) raises KeyboardInterrupt, even if this test runs where SIGINT is ignored.
    script = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from chatbot.app.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, "index", "--watch", "--docs", str(docs), "--index", str(index)],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "index is up to date", seen)
        (docs / "trees.txt").write_text("Oaks live for centuries.\n", encoding="utf-8")
        assert "1 added" in _wait_for(lines, "index updated", seen)
        assert "trees.txt" in {entry["path"] for entry in read_manifest(index)["documents"]}
        (docs / "metals.txt").unlink()
        assert "1 removed" in _wait_for(lines, "index updated", seen)
        assert "metals.txt" not in {entry["path"] for entry in read_manifest(index)["documents"]}
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "stopped watching" in stderr and "Traceback" not in stderr
    assert load_index(index) is not None


def test_an_index_folder_keeps_what_the_chatbot_did_not_write_there(built):
    # The user may name a folder of their own as --index; publishing a build removes only old builds.
    index = built.config.paths.index
    own = index / "builds" / "release-1"
    own.mkdir()
    (own / "app.bin").write_bytes(b"precious")
    (built.config.paths.docs / "trees.txt").write_text("Oaks live for centuries.\n", encoding="utf-8")
    built.index()
    assert (own / "app.bin").read_bytes() == b"precious"
    assert len([path for path in (index / "builds").iterdir() if path.name != "release-1"]) == 1


def test_an_index_is_readable_by_others_as_the_umask_allows(make_bot):
    old = os.umask(0o022)
    try:
        bot = make_bot(DOCS)
        bot.index()
    finally:
        os.umask(old)
    index = bot.config.paths.index
    build = index / "builds" / (index / "CURRENT").read_text().strip()
    assert (index / "CURRENT").stat().st_mode & 0o777 == 0o644
    assert build.stat().st_mode & 0o777 == 0o755
    assert (build / "manifest.json").stat().st_mode & 0o777 == 0o644


def test_a_build_reports_its_progress_to_the_caller(make_bot):
    bot = make_bot(DOCS)
    seen: list[tuple[int, int]] = []
    report = bot.index(on_progress=lambda done, total: seen.append((done, total)))
    total = len(bot.data.sentences)  # only sentences are embedded; passage vectors are made from theirs
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert report.sentences_embedded == len(bot.data.sentences)
    seen.clear()
    bot.index(on_progress=lambda done, total: seen.append((done, total)))
    assert seen == []  # nothing embedded, nothing reported


@pytest.mark.slow
def test_ctrl_c_while_embedding_leaves_the_last_complete_index_answering(built, tmp_path):
    """A real SIGINT to `chatbot index --rebuild` once its first batch is embedded (one text a batch, so more
    batches wait): status 130, one line, and the build before it still current, whole and answering."""
    docs, index = built.config.paths.docs, built.config.paths.index
    before = (index / "CURRENT").read_text()
    config = tmp_path / "one-a-batch.toml"
    config.write_text("[model]\nbatch_size = 1\n", encoding="utf-8")
    script = (  # as in a terminal, Ctrl-C raises KeyboardInterrupt; "embedding" is printed after the first batch
        "import signal, sys, time; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from chatbot.index import embed\n"
        "real = embed.Embedder.encode_documents\n"
        "def slow(self, texts, on_batch=None):\n"
        "    def note(count):\n"
        "        print('embedding', flush=True); time.sleep(60)\n"
        "    return real(self, texts, note)\n"
        "embed.Embedder.encode_documents = slow\n"
        "from chatbot.app.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", script, "index", "--rebuild", "--config", str(config)]
    command += ["--docs", str(docs), "--index", str(index)]
    process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        _wait_for(lines, "embedding", [])
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert (index / "CURRENT").read_text() == before
    assert [path.name for path in (index / "builds").iterdir()] == [before.strip()]  # no staging folder left
    report = built.replace().index()
    assert report.action == "unchanged"  # whole and current: nothing to build again
    answer = built.replace().ask("What is bronze made of?")
    assert any("Bronze is made by mixing copper with tin." in source.text for source in answer.sources)


def _children_of(pid: int) -> list[str]:
    """The processes whose parent is `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(stat.parent.name)
    return found


def _running(pid: str) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.mark.slow
def test_ctrl_c_stops_a_build_embedding_in_a_child_process_and_the_child_with_it(built):
    """Ctrl-C in a terminal reaches the whole process group: the child ignores it, the parent stops it and
    exits with 130, nothing is left running or half written, and no warning about leaked resources."""
    docs, index = built.config.paths.docs, built.config.paths.index
    before = (index / "CURRENT").read_text()
    script = (  # every build embeds in a child; "started" once the child is at work
        "import signal, sys, time; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from chatbot.index import build, embed\n"
        "build.CHILD_FROM = 1\n"
        "real = embed.ChildEmbedder.encode_documents\n"
        "def noted(self, texts, on_batch=None):\n"
        "    print('started', flush=True)\n"
        "    return real(self, texts * 2000, on_batch)[: len(texts)]\n"
        "embed.ChildEmbedder.encode_documents = noted\n"
        "from chatbot.app.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", script, "index", "--rebuild", "--docs", str(docs), "--index", str(index)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        _wait_for(lines, "started", [])
        time.sleep(1)
        children = _children_of(process.pid)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # as a terminal does
        _, stderr = process.communicate(timeout=120)
    assert children  # the child was there, at work
    assert process.returncode == 130 and "interrupted" in stderr, stderr
    assert "Traceback" not in stderr and "leaked" not in stderr, stderr
    deadline = time.monotonic() + 30  # multiprocessing's resource tracker leaves once its pipe closes
    while time.monotonic() < deadline and any(_running(child) for child in children):
        time.sleep(0.2)
    assert not any(_running(child) for child in children)
    assert (index / "CURRENT").read_text() == before
    assert [path.name for path in (index / "builds").iterdir()] == [before.strip()]


def test_texts_are_written_a_slice_at_a_time_as_json_writes_them_whole(tmp_path):
    from chatbot.index import files

    for texts in ([], [""], ["x\"y\\z\n\t\u2028\U0001F600 é\x00\x1f", "", "long " * 300_000 + "\U0001F600" * 5]):
        files.write_json(tmp_path / "whole.json", texts)
        files.write_texts(tmp_path / "sliced.json", texts)
        assert (tmp_path / "sliced.json").read_bytes() == (tmp_path / "whole.json").read_bytes()


@pytest.mark.slow
def test_a_large_build_embeds_in_a_child_process_with_the_same_vectors(built, make_bot, monkeypatch):
    from chatbot.index import build, embed

    children = []

    class Watched(embed.ChildEmbedder):
        def __enter__(self):
            children.append(super().__enter__())
            return children[-1]

    monkeypatch.setattr(build, "CHILD_FROM", 1)
    monkeypatch.setattr(build, "ChildEmbedder", Watched)
    monkeypatch.setattr(build, "libraries_loaded", lambda: False)  # as in a fresh `chatbot index`
    docs = built.config.paths.docs
    for mode in ("derived", "embedded"):
        bot = make_bot(docs=docs, index=docs.parent / f"index-{mode}", chunk={"passage_vectors": mode})
        report = bot.index()
        assert (report.action, report.sentences_embedded) == ("built", len(built.data.sentences))
        assert children and children[-1]._process.exitcode == 0  # it ended when the build was done
        assert np.allclose(np.asarray(bot.data.sentence_vectors, np.float32), built.data.sentence_vectors, atol=1e-3)
        if mode == "derived":
            assert np.array_equal(bot.data.passage_vectors, built.data.passage_vectors)
    assert len(children) == 2
    assert bot.ask("What is bronze made of?").to_dict() == make_bot(
        docs=docs, index=docs.parent / "index-embedded", chunk={"passage_vectors": "embedded"}
    ).ask("What is bronze made of?").to_dict()


@pytest.mark.slow
def test_a_child_embedder_fails_with_the_model_error_and_goes_away(monkeypatch):
    from chatbot.errors import ChatbotError
    from chatbot.index.embed import ChildEmbedder, Embedder

    with pytest.raises(ChatbotError, match="cannot load embedding model"):
        with ChildEmbedder(Embedder("/nonexistent/model-folder", dtype="float32")) as child:
            child.encode_documents(["A sentence."])
    assert not child._process.is_alive()
