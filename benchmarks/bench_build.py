"""Index build, documents to ready index, against bare float32 `SentenceTransformer.encode` of the same sentences.

    python benchmarks/bench_build.py [--squad ../shared/eval/squad2-dev-half.json] [--repeat 1] [--rounds 1]
    python benchmarks/bench_build.py --large FILE      # time and peak memory of indexing one large file

The corpus is the SQuAD articles written as documents by `chatbot.training.evaluate.build_corpus` (`--articles N`
keeps the first N; `--repeat K` copies the corpus K times under other names for a larger one). Each round,
back to back on the same machine:
1. `chatbot index --rebuild` in a fresh process, timed whole: start, imports, model load, reading,
   segmenting, embedding, BM25, writing; its peak resident memory is read at its exit;
2. the same command with `[chunk] passage_vectors = "embedded"` (passages embedded, not derived);
3. the same rebuild in this process, the model loaded before the clock starts (`Chatbot.index(force=True)`);
4. the reference: bare float32 `SentenceTransformer.encode` of exactly the index's sentences, one call,
   the configured batch size, torch's default threads, the model loaded before the clock starts;
5. the same bare encode on one torch thread (the build runs one batch per core, each on one thread: this
   row shows how much of the gain that is, rather than precision and embedding only sentences).
`--large FILE` indexes a folder holding only FILE with `chatbot index --rebuild` in a fresh process and
writes its time and peak memory. Each writes a section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import shutil
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
from chatbot.training.evaluate import build_corpus

# `chatbot index` as the console script runs it, reporting its own peak resident memory when it exits: the
# high-water mark of its own memory (VmHWM), not getrusage's ru_maxrss, which Linux carries over an exec from
# the forked copy of this process and so would report this process's size.
CHILD = (
    "import atexit, re, sys\n"
    "atexit.register(lambda: print('peak RSS kB', re.search(r'VmHWM:\\s+(\\d+)', "
    "open('/proc/self/status').read()).group(1), file=sys.stderr))\n"
    "from chatbot.app.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


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


def index_command(docs: Path, index: Path, config: Path | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, the summary line) of `chatbot index --rebuild` in a fresh process."""
    started = time.perf_counter()
    extra = ["--config", str(config)] if config else []
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "index", "--rebuild", "--docs", str(docs), "--index", str(index), *extra],
        cwd=ROOT, capture_output=True, text=True,
    )
    if done.returncode:
        raise SystemExit(f"chatbot index failed:\n{done.stderr[-2000:]}")
    seconds = time.perf_counter() - started
    peak = next(line for line in done.stderr.splitlines() if line.startswith("peak RSS kB"))
    return seconds, int(peak.split()[-1]) / 1024, done.stdout.strip()


def bare_encode(model, texts: list[str], batch_size: int, threads: int | None) -> float:
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        return time.perf_counter() - started
    finally:
        torch.set_num_threads(before)


