"""Write one large plain-text file of real prose, for `bench_build.py --large`: the paragraphs of SQuAD-format
files, blank lines between them, in an order shuffled with a fixed seed, the whole set again (reshuffled)
until the file reaches the size asked for. Nothing of it is committed; the same command writes the same file.

    python benchmarks/make_large_text.py /tmp/large.txt --mb 50 \
        --from ../shared/train/qa-train.json.gz --from ../shared/eval/squad2-dev-half.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path


def paragraphs(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)["data"]
    found = []
    for entry in data:
        for paragraph in entry.get("paragraphs", []):
            text = " ".join(paragraph["context"].split())
            if text:
                found.append(text)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--mb", type=float, default=50.0, help="size in millions of bytes")
    parser.add_argument("--from", dest="sources", type=Path, action="append", required=True, metavar="SQUAD_JSON")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    pool = sorted({text for source in args.sources for text in paragraphs(source)})
    target, written, passes = int(args.mb * 1e6), 0, 0
    generator = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as handle:
        while written < target:
            passes += 1
            generator.shuffle(pool)
            for text in pool:
                piece = (text + "\n\n").encode("utf-8")
                if written + len(piece) > target:
                    break
                handle.write(text + "\n\n")
                written += len(piece)
            else:
                continue
            break
    print(f"{args.out}: {written:,} bytes, {len(pool):,} distinct paragraphs, {passes} passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
