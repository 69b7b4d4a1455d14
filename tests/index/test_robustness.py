"""Nothing wedges the tool: links that lead back to themselves, a damaged `CURRENT`, any damage to any file of the
index folder (fuzzed), and index files changed or truncated under a running process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatbot import Chatbot
from chatbot.app.cli import main
from chatbot.index.store import load_index, manifest_checksum

KEEPER = "The keeper is Ann."
DOCS = {
    "metals.txt": "Copper conducts electricity well. It is used in most electrical wiring.\n",
    "rivers.md": "# Rivers\n\nThe Danube flows through ten countries. It ends in the Black Sea.\n",
}
QUESTION, ANSWER = "What conducts electricity well?", "Copper conducts electricity well."
ROOT = Path(__file__).resolve().parent.parent.parent


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def ask_json(capsys, *args: str) -> tuple[int, dict | None, list[str]]:
    """`chatbot ask --json` in this process (the model is loaded once per session): the exit status, the
    answer, and the lines on stderr."""
    status = main(["ask", *args, "--json"])
    out, err = capsys.readouterr()
    return status, json.loads(out) if status == 0 else None, err.splitlines()


# ----- links that cannot be resolved ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "links",
    [
        {"loop.txt": "loop.txt"},  # the repro: a link to itself
        {"one.txt": "two.txt", "two.txt": "one.txt"},  # a two-link cycle
        {"here": "there", "there": "here"},  # a cycle of names without an extension
    ],
)
def test_a_link_loop_is_skipped_with_a_warning_naming_it(tmp_path, capsys, links):
    docs = write(tmp_path / "d", {"a.txt": KEEPER + "\n"})
    for name, target in links.items():
        (docs / name).symlink_to(target)
    index = str(tmp_path / "d.idx")
    assert main(["index", "--docs", str(docs), "--index", index]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("index built (no index yet): 1 added")
    for name in links:
        assert f"warning: skipped {name}: it is a link that leads back to itself (a loop)" in err.splitlines()
    status, answer, err = ask_json(capsys, "Who is the keeper?", "--docs", str(docs), "--index", index)
    assert status == 0 and answer["quotes"][0]["text"] == KEEPER, err
    assert not [line for line in err if "Traceback" in line]


# ----- CURRENT ----------------------------------------------------------------------------------------------


def _flip_first_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF  # "2" (0x32) becomes 0xCD: not UTF-8
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("command", [["ask", QUESTION], ["index"], ["index", "--rebuild"]])
def test_a_flipped_byte_in_current_is_warned_about_and_rebuilt(tmp_path, capsys, command):
    docs, index = write(tmp_path / "docs", DOCS), tmp_path / "index"
    assert main(["index", "--docs", str(docs), "--index", str(index)]) == 0
    _flip_first_byte(index / "CURRENT")
    capsys.readouterr()
    assert main([*command, "--docs", str(docs), "--index", str(index)]) == 0
    out, err = capsys.readouterr()
    if command[0] == "ask":
        assert ANSWER in out
    assert f"{index / 'CURRENT'} is damaged (not text)" in err or command[-1] == "--rebuild", err
    assert "Traceback" not in err
    status, answer, _ = ask_json(capsys, QUESTION, "--docs", str(docs), "--index", str(index))
    assert status == 0 and ANSWER in answer["answer"]


# ----- the index folder, fuzzed -----------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    if data:
        for at in (0, len(data) // 2, len(data) - 1):
            data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("not ours\n", encoding="utf-8")


def _loop_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.name)


def _dangling_link(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "nowhere")


def _fifo(path: Path) -> None:
    """A named pipe in the file's place: a plain open() of it for reading waits for a writer, forever."""
    path.unlink()
    os.mkfifo(path)