def large_file(path: Path, results: Path) -> int:
    load_before = load_average()
    with tempfile.TemporaryDirectory() as temporary:
        docs = Path(temporary) / "docs"
        docs.mkdir()
        shutil.copyfile(path, docs / path.name)  # a link out of the folder would be skipped
        seconds, peak, summary = index_command(docs, Path(temporary) / "index")
        counts = Chatbot.from_config(docs=docs, index=Path(temporary) / "index").data.manifest["counts"]
    size = path.stat().st_size / 1e6
    text = table(
        ["file", "MB", "sentences", "passages", "wall s", "sentences/s", "peak RSS MB"],
        [[path.name, round(size, 1), counts["sentences"], counts["passages"], round(seconds),
          round(counts["sentences"] / seconds, 1), round(peak)]],
    )
    note = (f"`chatbot index --rebuild` of a folder holding only this file, in a fresh process; peak resident "
            f"memory read at its exit (VmHWM). Its output: {summary}. Target: peak under 1,500 MB.")
    print(text, note, sep="\n")
    write_section("build-large", "Indexing one large file (`bench_build.py --large`)", f"{text}\n\n{note}\n",
                  load_before, results)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "eval" / "squad2-dev-half.json")
    parser.add_argument("--articles", type=int, help="only the first N articles")
    parser.add_argument("--repeat", type=int, default=1, help="copies of the corpus")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--large", type=Path, help="index this one file instead, for time and peak memory")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    if args.large:
        return large_file(args.large, args.results)

    load_before = load_average()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        files = make_corpus(args.squad, folder, args.articles, args.repeat)
        chars = sum(path.stat().st_size for path in files)
        bot = Chatbot.from_config(docs=folder / "docs", index=folder / "index")
        bot.index()
        data = bot.data
        sentences = [data.texts[d][s:e] for d, s, e in data.sentences[:, :3].tolist()]
        bot.embedder.document_model.encode(["warm up"])
        model = bot.embedder.model  # float32, as the reference embeds; loaded before any clock starts
        model.encode(["warm up"], normalize_embeddings=True)
        batch = bot.config.model.batch_size
        embedding_passages = folder / "embedded.toml"  # the other way of making passage vectors
        embedding_passages.write_text('[chunk]\npassage_vectors = "embedded"\n', encoding="utf-8")
        command, peaks, embedded, build, bare, single = [], [], [], [], [], []
        for _ in range(args.rounds):
            seconds, peak, _ = index_command(folder / "docs", folder / "index")
            command.append(seconds)
            peaks.append(peak)
            embedded.append(index_command(folder / "docs", folder / "embedded", embedding_passages)[0])
            started = time.perf_counter()
            bot.index(force=True)
            build.append(time.perf_counter() - started)
            bare.append(bare_encode(model, sentences, batch, None))
            single.append(bare_encode(model, sentences, batch, 1))
            print(f"round: command {command[-1]:.1f} s, passages embedded {embedded[-1]:.1f} s, build "
                  f"{build[-1]:.1f} s, bare {bare[-1]:.1f} s, bare on one thread {single[-1]:.1f} s", file=sys.stderr)
        counts = bot.data.manifest["counts"]
    n = counts["sentences"]
    bare_s = statistics.median(bare)
    rows = []
    for name, times in [
        ("bare float32 SentenceTransformer.encode of the sentences (reference)", bare),
        ("the same, torch on one thread", single),
        ("chatbot index --rebuild, a fresh process, whole", command),
        ('the same with [chunk] passage_vectors = "embedded"', embedded),
        ("Chatbot.index(force=True), model loaded", build),
    ]:
        median = statistics.median(times)
        rows.append([name, round(median, 2), round(n / median, 1), round(bare_s / median, 2)])
    text = table(["step", "median s", "sentences/s", "speed vs the reference"], rows)
    summary = (
        f"{counts['documents']} documents ({chars / 1e6:.2f} MB), {n} sentences, {counts['passages']} passages "
        f"(their vectors derived from the sentences' unless said); model {bot.config.model.name}, documents in "
        f"{bot.embedder.dtype}, batch size {batch}; median of {args.rounds} rounds, the five back to back in each; "
        f"per round: command {', '.join(f'{s:.1f}' for s in command)} s, passages embedded "
        f"{', '.join(f'{s:.1f}' for s in embedded)} s, in process "
        f"{', '.join(f'{s:.1f}' for s in build)} s, bare {', '.join(f'{s:.1f}' for s in bare)} s, bare on one "
        f"thread {', '.join(f'{s:.1f}' for s in single)} s. Peak RSS of `chatbot index --rebuild`: "
        f"{max(peaks):.0f} MB. Target (issue 16): the command at least 2.5 x the reference."
    )
    print(text)
    print(summary)
    name = "build" if args.repeat == 1 else f"build-x{args.repeat}"
    write_section(name, f"Index build (`bench_build.py`{'' if args.repeat == 1 else f', corpus x{args.repeat}'})",
                  f"{text}\n\n{summary}\n", load_before, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
