"""The command line: the answer JSON contract, the terminal chat, and one clear line for every user mistake."""

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from chatbot.app.cli import main

from ..conftest import SEED_FILE, document_text


def run(*args, stdin: str = "", cwd=None) -> subprocess.CompletedProcess:
    """The real entry point, as a user runs it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "chatbot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture
def seed_args(seed_bot):
    """--docs/--index of the session's seed chatbot (index already built)."""
    return ["--docs", str(seed_bot.config.paths.docs), "--index", str(seed_bot.config.paths.index)]


def test_ask_json_matches_the_contract(seed_args, seed_docs):
    result = run("ask", "Which chip did Guangdong single out as a milestone?", "--json", *seed_args)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"id", "question", "abstained", "confidence", "answer", "quotes", "sources", "confidence_label"}
    assert not answer["abstained"] and 0 <= answer["confidence"] <= 1
    text = document_text(seed_docs, SEED_FILE)
    for number, quote in enumerate(answer["quotes"], start=1):
        assert text[quote["start"] : quote["end"]] == quote["text"]
        assert quote["source"] == SEED_FILE and quote["citation"] >= 1
        assert f"[{quote['citation']}]" in answer["answer"]
    assert any("Ascend 910C" in quote["text"] for quote in answer["quotes"])


def test_ask_prints_quotes_sources_and_confidence(seed_args, capsys):
    assert main(["ask", "What is HarmonyOS an alternative to?", *seed_args]) == 0
    out = capsys.readouterr().out
    assert "“" in out and "Sources:" in out and f"[1] {SEED_FILE}, line" in out and "Confidence:" in out


