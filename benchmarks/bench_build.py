"""Index build, documents to ready index, against bare `SentenceTransformer.encode` of the same texts.

    python benchmarks/bench_build.py [--squad ../shared/eval/squad2-dev-half.json] [--repeat 1] [--rounds 3]

The corpus is the SQuAD articles written as documents by `chatbot.evaluate.build_corpus` (`--articles N`
keeps the first N; `--repeat K` copies the corpus K times under other names for a larger one). Each round
builds the index from scratch (`Chatbot.index(force=True)`: read, segment, chunk, embed, BM25, write) and,
back to back in the same process with the same loaded model, encodes exactly the index's sentence and
passage texts with the model alone (two `encode` calls, same batch size). The model is loaded before the
clock starts for both. Writes a section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import load_average, peak_rss_mb, table, write_section

from chatbot import Chatbot
from chatbot.evaluate import build_corpus


def make_corpus(squad: Path, folder: Path, articles: int | None, repeat: int) -> list[Path]:
    written = build_corpus(squad, folder / "one")
    if articles:
        written = written[:articles]
    docs = folder / "docs"
    docs.mkdir()
    for copy in range(repeat):
        for path in written:
            shutil.copyfile(path, docs / f"{copy:02d}-{path.name}")
    return sorted(docs.iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "eval" / "squad2-dev-half.json")
    parser.add_argument("--articles", type=int, help="only the first N articles")
    parser.add_argument("--repeat", type=int, default=1, help="copies of the corpus")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()

    load_before = load_average()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        files = make_corpus(args.squad, folder, args.articles, args.repeat)
        chars = sum(path.stat().st_size for path in files)
        bot = Chatbot.from_config(docs=folder / "docs", index=folder / "index", model={"dtype": args.dtype})
        model = bot.embedder.model  # loaded before any clock starts
        model.encode(["warm up"], normalize_embeddings=True)
        build, bare, counts = [], [], None
        for _ in range(args.rounds):
            started = time.perf_counter()
            bot.index(force=True)
            build.append(time.perf_counter() - started)
            data = bot.data
            sentences = [data.texts[d][s:e] for d, s, e in data.sentences[:, :3].tolist()]
            passages = [data.texts[d][s:e] for d, s, e in data.passages[:, :3].tolist()]
            counts = (len(files), len(sentences), len(passages))
            started = time.perf_counter()
            for texts in (sentences, passages):
                model.encode(texts, batch_size=bot.config.model.batch_size, normalize_embeddings=True,
                             convert_to_numpy=True)
            bare.append(time.perf_counter() - started)
            print(f"round: build {build[-1]:.1f} s, bare encode {bare[-1]:.1f} s", file=sys.stderr)
    texts = counts[1] + counts[2]
    build_s, bare_s = statistics.median(build), statistics.median(bare)
    rows = [
        ["bare SentenceTransformer.encode (reference)", round(bare_s, 2), round(texts / bare_s, 1), 1.0],
        ["chatbot index, end to end", round(build_s, 2), round(texts / build_s, 1), round(bare_s / build_s, 3)],
    ]
    text = table(["step", "median s", "texts/s", "throughput vs bare encode"], rows)
    summary = (
        f"{counts[0]} documents ({chars / 1e6:.2f} MB), {counts[1]} sentences + {counts[2]} passages = {texts} texts "
        f"embedded; model {bot.config.model.name} ({args.dtype}), batch size {bot.config.model.batch_size}; "
        f"median of {args.rounds} rounds (build and bare encode back to back in each); "
        f"build times per round: {', '.join(f'{s:.1f}' for s in build)} s; bare: {', '.join(f'{s:.1f}' for s in bare)} s. "
        f"Peak RSS of the process: {peak_rss_mb():.0f} MB. Target: at least 0.9."
    )
    print(text)
    print(summary)
    name = "build" if args.repeat == 1 else f"build-x{args.repeat}"
    write_section(name, f"Index build (`bench_build.py`{'' if args.repeat == 1 else f', corpus x{args.repeat}'})",
                  f"{text}\n\n{summary}\n", load_before, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
