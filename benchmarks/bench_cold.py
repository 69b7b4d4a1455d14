"""Cold start: `python -m chatbot ask "…"` in a fresh process with an existing index, against importing
sentence-transformers and loading the model in a fresh process.

    python benchmarks/bench_cold.py [--docs seeds] [--rounds 5]

The index is built once, untimed. Then, alternating, each round runs fresh processes for:
- reference: `python -c "import sentence_transformers; SentenceTransformer(<model>)"`;
- the same plus encoding the question (what `ask` needs of the model at the least);
- `python -m chatbot ask QUESTION --docs DOCS --index INDEX`.
Wall time (median over rounds) and peak RSS of each child (os.wait4). Also checks that the command line
imports neither gradio nor anything that rebuilds the index. Then, for `ask` and `index --rebuild`, fresh
processes that time their own imports, loading (models, index) and work, the rest of their wall time being
the interpreter's start-up. Writes a section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import load_average, table, write_section

from chatbot import Chatbot
from chatbot.index.embed import resolve_model


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the child's own peak RSS (MB), waiting with os.wait4 for its resource usage."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(command)} failed:\n{child.stderr.read().decode(errors='replace')}")
    child.stderr.close()
    return seconds, usage.ru_maxrss / 1024


# What a command imports before its work, by command: the libraries it ends up loading (lazily, inside chatbot).
LIBRARIES = {
    "ask": ("chatbot.app.cli", "chatbot.answering.bot", "torch", "transformers", "sentence_transformers", "onnxruntime"),
    "index": ("chatbot.app.cli", "chatbot.answering.bot", "torch", "transformers", "sentence_transformers"),
}


def phases(command: str, docs: Path, index: Path, question: str) -> dict[str, float]:
    """Seconds of one fresh process's imports, loading (models, index) and work, for `ask` or `index --rebuild`."""
    import importlib

    started = time.perf_counter()
    for name in LIBRARIES[command]:
        importlib.import_module(name)
    imported = time.perf_counter()
    bot = Chatbot.from_config(docs=docs, index=index)
    bot.embedder.model  # noqa: B018 - loading is the point
    if command == "ask":
        bot.verifier.warm_up()
        bot.data  # noqa: B018
    loaded = time.perf_counter()
    if command == "ask":
        bot.ask(question)
    else:
        bot.index(force=True)
    return {"imports": imported - started, "load": loaded - imported, "work": time.perf_counter() - loaded}


def breakdown(command: str, args: argparse.Namespace, index: Path, env: dict[str, str]) -> dict[str, float]:
    """Median phases of `command` over the rounds, each in a fresh process; start-up is the rest of its wall."""
    runs = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--phases", command, "--docs", str(args.docs), "--index", str(index),
             "--question", args.question],
            check=True, capture_output=True, text=True, cwd=ROOT, env=env,
        )
        wall = time.perf_counter() - started
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        runs.append({"start-up": wall - sum(measured.values()), **measured, "whole": wall})
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", choices=sorted(LIBRARIES), help=argparse.SUPPRESS)
    parser.add_argument("--docs", type=Path, default=ROOT / "seeds")
    parser.add_argument("--index", type=Path, help="index folder (default: a temporary one, built first)")
    parser.add_argument("--question", default="Which chip did Guangdong highlight?")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    if args.phases:
        print(json.dumps(phases(args.phases, args.docs, args.index, args.question)))
        return 0

    load_before = load_average()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as temporary:
        index = args.index or Path(temporary) / "index"
        bot = Chatbot.from_config(docs=args.docs, index=index)
        bot.index()  # untimed: the index exists before the clock starts
        model = resolve_model(bot.config.model.name)
        load = f"from sentence_transformers import SentenceTransformer; m = SentenceTransformer({model!r}, device='cpu')"
        commands = {
            "import sentence_transformers + load model (reference)": [sys.executable, "-c", load],
            "reference + encode the question": [sys.executable, "-c", f"{load}; m.encode([{args.question!r}])"],
            "python -m chatbot ask (existing index)": [
                sys.executable, "-m", "chatbot", "ask", args.question, "--docs", str(args.docs), "--index", str(index)
            ],
        }
        probe = (
            "import sys, chatbot.app.cli; "
            "print(sorted(m for m in ('gradio', 'chatbot.app.web', 'matplotlib') if m in sys.modules))"
        )
        heavy = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, cwd=ROOT, env=env)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                samples[name].append(run_measured(command, env))
        parts = {command: breakdown(command, args, index, env) for command in LIBRARIES}
    reference = statistics.median(seconds for seconds, _ in samples[next(iter(commands))])
    rows = []
    for name, values in samples.items():
        wall = statistics.median(seconds for seconds, _ in values)
        rows.append([name, round(wall, 2), round(wall - reference, 2), round(max(rss for _, rss in values))])
    text = table(["fresh process", "median wall s", "minus reference s", "peak RSS MB"], rows)
    summary = (
        f"{args.rounds} rounds, alternating; documents {args.docs.name}/, index built before timing; "
        f"modules of the web UI imported by `import chatbot.app.cli`: {heavy.stdout.strip() or heavy.stderr.strip()[-200:]}. "
        f"Target: chatbot ask within 1 s of the reference."
    )
    names = list(next(iter(parts.values())))
    split = table(
        ["fresh process, seconds (median)", *names],
        [[f"chatbot {'index --rebuild' if c == 'index' else c}", *(round(t[n], 2) for n in names)] for c, t in parts.items()],
    )
    split_note = (
        "Start-up: the interpreter and `import chatbot` before the clock; imports: the modules the command loads "
        f"({'; '.join(f'{c}: ' + ', '.join(m) for c, m in LIBRARIES.items())}); load: the embedding model, the "
        "verifier and the index (ask) or the embedding model (index); work: the answer or the rebuild."
    )
    print(text, summary, split, split_note, sep="\n")
    body = f"{text}\n\n{summary}\n\n{split}\n\n{split_note}\n"
    write_section("cold", "Cold start (`bench_cold.py`)", body, load_before, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
