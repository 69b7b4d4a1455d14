"""The command line: a thin layer over the Python API. User mistakes end in one line on stderr, never a traceback.

Usage example:
    chatbot index --docs seeds/
    chatbot ask "Which chip did Guangdong highlight?" --json
    chatbot chat
    chatbot verify answers.jsonl --fix fixed.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..answering.answer import printable
from ..errors import ChatbotError
from .arguments import DEFAULT_TRAINING, build_parser
from .chat import bold_terminal, chat, format_answer

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(function: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[function.__name__.removeprefix("cmd_").replace("_", "-")] = function
    return function


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        return COMMANDS[args.command](args)
    except ChatbotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # an index being built is left as it was: builds are published whole or not at all
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a file the user named cannot be read or written: the system's reason says why
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


def open_bot(args: argparse.Namespace):
    """The Chatbot for the command's --config, --docs and --index (its index is checked on first use)."""
    from ..answering.bot import Chatbot

    return Chatbot.from_config(args.config, docs=args.docs, index=args.index)


@command
def cmd_index(args: argparse.Namespace) -> int:
    bot = open_bot(args)

    def show(report) -> None:  # when watching, one JSON object per line
        print(
            json.dumps(report.to_dict(), indent=None if args.watch else 1) if args.json else report.summary(),
            flush=True,
        )

    if args.watch:
        from ..index.watch import watch_folder

        watch_folder(bot, show, force=args.rebuild)  # refreshes first, then on every change until Ctrl-C
    else:
        show(bot.index(force=args.rebuild))
    return 0


@command
def cmd_source(args: argparse.Namespace) -> int:
    bot = open_bot(args)
    try:
        text = bot.data.text_of(args.path)
    except ChatbotError:  # perhaps a path to the file itself, such as a shell completes
        inside = _path_inside(args.path, bot.config.paths.docs)
        if inside is None:  # or a file in the uploads folder, which citations name .uploads/NAME
            from ..documents.load import UPLOADS

            uploaded = _path_inside(args.path, bot.config.paths.uploads_folder)
            inside = UPLOADS + uploaded if uploaded else None
        if inside in (None, args.path):
            raise
        text = bot.data.text_of(inside)
    sys.stdout.write(text)
    return 0


def _path_inside(path: str, folder: Path) -> str | None:
    """A path given from the working directory (`seeds/article.txt`, `./article.txt`, an absolute path) as
    citations give it, relative to `folder`; None when it is not inside that folder."""
    try:
        return (Path.cwd() / path).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return None


@command
def cmd_ask(args: argparse.Namespace) -> int:
    bot = open_bot(args)
    problem = bot.question_problem(args.question)  # before any work: nothing is loaded yet
    if problem:
        raise ChatbotError(problem)
    answer = bot.ask(args.question)
    print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1) if args.json else format_answer(answer, bold_terminal()))
    return 0


@command
def cmd_chat(args: argparse.Namespace) -> int:
    chat(open_bot(args))
    return 0


@command
def cmd_serve(args: argparse.Namespace) -> int:
    bot = open_bot(args)
    settings = bot.config.ui
    auth = args.auth or os.environ.get(settings.auth_env)
    credentials = None
    if auth:
        user, _, password = auth.partition(":")
        if not user or not password:
            raise ChatbotError(f"credentials must look like USER:PASSWORD (from --auth or ${settings.auth_env})")
        credentials = (user, password)
    port = args.port if args.port is not None else settings.port
    if not 0 < port < 65536:
        raise ChatbotError(f"port must be between 1 and 65535, got {port}")
    from .web.server import serve

    serve(bot, host=args.host or settings.host, port=port, auth=credentials, allow_uploads=args.allow_uploads)
    return 0


