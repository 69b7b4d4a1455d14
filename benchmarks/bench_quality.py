"""Answer quality: the chatbot against three simple baselines, by the protocol of shared/eval/README.md.

One command reproduces the table of issue 3 (and, with a JSONL question set and --docs, the seed check):

    python benchmarks/bench_quality.py ../shared/eval/squad2-dev-half.json
    python benchmarks/bench_quality.py benchmarks/seed_questions.jsonl --docs seeds

Baselines, all on the project's own index (same sentences, vectors and BM25), never abstaining:
top-1 sentence by cosine; top-1 sentence by BM25; top-2 sentences by cosine; top-2 sentences, cosine
and BM25 rankings fused by reciprocal rank. The table goes to stdout and to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatbot import Chatbot  # noqa: E402
from chatbot.answering.answer import Answer, Quote  # noqa: E402
from chatbot.index.lexical import tokenize  # noqa: E402
from chatbot.training.evaluate import build_corpus, evaluate, is_hit, read_questions  # noqa: E402


def baselines(bot: Chatbot, questions: list[str]) -> dict[str, list[list[int]]]:
    """Sentence ids each baseline quotes, per question."""
    data = bot.data
    vectors = bot.embedder.encode(questions)
    _, dense = data.sentence_search.search(vectors, 60)
    picks = {
        "top-1 sentence by cosine": [],
        "top-1 sentence by BM25": [],
        "top-2 sentences by cosine": [],
        "top-2 sentences, cosine + BM25 fused by reciprocal rank": [],
    }
    for row, question in enumerate(questions):
        scores = data.sentence_lexical.scores(tokenize(question))
        lexical = np.argsort(-scores, kind="stable")[:60]
        fused: dict[int, float] = {}
        for ranking in (dense[row], lexical):
            for rank, sentence in enumerate(ranking.tolist()):
                fused[sentence] = fused.get(sentence, 0.0) + 1.0 / (60 + rank + 1)
        picks["top-1 sentence by cosine"].append(dense[row][:1].tolist())
        picks["top-1 sentence by BM25"].append(lexical[:1].tolist())
        picks["top-2 sentences by cosine"].append(dense[row][:2].tolist())
        picks["top-2 sentences, cosine + BM25 fused by reciprocal rank"].append(
            sorted(fused, key=lambda sentence: -fused[sentence])[:2]
        )
    return picks


def as_answer(bot: Chatbot, sentences: list[int]) -> Answer:
    data = bot.data
    quotes = []
    for number, sentence in enumerate(sentences, start=1):
        doc, start, end = (int(value) for value in data.sentences[sentence])
        quotes.append(Quote(number, data.texts[doc][start:end], "", start, end, 0, ""))
    return Answer("", False, 1.0, "", tuple(quotes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa_file", type=Path)
    parser.add_argument(
        "--docs", type=Path, help="documents folder (default: the SQuAD articles, written to a temporary folder)"
    )
    parser.add_argument("--index", type=Path, help="index folder (default: beside the documents)")
    parser.add_argument("--config", type=Path, help="config file (default: config/default.toml)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where the table is written")
    args = parser.parse_args()

    items = read_questions(args.qa_file)
    scratch = tempfile.TemporaryDirectory(prefix="bench-quality-")  # the corpus and its index; removed at exit
    work = Path(scratch.name)
    docs = args.docs
    if docs is None:
        docs = work / "docs"
        build_corpus(args.qa_file, docs)
    bot = Chatbot.from_config(args.config, docs=docs, index=args.index or work / "index")
    started = time.perf_counter()
    print(bot.index().summary(), f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    answerable = [item for item in items if not item.impossible]
    rows = []
    for name, picks in baselines(bot, [item.question for item in items]).items():
        hits = sum(
            is_hit(as_answer(bot, pick), item.answers) for item, pick in zip(items, picks) if not item.impossible
        )
        rows.append((name, hits / max(len(answerable), 1), 0.0, 0.0, hits / len(items)))
    report = evaluate(bot, items)
    rows.append(
        (
            "this project (default config)",
            report.hit_rate,
            report.false_abstention_rate,
            report.unanswerable_abstention_rate,
            report.overall_accuracy,
        )
    )

    header = "| system | hit rate (answerable) | false abstention | abstains on unanswerable | overall accuracy |"
    lines = [header, "|---|---|---|---|---|"]
    lines += [
        f"| {name} | {hit:.3f} | {false:.3f} | {right:.3f} | {accuracy:.3f} |"
        for name, hit, false, right, accuracy in rows
    ]
    summary = (
        f"{args.qa_file.name}: {len(items)} questions ({len(answerable)} answerable), documents {docs.name}; "
        f"retrieval recall@1 {report.recall_at_1:.3f}, recall@5 {report.recall_at_5:.3f}; "
        f"median answer {report.median_answer_chars:.0f} characters; {report.answers_per_second:.0f} answers/s"
    )
    table = "\n".join(lines)
    print(table)
    print(summary)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"quality-{args.qa_file.stem}.md"
    target.write_text(
        f"# Answer quality: {args.qa_file.name}\n\n{time.strftime('%Y-%m-%d')}, {platform.node()}, "
        f"{platform.processor() or platform.machine()}\n\nCommand: `python benchmarks/bench_quality.py "
        f"{' '.join(sys.argv[1:])}`\n\n{table}\n\n{summary}\n",
        encoding="utf-8",
    )
    print(f"written to {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
