"""The two index backends side by side in one run: FAISS + bm25s files against Milvus Lite.

    python benchmarks/bench_backends.py [--sizes 10000,100000] [--queries 100] [--quality]

Scale, for each size (passages) and backend, each step in a fresh process (so that peak memory is that step's):
`chatbot index` of a synthetic corpus (build time, peak RSS), then an answering process: loading the index,
its resident memory, and single-question retrieval latency (the four rankings fused, as `ask` retrieves, plus
reading the candidates' vectors, as ranking does). Both backends index the same files with the same stand-in
embedder (hashed words through a fixed random projection: real embedding of a million passages would take
days here, see the README on embedding large corpora), so the vectors, and what each search should find, are
the same; "same top passages" is the share of questions whose fused top-4 passages agree between backends.

Quality (--quality): the seven seed question sets answered with each backend under the default config, and
with Milvus's own hybrid_search (dense + BM25 fused by Milvus's RRFRanker) in place of the project's fusion.
Writes a section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_store import current_rss_mb  # noqa: E402
from results_md import load_average, peak_rss_mb, percentile, table, write_section  # noqa: E402

SEED_SETS = ["", "_reader", "_blind", "_heldout", "_fresh", "_fresh2", "_fresh3"]
VOCABULARY = 50_000
SENTENCES_PER_DOCUMENT = 120


class HashedWords:
    """A stand-in embedder: each word a fixed random unit vector, a text the unit mean of its words'."""

    dimension = 384

    def __init__(self) -> None:
        self.table = np.random.default_rng(7).standard_normal((1 << 16, self.dimension)).astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [zlib.crc32(word.encode()) & 0xFFFF for word in text.lower().split()]
            if words:
                out[row] = self.table[words].sum(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def write_corpus(folder: Path, passages: int, seed: int = 1) -> None:
    """Documents of synthetic sentences (Zipf-distributed words) giving about `passages` passages
    (4 sentences a passage, 1 shared: a passage per 3 sentences)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{number}" for number in range(VOCABULARY)])
    sentences = passages * 3
    folder.mkdir(parents=True, exist_ok=True)
    for number, lo in enumerate(range(0, sentences, SENTENCES_PER_DOCUMENT)):
        count = min(SENTENCES_PER_DOCUMENT, sentences - lo)
        lengths = rng.integers(8, 20, count)
        ids = np.minimum(rng.zipf(1.3, int(lengths.sum())) - 1, VOCABULARY - 1)
        text, at = [], 0
        for length in lengths.tolist():
            text.append(" ".join(words[ids[at : at + length]]).capitalize() + ".")
            at += length
        (folder / f"doc{number:06d}.txt").write_text(" ".join(text) + "\n", encoding="utf-8")


def config_of(backend: str, docs: Path, index: Path):
    from chatbot.config import load_config

    return load_config(docs=docs, index=index, store={"backend": backend}, verifier={"enabled": False})


def child_build(backend: str, docs: Path, index: Path) -> dict:
    from chatbot.index.indexer import refresh_index

    config = config_of(backend, docs, index)
    started = time.perf_counter()
    data, report = refresh_index(config, HashedWords())
    return {
        "build_s": time.perf_counter() - started,
        "build_peak_mb": peak_rss_mb(),
        "sentences": len(data.sentences),
        "passages": len(data.passages),
        "disk_mb": sum(path.stat().st_size for path in index.rglob("*") if path.is_file()) / 2**20,
    }


def child_query(backend: str, docs: Path, index: Path, queries: int) -> dict:
    from chatbot.answering.retrieve import retrieve
    from chatbot.index.backend import open_store
    from chatbot.index.lexical import tokenize

    config = config_of(backend, docs, index)
    before = current_rss_mb()
    started = time.perf_counter()
    data = open_store(config).load()
    data.sentence_passage  # as Chatbot does when it installs an index
    load_s = time.perf_counter() - started
    loaded_mb = current_rss_mb() - before
    rng = np.random.default_rng(3)
    embedder = HashedWords()
    questions = []
    for sentence in rng.integers(0, len(data.sentences), queries).tolist():
        doc, start, end = (int(value) for value in data.sentences[sentence])
        words = data.texts[doc][start:end].rstrip(".").split()
        questions.append(" ".join(rng.choice(words, min(6, len(words)), replace=False)))
    samples, tops = [], []
    for number, question in enumerate(questions):
        began = time.perf_counter()
        hits = retrieve(data, [tokenize(question)], embedder.encode([question]), config.retrieve,
                        config.search.hnsw_ef_search)[0]
        ids = np.array([s for p in hits.passages.tolist() for s in range(*data.passages[p, 3:5].tolist())])
        np.asarray(data.sentence_vectors[ids])  # what ranking reads
        np.asarray(data.passage_vectors[hits.passages])
        if number >= 5:  # the first few warm up
            samples.append((time.perf_counter() - began) * 1000)
        tops.append(hits.passages.tolist())
    return {
        "load_s": load_s,
        "loaded_mb": loaded_mb,
        "answering_peak_mb": peak_rss_mb(),
        "p50_ms": statistics.median(samples),
        "p95_ms": percentile(samples, 0.95),
        "tops": tops,
    }


def run_child(*args: str) -> dict:
    command = [sys.executable, __file__, "--child", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def scale(sizes: list[int], queries: int, work: Path) -> tuple[str, list[dict]]:
    results = []
    for size in sizes:
        docs = work / f"docs-{size}"
        started = time.perf_counter()
        write_corpus(docs, size)
        print(f"{size}: corpus written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        tops = {}
        for backend in ("faiss", "milvus"):
            index = work / f"index-{backend}-{size}"
            built = run_child("build", backend, str(docs), str(index))
            asked = run_child("query", backend, str(docs), str(index), str(queries))
            tops[backend] = asked.pop("tops")
            results.append({"size": size, "backend": backend, **built, **asked})
            print(f"{size} {backend}: {results[-1]}", file=sys.stderr)
            shutil.rmtree(index, ignore_errors=True)
        agree = float(np.mean([a == b for a, b in zip(tops["faiss"], tops["milvus"])]))
        for item in results[-2:]:
            item["same_top"] = agree
        shutil.rmtree(docs, ignore_errors=True)
    rows = [
        [f"{item['passages']:,}", f"{item['sentences']:,}", item["backend"], round(item["build_s"], 1),
         round(item["build_peak_mb"]), round(item["disk_mb"]), round(item["load_s"], 2), round(item["loaded_mb"]),
         round(item["answering_peak_mb"]), round(item["p50_ms"], 1), round(item["p95_ms"], 1), f"{item['same_top']:.2f}"]
        for item in results
    ]
    header = ["passages", "sentences", "backend", "index s", "index peak RSS MB", "on disk MB", "load s",
              "RSS after load MB", "answering peak RSS MB", "retrieval p50 ms", "retrieval p95 ms", "same top passages"]
    return table(header, rows), results


def quality(dev: Path | None) -> str:
    """Answers with FAISS, with Milvus and the project's fusion, and with Milvus's hybrid_search, on the seven
    seed question sets (and on a SQuAD development set, with `dev`); verifier off, so the ranking alone."""
    from chatbot import Chatbot
    from chatbot.index.milvus import release
    from chatbot.training.evaluate import build_corpus, evaluate, read_questions

    sets = [("seed sets", ROOT / "seeds", [ROOT / "benchmarks" / f"seed_questions{suffix}.jsonl" for suffix in SEED_SETS])]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if dev is not None:
            build_corpus(dev, Path(folder) / "dev-docs")
            sets.append((dev.name, Path(folder) / "dev-docs", [dev]))
        for name, docs, files in sets:
            index = Path(folder) / f"index-{docs.name}"
            plain = Chatbot.from_config(docs=docs, index=index / "milvus", store={"backend": "milvus"},
                                        verifier={"enabled": False})
            bots = {
                "FAISS + bm25s files": Chatbot.from_config(docs=docs, index=index / "faiss", verifier={"enabled": False}),
                "Milvus Lite, the project's fusion (shipped)": plain,
                "Milvus Lite, Milvus's hybrid_search + RRFRanker": hybrid(plain),
            }
            for backend, bot in bots.items():
                reports = [evaluate(bot, read_questions(path)) for path in files]
                hits = [round(report.hit_rate * report.answerable) for report in reports]
                answerable = sum(report.answerable for report in reports)
                abstained = sum(round(report.unanswerable_abstention_rate * report.unanswerable) for report in reports)
                unanswerable = sum(report.unanswerable for report in reports)
                rows.append([name, backend, ", ".join(map(str, hits)), f"{sum(hits) / answerable:.4f}",
                             f"{abstained / max(unanswerable, 1):.4f}", f"{reports[-1].answers_per_second:.1f}"])
                print(rows[-1], file=sys.stderr)
            release(str(index / "milvus" / "milvus.db"))
    header = ["questions", "backend", "answerable hits (per set)", "hit rate", "unanswerable abstained",
              "answers/s (last set)"]
    return table(header, rows)


def embedding(texts: int) -> tuple[str, list[dict]]:
    """Passages embedded per second by the default model (all-MiniLM-L6-v2, float32, batches of 64), with
    PyTorch on 1 and on 2 threads, and what that makes of 10 million passages (and their 30 million sentences)."""
    rows, results = [], []
    for threads in (1, 2):
        result = run_child("embed", str(threads), "-", "-", str(texts))
        results.append(result)
        per_second = result["passages_per_s"]
        days = (10_000_000 / per_second + 30_000_000 / result["sentences_per_s"]) / 86_400
        rows.append([threads, round(per_second, 1), round(result["sentences_per_s"], 1),
                     round(per_second / threads, 1), round(days, 1), round(days * 24 * threads / 64, 1)])
    header = ["threads", "passages/s", "sentences/s", "passages/s per core",
              "10M passages + 30M sentences: days here", "hours on 64 such cores (linear)"]
    return table(header, rows), results


def child_embed(threads: int, texts: int) -> dict:
    """Embedding throughput on the seed article's real passages and sentences (repeated to `texts` each)."""
    import torch

    from chatbot import Chatbot

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        bot = Chatbot.from_config(docs=ROOT / "seeds", index=Path(folder), verifier={"enabled": False})
        data = bot.data
        spans = {"passages": data.passages[:, :3], "sentences": data.sentences}
        result = {"threads": threads}
        for kind, table in spans.items():
            sample = [data.texts[d][s:e] for d, s, e in table.tolist()]
            sample = (sample * (texts // len(sample) + 1))[:texts]
            bot.embedder.encode(sample[:64])  # warm up
            started = time.perf_counter()
            bot.embedder.encode(sample)
            result[f"{kind}_per_s"] = texts / (time.perf_counter() - started)
            result[f"{kind}_chars"] = statistics.mean(len(text) for text in sample)
    return result


def hybrid(bot):
    """A chatbot like `bot` whose retrieval is Milvus's hybrid_search: passages by dense + BM25 fused by
    RRFRanker in Milvus, and the best sentences the same way (the project fuses four rankings itself)."""
    from pymilvus import AnnSearchRequest, RRFRanker

    import chatbot.answering.bot
    from chatbot.answering.retrieve import Hits

    def retrieve(data, queries, vectors, settings, ef_search=None):
        search = data.searcher
        results = []
        for tokens, vector in zip(queries, vectors):
            found = []
            for vectors_of, limit in ((data.passage_vectors, settings.passages), (data.sentence_vectors, settings.sentences)):
                requests = [AnnSearchRequest([vector.tolist()], "vector", {"metric_type": "IP", "params": {"ef": ef_search}},
                                             settings.dense_candidates, expr=search.filter)]
                if tokens:
                    requests.append(AnnSearchRequest([" ".join(tokens)], "sparse", {"metric_type": "BM25"},
                                                     settings.lexical_candidates, expr=search.filter))
                hits = vectors_of.client.hybrid_search(vectors_of.collection, requests, RRFRanker(settings.rrf_k),
                                                       limit=limit, output_fields=[])[0]
                rows = [(vectors_of.keys.row(hit["id"]), hit["distance"]) for hit in hits]
                found.append([(row, score) for row, score in rows if row is not None])
            passages, sentences = found
            results.append(Hits(np.array([row for row, _ in passages], dtype=np.int64),
                                np.array([score for _, score in passages], dtype=np.float32),
                                np.array([row for row, _ in sentences], dtype=np.int64)))
        return results

    class HybridChatbot(type(bot)):
        def explain_batch(self, questions, answer=None):
            original = chatbot.answering.bot.retrieve
            chatbot.answering.bot.retrieve = retrieve
            try:
                return super().explain_batch(questions, answer)
            finally:
                chatbot.answering.bot.retrieve = original

    other = HybridChatbot(bot.config)
    other.embedder, other.verifier = bot.embedder, bot.verifier
    return other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated passage counts")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--quality", action="store_true", help="also answer the seed question sets with each backend")
    parser.add_argument("--dev", type=Path, help="with --quality: also a SQuAD-format development set")
    parser.add_argument("--embedding", type=int, default=0, metavar="TEXTS",
                        help="also measure embedding throughput on this many passages and sentences")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, backend, docs, index, *rest = args.child
        if step == "embed":
            result = child_embed(int(backend), int(rest[0]))
        elif step == "build":
            result = child_build(backend, Path(docs), Path(index))
        else:
            result = child_query(backend, Path(docs), Path(index), int(rest[0]))
        print(json.dumps(result))
        return 0

    load_before = load_average()
    sizes = [int(value) for value in args.sizes.split(",") if value]
    if sizes or args.embedding:
        body = ""
        if sizes:
            with tempfile.TemporaryDirectory(dir=args.work) as folder:
                text, _ = scale(sizes, args.queries, Path(folder))
            print(text)
            body += (
                f"{text}\n\nBoth backends index the same synthetic files (the project's segmenting and chunking; "
                "default config, verifier off; a stand-in embedder, so index time is the store's own, not the "
                f"model's) and answer {args.queries} single questions of six words drawn from a random sentence. "
                "Retrieval is `retrieve` (two vector and two BM25 rankings, fused) plus reading the candidate "
                "sentences' and passages' vectors. RSS after load is the growth of resident memory while loading "
                "the index into an answering process; Milvus Lite runs inside that process, so its memory counts "
                "there too.\n"
            )
        if args.embedding:
            embedding_table, measured = embedding(args.embedding)
            print(embedding_table)
            body += (
                f"\nEmbedding throughput (`--embedding {args.embedding}`: the seed article's passages, mean "
                f"{measured[0]['passages_chars']:.0f} characters, and sentences, mean "
                f"{measured[0]['sentences_chars']:.0f}, each repeated to {args.embedding} texts; all-MiniLM-L6-v2, "
                f"float32, batches of 64, on this shared machine):\n\n{embedding_table}\n"
            )
        write_section("backends", "FAISS files against Milvus Lite (`bench_backends.py`)", body, load_before,
                      args.results)
    if args.quality:
        quality_table = quality(args.dev)
        print(quality_table)
        body = (
            f"{quality_table}\n\nThe same questions, documents and config (verifier off: the ranking model "
            "alone) for every row; \"hybrid_search\" replaces the project's fusion of four rankings (passages and "
            "sentences, by vector and by BM25, each sentence ranking credited to its passage) with Milvus's "
            "hybrid_search over passages and over sentences (dense + BM25, RRFRanker(k = 60)).\n"
        )
        write_section("backends-quality", "Answer quality: FAISS against Milvus (`bench_backends.py --quality`)",
                      body, load_before, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