DAMAGES = [_truncate, _zero, _flip, _folder, _loop_link, _dangling_link, _fifo]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A tiny documents folder and its index, built once; each fuzz case works on a fresh copy of the index."""
    folder = tmp_path_factory.mktemp("fuzz")
    docs = write(folder / "docs", DOCS)
    Chatbot.from_config(docs=docs, index=folder / "index").index()
    return docs, folder / "index"


def _index_files(index: Path) -> list[str]:
    return sorted(path.relative_to(index).as_posix() for path in index.rglob("*") if path.is_file())


def test_the_fuzz_covers_every_file_of_the_index_folder(pristine):
    names = _index_files(pristine[1])
    assert "CURRENT" in names and ".lock" in names
    assert {Path(name).name for name in names} >= {"manifest.json", "texts.json", "sentence_vectors.npy", "passages.faiss"}
    assert any("lexical_passages/" in name for name in names)


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda damage: damage.__name__.strip("_"))
def test_any_damage_to_any_index_file_ends_answered_or_in_one_clear_line(pristine, tmp_path, capsys, damage):
    """Each file of the index folder in turn (CURRENT, the lock, the manifest, every data file) is damaged in
    a fresh copy of the index; `chatbot ask` must then answer correctly (after warning and rebuilding), or
    fail with one line saying why: never a traceback, never a wrong answer."""
    docs, index = pristine
    outcomes = {}
    for name in _index_files(index):
        copy = tmp_path / name.replace("/", "_")
        shutil.copytree(index, copy, symlinks=True)
        damage(copy / name)
        status, answer, err = ask_json(capsys, QUESTION, "--docs", str(docs), "--index", str(copy))
        assert not [line for line in err if "Traceback" in line], (name, err)
        if status == 0:
            assert ANSWER in answer["answer"], (name, answer["answer"])
            assert load_index(copy) is not None  # and what it left is a whole index, every checksum right
            outcomes[name] = "answered"
        else:
            assert status == 1 and len(err) == 1 and err[0].startswith("error: "), (name, err)
            again = ask_json(capsys, QUESTION, "--docs", str(docs), "--index", str(copy))
            assert again[0] == 1 and again[2] == err, (name, again)  # the same one line, not something worse
            outcomes[name] = err[0]
        shutil.rmtree(copy)
    assert all(outcome == "answered" for outcome in outcomes.values()), outcomes  # here, every case is answered


# ----- what stands where the index's files and folders should be ------------------------------------------


def _run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`chatbot ARGS` in a child process, so that a hang fails the test (TimeoutExpired) rather than wedge it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "chatbot", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("name", ["CURRENT", "manifest.json"])
def test_a_fifo_in_place_of_current_or_the_manifest_is_damage_not_a_hang(pristine, tmp_path, name):
    docs, index = pristine
    copy = tmp_path / "index"
    shutil.copytree(index, copy, symlinks=True)
    _fifo(copy / name if name == "CURRENT" else _build_of(copy) / name)
    result = _run_cli("ask", QUESTION, "--docs", str(docs), "--index", str(copy), timeout=120)
    assert result.returncode == 0 and ANSWER in result.stdout, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "is not a regular file; rebuilding the index" in warnings[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["ask", QUESTION], ["index"], ["index", "--rebuild"]])
def test_a_file_in_place_of_the_builds_folder_is_moved_aside_and_the_index_rebuilt(pristine, tmp_path, capsys, command):
    docs, index = pristine
    copy = tmp_path / "index"
    shutil.copytree(index, copy, symlinks=True)
    shutil.rmtree(copy / "builds")
    (copy / "builds").write_text("not a folder\n", encoding="utf-8")
    assert main([*command, "--docs", str(docs), "--index", str(copy)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "File exists" not in err, err
    assert "builds was not a folder; moved it to" in err, err
    aside = [path for path in copy.iterdir() if path.name.startswith("builds.moved-aside-")]
    assert len(aside) == 1 and aside[0].read_text(encoding="utf-8") == "not a folder\n"  # kept, not deleted
    status, answer, _ = ask_json(capsys, QUESTION, "--docs", str(docs), "--index", str(copy))
    assert status == 0 and ANSWER in answer["answer"]


def _reshape(change):
    """A damage that changes the manifest's content and writes a checksum that holds for it: a manifest of the
    right format and checksum, but not of the shape the index code reads."""

    def damage(manifest: dict) -> None:
        change(manifest)
        manifest["checksum"] = manifest_checksum(manifest)

    damage.__name__ = change.__name__
    return damage


SHAPES = {
    "an entry without a path": lambda manifest: manifest["documents"][0].pop("path"),
    "documents as a string": lambda manifest: manifest.update(documents="metals.txt"),
    "an entry that is a list": lambda manifest: manifest["documents"].__setitem__(0, ["metals.txt"]),
    "a size that is text": lambda manifest: manifest["documents"][0].update(size="12"),
    "settings as a list": lambda manifest: manifest.update(settings=[]),
    "no model": lambda manifest: manifest.pop("model"),
    "files as a list": lambda manifest: manifest.update(files=["texts.json"]),
    "a skipped file without a reason": lambda manifest: manifest.update(skipped=[{"path": "x.bin"}]),
}


@pytest.mark.parametrize("command", [["ask", QUESTION], ["index", "--rebuild"]])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_manifest_of_the_wrong_shape_with_a_valid_checksum_is_damage(pristine, tmp_path, capsys, shape, command):
    docs, index = pristine
    copy = tmp_path / "index"
    shutil.copytree(index, copy, symlinks=True)
    path = _build_of(copy) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    _reshape(SHAPES[shape])(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    assert main([*command, "--docs", str(docs), "--index", str(copy)]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    if command[0] == "ask":
        assert ANSWER in out
        assert err.startswith("warning: manifest of ") and " is damaged: " in err and "rebuilding the index" in err, err
    status, answer, _ = ask_json(capsys, QUESTION, "--docs", str(docs), "--index", str(copy))
    assert status == 0 and ANSWER in answer["answer"]


# ----- a running process and its index files ----------------------------------------------------------------


def _build_of(index: Path) -> Path:
    return index / "builds" / (index / "CURRENT").read_text(encoding="utf-8").strip()


def test_a_build_changed_under_a_running_chatbot_is_loaded_again_and_checked(make_bot, warnings_seen):
    """Zeroed vectors written in place used to make every answer an abstention until a restart."""
    bot = make_bot(DOCS)
    assert ANSWER in bot.ask(QUESTION).text
    build = _build_of(bot.config.paths.index)
    with open(build / "sentence_vectors.npy", "r+b") as handle:  # in place: same inode, same size
        handle.seek(128)
        handle.write(bytes((build / "sentence_vectors.npy").stat().st_size - 128))
    assert ANSWER in bot.ask(QUESTION).text
    assert [line for line in warnings_seen if line.endswith("rebuilding the index")] == [
        "index file sentence_vectors.npy is missing or damaged; rebuilding the index"
    ]
    assert _build_of(bot.config.paths.index) != build


def test_a_build_published_by_another_process_is_taken_up(make_bot):
    bot = make_bot(DOCS)
    bot.ask(QUESTION)
    first = bot.data
    other = make_bot(docs=bot.config.paths.docs)
    other.index(force=True)  # another process rebuilds the same folder: a new build, the old one removed
    assert bot.data is not first and bot.data.origin == other.data.origin
    assert ANSWER in bot.ask(QUESTION).text


def test_files_truncated_under_a_running_process_do_not_kill_it(tmp_path):
    """Memory-mapped index files truncated under a process killed it (SIGBUS) on its next question. In a child
    process, so that a crash fails this test rather than the whole run."""
    docs, index = write(tmp_path / "docs", DOCS), tmp_path / "index"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from chatbot import Chatbot
        bot = Chatbot.from_config(docs={str(docs)!r}, index={str(index)!r})
        assert {ANSWER!r} in bot.ask({QUESTION!r}).text
        data = bot.data
        build = Path(bot.config.paths.index) / "builds" / (Path(bot.config.paths.index) / "CURRENT").read_text().strip()
        for path in sorted(build.rglob("*")):
            if path.is_file():
                os_handle = open(path, "r+b")
                os_handle.truncate(0)
                os_handle.close()
        # the arrays it answers from are its own: reading all of them cannot fault
        for array in (data.sentence_vectors, data.passage_vectors, data.sentences, data.passages):
            array.sum()
        data.sentence_lexical.scores(["copper"])
        assert {ANSWER!r} in bot.ask({QUESTION!r}).text
        print("answered")
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "answered"
    assert "rebuilding the index" in result.stderr
