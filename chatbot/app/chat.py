"""The terminal: answers as a person reads them there (the quotes, where each came from, the confidence; the
answer's own words in bold where the terminal allows), and the conversation of `chatbot chat`.

Usage example:
    print(format_answer(bot.ask("Where is DeepSeek based?"), bold_terminal()))
    chat(bot)                     # until an empty line, Ctrl-D or Ctrl-C at the prompt
"""

from __future__ import annotations

import contextlib
import os
import select
import sys

from ..answering.answer import Answer, confidence_label, printable
from ..answering.bot import Chatbot
from ..errors import ChatbotError


def chat(bot: Chatbot) -> None:
    """Talk in the terminal: each question answered as it comes, until an empty line, Ctrl-D or Ctrl-C at the
    prompt (Ctrl-C during an answer stops only the answer). Questions piped in are answered one per line, each
    echoed as `> QUESTION`."""
    bot.warm_up()  # before the first prompt: Ctrl-C stops an answer, and must not cut torch's first import short
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 (line editing and history for input(), and pasted text kept whole)
        print("Ask about the documents. An empty line, Ctrl-D or Ctrl-C at the prompt leaves; Ctrl-C during an answer stops it.")
    while True:
        try:
            question = _read_question(interactive)
        except EOFError:
            break
        except KeyboardInterrupt:  # at the prompt: the chat ends, and says so (during an answer, only the answer stops)
            print("\n(Ctrl-C at the prompt: the chat ends)", flush=True)
            break
        if not question:
            break
        if not interactive:
            print(f"> {question}")  # so that answers to piped questions can be told apart
        try:
            print(format_answer(bot.ask(question), bold_terminal()), end="\n\n", flush=True)
        except ChatbotError as exc:
            print(f"error: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            print("(stopped; ask another question, or leave with an empty line)", end="\n\n", flush=True)


def _read_question(interactive: bool) -> str:
    """The next question ("" for an empty line). In a terminal, lines that arrive together are one pasted
    question: a blank line inside it does not end the chat, and no line of it is left over for the shell."""
    lines = [input("> " if interactive else "")]
    while interactive and _more_input_waiting():
        lines.append(input(""))
    return " ".join(" ".join(lines).split())


def _more_input_waiting(seconds: float = 0.05) -> bool:
    """Whether more input has already arrived: the rest of a paste, not a line still to be typed."""
    try:
        return bool(select.select([sys.stdin], [], [], seconds)[0])
    except (OSError, ValueError):  # no select() on this kind of stdin (Windows consoles)
        return False


def format_answer(answer: Answer, bold: bool = False) -> str:
    """An answer for the terminal: the quotes, then where each came from, then the confidence. With `bold`,
    the answer's own words inside a quote (when the verifier marked them) are in bold."""
    text = answer.text
    if bold and any(quote.answer_span for quote in answer.quotes):
        shown = (
            _terminal(before) + (f"\033[1m{_terminal(phrase)}\033[0m" if phrase else "") + _terminal(after)
            for before, phrase, after in (quote.parts() for quote in answer.quotes)
        )
        text = " ".join(f"“{quote}” [{q.citation}]" for quote, q in zip(shown, answer.quotes))
        return text + "\n" + _terminal(_format_answer(answer))
    return _terminal(text + "\n" + _format_answer(answer))


def _terminal(text: str) -> str:
    return printable(text.replace("\r\n", "\n"), keep="\n\t")


def bold_terminal() -> bool:
    """Whether answers printed here may use bold: a terminal that has not asked for plain text (NO_COLOR)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _format_answer(answer: Answer) -> str:
    lines = [""]
    if answer.abstained:
        if answer.sources:
            lines.append("Nearest text (not an answer):")
            for source in answer.sources:
                excerpt = " ".join(source.text.split())
                excerpt = excerpt if len(excerpt) <= 160 else excerpt[:157] + "..."
                name = printable(source.source)
                lines.append(f"  [{source.citation}] {name}, line {source.line}: {excerpt}")
    else:
        lines.append("Sources:")
        for quote in answer.quotes:
            where = f"page {quote.page}, line {quote.line}" if quote.page is not None else f"line {quote.line}"
            name = printable(quote.source)
            lines.append(f"  [{quote.citation}] {name}, {where}, characters {quote.start}-{quote.end}")
            if quote.section:
                lines.append(f"      in: {printable(quote.section)}")
            if quote.context:
                lines.append(f"      under: {printable(' '.join(quote.context.split()))}")
    lines.append(f"Confidence: {answer.confidence:.2f} ({answer.label or confidence_label(answer.confidence)})")
    return "\n".join(lines)
