"""Batch answering: every input format, one output per input in order, resume, bad rows, CSV and Markdown."""

import csv
import functools
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from chatbot.app.cli import main

QUESTIONS = [
    "Which chip did Guangdong highlight?",
    "Who won the 1966 World Cup?",
    "What could HarmonyOS replace?",
]


@pytest.fixture
def seed_args(seed_bot):
    return ["--docs", str(seed_bot.config.paths.docs), "--index", str(seed_bot.config.paths.index), "--quiet"]


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("kind", ["txt", "jsonl", "csv"])
def test_each_input_format_gives_one_answer_per_question_in_order(tmp_path, seed_args, kind):
    source = tmp_path / f"questions.{kind}"
    if kind == "txt":
        source.write_text("\n".join(QUESTIONS[:1] + [""] + QUESTIONS[1:]) + "\n", encoding="utf-8")
    elif kind == "jsonl":
        rows = [{"id": f"a{i}", "question": q, "topic": "seed"} for i, q in enumerate(QUESTIONS)]
        source.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    else:
        source.write_text(
            "question,note\n" + "\n".join(f'"{q}",n{i}' for i, q in enumerate(QUESTIONS)) + "\n", encoding="utf-8"
        )
    out = tmp_path / "answers.jsonl"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 0
    records = lines(out)
    assert [record["question"] for record in records] == QUESTIONS
    expected_ids = [f"a{i}" for i in range(3)] if kind == "jsonl" else ["q1", "q2", "q3"]
    assert [record["id"] for record in records] == expected_ids
    assert not records[0]["abstained"] and records[1]["abstained"]
    if kind == "jsonl":
        assert all(record["topic"] == "seed" for record in records)  # other fields are passed through
    meta = json.loads((tmp_path / "answers.jsonl.meta.json").read_text(encoding="utf-8"))
    assert meta["counts"]["answered"] == 3 and len(meta["index"]["manifest_sha256"]) == 64
    assert meta["model"]["name"] and meta["config"]["answer"]["max_quotes"] >= 1


def test_stdin_to_stdout(seed_args, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(QUESTIONS) + "\n"))
    assert main(["batch", "-", *seed_args]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["id"] for record in records] == ["q1", "q2", "q3"]


def test_bad_rows_become_error_lines_and_the_run_goes_on(tmp_path, seed_args):
    source = tmp_path / "questions.jsonl"
    source.write_text(
        '{"question": "Which chip did Guangdong highlight?"}\n\n{not json\n{"question": "   "}\n{"id": "x"}\n'
        '{"question": "Who leads the science department?"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "answers.jsonl"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 1
    records = lines(out)
    assert len(records) == 5
    assert ["error" in record for record in records] == [False, True, True, True, False]
    # A generated id counts rows (q2 is the second), and a blank line is not a row: the message says both.
    assert records[1]["id"] == "q2" and records[1]["error"].startswith("line 3 (row 2): invalid JSON (")
    assert records[2]["error"] == "line 4 (row 3): the question is empty"
    assert records[3]["id"] == "x" and records[3]["error"] == "line 5 (row 4): no 'question' text"
    for kind in ("jsonl", "csv", "md"):  # resuming does not write the bad rows a second time, in any format
        out = tmp_path / f"answers.{kind}"
        main(["batch", str(source), "-o", str(out), *seed_args])
        before = out.read_text(encoding="utf-8")
        assert main(["batch", str(source), "-o", str(out), "--resume", *seed_args]) == 0
        assert out.read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    ("name", "header", "sep", "encoding", "end"),
    [
        ("excel.csv", "ID;Question", ";", "cp1252", "\r\n"),  # Excel where the decimal point is a comma
        ("unicode.tsv", " Id \t QUESTION \tnote", "\t", "utf-16", "\n"),  # Excel's "Unicode text"
        ("bom.csv", "\ufeffid,question", ",", "utf-8", "\n"),
    ],
)
def test_spreadsheet_exports_are_read_as_they_are(tmp_path, seed_args, name, header, sep, encoding, end):
    """The columns are found whatever their case and spaces, the delimiter by the header, and the text is decoded
    as documents are."""
    body = [["m1", "Which chip did Guangdong highlight?", "x"], ["m2", "Qué es HarmonyOS?", "y"]]
    width = len(header.split(sep))
    source = tmp_path / name
    source.write_bytes(end.join([header] + [sep.join(row[:width]) for row in body] + [""]).encode(encoding))
    out = tmp_path / "answers.jsonl"
    argv = ["batch", str(source), "-o", str(out), *seed_args]
    assert main(argv + (["--format", "csv"] if name.endswith(".tsv") else [])) == 0
    records = lines(out)
    assert [(record["id"], record["question"]) for record in records] == [(row[0], row[1]) for row in body]
    assert not records[0]["abstained"]
    if width == 3:
        assert [record["note"] for record in records] == ["x", "y"]


