"""Warm question latency: `Chatbot.ask` p50/p95 against embedding the question alone, same questions.

    python benchmarks/bench_latency.py [--docs seeds] [--rounds 5]

Prints a table and writes it to benchmarks/results/latency.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatbot import Chatbot  # noqa: E402
from chatbot.evaluate import read_questions  # noqa: E402


def timed(function, items, rounds: int) -> list[float]:
    """Milliseconds per call, over `rounds` passes through `items`."""
    samples = []
    for _ in range(rounds):
        for item in items:
            started = time.perf_counter()
            function(item)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "seeds")
    parser.add_argument("--index", type=Path)
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" / "seed_questions.jsonl")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    bot = Chatbot.from_config(docs=args.docs, index=args.index)
    bot.index()
    questions = [item.question for item in read_questions(args.questions)]
    for question in questions[:5]:  # warm up: model loaded, caches filled
        bot.ask(question)
    embed = timed(lambda q: bot.embedder.encode([q]), questions, args.rounds)
    ask = timed(bot.ask, questions, args.rounds)
    rows = [
        ("embed the question alone", statistics.median(embed), percentile(embed, 0.95)),
        ("ask (warm)", statistics.median(ask), percentile(ask, 0.95)),
    ]
    ratio = statistics.median(ask) / statistics.median(embed)
    table = "\n".join(
        ["| step | p50 ms | p95 ms |", "|---|---|---|"]
        + [f"| {name} | {p50:.1f} | {p95:.1f} |" for name, p50, p95 in rows]
    )
    summary = f"ask p50 / embed p50 = {ratio:.2f}; {len(ask)} asks over {len(questions)} questions, {args.docs.name}"
    print(table)
    print(summary)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.md").write_text(
        f"# Warm question latency\n\n{time.strftime('%Y-%m-%d')}, {platform.node()}, {platform.machine()}\n\n"
        f"Command: `python benchmarks/bench_latency.py {' '.join(sys.argv[1:])}`\n\n{table}\n\n{summary}\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
