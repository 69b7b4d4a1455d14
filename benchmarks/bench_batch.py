"""Warm `ask` latency and `ask_batch` throughput, each against embedding the same questions alone.

    python benchmarks/bench_batch.py [--squad ../shared/eval/squad2-dev-half.json] [--questions 400] [--rounds 3]

Corpus: the SQuAD articles as documents (`chatbot.training.evaluate.build_corpus`), indexed once before timing
(or `--docs`/`--index` of your own; an existing index is reused). Questions: the first N of the file.
- Latency: for each question, back to back, `embedder.encode([question])`, the answer verifier's reading of
  that question's candidates alone (`verifier.score`, the same pairs `ask` gives it), then `bot.ask(question)`;
  p50 and p95 of each over all questions and rounds.
- Throughput: per round, `embedder.encode(questions)` (one call, as `ask_batch` embeds) plus the verifier's
  reading of every question's candidates (the bare model time for the same work), then
  `bot.ask_batch(questions)`; questions per second, median over rounds.
Writes two sections of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import load_average, peak_rss_mb, percentile, table, write_section

from chatbot import Chatbot
from chatbot.answering.verifier import Candidate, context_of
from chatbot.index.embed import torch_threads
from chatbot.training.evaluate import build_corpus, read_questions


def candidates_of(bot: Chatbot, questions: list[str]) -> list[list[Candidate]]:
    """The pairs the verifier reads for each question when `ask` answers it (none with the verifier off)."""
    data = bot.data
    pairs = []
    for _, evidence in bot.explain_batch(questions):
        read = evidence.verification.sentences.tolist() if evidence.verification is not None else []
        pairs.append([Candidate(_text(data, s), context_of(data, s)) for s in read])
    return pairs


def _text(data, sentence: int) -> str:
    doc, start, end = (int(value) for value in data.sentences[sentence])
    return data.texts[doc][start:end]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "eval" / "squad2-dev-half.json")
    parser.add_argument("--docs", type=Path, help="documents folder (default: the SQuAD articles)")
    parser.add_argument("--index", type=Path, help="index folder (default: a temporary one)")
    parser.add_argument("--questions", type=int, default=400, help="how many questions of the file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--config", type=Path, help="config file (default: config/default.toml)")
    parser.add_argument("--answer-threads", type=int, help="[model] answer_threads for this run (0: torch's default)")
    args = parser.parse_args()
    threads = {} if args.answer_threads is None else {"model": {"answer_threads": args.answer_threads}}

    load_before = load_average()
    with tempfile.TemporaryDirectory() as temporary:
        docs = args.docs or Path(temporary) / "docs"
        if args.docs is None:
            build_corpus(args.squad, docs)
        bot = Chatbot.from_config(args.config, docs=docs, index=args.index or Path(temporary) / "index", **threads)
        bot.index()
        questions = [item.question for item in read_questions(args.squad)][: args.questions]
        for question in questions[:10]:  # warm up: model loaded, caches filled
            bot.ask(question)
        pairs = candidates_of(bot, questions)
        embed_one, verify_one, ask_one = [], [], []

        def on_threads():  # the reference runs on the threads answering uses
            return torch_threads(bot.config.model.answer_threads)

        for _ in range(args.rounds):
            for question, candidates in zip(questions, pairs):
                with on_threads():
                    started = time.perf_counter()
                    bot.embedder.encode([question])
                    middle = time.perf_counter()
                    bot.verifier.score(question, candidates)
                    verified = time.perf_counter()
                bot.ask(question)
                ended = time.perf_counter()
                embed_one.append((middle - started) * 1000)
                verify_one.append((verified - middle) * 1000)
                ask_one.append((ended - verified) * 1000)
        load_between = load_average()
        embed_all, batch_all = [], []
        for _ in range(args.rounds):
            with on_threads():
                started = time.perf_counter()
                bot.embedder.encode(questions)
                for question, candidates in zip(questions, pairs):
                    bot.verifier.score(question, candidates)
                middle = time.perf_counter()
            bot.ask_batch(questions)
            embed_all.append(middle - started)
            batch_all.append(time.perf_counter() - middle)
        counts = bot.data.manifest["counts"]
    verifier = bot.config.verifier
    read = f"{bot.verifier.dtype}, {verifier.candidates} candidates" if verifier.enabled else "off"
    corpus = (
        f"{counts['documents']} documents, {counts['sentences']} sentences, {counts['passages']} passages; "
        f"{len(questions)} questions; model {bot.config.model.name} ({bot.config.model.dtype}); verifier ({read}); "
        f"peak RSS of the process {peak_rss_mb():.0f} MB"
    )

    p50_ask, p50_embed = statistics.median(ask_one), statistics.median(embed_one)
    both = [e + v for e, v in zip(embed_one, verify_one)]
    p50_both = statistics.median(both)
    latency = table(
        ["step", "p50 ms", "p95 ms", "ratio of p50 to embedding + verifier"],
        [
            ["embed the question alone", round(p50_embed, 2), round(percentile(embed_one, 0.95), 2),
             round(p50_embed / p50_both, 2)],
            ["verifier on its candidates alone", round(statistics.median(verify_one), 2),
             round(percentile(verify_one, 0.95), 2), round(statistics.median(verify_one) / p50_both, 2)],
            ["embed + verifier (reference)", round(p50_both, 2), round(percentile(both, 0.95), 2), 1.0],
            ["ask (warm)", round(p50_ask, 2), round(percentile(ask_one, 0.95), 2), round(p50_ask / p50_both, 2)],
        ],
    )
    latency_note = (
        f"{len(ask_one)} asks ({args.rounds} rounds); {corpus}. Targets: ask p50 at most 60 ms on the seed "
        "article (issue 18), and at most 1.5 x its models' own time."
    )
    print(latency, latency_note, sep="\n")
    write_section("latency", "Warm question latency (`bench_batch.py`)", f"{latency}\n\n{latency_note}\n",
                  load_before, args.results)

    embed_s, batch_s = statistics.median(embed_all), statistics.median(batch_all)
    n = len(questions)
    throughput = table(
        ["step", "median s", "questions/s", "throughput vs the reference"],
        [
            ["embed the questions + verifier on their candidates (reference)", round(embed_s, 2), round(n / embed_s, 1), 1.0],
            ["ask_batch", round(batch_s, 2), round(n / batch_s, 1), round(embed_s / batch_s, 3)],
        ],
    )
    throughput_note = (
        f"Rounds: reference {', '.join(f'{s:.2f}' for s in embed_all)} s; ask_batch "
        f"{', '.join(f'{s:.2f}' for s in batch_all)} s; {corpus}. Target: at least 0.8."
    )
    print(throughput, throughput_note, sep="\n")
    write_section("batch", "Batch throughput (`bench_batch.py`)", f"{throughput}\n\n{throughput_note}\n",
                  load_between, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