def test_stdin_can_hold_jsonl(seed_args, monkeypatch, capsys):
    rows = [{"id": "a1", "question": QUESTIONS[0]}, {"id": "a2", "question": QUESTIONS[1]}]
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(json.dumps(row) + "\n" for row in rows)))
    assert main(["batch", "-", "--format", "jsonl", *seed_args]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(record["id"], record["question"]) for record in records] == [("a1", QUESTIONS[0]), ("a2", QUESTIONS[1])]


def test_resume_skips_what_is_answered_and_appends_the_rest(tmp_path, seed_args):
    source = tmp_path / "questions.txt"
    source.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 0
    first = out.read_text(encoding="utf-8").splitlines()
    out.write_text(first[0] + "\n" + first[1][:20], encoding="utf-8")  # as if the run crashed mid-line
    assert main(["batch", str(source), "-o", str(out), "--resume", *seed_args]) == 0
    assert [record["id"] for record in lines(out)] == ["q1", "q2", "q3"]
    assert json.loads((tmp_path / "answers.jsonl.meta.json").read_text())["counts"]["skipped"] == 1


def test_the_record_of_a_run_says_it_was_cut_short_and_keeps_the_runs_before_a_resume(tmp_path, seed_args, monkeypatch):
    import chatbot.app.batch

    source = tmp_path / "questions.txt"
    source.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    out, meta = tmp_path / "answers.jsonl", tmp_path / "answers.jsonl.meta.json"
    record_of = chatbot.app.batch.record_of
    calls = []

    def interrupted_at_the_second(row, answer):
        calls.append(row.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return record_of(row, answer)

    monkeypatch.setattr(chatbot.app.batch, "record_of", interrupted_at_the_second)
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 130
    first = json.loads(meta.read_text(encoding="utf-8"))
    assert first["interrupted"] and first["counts"]["answered"] == 1 and len(lines(out)) == 1

    monkeypatch.setattr(chatbot.app.batch, "record_of", record_of)
    assert main(["batch", str(source), "-o", str(out), "--resume", *seed_args]) == 0
    second = json.loads(meta.read_text(encoding="utf-8"))
    assert not second["interrupted"] and second["counts"]["skipped"] == 1 and second["counts"]["answered"] == 2
    assert second["earlier_runs"] == [first]
    assert [record["id"] for record in lines(out)] == ["q1", "q2", "q3"]


def test_csv_output_opens_in_the_csv_module(tmp_path, seed_args):
    source = tmp_path / "questions.txt"
    source.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    out = tmp_path / "answers.csv"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == ["q1", "q2", "q3"]
    assert rows[0]["abstained"] == "False" and rows[0]["citations"].startswith("guangdong-tech-self-reliance.txt:")
    start, end = rows[0]["citations"].split(";")[0].rsplit(":", 1)[1].split("-")
    assert int(start) < int(end)
    assert rows[1]["abstained"] == "True" and rows[1]["citations"] == ""


def test_markdown_output_renders_quotes_as_text(tmp_path, seed_args):
    from markdown_it import MarkdownIt

    source = tmp_path / "questions.txt"
    source.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    out = tmp_path / "answers.md"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 0
    html = MarkdownIt().render(out.read_text(encoding="utf-8"))
    assert html.count("<h2>") == 3 and "<blockquote>" in html and "Ascend 910C" in html
    assert "Nearest text (not an answer)" in html


def test_resume_needs_an_output_file(seed_args, tmp_path, capsys):
    (tmp_path / "q.txt").write_text("Anything?\n", encoding="utf-8")
    assert main(["batch", str(tmp_path / "q.txt"), "--resume", *seed_args]) == 1
    assert "needs an output file" in capsys.readouterr().err


def test_resume_refuses_a_question_file_that_changed(tmp_path, seed_args, capsys):
    """Ids of rows without one count rows, so a line put in front of the others gives every question after it
    another id: resuming would skip the new question and answer an old one twice. It stops instead, in every
    output format, before any work."""
    source = tmp_path / "questions.txt"
    asked = ["Which chip (the *Ascend* [910C]) did Guangdong highlight?", QUESTIONS[1]]
    source.write_text("\n".join(asked) + "\n", encoding="utf-8")
    for kind in ("jsonl", "csv", "md"):
        out = tmp_path / f"answers.{kind}"
        assert main(["batch", str(source), "-o", str(out), *seed_args]) == 0
        assert main(["batch", str(source), "-o", str(out), "--resume", *seed_args]) == 0  # nothing changed
        assert "0 answered (0 abstained), 0 errors, 2 skipped" in capsys.readouterr().err
    source.write_text("\n".join([QUESTIONS[2], *asked]) + "\n", encoding="utf-8")
    for kind in ("jsonl", "csv", "md"):
        out, meta = tmp_path / f"answers.{kind}", tmp_path / f"answers.{kind}.meta.json"
        before, record = out.read_text(encoding="utf-8"), meta.read_text(encoding="utf-8")
        assert main(["batch", str(source), "-o", str(out), "--resume", *seed_args]) == 1
        err = capsys.readouterr().err
        assert err == (
            f"error: the question file changed since {out} was written (q1 was \"{asked[0]}\", is now "
            f"\"{QUESTIONS[2]}\"); write to a new file, or delete q1 from {out.name} to ask it again\n"
        )
        assert out.read_text(encoding="utf-8") == before and meta.read_text(encoding="utf-8") == record


def test_generated_ids_do_not_take_ids_the_file_gives(tmp_path, seed_args, capsys):
    """Row 2 (invalid JSON, so without an id) would be q2, which row 3 names itself: the two shared an id, and
    once row 2 was fixed, resuming took it for answered. Now it is q2_2, and fixing it is a change resume sees."""
    source = tmp_path / "questions.jsonl"
    first = json.dumps({"question": QUESTIONS[0]})
    third = json.dumps({"id": "q2", "question": QUESTIONS[1]})
    source.write_text(f"{first}\n{{not json\n{third}\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 1
    assert [record["id"] for record in lines(out)] == ["q1", "q2_2", "q2"]
    assert "warning" not in capsys.readouterr().err
    source.write_text(f"{first}\n{json.dumps({'question': QUESTIONS[2]})}\n{third}\n", encoding="utf-8")
    assert main(["batch", str(source), "-o", str(out), "--resume", *seed_args]) == 1
    assert "(q2_2 was \"\", is now \"What could HarmonyOS replace?\")" in capsys.readouterr().err
    kept = [line for line in out.read_text(encoding="utf-8").splitlines() if '"q2_2"' not in line]
    out.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    assert main(["batch", str(source), "-o", str(out), "--resume", *seed_args]) == 0  # as the message says
    assert [(record["id"], record["question"]) for record in lines(out)][-1] == ("q2_2", QUESTIONS[2])


def test_ids_given_twice_are_named_in_one_warning(tmp_path, seed_args, capsys):
    source = tmp_path / "questions.csv"
    source.write_text(
        "id,question\n" + "".join(f"{row_id},{question}\n" for row_id, question in zip("aabbc", QUESTIONS * 2)),
        encoding="utf-8",
    )
    assert main(["batch", str(source), "-o", str(tmp_path / "answers.jsonl"), *seed_args]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert warnings == [
        f"warning: {source} gives more than one question the same id (a, b); "
        "their answers can be told apart only by their order"
    ]


@pytest.mark.slow
def test_ctrl_c_says_how_far_it_got_and_how_to_go_on(tmp_path, seed_args):
    """A real SIGINT to a real run: one line on stderr with the count, the meta file says interrupted."""
    source, out = tmp_path / "questions.txt", tmp_path / "answers.jsonl"
    source.write_text("".join(f"{QUESTIONS[i % 3]} ({i})\n" for i in range(640)), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "chatbot", "batch", str(source), "-o", str(out), *seed_args]
    # A child inherits an ignored SIGINT (as a shell's background job does, and as this test process may
    # have it after other tests): Ctrl-C's default is what is tested.
    restore = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=restore) as run:
        while not (out.exists() and out.stat().st_size) and run.poll() is None:
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        err = run.communicate(timeout=600)[1]
    written = len(lines(out))
    assert run.returncode == 130, err
    assert err == f"interrupted after {written} of 640 questions; run the same command with --resume to continue\n"
    assert json.loads((tmp_path / "answers.jsonl.meta.json").read_text(encoding="utf-8"))["interrupted"]


def test_questions_without_words_too_long_or_nested_too_deep_are_error_lines_naming_them(tmp_path, seed_args):
    """A question with no word in it is empty, one over [answer] max_question_chars is refused, and JSON nested
    deeper than Python's parser goes is invalid: each an error line naming its line and row; the run goes on."""
    source = tmp_path / "questions.jsonl"
    rows = [
        json.dumps({"question": "Which chip did Guangdong highlight?"}),
        json.dumps({"question": "\u200b\x07"}),
        json.dumps({"question": "?"}),
        json.dumps({"question": "x" * 2001}),
        '{"question": ' + "[" * 100_000 + "]" * 100_000 + "}",
        json.dumps({"question": "Where is DeepSeek based?"}),
    ]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 1
    records = lines(out)
    assert ["error" in record for record in records] == [False, True, True, True, True, False]
    empty = "the question is empty: it has no words, only punctuation, symbols or control characters"
    assert records[1]["error"] == f"line 2 (row 2): {empty}"
    assert records[2]["error"] == f"line 3 (row 3): {empty}"
    assert records[3]["error"] == (
        "line 4 (row 4): the question is 2,001 characters long; at most 2,000 are accepted ([answer] max_question_chars)"
    )
    assert records[4]["error"] == "line 5 (row 5): invalid JSON (nested too deeply)"
    assert not records[5]["abstained"]