@command
def cmd_batch(args: argparse.Namespace) -> int:
    from .batch import (
        Counts,
        Writer,
        answer_rows,
        iterate_progress,
        output_kind,
        read_rows,
        repeated_ids,
        resume_skips,
        write_meta,
    )

    rows = read_rows(args.questions, args.format)
    source = "stdin" if args.questions == "-" else args.questions
    if not rows:
        raise ChatbotError(f"no questions in {source}")
    out = Path(args.output) if args.output else None
    kind = output_kind(out) if out else "jsonl"
    if args.resume and out is None:
        raise ChatbotError("--resume needs an output file (-o OUT)")
    meta = Path(args.meta) if args.meta else (out.with_name(out.name + ".meta.json") if out else None)
    _refuse_overwrite(args.questions, out, meta)
    check_writable(out, meta)
    repeated = repeated_ids(rows)
    if repeated:
        shown = ", ".join(repeated[:5]) + (f" and {len(repeated) - 5} more" if len(repeated) > 5 else "")
        print(
            f"warning: {source} gives more than one question the same id ({shown}); "
            "their answers can be told apart only by their order",
            file=sys.stderr,
        )
    skip = resume_skips(out, rows) if args.resume else set()
    bot = open_bot(args)
    bot.data  # build or refresh the index before the first batch
    started = time.time()
    bar = iterate_progress(len(rows), args.quiet)
    append = bool(skip) and out.exists()
    counts = Counts()
    interrupted = False
    try:
        with (
            open(out, "a" if append else "w", encoding="utf-8", newline="") if out else contextlib.nullcontext(sys.stdout)
        ) as stream:
            writer = Writer(stream, kind, append=append)
            answer_rows(bot, rows, writer, skip, progress=bar.update if bar else None, counts=counts)
    except KeyboardInterrupt:  # the lines written so far are whole: the record says the run was cut short
        interrupted = True
    finally:
        if bar:
            bar.close()
    if meta:
        write_meta(meta, bot, args.questions, counts, started, resumed=bool(args.resume), interrupted=interrupted)
    if interrupted:
        done = counts.answered + counts.errors + counts.skipped
        again = "again" if args.resume else "with --resume"
        hint = f"; run the same command {again} to continue" if out else ""
        print(f"interrupted after {done:,} of {len(rows):,} questions{hint}", file=sys.stderr)
        return 130
    print(
        f"{counts.answered} answered ({counts.abstained} abstained), {counts.errors} errors, {counts.skipped} skipped",
        file=sys.stderr,
    )
    return 1 if counts.errors else 0


def _refuse_overwrite(questions: str, out: Path | None, meta: Path | None) -> None:
    """Refuse, before any work, outputs that would overwrite the question file or each other."""
    source = None if questions == "-" else Path(questions)
    if out and source and _same_file(out, source):
        raise ChatbotError(f"{out} is the question file; answers would overwrite it (choose another -o)")
    if meta and source and _same_file(meta, source):
        raise ChatbotError(f"{meta} is the question file; the run record would overwrite it (choose another --meta)")
    if meta and out and _same_file(meta, out):
        raise ChatbotError(
            f"{meta} is the output file; the run record would overwrite the answers (choose another --meta)"
        )


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return a.samefile(b)
    return a.resolve() == b.resolve()


@command
def cmd_verify(args: argparse.Namespace) -> int:
    """Reads the documents only: no model, no index."""
    from ..answering.recheck import OK, Rechecker, json_text, read_answers, summary
    from ..config import load_config

    check_writable(args.fix)
    rechecker = Rechecker.from_config(load_config(args.config, docs=args.docs, index=args.index))
    saved = read_answers(args.answers)
    results = rechecker.check_batch(saved.records)
    for number, (record, checks) in enumerate(zip(saved.records, results), start=1):
        if args.json:
            result = {"id": record.get("id"), "question": record.get("question"), "line": saved.lines[number - 1]}
            print(json_text({**result, "quotes": [check.to_dict() for check in checks]}))
            continue
        name = str(record.get("id") or f"answer {number}")
        for check in checks:
            if check.status != OK:
                quote = check.quote
                line = f"{name} [{quote.citation}] {quote.source} {quote.start}-{quote.end}: {check.status}: {check.detail}"
                print(printable(line).encode("utf-8", "backslashreplace").decode("utf-8"))  # lone surrogates too
    if args.fix:
        fixed = [rechecker.fix(record, checks) for record, checks in zip(saved.records, results)]
        with open(args.fix, "w", encoding="utf-8") as handle:
            handle.write(saved.dumps(fixed))
    print(summary(results), file=sys.stderr if args.json else sys.stdout)
    return 0 if all(check.holds for checks in results for check in checks) else 1


@command
def cmd_eval(args: argparse.Namespace) -> int:
    from ..training.evaluate import evaluate

    check_writable(args.report, args.errors)
    bot, items = _qa_setup(args)
    report = evaluate(bot, items)
    print(report.table())
    if args.report:
        _write_json(args.report, report.to_dict())
    if args.errors:
        with open(args.errors, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(error, ensure_ascii=False) + "\n" for error in report.errors)
    return 0


