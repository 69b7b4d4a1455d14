"""`chatbot verify` and chatbot.answering.recheck: saved answers re-checked against documents that were edited, moved
around, deleted or renamed after answering; `--fix` output; a PDF checked against its extracted text."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot import Answer, ChatbotError
from chatbot.answering.recheck import MARK, Rechecker, check_answer, read_answers
from chatbot.app.cli import main
from chatbot.documents.load import FileInfo, read_document

from ..conftest import ROOT, SEED_FILE, document_text
from ..documents.test_formats import EXTENSIONS, PAGES, write_pdf

QUESTION = "Which chip did Guangdong single out as a milestone?"


@pytest.fixture(scope="module")
def answer(seed_bot) -> Answer:
    """A real answer from the seed document, with quotes from more than one line."""
    answer = seed_bot.ask(QUESTION)
    assert not answer.abstained and len(answer.quotes) >= 1
    assert all(quote.source == SEED_FILE for quote in answer.quotes)
    return answer


@pytest.fixture
def docs(seed_docs, tmp_path) -> Path:
    """A copy of the seed documents that a test may edit (the answer was given from the same text)."""
    folder = tmp_path / "docs"
    shutil.copytree(seed_docs, folder)
    return folder


def edit(docs: Path, change) -> None:
    path = docs / SEED_FILE
    path.write_bytes(change(document_text(docs, SEED_FILE)).encode("utf-8"))


def statuses(checks) -> list[str]:
    return [check.status for check in checks]


def test_an_unchanged_document_is_ok_and_the_quote_is_where_it_was(answer, docs):
    checks = check_answer(answer, docs)
    assert statuses(checks) == ["ok"] * len(answer.quotes)
    assert [check.now for check in checks] == list(answer.quotes)
    assert all(check.detail == "" and check.holds for check in checks)
    assert answer.verify(docs) == checks  # the method on the answer is the same check
    assert check_answer(answer.to_dict(), docs) == checks  # and so is its JSON


def test_text_inserted_before_the_quote_moves_it(answer, docs):
    edit(docs, lambda text: "A new first line.\nAnd a second one, added later.\n" + text)
    text = document_text(docs, SEED_FILE)
    shift = len("A new first line.\nAnd a second one, added later.\n")
    for quote, check in zip(answer.quotes, check_answer(answer, docs)):
        assert check.status == "moved" and check.occurrences == 1
        assert (check.now.start, check.now.end) == (quote.start + shift, quote.end + shift)
        assert text[check.now.start : check.now.end] == quote.text
        assert check.now.line == quote.line + 2
        assert check.now.source_sha256 != quote.source_sha256
        assert check.now.source_sha256 == read_document(info(docs / SEED_FILE, SEED_FILE)).sha256
        assert check.detail.startswith(f"now at {check.now.start}-{check.now.end}, line {check.now.line}")


def test_an_edit_after_the_quote_leaves_it_ok(answer, docs):
    edit(docs, lambda text: text + "\nA closing line added later.\n")
    for quote, check in zip(answer.quotes, check_answer(answer, docs)):
        assert check.status == "ok" and (check.now.start, check.now.end, check.now.line) == (
            quote.start,
            quote.end,
            quote.line,
        )
        assert check.now.source_sha256 != quote.source_sha256
        assert check.detail == "the document changed, but the quote is still where it was"


def test_an_edited_quote_is_changed(answer, docs):
    first = answer.quotes[0]
    edit(
        docs, lambda text: text[: first.start] + text[first.start : first.end].replace(" ", "_", 1) + text[first.end :]
    )
    checks = check_answer(answer, docs)
    assert checks[0].status == "changed" and checks[0].now is None and not checks[0].holds
    assert checks[0].detail == "the text is no longer in the document"
    assert statuses(checks[1:]) == ["ok"] * (len(checks) - 1)


@pytest.mark.parametrize("how", ["delete", "rename", "empty"])
def test_a_deleted_renamed_or_emptied_document_is_missing(answer, docs, how):
    path = docs / SEED_FILE
    if how == "delete":
        path.unlink()
    elif how == "rename":
        path.rename(docs / "renamed.txt")
    else:
        path.write_bytes(b"")
    checks = check_answer(answer, docs)
    assert statuses(checks) == ["missing"] * len(answer.quotes)
    expected = "can no longer be read: it is empty" if how == "empty" else "is not in the documents folder"
    assert checks[0].detail == f"the document {expected}" and checks[0].now is None


def test_a_document_of_a_type_no_longer_read_is_missing(answer, docs):
    rechecker = Rechecker(docs, extensions=(".md",))
    assert statuses(rechecker.check(answer)) == ["missing"] * len(answer.quotes)
    assert "is no longer read: unsupported file type (.txt)" in rechecker.check(answer)[0].detail


def test_a_source_outside_the_documents_folder_is_missing(answer, docs, tmp_path):
    record = answer.to_dict()
    (tmp_path / "outside.txt").write_text(answer.quotes[0].text, encoding="utf-8")
    record["quotes"][0] |= {"source": "../outside.txt", "start": 0, "end": len(answer.quotes[0].text)}
    assert check_answer(record, docs)[0].status == "missing"


def test_of_several_occurrences_the_nearest_to_the_old_offset_is_taken(answer, docs):
    quote = answer.quotes[0]
    # The quote's sentence is also put far before it and just after it; the original place is given a word.
    edit(
        docs,
        lambda text: (
            quote.text + "\n" + text[: quote.start] + "Indeed. " + quote.text + " " + quote.text + text[quote.end :]
        ),
    )
    text = document_text(docs, SEED_FILE)
    check = check_answer(answer, docs)[0]
    assert check.status == "moved" and check.occurrences == 3
    expected = len(quote.text) + 1 + quote.start + len("Indeed. ")
    assert check.now.start == expected and text[check.now.start : check.now.end] == quote.text
    assert check.detail.endswith(f"(it occurs 3 times; the nearest to {quote.start} is taken)")


def test_fix_updates_moved_quotes_and_marks_the_others_and_then_verifies_clean(answer, docs, tmp_path):
    record = {**answer.to_dict(), "id": "q1", "extra": "kept"}
    record["quotes"][0]["answer_span"] = {"start": answer.quotes[0].start + 3, "end": answer.quotes[0].start + 9}
    edit(docs, lambda text: "Inserted.\n" + text)
    rechecker = Rechecker(docs)
    fixed = rechecker.fix(record, rechecker.check(record))
    assert record["quotes"][0]["start"] == answer.quotes[0].start  # the record itself is left as it was
    text = document_text(docs, SEED_FILE)
    for quote in fixed["quotes"]:
        assert text[quote["start"] : quote["end"]] == quote["text"] and MARK not in quote
    span = fixed["quotes"][0]["answer_span"]
    assert (span["start"] - fixed["quotes"][0]["start"], span["end"] - fixed["quotes"][0]["start"]) == (3, 9)
    for source in fixed["sources"]:  # the passages around the quotes move with them
        assert text[source["start"] : source["end"]] == source["text"]
    assert fixed["extra"] == "kept" and set(record) <= set(fixed)
    assert statuses(rechecker.check(fixed)) == ["ok"] * len(answer.quotes)

    (docs / SEED_FILE).unlink()
    marked = Rechecker(docs).fix(fixed, Rechecker(docs).check(fixed))
    assert marked["quotes"][0][MARK] == {"status": "missing", "detail": "the document is not in the documents folder"}
    assert all(source[MARK]["status"] == "missing" for source in marked["sources"])
    assert {key: value for key, value in marked["quotes"][0].items() if key != MARK} == fixed["quotes"][0]


def info(path: Path, name: str) -> FileInfo:
    stat = path.stat()
    return FileInfo(name, path, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def test_a_pdf_quote_is_checked_against_its_extracted_text(make_bot, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "report.pdf", PAGES)
    bot = make_bot(docs=docs, documents={"extensions": EXTENSIONS})
    answer = bot.ask("Who designed the Ascend 910C chip?")
    quote = answer.quotes[0]
    assert quote.source == "report.pdf" and quote.page == 2
    assert quote.text.encode("utf-8") not in (docs / "report.pdf").read_bytes()  # only in the extracted text
    rechecker = Rechecker(docs, EXTENSIONS)
    assert statuses(rechecker.check(answer)) == ["ok"] * len(answer.quotes)

    write_pdf(docs / "report.pdf", ["A page put in front.", *PAGES])  # the quote is now on page 3
    check = Rechecker(docs, EXTENSIONS).check(answer)[0]
    document = read_document(info(docs / "report.pdf", "report.pdf"))
    assert check.status == "moved" and check.now.page == 3 and check.now.line == quote.line
    assert document.text[check.now.start : check.now.end] == quote.text
    assert check.now.start > quote.start and check.now.source_sha256 == document.sha256
    assert check.to_dict()["now"]["page"] == 3

    write_pdf(docs / "report.pdf", [PAGES[0], PAGES[2]])
    assert Rechecker(docs, EXTENSIONS).check(answer)[0].status == "changed"


def test_markdown_front_matter_is_not_where_a_quote_moves(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.md").write_text("# Note\n\nThe kettle boils at noon.\n", encoding="utf-8")
    quote = {"citation": 1, "text": "The kettle boils at noon.", "source": "note.md", "start": 8, "end": 33}
    record = {"question": "When?", "quotes": [quote]}
    assert check_answer(record, docs)[0].status == "ok"
    (docs / "note.md").write_text("---\ntitle: The kettle boils at noon.\n---\n# Note\n\nIt boils.\n", encoding="utf-8")
    assert check_answer(record, docs)[0].status == "changed"


# ----- the command line ------------------------------------------------------------------------------------


def quotes(count: int) -> str:
    return f"{count} quote{'s' * (count != 1)}"


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def test_cli_reports_each_status_and_exits_1_when_a_quote_no_longer_holds(answer, docs, tmp_path, capsys):
    saved = write_jsonl(tmp_path / "answers.jsonl", [{**answer.to_dict(), "id": f"q{n}"} for n in (1, 2)])
    n = len(answer.quotes)
    assert main(["verify", str(saved), "--docs", str(docs)]) == 0
    assert capsys.readouterr().out == f"{quotes(2 * n)}: {2 * n} ok, 0 moved, 0 changed, 0 missing\n"

    edit(docs, lambda text: "Inserted.\n" + text)
    assert main(["verify", str(saved), "--docs", str(docs)]) == 0  # moved quotes still stand
    out = capsys.readouterr().out.splitlines()
    first = answer.quotes[0]
    assert out[0] == (
        f"q1 [{first.citation}] {SEED_FILE} {first.start}-{first.end}: moved: "
        f"now at {first.start + 10}-{first.end + 10}, line {first.line + 1}"
    )
    assert out[-1] == f"{quotes(2 * n)}: 0 ok, {2 * n} moved, 0 changed, 0 missing"

    edit(docs, lambda text: text.replace(first.text, first.text.upper()))
    assert main(["verify", str(saved), "--docs", str(docs), "--json"]) == 1
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert [result["id"] for result in results] == ["q1", "q2"] and results[1]["line"] == 2
    assert results[0]["quotes"][0]["status"] == "changed"
    assert results[0]["quotes"][0]["start"] == first.start and "now" not in results[0]["quotes"][0]
    assert captured.err == f"{quotes(2 * n)}: 0 ok, {2 * n - 2} moved, 2 changed, 0 missing\n"


def test_cli_fix_writes_answers_that_verify_clean(answer, docs, tmp_path, capsys):
    saved = tmp_path / "answer.json"
    saved.write_text(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")  # ask --json
    edit(docs, lambda text: "Inserted.\n" + text)
    fixed = tmp_path / "fixed.json"
    assert main(["verify", str(saved), "--docs", str(docs), "--fix", str(fixed)]) == 0
    capsys.readouterr()
    assert fixed.read_text(encoding="utf-8").startswith("{\n")  # one indented object, as it was read
    assert main(["verify", str(fixed), "--docs", str(docs)]) == 0
    n = len(answer.quotes)
    assert capsys.readouterr().out == f"{quotes(n)}: {n} ok, 0 moved, 0 changed, 0 missing\n"


def test_cli_fix_marks_a_changed_quote_and_it_stays_changed(answer, docs, tmp_path, capsys):
    saved = write_jsonl(tmp_path / "answers.jsonl", [answer.to_dict()])
    edit(docs, lambda text: "Inserted.\n" + text.replace(answer.quotes[-1].text, "Gone."))
    fixed = tmp_path / "fixed.jsonl"
    assert main(["verify", str(saved), "--docs", str(docs), "--fix", str(fixed)]) == 1
    capsys.readouterr()
    record = json.loads(fixed.read_text(encoding="utf-8"))
    assert record["quotes"][-1][MARK] == {"status": "changed", "detail": "the text is no longer in the document"}
    assert main(["verify", str(fixed), "--docs", str(docs)]) == 1
    n = len(answer.quotes)
    assert capsys.readouterr().out.splitlines()[-1] == f"{quotes(n)}: {n - 1} ok, 0 moved, 1 changed, 0 missing"


def test_text_that_utf8_cannot_hold_is_written_as_escapes(answer, docs, tmp_path):
    record = answer.to_dict()
    record["question"] = "Which chip\udcff?"  # a lone surrogate, as json.loads gives for "\\udcff"
    saved = write_jsonl(tmp_path / "answers.jsonl", [])
    saved.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert main(["verify", str(saved), "--docs", str(docs), "--fix", str(tmp_path / "fixed.jsonl")]) == 0
    assert json.loads((tmp_path / "fixed.jsonl").read_text(encoding="utf-8")) == record
    record["id"], record["quotes"][0]["source"] = "q\ud800", "gone\ud800.txt"
    saved.write_text(json.dumps(record) + "\n", encoding="utf-8")
    for extra in ([], ["--json"]):
        result = run("verify", str(saved), "--docs", str(docs), *extra)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout.count("\\ud800") == 2  # as escapes in the JSON
    assert "q\\ud800 [1] gone\\ud800.txt " in run("verify", str(saved), "--docs", str(docs)).stdout


def test_cli_reads_stdin_and_several_indented_answers(answer, docs, tmp_path):
    text = json.dumps(answer.to_dict(), ensure_ascii=False, indent=1)
    result = run("verify", "-", "--docs", str(docs), stdin=text + "\n" + text + "\n")  # ask --json >> file, twice
    assert result.returncode == 0, result.stderr
    n = 2 * len(answer.quotes)
    assert result.stdout == f"{quotes(n)}: {n} ok, 0 moved, 0 changed, 0 missing\n" and result.stderr == ""


def test_cli_needs_neither_the_model_nor_the_index(answer, docs, tmp_path):
    saved = write_jsonl(tmp_path / "answers.jsonl", [answer.to_dict()])
    index = tmp_path / "no-index"
    code = (
        "import sys; from chatbot.app.cli import main; "
        f"code = main(['verify', {str(saved)!r}, '--docs', {str(docs)!r}, '--index', {str(index)!r}]); "
        "print(sorted(name for name in ('torch', 'sentence_transformers') if name in sys.modules)); sys.exit(code)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]" and not index.exists()


def test_batch_lines_with_errors_and_abstentions_have_nothing_to_check(answer, docs, tmp_path, capsys):
    records = [
        {"id": "1", "question": "", "error": "the question is empty"},
        {**answer.to_dict(), "quotes": [], "abstained": True},
        answer.to_dict(),
    ]
    saved = write_jsonl(tmp_path / "answers.jsonl", records)
    assert main(["verify", str(saved), "--docs", str(docs)]) == 0
    n = len(answer.quotes)
    assert capsys.readouterr().out == f"{quotes(n)}: {n} ok, 0 moved, 0 changed, 0 missing\n"
    assert [len(records) for records in Rechecker(docs).check_batch(read_answers(str(saved)).records)] == [0, 0, n]


def test_the_web_pages_json_lines_export_carries_what_verify_needs(answer, docs, tmp_path, capsys):
    from chatbot.app.web.render import conversation_jsonl

    saved = tmp_path / "conversation.jsonl"
    saved.write_text(conversation_jsonl([answer, answer]), encoding="utf-8")
    for line in saved.read_text(encoding="utf-8").splitlines():
        for quote in json.loads(line)["quotes"]:
            assert {"text", "source", "start", "end", "source_sha256"} <= set(quote)
    edit(docs, lambda text: "Inserted.\n" + text)
    assert main(["verify", str(saved), "--docs", str(docs)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("q1 [") and "\nq2 [" in out and " moved, 0 changed, 0 missing\n" in out


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chatbot", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def bad_inputs(answer: Answer) -> list[tuple[str, bytes, str]]:
    """(file name, contents, the error line verify gives for the file at {path})."""
    good = json.dumps(answer.to_dict(), ensure_ascii=False)
    no_offsets = answer.to_dict()
    del no_offsets["quotes"][0]["start"]
    no_text = answer.to_dict()
    no_text["quotes"][0]["text"] = None
    hint = "; verify reads answer JSON: ask --json, batch's JSON lines or the web page's JSON lines export"
    csv = b"id,question,answer\nq1,What?,Nothing\n"
    return [
        ("answers.csv", csv, f"{{path}} line 1: not answer JSON (Expecting value){hint}"),
        (
            "two.jsonl",
            f"{good}\n{{broken\n".encode(),
            "{path} line 2: not answer JSON (Expecting property name enclosed in double quotes)",
        ),
        (
            "list.jsonl",
            f"{good}\n[1, 2]\n".encode(),
            "{path} line 2: not answer JSON (an answer is an object, not a list)",
        ),
        ("other.jsonl", b'{"question": "What?"}\n', "{path} line 1: not answer JSON (it has no 'quotes' list)"),
        (
            "offsets.jsonl",
            f"{good}\n\n{json.dumps(no_offsets)}\n".encode(),
            "{path} line 3: quote 1 has no character offsets (whole numbers 'start' <= 'end')",
        ),
        ("text.jsonl", json.dumps(no_text).encode(), "{path} line 1: quote 1 has no 'text'"),
        ("indented.json", b'{\n"quotes": [\n}', f"{{path}} line 3: not answer JSON (Expecting value){hint}"),
        ("deep-first.jsonl", b"[" * 100_000 + b"]" * 100_000 + b"\n", "{path} line 1: not answer JSON (nested too deeply)"),
        (
            "deep.jsonl",
            f"{good}\n".encode() + b'{"quotes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
            "{path} line 2: not answer JSON (nested too deeply)",
        ),
        (
            "deep.json",
            b'{\n"quotes": []}\n{\n"quotes":\n' + b"{\"a\":" * 100_000 + b"1" + b"}" * 100_001,
            "{path} line 3: not answer JSON (nested too deeply)",
        ),
        ("binary.jsonl", bytes(range(256)) * 4, "cannot read answers file {path}: it looks like a binary file"),
        ("empty.jsonl", b"\n\n", "no answers in {path}"),
    ]


def test_bad_answers_files_get_one_line_naming_the_line(answer, docs, tmp_path, capsys):
    for name, contents, expected in bad_inputs(answer):
        path = tmp_path / name
        path.write_bytes(contents)
        assert main(["verify", str(path), "--docs", str(docs)]) == 1, name
        assert capsys.readouterr().err == "error: " + expected.format(path=path) + "\n", name
    no_offsets = answer.to_dict()
    del no_offsets["quotes"][0]["end"]
    with pytest.raises(ChatbotError, match=r"^quote 1 has no character offsets"):
        check_answer(no_offsets, docs)


def test_missing_answers_file_folder_or_documents_folder_is_one_line(answer, docs, tmp_path):
    saved = write_jsonl(tmp_path / "answers.jsonl", [answer.to_dict()])
    cases = [
        (
            ["verify", str(tmp_path / "nothing.jsonl"), "--docs", str(docs)],
            f"answers file not found: {tmp_path / 'nothing.jsonl'}",
        ),
        (["verify", str(tmp_path), "--docs", str(docs)], f"answers file is a folder: {tmp_path}"),
        (["verify", str(saved), "--docs", str(tmp_path / "gone")], f"documents folder not found: {tmp_path / 'gone'}"),
        (
            ["verify", str(saved), "--docs", str(docs), "--fix", str(tmp_path / "no" / "out.jsonl")],
            f"cannot write {tmp_path / 'no' / 'out.jsonl'}: folder {tmp_path / 'no'} not found",
        ),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.returncode == 1 and result.stderr == f"error: {message}\n", (args, result.stderr)
        assert result.stdout == ""
