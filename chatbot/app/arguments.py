"""The command line's commands and their arguments (argparse): every command takes --docs, --index and --config.

Usage example:
    args = build_parser().parse_args(["ask", "Where is DeepSeek based?", "--json"])
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# The training data the project is trained on, beside the project (see shared/train/README.md).
DEFAULT_TRAINING = Path(__file__).resolve().parent.parent.parent.parent / "shared" / "train" / "qa-train.json.gz"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--docs", metavar="DIR", help="documents folder (default: from the config)")
    common.add_argument("--index", metavar="DIR", help="index folder (default: from the config)")
    common.add_argument("--config", metavar="FILE", help="config file (default: config/default.toml)")

    parser = argparse.ArgumentParser(prog="chatbot", description="Answer questions with exact, cited quotations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_index_commands(sub, common)
    _add_answer_commands(sub, common)
    _add_batch_commands(sub, common)
    _add_tool_commands(sub, common)
    _add_train_command(sub)
    return parser


def _add_index_commands(sub, common: argparse.ArgumentParser) -> None:
    """index, source."""
    index = sub.add_parser("index", parents=[common], help="build or refresh the index")
    index.add_argument("--rebuild", action="store_true", help="rebuild from scratch")
    index.add_argument("--json", action="store_true", help="print what was done as JSON")
    index.add_argument(
        "--watch",
        action="store_true",
        help="keep following the folder, updating the index as files change (Ctrl-C stops)",
    )

    source = sub.add_parser(
        "source", parents=[common], help="print a document's text as the index stores it (what citations count in)"
    )
    source.add_argument("path", help="the document's path relative to the documents folder, as citations give it")



def _add_answer_commands(sub, common: argparse.ArgumentParser) -> None:
    """ask, chat, serve."""
    ask = sub.add_parser("ask", parents=[common], help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the answer JSON")

    sub.add_parser(
        "chat", parents=[common], help="talk in the terminal (an empty line, Ctrl-D or Ctrl-C at the prompt leaves)"
    )

    serve = sub.add_parser("serve", parents=[common], help="start the web chat")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 shares it)")
    serve.add_argument("--port", type=int, help="port to listen on (default 7860)")
    serve.add_argument(
        "--auth", metavar="USER:PASSWORD", help="ask for these credentials (default: the CHATBOT_AUTH variable, if set)"
    )
    serve.add_argument(
        "--allow-uploads",
        action="store_true",
        help="let visitors add and remove uploaded documents even when shared without a password",
    )


def _add_batch_commands(sub, common: argparse.ArgumentParser) -> None:
    """batch, verify: files of questions and of saved answers."""
    batch = sub.add_parser(
        "batch", parents=[common], help="answer a file of questions (.txt, .jsonl, .csv or - for stdin)"
    )
    batch.add_argument("questions", metavar="QUESTIONS")
    batch.add_argument(
        "-o", "--output", metavar="OUT", help="write here (.jsonl, .csv or .md); default: JSONL on stdout"
    )
    batch.add_argument(
        "--resume",
        action="store_true",
        help="skip the questions already in OUT and append the rest (stops if the question file changed)",
    )
    batch.add_argument("--meta", metavar="FILE", help="write the provenance record here (default: OUT.meta.json)")
    batch.add_argument(
        "--format",
        choices=["txt", "jsonl", "csv"],
        help="what QUESTIONS holds (default: by its extension; stdin is read as txt)",
    )
    batch.add_argument("--quiet", action="store_true", help="no progress bar")

    verify = sub.add_parser(
        "verify", parents=[common], help="re-check saved answers' quotes against the documents as they are now"
    )
    verify.add_argument(
        "answers", metavar="ANSWERS", help="answer JSON (ask --json, batch's JSON lines, the web page's export) or -"
    )
    verify.add_argument("--json", action="store_true", help="print one JSON result per answer")
    verify.add_argument(
        "--fix", metavar="OUT", help="write the answers here, moved quotes updated and changed or missing ones marked"
    )


def _add_tool_commands(sub, common: argparse.ArgumentParser) -> None:
    """eval, calibrate: a question set with known answers."""
    for name, text in (
        ("eval", "score answers against known answers"),
        ("calibrate", "fit confidence and choose the abstention threshold"),
    ):
        tool = sub.add_parser(name, parents=[common], help=f"{text} (SQuAD JSON or JSONL)")
        tool.add_argument("qa_file", metavar="QA_FILE")
        tool.add_argument(
            "--build-corpus", metavar="DIR", help="write the SQuAD articles as documents into DIR and answer from them"
        )
        tool.add_argument("--limit", type=int, metavar="N", help="use only the first N questions")
    evaluate = sub.choices["eval"]
    evaluate.add_argument("--report", metavar="FILE", help="write the scores as JSON")
    evaluate.add_argument("--errors", metavar="FILE", help="write the misses as JSON lines")
    calibrate = sub.choices["calibrate"]
    calibrate.add_argument(
        "--write", metavar="CONFIG", help="put the fitted weights and threshold into this config file"
    )
    calibrate.add_argument("--plot", metavar="PNG", help="draw the trade-off against the threshold into this PNG file")
    calibrate.add_argument(
        "--max-false-abstention",
        type=float,
        default=0.10,
        metavar="RATE",
        help="limit for the chosen threshold (default 0.10)",
    )
    calibrate.add_argument(
        "--max-answer-chars",
        type=float,
        default=300,
        metavar="N",
        help="longest median answer allowed when choosing how many sentences to quote (default 300)",
    )
    calibrate.add_argument(
        "--off-topic", metavar="DIR", help="also ask every question of documents in DIR, which answer none of them"
    )


def _add_train_command(sub) -> None:
    """train-verifier."""
    train = sub.add_parser(
        "train-verifier",
        help="train the answer verifier on extractive QA data (SQuAD JSON) and write it with a model card",
    )
    train.add_argument(
        "--data",
        metavar="FILE",
        action="append",
        help=f"SQuAD-format training data, .json or .json.gz; repeatable (default: {_display(DEFAULT_TRAINING)})",
    )
    train.add_argument(
        "--cross-validate",
        metavar="FILE",
        help="also train on this question set's articles, but for one fold (--fold), left out to score it on",
    )
    train.add_argument("--fold", default="1/2", metavar="K/N", help="the fold left out of --cross-validate (default 1/2)")
    train.add_argument("--out", metavar="DIR", help="where the model goes (default: the shipped chatbot/models/verifier)")
    train.add_argument("--epochs", type=float, default=1.0, help="passes over the examples (default 1)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--limit", type=int, metavar="N", help="only the first N paragraphs of each file (a quick run)")
    train.add_argument("--steps", type=int, metavar="N", help="stop after N training steps")
    train.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all)")
    train.add_argument("--init", metavar="DIR", help="start from this verifier's weights (default: the bare encoder)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
