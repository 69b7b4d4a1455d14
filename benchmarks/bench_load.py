"""Loading an index: wall time and memory of `store.load_index` in a fresh process, on the seed index and on a
larger synthetic one, and what a first full pass over the vectors (as an exact search makes) adds.

    python benchmarks/bench_load.py [--sizes 40000,200000] [--rounds 3] [--baseline DIR] [--no-write]

The indexes are built once into benchmarks/out/ (the seed index with the real model; the larger ones from
synthetic clustered vectors, see bench_store.py, with one synthetic sentence of text per vector, so that
texts, offsets and BM25 files have a realistic size). Each round loads each index in a fresh process and
reports the median wall seconds of `load_index` (checksums verified, as every load does) and resident
memory after it: anonymous (the process's own copies) and file-backed (memory-mapped pages, which the
kernel may drop and read again). `--baseline DIR` also measures the `chatbot` package found in DIR (another
version, e.g. `git archive main chatbot | tar -x -C /tmp/base`), in the same rounds, alternating with this
checkout. Writes a section of benchmarks/RESULTS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import load_average, table, write_section

from chatbot.config import SearchConfig

CHILD = """
import json, os, sys, time
from pathlib import Path
import numpy as np
from chatbot.index.store import load_index

def memory():
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("RssAnon", "RssFile", "VmHWM")}

before = memory()
started = time.perf_counter()
data = load_index(Path(sys.argv[1]))
seconds = time.perf_counter() - started
loaded = memory()
for vectors in (data.sentence_vectors, data.passage_vectors):
    for lo in range(0, len(vectors), 65536):
        np.asarray(vectors[lo : lo + 65536]).sum()
query = np.asarray(data.sentence_vectors[:1], dtype=np.float32)
data.sentence_search.search(query, 10)
data.passage_search.search(query, 10)
touched = memory()
print(json.dumps({"seconds": seconds, "before": before, "loaded": loaded, "touched": touched}))
"""


def seed_index() -> Path:
    folder = OUT / "load-seed-index"
    if not (folder / "CURRENT").exists():
        from chatbot import Chatbot

        Chatbot.from_config(docs=ROOT / "seeds", index=folder).index()
    return folder


def large_index(sentences: int) -> Path:
    """A synthetic index of `sentences` sentences in passages of three, built once and kept."""
    folder = OUT / f"load-synthetic-{sentences}"
    if (folder / "CURRENT").exists():
        return folder
    import numpy as np
    from bench_store import synthetic

    from chatbot.index.lexical import LexicalIndex, tokenize
    from chatbot.index.store import IndexData, save_index
    from chatbot.index.vectors import vector_search

    words = ["copper", "river", "harbour", "orchard", "lantern", "quarry", "meadow", "signal", "ledger", "summit"]
    per_document = 500
    texts, rows = [], []
    for document in range(0, sentences, per_document):
        parts, offset = [], 0
        for number in range(document, min(document + per_document, sentences)):
            line = f"Sentence {number} tells of the {words[number % 10]} near the {words[(number // 10) % 10]}. "
            rows.append((len(texts), offset, offset + len(line) - 1))
            parts.append(line)
            offset += len(line)
        texts.append("".join(parts))
    sentence_rows = np.array(rows, dtype=np.int64)
    passage_rows = np.array(
        [
            (sentence_rows[lo, 0], sentence_rows[lo, 1], sentence_rows[hi - 1, 2], lo, hi)
            for lo in range(0, sentences, 3)
            for hi in [min(lo + 3, sentences)]
        ],
        dtype=np.int64,
    )
    sentence_vectors = synthetic(sentences, 384, seed=1)
    passage_vectors = synthetic(len(passage_rows), 384, seed=2)
    tokens = [tokenize(texts[d][s:e]) for d, s, e in sentence_rows.tolist()]
    manifest = {
        "documents": [{"path": f"doc-{n}.txt", "sentences": 0} for n in range(len(texts))],
        "settings": {"synthetic": True},
    }
    data = IndexData(
        manifest=manifest,
        texts=texts,
        sentences=sentence_rows,
        passages=passage_rows,
        sentence_vectors=sentence_vectors,
        passage_vectors=passage_vectors,
        sentence_search=vector_search(sentence_vectors, SearchConfig()),
        passage_search=vector_search(passage_vectors, SearchConfig()),
        sentence_lexical=LexicalIndex.build(tokens),
        passage_lexical=LexicalIndex.build([sum(tokens[lo:hi], []) for _, _, _, lo, hi in passage_rows.tolist()]),
    )
    folder.mkdir(parents=True, exist_ok=True)
    save_index(data, folder)
    return folder


def measure(folder: Path, code: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], env=env, capture_output=True, text=True, check=True, cwd="/"
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_microseconds(folder: Path, number: int = 2000) -> float:
    from chatbot.index.store import load_index

    data = load_index(folder)
    return timeit.timeit(data.changed_on_disk, number=number) / number * 1e6


def folder_mb(folder: Path) -> float:
    build = folder / "builds" / (folder / "CURRENT").read_text().strip()
    return sum(path.stat().st_size for path in build.rglob("*") if path.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="40000,200000", help="sentences in each synthetic index")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="also measure the chatbot package in this folder")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    indexes = {"seed article": seed_index()}
    for size in map(int, args.sizes.split(",")):
        kind = "exact" if size <= SearchConfig().exact_up_to else "HNSW"
        indexes[f"synthetic, {size:,} sentences ({kind})"] = large_index(size)
    codes = {"this checkout": ROOT}
    if args.baseline:
        codes = {f"baseline ({args.baseline})": args.baseline.resolve(), **codes}
    load_before = load_average()
    runs: dict[tuple[str, str], list[dict]] = {(code, name): [] for name in indexes for code in codes}
    for _ in range(args.rounds):
        for name, folder in indexes.items():
            for code, path in codes.items():
                runs[code, name].append(measure(folder, path))

    def median(measured: list[dict], stage: str, key: str) -> float:
        return round(statistics.median(run[stage][key] - run["before"][key] for run in measured), 2)

    rows = [
        [
            code,
            name,
            round(folder_mb(indexes[name]), 1),
            round(statistics.median(run["seconds"] for run in measured), 3),
            median(measured, "loaded", "RssAnon"),
            median(measured, "loaded", "RssFile"),
            median(measured, "touched", "RssAnon"),
            median(measured, "touched", "RssFile"),
        ]
        for (code, name), measured in runs.items()
    ]
    header = [
        "code", "index", "files MB", "load s", "anon MB after load", "file-backed MB after load",
        "anon MB after a full pass", "file-backed MB after a full pass",
    ]
    text = table(header, rows)
    check = check_microseconds(indexes["seed article"])
    text += (
        f"\n\nThe check a running process makes before each question, whether its build on disk was replaced or "
        f"changed (`IndexData.changed_on_disk`: read CURRENT, stat each file): {check:.0f} µs on the seed index "
        "(the number of files is the same for any index)."
    )
    print(text)
    if not args.no_write:
        body = (
            f"{text}\n\nMedian of {args.rounds} rounds, each index loaded in a fresh process per round; memory is "
            "the growth of resident memory over the fresh process before `load_index`. Anonymous memory is the "
            "process's own copy; file-backed memory is memory-mapped index files, which the kernel may drop and read "
            "again, and which a file truncated under the process turns into SIGBUS on the next access."
        )
        write_section("load", "Loading an index (`bench_load.py`)", body, load_before)


if __name__ == "__main__":
    main()