@command
def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..training.calibrate import calibrate, format_quotes, format_table, plot, write_config

    check_writable(args.write, args.plot)
    bot, items = _qa_setup(args)
    off_topic = None
    if args.off_topic:
        from ..answering.bot import Chatbot

        off_topic = Chatbot.from_config(args.config, docs=args.off_topic)
    result = calibrate(bot, items, args.max_false_abstention, off_topic, args.max_answer_chars)
    print(format_quotes(result.quote_points, result.quotes) + "\n")
    print(format_table(result.points, result.chosen))
    if result.verifier is not None:
        print(f"\nverifier weights: {result.verifier}")
    else:
        print(f"\nranking weights: {result.ranking}\nconfidence weights: {result.confidence}")
    if args.plot:  # files only where asked
        plot(result.points, result.chosen, Path(args.plot))
        print(f"plot written to {args.plot}")
    if args.write:
        write_config(Path(args.write), result)
        print(
            f"weights, max_quotes = {result.quotes.max_quotes}, second_quote_ratio = "
            f"{result.quotes.second_quote_ratio}, following_quote_ratio = {result.quotes.following_quote_ratio} "
            f"and min_confidence = {result.chosen.threshold:.2f} written to {args.write}"
        )
    return 0


@command
def cmd_train_verifier(args: argparse.Namespace) -> int:
    from ..answering.verifier import DEFAULT_MODEL
    from ..training.train_verifier import TrainSettings, train

    data = tuple(Path(path) for path in args.data) if args.data else (DEFAULT_TRAINING,)
    for path in data + ((Path(args.cross_validate),) if args.cross_validate else ()):
        if not path.is_file():
            raise ChatbotError(f"training data not found: {path}")
    try:
        fold, folds = (int(part) for part in args.fold.split("/"))
    except ValueError:
        raise ChatbotError(f"--fold takes K/N, such as 1/2, got {args.fold!r}") from None
    if not 1 <= fold <= folds:
        raise ChatbotError(f"--fold {args.fold}: K must be between 1 and N")
    for name in ("epochs", "limit", "steps", "threads"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ChatbotError(f"--{name} must be positive, got {value}")
    settings = TrainSettings(
        data=data,
        cross_validate=Path(args.cross_validate) if args.cross_validate else None,
        folds=folds,
        fold=fold - 1,
        epochs=args.epochs,
        seed=args.seed,
        limit=args.limit,
        max_steps=args.steps,
        threads=args.threads,
        init=Path(args.init) if args.init else None,
    )
    out = Path(args.out) if args.out else DEFAULT_MODEL
    if out.exists() and not out.is_dir():
        raise ChatbotError(f"{out} is a file; name a folder for the model")
    existing = next(folder for folder in (out.parent, *out.parent.parents) if folder.exists())
    if not os.access(existing, os.W_OK):  # fail now, not after an hour of training
        raise ChatbotError(f"cannot write {out}: permission denied")
    report = train(settings, out, progress=not args.quiet, log=lambda line: print(line, file=sys.stderr))
    print(f"verifier written to {out} ({report.steps} steps, {report.seconds / 60:.1f} minutes, {report.precision})")
    for name, value in report.held_out.items():
        print(f"  held out: {name} {value}")
    return 0


def check_writable(*paths: str | os.PathLike | None) -> None:
    """Fail at once, not after all the answering, when an output file named by the user cannot be written."""
    for path in map(Path, filter(None, paths)):
        if path.is_dir():
            raise ChatbotError(f"{path} is a folder; name a file to write")
        if not path.parent.is_dir():
            raise ChatbotError(f"cannot write {path}: folder {path.parent} not found")
        if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ChatbotError(f"cannot write {path}: permission denied")


def _qa_setup(args: argparse.Namespace):
    """The chatbot and questions for eval/calibrate; --build-corpus writes the SQuAD articles first."""
    from ..training.evaluate import build_corpus, read_questions

    items = read_questions(Path(args.qa_file))
    if args.limit is not None:
        items = items[: max(args.limit, 0)]
    if not items:
        raise ChatbotError(f"no questions in {args.qa_file}")
    if args.build_corpus:
        if args.docs:
            raise ChatbotError("give either --build-corpus or --docs, not both")
        build_corpus(Path(args.qa_file), Path(args.build_corpus))
        args.docs = args.build_corpus
    bot = open_bot(args)
    bot.data  # build or load the index before answering
    return bot, items


def _write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, ensure_ascii=False, indent=1)
        handle.write("\n")


def _quiet_libraries() -> None:
    """Our warnings as one plain line each; the libraries' progress bars and notices off."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowerLevelFormatter())
    logger = logging.getLogger("chatbot")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


class _LowerLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"
