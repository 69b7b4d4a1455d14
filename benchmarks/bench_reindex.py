"""Index lifecycle benchmark: full build vs re-index after one change in a folder of documents, and the peak
memory and time of indexing one large text document.

Usage example:
    python benchmarks/bench_reindex.py                           # 100 documents, then a 50 MB document
    python benchmarks/bench_reindex.py --large-mb 5 --out benchmarks/results/reindex.md
    python benchmarks/bench_reindex.py --skip-folder --large-mb 20 --small-model   # memory of the pipeline, fast
    python benchmarks/bench_reindex.py --skip-folder --code /tmp/old-checkout      # the same, for older code

The folder part runs in this process with the model loaded first, so the times are indexing work alone;
it also times the `chatbot index` command, which adds start-up and model loading. The large document is
indexed by `python -m chatbot index` in a child process whose peak resident memory (ru_maxrss) is read
when it ends. `--small-model` makes a one-layer copy of the configured model
(same tokenizer and dimension, texts cut at 32 tokens: many times faster) so that a large document can be
measured in minutes: memory is then that of the pipeline (texts, offsets, vectors, FAISS, BM25), plus a
smaller model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "guangdong-tech-self-reliance.txt"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def sentences_of_seed() -> list[str]:
    text = " ".join(SEED.read_text(encoding="utf-8").split())
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 30]


def synthetic_text(rng: random.Random, sentences: list[str], chars: int, tag: str) -> str:
    """Paragraphs of seed sentences, each varied by a tag and a number, until `chars` characters."""
    paragraphs, size = [], 0
    while size < chars:
        paragraph = " ".join(
            f"{rng.choice(sentences)[:-1]} ({tag}, item {rng.randint(1, 10**6)})." for _ in range(rng.randint(2, 6))
        )
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs) + "\n"


def write_config(folder: Path, docs: Path, index: Path, model: str | None) -> Path:
    lines = ["[paths]", f'docs = "{docs}"', f'index = "{index}"']
    if model:
        lines += ["[model]", f'name = "{model}"']
    path = folder / "bench.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_index(code: Path, config: Path, *flags: str) -> tuple[dict, float, int]:
    """(report, wall seconds, peak RSS in MB) of `python -m chatbot index --json` run from `code`."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "chatbot", "index", "--json", "--config", str(config), *flags],
            cwd=code, env={**ENV, "PYTHONPATH": str(code)}, stdout=out, stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)  # the child's own peak memory, not the largest of all children
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"chatbot index failed:\n{err.read()}")
        return json.loads(out.read()), seconds, round(usage.ru_maxrss / 1024)


def bench_folder(count: int, model: str | None) -> list[tuple[str, str]]:
    """Full build vs re-index after changing one of `count` documents, in process (warm model) and by CLI."""
    sys.path.insert(0, str(ROOT))
    from chatbot import Chatbot

    rng = random.Random(1)
    sentences = sentences_of_seed()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs, index = Path(tmp) / "docs", Path(tmp) / "index"
        docs.mkdir()
        for number in range(count):
            (docs / f"doc-{number:03}.txt").write_text(synthetic_text(rng, sentences, 2500, f"doc {number}"))
        overrides = {"model": {"name": model}} if model else {}
        bot = Chatbot.from_config(docs=docs, index=index, **overrides)
        bot.embedder.encode(["warm up the model"])
        full = bot.index(force=True)
        (docs / "doc-042.txt").write_text(synthetic_text(rng, sentences, 2500, "doc 42, edited"))
        one = bot.index()
        started = time.perf_counter()
        bot.index()
        same_seconds = time.perf_counter() - started
        total = full.sentences_embedded
        rows += [
            ("documents in the folder", f"{count} ({total} sentences, {len(bot.data.passages)} passages)"),
            ("full build, in process (model loaded)", f"{full.seconds:.2f} s, {total} sentences embedded"),
            ("re-index after changing 1 document, in process",
             f"{one.seconds:.2f} s, {one.sentences_embedded} sentences embedded"),
            ("speed-up of the re-index", f"{full.seconds / max(one.seconds, 1e-9):.0f}x"),
            ("check with nothing changed, in process", f"{same_seconds:.3f} s"),
        ]
        config = write_config(Path(tmp), docs, index, model)
        _, full_wall, _ = run_index(ROOT, config, "--rebuild")
        (docs / "doc-042.txt").write_text(synthetic_text(rng, sentences, 2500, "doc 42, edited again"))
        report, one_wall, _ = run_index(ROOT, config)
        _, same_wall, _ = run_index(ROOT, config)
        assert report["changed"] == ["doc-042.txt"], report
        rows += [
            ("`chatbot index --rebuild` (command, with start-up)", f"{full_wall:.1f} s"),
            ("`chatbot index` after changing 1 document (command)", f"{one_wall:.1f} s"),
            ("`chatbot index` with nothing changed (command)", f"{same_wall:.1f} s"),
        ]
    return rows


def bench_large(megabytes: float, model: str | None, code: Path) -> list[tuple[str, str]]:
    """Time and peak memory of indexing one document of `megabytes` MB of text."""
    rng = random.Random(2)
    with tempfile.TemporaryDirectory() as tmp:
        docs, index = Path(tmp) / "docs", Path(tmp) / "index"
        docs.mkdir()
        (docs / "large.txt").write_text(synthetic_text(rng, sentences_of_seed(), int(megabytes * 1e6), "large"))
        size = (docs / "large.txt").stat().st_size
        report, wall, peak = run_index(code, write_config(Path(tmp), docs, index, model))
        manifest_counts = _counts(index)
    return [
        ("large document", f"{size / 1e6:.1f} MB, {manifest_counts}"),
        ("code measured", str(code)),
        ("model", model or "configured default"),
        ("build time (command)", f"{wall:.0f} s (index work {report['seconds']:.0f} s)"),
        ("peak resident memory (ru_maxrss)", f"{peak} MB"),
    ]


def _counts(index: Path) -> str:
    name = (index / "CURRENT").read_text().strip()
    counts = json.loads((index / "builds" / name / "manifest.json").read_text())["counts"]
    return f"{counts['sentences']} sentences, {counts['passages']} passages"


def make_small_model(folder: Path) -> str:
    """A one-layer copy of the configured model, saved in `folder` (a benchmark aid, not for answering)."""
    sys.path.insert(0, str(ROOT))
    from chatbot.config import load_config
    from chatbot.index.embed import Embedder

    model = Embedder(load_config().model.name).model
    encoder = model[0].auto_model
    encoder.encoder.layer = encoder.encoder.layer[:1]
    encoder.config.num_hidden_layers = 1
    model.max_seq_length = 32
    model.save(str(folder))
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100, help="documents in the folder (default 100)")
    parser.add_argument("--large-mb", type=float, default=50.0, help="size of the large document (default 50)")
    parser.add_argument("--skip-folder", action="store_true", help="leave out the folder benchmark")
    parser.add_argument("--skip-large", action="store_true", help="leave out the large document")
    parser.add_argument("--model", help="model name or folder (default: the configured one)")
    parser.add_argument("--small-model", action="store_true", help="use a one-layer copy of the model (fast)")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose `chatbot index` indexes the large file")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = make_small_model(Path(tmp) / "small-model") if args.small_model else args.model
        rows = [("machine", f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")]
        if not args.skip_folder:
            rows += bench_folder(args.docs, model)
        if not args.skip_large:
            rows += bench_large(args.large_mb, model, args.code.resolve())
    table = "| measure | result |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(f"# bench_reindex ({time.strftime('%Y-%m-%d')})\n\n{table}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
