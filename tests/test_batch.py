"""Batch answering: every input format, one output per input in order, resume, bad rows, CSV and Markdown."""

import csv
import io
import json

import pytest

from chatbot.cli import main

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
        '{"question": "Which chip did Guangdong highlight?"}\n{not json\n{"question": "   "}\n{"id": "x"}\n'
        '{"question": "Who leads the science department?"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "answers.jsonl"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 1
    records = lines(out)
    assert len(records) == 5
    assert ["error" in record for record in records] == [False, True, True, True, False]
    assert "invalid JSON" in records[1]["error"] and records[2]["error"] == "the question is empty"
    for kind in ("jsonl", "csv", "md"):  # resuming does not write the bad rows a second time, in any format
        out = tmp_path / f"answers.{kind}"
        main(["batch", str(source), "-o", str(out), *seed_args])
        before = out.read_text(encoding="utf-8")
        assert main(["batch", str(source), "-o", str(out), "--resume", *seed_args]) == 0
        assert out.read_text(encoding="utf-8") == before


def test_csv_without_a_question_column_marks_every_row(tmp_path, seed_args):
    source = tmp_path / "questions.csv"
    source.write_text("query\nWhat is this?\nAnd this?\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 1
    assert [record["error"] for record in lines(out)] == ["the CSV file has no 'question' column"] * 2


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
    import chatbot.batch

    source = tmp_path / "questions.txt"
    source.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    out, meta = tmp_path / "answers.jsonl", tmp_path / "answers.jsonl.meta.json"
    record_of = chatbot.batch.record_of
    calls = []

    def interrupted_at_the_second(row, answer):
        calls.append(row.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return record_of(row, answer)

    monkeypatch.setattr(chatbot.batch, "record_of", interrupted_at_the_second)
    assert main(["batch", str(source), "-o", str(out), *seed_args]) == 130
    first = json.loads(meta.read_text(encoding="utf-8"))
    assert first["interrupted"] and first["counts"]["answered"] == 1 and len(lines(out)) == 1

    monkeypatch.setattr(chatbot.batch, "record_of", record_of)
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