def test_control_characters_in_file_names_and_text_are_shown_as_escapes(tmp_path, capsys):
    """A newline in a file name would split its citation line, and an escape sequence in a document would
    be run by the terminal: the terminal shows both as escapes, while the JSON keeps the exact text."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harbour\nnotes\u202etxt.txt").write_bytes(b"The harbour crane \x1b[2J lifts forty tonnes.\r\n")
    args = ["--docs", str(docs), "--index", str(tmp_path / "index")]
    assert main(["ask", "How much can the harbour crane lift?", *args]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "crane \\x1b[2J lifts" in out
    assert "[1] harbour\\nnotes\\u202etxt.txt, line 1, characters 0-" in out
    assert main(["ask", "How much can the harbour crane lift?", "--json", *args]) == 0
    quote = json.loads(capsys.readouterr().out)["quotes"][0]
    assert quote["source"] == "harbour\nnotes\u202etxt.txt" and "\x1b[2J" in quote["text"]
    report = tmp_path / "answers.md"
    (tmp_path / "q.txt").write_text("How much can the harbour crane lift?\n", encoding="utf-8")
    assert main(["batch", str(tmp_path / "q.txt"), "-o", str(report), "--quiet", *args]) == 0
    shown = report.read_text(encoding="utf-8")
    assert "\x1b" not in shown and "\u202e" not in shown and "harbour\\\\nnotes\\\\u202etxt.txt" in shown


def test_source_takes_the_path_a_shell_completes(seed_args, seed_docs):
    expected = document_text(seed_docs, SEED_FILE)
    for path, cwd in ((SEED_FILE, None), (str(seed_docs / SEED_FILE), None), (f"./{SEED_FILE}", seed_docs)):
        result = run("source", path, *seed_args, cwd=cwd)
        assert (result.returncode, result.stdout) == (0, expected), (path, result.stderr)


def test_source_of_a_skipped_file_says_why(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("The ferry leaves at noon.\n", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"not a PDF at all")
    assert main(["source", "broken.pdf", "--docs", str(docs), "--index", str(tmp_path / "index")]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: broken.pdf is not in the index: it was skipped (cannot read it as PDF: ")


def test_ctrl_c_says_the_command_was_interrupted(seed_args, monkeypatch, capsys):
    from chatbot import Chatbot

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Chatbot, "index", interrupted)
    assert main(["index", *seed_args]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_off_topic_question_says_so(seed_args, capsys):
    assert main(["ask", "Who won the 2010 Wimbledon men's final?", *seed_args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The documents do not answer this question.") and "Nearest text (not an answer)" in out


def test_chat_answers_until_an_empty_line(seed_args):
    result = run("chat", *seed_args, stdin="Which chip did Guangdong highlight?\n\nnever asked\n")
    assert result.returncode == 0, result.stderr
    assert "Ascend 910C" in result.stdout and "never asked" not in result.stdout


def test_chat_echoes_piped_questions(seed_args):
    result = run("chat", *seed_args, stdin="Which chip did Guangdong highlight?\nWhat alternative to Android is mentioned?\n")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.index("> Which chip"), result.stdout.index("> What alternative")
    assert first < result.stdout.index("Ascend 910C") < second < result.stdout.index("HarmonyOS", second)


def _read_until(fd: int, pattern: str, timeout: float = 300) -> str:
    """What a terminal shows from now until the regular expression `pattern` matches it."""
    deadline = time.monotonic() + timeout
    shown = ""
    while not re.search(pattern, shown, re.DOTALL):
        if time.monotonic() > deadline or not select.select([fd], [], [], deadline - time.monotonic())[0]:
            raise AssertionError(f"{pattern!r} not shown; the terminal showed: {shown!r}")
        shown += os.read(fd, 65536).decode("utf-8", "replace")
    return shown


def test_chat_in_a_terminal_takes_a_pasted_question_whole(seed_args):
    """Lines pasted together are one question: a blank line inside the paste does not end the chat, and no
    line of it is left over for the shell. An empty line typed on its own still leaves."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the chat, with the terminal as its input and output
        os.execve(sys.executable, [sys.executable, "-m", "chatbot", "chat", *seed_args], {**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        _read_until(fd, "> $")
        os.write(fd, b"Which chip did\n\nGuangdong highlight?\n")
        shown = _read_until(fd, r"Confidence:.*\n> $")  # answered, and asking for the next question
        os.write(fd, b"\n")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert shown.count("Confidence:") == 1 and "Ascend 910C" in shown


def test_ctrl_c_stops_an_answer_and_the_chat_goes_on(seed_args, monkeypatch, capsys):
    from chatbot import Chatbot

    ask = Chatbot.ask
    calls = []

    def interrupted_once(self, question, *args, **kwargs):
        calls.append(question)
        if question == "Which chip did Guangdong highlight?":
            raise KeyboardInterrupt
        return ask(self, question, *args, **kwargs)

    monkeypatch.setattr(Chatbot, "ask", interrupted_once)
    monkeypatch.setattr("sys.stdin", io.StringIO("Which chip did Guangdong highlight?\nWhere is DeepSeek based?\n"))
    assert main(["chat", *seed_args]) == 0
    out = capsys.readouterr().out
    assert "(stopped; ask another question" in out and "Zhejiang" in out


def _wait_until_it_waits_for_a_key(pid: int, timeout: float = 10) -> None:
    """Return once process `pid` sleeps waiting for the terminal (its main thread in select/poll, from Linux's
    /proc; elsewhere after a second). CPython's readline shows the prompt, then calls select() and looks at
    signals only when select() is interrupted: a Ctrl-C that lands in between is acted on at the next key. No
    person is that quick, but a test that writes Ctrl-C the instant the prompt shows is, on a busy machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/wchan", encoding="ascii") as wchan:
                waiting = wchan.read()  # where in the kernel it sleeps, such as poll_schedule_timeout
        except OSError:  # no /proc
            time.sleep(1)
            return
        if "poll" in waiting or "select" in waiting:
            return
        time.sleep(0.05)


def test_ctrl_c_at_the_prompt_ends_the_chat_and_says_so(seed_args):
    """In a terminal, Ctrl-C at the prompt (nothing being answered) ends the chat with a line saying so, status 0,
    as the greeting and the README say; it no longer ends it with "interrupted" and status 130."""
    pid, fd = pty.fork()
    if pid == 0:  # Ctrl-C as a terminal's user has it, even if this process was started with SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execve(sys.executable, [sys.executable, "-m", "chatbot", "chat", *seed_args], {**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        greeting = _read_until(fd, "> $")
        _wait_until_it_waits_for_a_key(pid)
        os.write(fd, b"\x03")  # the terminal's Ctrl-C: SIGINT to the chat
        shown = _read_until(fd, r"the chat ends\)\r?\n", timeout=60)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert "Ctrl-C at the prompt leaves" in greeting
    assert os.waitstatus_to_exitcode(status) == 0
    assert "(Ctrl-C at the prompt: the chat ends)" in shown and "interrupted" not in shown


def test_chat_ends_on_end_of_input(seed_args):
    result = run("chat", *seed_args, stdin="Who won the 1998 World Cup?\n")
    assert result.returncode == 0 and "do not answer" in result.stdout


def test_index_reports_what_it_did(seed_args, capsys):
    assert main(["index", *seed_args]) == 0
    assert "index is up to date" in capsys.readouterr().out
    assert main(["index", "--json", *seed_args]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "unchanged"


def test_an_index_path_that_is_a_file_or_cannot_be_written_is_one_clear_line(seed_docs, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    assert main(["ask", "Where is DeepSeek based?", "--docs", str(seed_docs), "--index", str(tmp_path / "notes.txt")]) == 1
    assert capsys.readouterr().err.strip() == f"error: index path is not a folder: {tmp_path / 'notes.txt'}"
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert main(["ask", "Where is DeepSeek based?", "--docs", str(seed_docs), "--index", str(locked)]) == 1
        assert "cannot be written: Permission denied" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["ask", "   "], "error: the question is empty"),
        (None, ["ask", "Anything?", "--docs", "{tmp}/missing"], "error: documents folder not found"),
        ("empty", ["ask", "Anything?", "--docs", "{tmp}/empty"], "error: no documents (.txt, .text, .md"),
        ("unknown", ["ask", "Anything?", "--config", "{tmp}/c.toml"], "error: config: unknown key answer.colour"),
        ("badvalue", ["ask", "Anything?", "--config", "{tmp}/c.toml"], "error: config: answer.max_quotes must be int"),
        (None, ["ask", "Anything?", "--config", "{tmp}/none.toml"], "error: config file not found"),
        (None, ["batch", "{tmp}/none.txt"], "error: question file not found"),
        ("questions", ["batch", "{tmp}/q.txt", "-o", "{tmp}/none/a.jsonl"], "error: cannot write {tmp}/none/a.jsonl"),
        ("questions", ["batch", "{tmp}/q.txt", "-o", "{tmp}/dir.jsonl"], "error: {tmp}/dir.jsonl is a folder"),
        ("questions", ["batch", "{tmp}/q.jsonl", "-o", "{tmp}/q.jsonl"], "error: {tmp}/q.jsonl is the question file"),
        ("questions", ["batch", "{tmp}/q.txt", "--meta", "{tmp}/none/m.json"], "error: cannot write {tmp}/none/m.json"),
        ("questions", ["eval", "{tmp}/q.jsonl", "--report", "{tmp}/none/r.json"], "error: cannot write"),
        ("questions", ["batch", "{tmp}/q.txt", "--meta", "{tmp}/q.txt"], "error: {tmp}/q.txt is the question file;"),
        (
            "questions",
            ["batch", "{tmp}/q.txt", "-o", "{tmp}/a.jsonl", "--meta", "{tmp}/a.jsonl"],
            "error: {tmp}/a.jsonl is the output file; the run record would overwrite the answers",
        ),
        ("questions", ["batch", "{tmp}/blank.txt"], "error: no questions in {tmp}/blank.txt"),
        ("questions", ["batch", "{tmp}/q.csv"], "error: {tmp}/q.csv has no 'question' column (columns found: "),
        ("questions", ["eval", "{tmp}/bad.jsonl"], "error: {tmp}/bad.jsonl, line 2: 'answers' must be a list of texts"),
        ("badmodel", ["ask", "Anything?", "--config", "{tmp}/c.toml"], "error: config: model.name must name a model"),
    ],
)
def test_user_mistakes_give_one_clear_line(tmp_path, setup, args, message):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    if setup == "unknown":
        (tmp_path / "c.toml").write_text("[answer]\ncolour = 'red'\n", encoding="utf-8")
    if setup == "badvalue":
        (tmp_path / "c.toml").write_text("[answer]\nmax_quotes = 'two'\n", encoding="utf-8")
    if setup == "badmodel":
        (tmp_path / "c.toml").write_text("[model]\nname = ''\n", encoding="utf-8")
    if setup == "questions":
        (tmp_path / "q.txt").write_text("Where is DeepSeek based?\n", encoding="utf-8")
        (tmp_path / "dir.jsonl").mkdir()
        (tmp_path / "q.jsonl").write_text('{"question": "Where is DeepSeek based?", "answers": ["Zhejiang"]}\n')
        (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
        (tmp_path / "q.csv").write_text("query\n" + "Where is DeepSeek based?\n" * 50, encoding="utf-8")
        bad = '{"question": "A?", "answers": ["a"]}\n{"question": "B?", "answers": 1998}\n'
        (tmp_path / "bad.jsonl").write_text(bad, encoding="utf-8")
        (tmp_path / "a.jsonl").write_text('{"id": "q1"}\n', encoding="utf-8")
    result = run(*[arg.format(tmp=tmp_path) for arg in args], "--index", str(tmp_path / "index"))
    assert result.returncode == 1
    assert result.stderr.strip().startswith(message.format(tmp=tmp_path)), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()
    if setup == "questions":  # the files named are as they were
        assert (tmp_path / "q.txt").read_text(encoding="utf-8") == "Where is DeepSeek based?\n"
        assert (tmp_path / "a.jsonl").read_text(encoding="utf-8") == '{"id": "q1"}\n'
