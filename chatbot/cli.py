"""The command line: a thin layer over the Python API. User mistakes end in one line on stderr, never a traceback.

Usage example:
    chatbot index --docs seeds/
    chatbot ask "Which chip did Guangdong highlight?" --json
    chatbot chat
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Callable

from .answer import Answer, confidence_label
from .errors import ChatbotError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(function: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[function.__name__.removeprefix("cmd_")] = function
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
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--docs", metavar="DIR", help="documents folder (default: from the config)")
    common.add_argument("--index", metavar="DIR", help="index folder (default: from the config)")
    common.add_argument("--config", metavar="FILE", help="config file (default: config/default.toml)")

    parser = argparse.ArgumentParser(prog="chatbot", description="Answer questions with exact, cited quotations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = sub.add_parser("index", parents=[common], help="build or refresh the index")
    index.add_argument("--rebuild", action="store_true", help="rebuild from scratch")
    index.add_argument("--json", action="store_true", help="print what was done as JSON")

    ask = sub.add_parser("ask", parents=[common], help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the answer JSON")

    sub.add_parser("chat", parents=[common], help="talk in the terminal (empty line or Ctrl-D to leave)")
    return parser


def open_bot(args: argparse.Namespace):
    """The Chatbot for the command's --config, --docs and --index, with its index brought up to date."""
    from .bot import Chatbot

    bot = Chatbot.from_config(args.config, docs=args.docs, index=args.index)
    return bot


@command
def cmd_index(args: argparse.Namespace) -> int:
    bot = open_bot(args)
    report = bot.index(force=args.rebuild)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report.summary())
    return 0


@command
def cmd_ask(args: argparse.Namespace) -> int:
    if not args.question.strip():
        raise ChatbotError("the question is empty")
    answer = open_bot(args).ask(args.question)
    print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1) if args.json else format_answer(answer))
    return 0


@command
def cmd_chat(args: argparse.Namespace) -> int:
    bot = open_bot(args)
    bot.data  # load (or build) the index before the first prompt
    interactive = sys.stdin.isatty()
    if interactive:
        print("Ask about the documents. An empty line or Ctrl-D leaves.")
    while True:
        try:
            question = input("> " if interactive else "")
        except EOFError:
            break
        if not question.strip():
            break
        try:
            print(format_answer(bot.ask(question)), end="\n\n", flush=True)
        except ChatbotError as exc:
            print(f"error: {exc}", file=sys.stderr)
    return 0


def format_answer(answer: Answer) -> str:
    """An answer for the terminal: the quotes, then where each came from, then the confidence."""
    lines = [answer.text, ""]
    if answer.abstained:
        if answer.sources:
            lines.append("Nearest text (not an answer):")
            for source in answer.sources:
                excerpt = " ".join(source.text.split())
                excerpt = excerpt if len(excerpt) <= 160 else excerpt[:157] + "..."
                lines.append(f"  [{source.citation}] {source.source}, line {source.line}: {excerpt}")
    else:
        lines.append("Sources:")
        for quote in answer.quotes:
            lines.append(
                f"  [{quote.citation}] {quote.source}, line {quote.line}, characters {quote.start}-{quote.end}"
            )
    lines.append(f"Confidence: {answer.confidence:.2f} ({confidence_label(answer.confidence)})")
    return "\n".join(lines)


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
