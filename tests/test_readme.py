"""The README's command-line examples are run, so that they cannot go stale: each ```console block that follows
a `<!-- checked by tests/test_readme.py -->` line is played in a fresh folder holding a copy of seeds/ as `docs`,
and what each `$ command` prints (stdout and stderr) must be what the README shows under it.

What may differ from one machine to another does not count: times ("in 8.9 s") are not compared, and a decimal
number (a confidence) may differ by 0.02; every other character must be the same (quotes, ids, abstentions,
character ranges, statuses). A `$ cat FILE` of a file the folder lacks writes it: that is how a block shows its
input. When the answer model or the README changes, refresh the README from what the commands print now:

    python -m tests.test_readme --update          # or: make readme
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# A marker line, then a console block. ", the index built first": the block is played with the index of `docs`
# already built, as the README's reader would have it by then.
BLOCK = re.compile(
    r"^<!-- checked by tests/test_readme\.py(?P<built>, the index built first)? -->\n+```console\n(?P<body>.*?)^```",
    re.MULTILINE | re.DOTALL,
)
TIME = re.compile(r"\bin \d+(?:\.\d+)? s\b")
NUMBER = re.compile(r"\d+\.\d+|\d+")


@dataclass
class Step:
    command: str
    shown: str  # what the README shows under it


@dataclass
class Block:
    start: int  # of its body in the README's text
    end: int
    built: bool
    steps: list[Step]


def blocks(text: str) -> list[Block]:
    found = []
    for match in BLOCK.finditer(text):
        steps: list[Step] = []
        for line in match["body"].splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:], ""))
            elif steps:
                steps[-1].shown += line + "\n"
        found.append(Block(match.start("body"), match.end("body"), bool(match["built"]), steps))
    return found


def play(block: Block, folder: Path) -> list[str]:
    """Run the block's commands one after another in `folder` (made here, with `docs` a copy of seeds/); returns
    what each printed."""
    shutil.copytree(ROOT / "seeds", folder / "docs")
    config = folder / "readme.toml"  # the project's defaults, with the index in the folder, never in the project
    config.write_text('[paths]\ndocs = "docs"\nindex = "index"\n', encoding="utf-8")
    tools = folder / ".bin"
    tools.mkdir()
    chatbot = tools / "chatbot"
    chatbot.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m chatbot "$@" --config "{config}"\n', encoding="utf-8")
    chatbot.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "COLUMNS": "200",
    }
    run = lambda command: subprocess.run(  # noqa: E731
        ["bash", "-c", command], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=600,
    ).stdout.replace("\r\n", "\n")
    if block.built:
        run("chatbot index")
    printed = []
    for step in block.steps:
        named = re.fullmatch(r"cat (\S+)", step.command)
        if named and not (folder / named[1]).exists():  # the block's input, shown as the README shows it
            (folder / named[1]).write_text(step.shown, encoding="utf-8")
            printed.append(step.shown)
        else:
            printed.append(run(step.command))
    return printed


def differences(shown: str, printed: str) -> list[str]:
    """Where `printed` differs from `shown` beyond times and a little in decimal numbers, line by line."""
    found = []
    shown_lines, printed_lines = shown.splitlines(), printed.splitlines()
    if len(shown_lines) != len(printed_lines):
        return [f"{len(printed_lines)} lines printed, {len(shown_lines)} shown"]
    for expected, actual in zip(shown_lines, printed_lines):
        expected, actual = TIME.sub("in N s", expected), TIME.sub("in N s", actual)
        same_text = NUMBER.split(expected) == NUMBER.split(actual)
        pairs = list(zip(NUMBER.findall(expected), NUMBER.findall(actual)))
        same_numbers = len(NUMBER.findall(expected)) == len(NUMBER.findall(actual)) and all(
            (a == b) if "." not in a + b else abs(float(a) - float(b)) <= 0.02 for a, b in pairs
        )
        if not (same_text and same_numbers):
            found.append(f"shown:   {expected}\nprinted: {actual}")
    return found


def update(text: str) -> str:
    """The README's text with each checked block's outputs as the commands print them now."""
    for block in reversed(blocks(text)):
        with tempfile.TemporaryDirectory() as folder:
            printed = play(block, Path(folder))
        body = "".join(f"$ {step.command}\n{_kept(step.shown, output)}" for step, output in zip(block.steps, printed))
        text = text[: block.start] + body + text[block.end :]
    return text


def _kept(shown: str, printed: str) -> str:
    """`printed`, but for the lines that match what is shown (a time aside, say), which stay as they are."""
    shown_lines, printed_lines = shown.splitlines(keepends=True), printed.splitlines(keepends=True)
    if len(shown_lines) != len(printed_lines):
        return printed
    return "".join(old if not differences(old, new) else new for old, new in zip(shown_lines, printed_lines))


def test_the_readme_has_checked_examples_of_csv_and_verify():
    text = README.read_text(encoding="utf-8")
    commands = [step.command for block in blocks(text) for step in block.steps]
    assert any("-o answers.csv" in command for command in commands)
    assert sum(command.startswith("chatbot verify") for command in commands) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("number", range(len(blocks(README.read_text(encoding="utf-8")))))
def test_the_readme_examples_print_what_the_readme_shows(tmp_path, number):
    block = blocks(README.read_text(encoding="utf-8"))[number]
    printed = play(block, tmp_path / "session")
    stale = []
    for step, output in zip(block.steps, printed):
        for difference in differences(step.shown, output):
            stale.append(f"$ {step.command}\n{difference}")
    assert not stale, (
        "the README's example no longer shows what the commands print; if the change is right, refresh it with "
        "`python -m tests.test_readme --update`:\n\n" + "\n\n".join(stale)
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.test_readme --update   (rewrites the README's checked examples)")
    README.write_text(update(README.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"{README}: checked examples refreshed")
