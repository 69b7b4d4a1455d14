"""Resident memory and rate while `Embedder.encode_documents` embeds many sentences, chunk after chunk, as a
build does: in bfloat16, oneDNN keeps what it prepares for each shape of matrix product it meets (its
primitive cache), so every new batch shape costs memory until the cache is full.

    python benchmarks/bench_embed_memory.py [--sentences 6400] [--chunk 800] [--squad FILE] [--dtype auto]
                                            [--pad-to N]

Run it in a fresh process for each variant to compare (the cache lives as long as the process). Sentences
are the SQuAD contexts' (development set by default), segmented as the index segments them, shuffled with
a fixed seed. Prints one line per chunk: sentences done, seconds, sentences/s of that chunk, resident MB.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatbot.documents.segment import split_blocks
from chatbot.index import embed
from chatbot.index.embed import Embedder


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sentences_of(squad: Path) -> list[str]:
    data = json.loads(squad.read_text(encoding="utf-8"))
    contexts = dict.fromkeys(p["context"] for article in data["data"] for p in article["paragraphs"])
    found = []
    for context in contexts:
        for block in split_blocks(context):
            found.extend(context[s:e] for s, e in block.sentences)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "eval" / "squad2-dev-half.json")
    parser.add_argument("--sentences", type=int, default=6400)
    parser.add_argument("--chunk", type=int, default=800)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--pad-to", type=int, help="embed.PAD_TO for this run (default: as shipped)")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    if args.pad_to and hasattr(embed, "PAD_TO"):
        embed.PAD_TO = args.pad_to
    texts = sentences_of(args.squad)
    random.Random(16).shuffle(texts)
    while len(texts) < args.sentences:  # repeated, each copy in another order
        more = texts[: args.sentences - len(texts)]
        random.Random(len(texts)).shuffle(more)
        texts += more
    texts = texts[: args.sentences]
    embedder = Embedder("all-MiniLM-L6-v2", dtype=args.dtype)
    embedder.encode_documents(texts[:64])  # model loaded and warm before the clock
    print(f"{args.label} dtype {embedder.dtype}: {len(texts)} sentences, resident {resident_mb():.0f} MB at start")
    started = time.perf_counter()
    for lo in range(0, len(texts), args.chunk):
        chunk_started = time.perf_counter()
        embedder.encode_documents(texts[lo : lo + args.chunk])
        now = time.perf_counter()
        done = min(lo + args.chunk, len(texts))
        rate = (done - lo) / (now - chunk_started)
        print(f"{args.label} {done:6d} sentences  {now - started:7.1f} s  {rate:6.1f}/s  {resident_mb():6.0f} MB")
    total = time.perf_counter() - started
    print(f"{args.label} total {total:.1f} s, {len(texts) / total:.1f} sentences/s, resident {resident_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
