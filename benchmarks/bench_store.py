"""Scale of the vector store: the FAISS index the project picks at each size, against exact search.

    python benchmarks/bench_store.py [--sizes 10000,100000,1000000] [--queries 200]

For each size, in a fresh process (so peak memory belongs to that size alone): synthetic unit vectors,
the index `vectors.vector_search` picks for that many (config [search], default "auto"), its build time,
memory, single-query p50 and recall@10 against exact search (IndexFlatIP, whose own p50 is the reference),
and a save/load round trip through faiss.write_index/read_index as store.py does it.

Synthetic vectors: a mixture of clusters in a 48-dimensional latent space mapped into 384 dimensions, plus
noise, normalised, so that, like sentence embeddings, they have structure for an approximate index to use
(uniformly random vectors have none, and no ANN index reaches high recall on them). Queries are new
samples from the same mixture. Writes a section of benchmarks/RESULTS.md and benchmarks/results/store.png.
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import load_average, peak_rss_mb, table, write_section


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthetic(count: int, dimension: int, seed: int, clusters: int = 2000, latent: int = 48) -> np.ndarray:
    """Unit vectors with the clustered, low-dimensional structure of text embeddings (see module doc)."""
    layout = np.random.default_rng(12345)  # the same mixture for database and queries
    centres = layout.standard_normal((clusters, latent)).astype(np.float32)
    projection = layout.standard_normal((latent, dimension)).astype(np.float32) / np.sqrt(latent)
    rng = np.random.default_rng(seed)
    out = np.empty((count, dimension), dtype=np.float32)
    for lo in range(0, count, 100_000):
        n = min(100_000, count - lo)
        points = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, latent), dtype=np.float32)
        block = points @ projection + 0.15 * rng.standard_normal((n, dimension), dtype=np.float32)
        out[lo : lo + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def single_query_ms(search, queries: np.ndarray, k: int = 10) -> list[float]:
    """Milliseconds per query, one at a time, searched the way retrieve.py does (vectors.search_vectors)."""
    from chatbot.index.vectors import search_vectors

    samples = []
    for row in range(len(queries)):
        started = time.perf_counter()
        search_vectors(search, queries[row : row + 1], k)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(size: int, queries: int, dimension: int, settings: dict) -> dict:
    """One size, in this process: everything the table reports."""
    import faiss

    from chatbot.config import SearchConfig
    from chatbot.index.vectors import vector_search

    vectors = synthetic(size, dimension, seed=1)
    asked = synthetic(queries, dimension, seed=2)
    exact = faiss.IndexFlatIP(dimension)
    exact.add(vectors)
    _, truth = exact.search(asked, 10)  # batched: the ground truth, not timed
    exact_p50 = statistics.median(single_query_ms(exact, asked[: min(queries, 50)]))
    del exact

    before = current_rss_mb()
    started = time.perf_counter()
    search = vector_search(vectors, SearchConfig(**settings))
    build_s = time.perf_counter() - started
    index_mb = current_rss_mb() - before
    with tempfile.TemporaryDirectory() as folder:  # the round trip store.py makes: write_index / read_index
        path = str(Path(folder) / "vectors.faiss")
        faiss.write_index(search, path)
        file_mb = os.path.getsize(path) / 2**20
        started = time.perf_counter()
        loaded = faiss.read_index(path)
        load_s = time.perf_counter() - started
    for row in range(min(20, queries)):  # warm up
        loaded.search(asked[row : row + 1], 10)
    samples = single_query_ms(loaded, asked)
    _, found = loaded.search(asked, 10)
    recall = float(np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(queries)]))
    kind = type(faiss.downcast_index(loaded)).__name__
    if kind.startswith("IndexHNSW"):
        hnsw = faiss.downcast_index(loaded).hnsw
        kind += f" (M={settings.get('hnsw_m', SearchConfig.hnsw_m)}, efSearch={hnsw.efSearch})"
    return {
        "size": size,
        "kind": kind,
        "build_s": build_s,
        "load_s": load_s,
        "index_mb": index_mb,
        "file_mb": file_mb,
        "p50_ms": statistics.median(samples),
        "p95_ms": float(np.percentile(samples, 95)),
        "exact_p50_ms": exact_p50,
        "recall10": recall,
        "peak_rss_mb": peak_rss_mb(),
        "vectors_mb": vectors.nbytes / 2**20,
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [item["size"] for item in results]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(sizes, [item["p50_ms"] for item in results], "o-", label="project's index (p50)")
    left.plot(sizes, [item["exact_p50_ms"] for item in results], "s--", label="exact IndexFlatIP (p50)")
    left.axhline(50, color="grey", linestyle=":", label="target at 1M: 50 ms")
    left.set(xscale="log", yscale="log", xlabel="vectors (384-d)", ylabel="single query, ms", title="Query latency")
    left.legend(fontsize=8)
    right.plot(sizes, [item["file_mb"] for item in results], "o-", label="index (size of its FAISS file)")
    right.plot(sizes, [item["peak_rss_mb"] for item in results], "s--", label="process peak RSS")
    right.set(xscale="log", yscale="log", xlabel="vectors (384-d)", ylabel="MB", title="Memory")
    right.legend(fontsize=8)
    for axis, item in zip([left] * len(results), results):
        axis.annotate(f"recall {item['recall10']:.3f}", (item["size"], item["p50_ms"]), fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated vector counts")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--search", default="{}", help='JSON overrides of [search], e.g. \'{"hnsw_ef_search": 64}\'')
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "results" / "store.png")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one size, JSON to stdout
    args = parser.parse_args()
    settings = json.loads(args.search)
    if args.child:
        print(json.dumps(measure(args.child, args.queries, args.dimension, settings)))
        return 0

    load_before = load_average()
    results = []
    for size in (int(value) for value in args.sizes.split(",")):
        command = [sys.executable, __file__, "--child", str(size), "--queries", str(args.queries),
                   "--dimension", str(args.dimension), "--search", args.search]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(f"{size}: {results[-1]}", file=sys.stderr)
    rows = [
        [f"{item['size']:,}", item["kind"], round(item["build_s"], 2), round(item["load_s"], 3),
         round(item["index_mb"]), round(item["file_mb"]), round(item["p50_ms"], 2), round(item["p95_ms"], 2),
         round(item["exact_p50_ms"], 2), round(item["exact_p50_ms"] / item["p50_ms"], 1), f"{item['recall10']:.3f}",
         round(item["peak_rss_mb"])]
        for item in results
    ]
    text = table(
        ["vectors", "index picked", "build s", "load s", "index MB", "file MB", "query p50 ms", "query p95 ms",
         "exact p50 ms (reference)", "speed-up vs exact", "recall@10 vs exact", "peak RSS MB"],
        rows,
    )
    print(text)
    plot(results, args.plot)
    body = (
        f"{text}\n\nSingle-query latency (one question at a time, as `ask` searches), {args.queries} queries, "
        f"k = 10; {args.dimension}-d synthetic clustered unit vectors (see the script's docstring); settings "
        f"[search] defaults{' with ' + args.search if settings else ''}. Index MB is the growth of resident memory "
        f"while building it (the vectors themselves take {results[-1]['vectors_mb']:.0f} MB at the largest "
        f"size); peak RSS includes the vectors and the exact reference index.\n\n"
        f"![query latency and memory against size]({os.path.relpath(args.plot, args.results.parent)})\n"
    )
    write_section("store", "Vector store at scale (`bench_store.py`)", body, load_before, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
