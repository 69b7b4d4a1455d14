"""Answer quality on real third-party documents: ../shared/eval/realdocs-dev/, scored by its README's protocol.

    python benchmarks/bench_realdocs.py                      # the shipped config; table to stdout
    python benchmarks/bench_realdocs.py --config FILE --label "after" --out benchmarks/results/realdocs.md
    python benchmarks/bench_realdocs.py --dump answers.jsonl # every answer, for reading the failures

Every question is asked of the whole docs/ folder (open retrieval over the 14 documents). Reports hits over
the 60 answerable questions and by where the answer sits (prose, list, table, definition, code, heading),
false abstention, near-topic (30) and off-topic (15) abstention, overall accuracy, and how often answers
labelled "high" (and "medium" or better) were right. The hit rule is the set's own `normalise()` from
check_golds.py, imported by path.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatbot import Chatbot  # noqa: E402

DEFAULT_SET = ROOT.parent / "shared" / "eval" / "realdocs-dev"
WINDOW = 400


def load_normalise(folder: Path):
    spec = importlib.util.spec_from_file_location("check_golds", folder / "check_golds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.normalise


def is_hit(answer: dict, gold: list[str], normalise) -> bool:
    if answer["abstained"]:
        return False
    quoted = normalise(" ".join(quote["text"] for quote in answer["quotes"]))[:WINDOW]
    return any(normalise(g) in quoted for g in gold)


def score(questions: list[dict], answers: list[dict], normalise) -> dict:
    """The README's figures for one run: counts, rates and the calibration of the labels."""
    result = Counter()
    where_total, where_hit = Counter(), Counter()
    labelled = {"high": [0, 0], "medium": [0, 0]}  # answers so labelled: [right, all]
    for question, answer in zip(questions, answers):
        kind = question["kind"]
        result[kind] += 1
        if kind == "answerable":
            right = is_hit(answer, question["gold"], normalise)
            where_total[question["where"]] += 1
            where_hit[question["where"]] += right
            result["hits"] += right
            result["false_abstentions"] += answer["abstained"]
        else:
            right = answer["abstained"]
            result[f"{kind}_abstained"] += right
        result["correct"] += right
        label = answer["confidence_label"]
        if not answer["abstained"] and label in labelled:
            labelled[label][0] += right
            labelled[label][1] += 1
    structured = sum(where_hit[w] for w in ("list", "table", "definition", "code"))
    structured_total = sum(where_total[w] for w in ("list", "table", "definition", "code"))
    high_right, high_all = labelled["high"]
    medium_right = high_right + labelled["medium"][0]
    medium_all = high_all + labelled["medium"][1]
    return {
        "hits": f"{result['hits']}/{result['answerable']}",
        "structured hits (list, table, definition, code)": f"{structured}/{structured_total}",
        **{f"  {w}": f"{where_hit[w]}/{where_total[w]}" for w in sorted(where_total)},
        "false abstention": f"{result['false_abstentions']}/{result['answerable']}",
        "near-topic abstained": f"{result['unanswerable_abstained']}/{result['unanswerable']}",
        "off-topic abstained": f"{result['offtopic_abstained']}/{result['offtopic']}",
        "overall accuracy": f"{result['correct'] / max(1, len(questions)):.3f} ({result['correct']}/{len(questions)})",
        '"high" right': f"{high_right}/{high_all}" + (f" ({high_right / high_all:.2f})" if high_all else ""),
        '"medium" or "high" right': f"{medium_right}/{medium_all}"
        + (f" ({medium_right / medium_all:.2f})" if medium_all else ""),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="the realdocs folder (docs/, questions.jsonl)")
    parser.add_argument("--config", type=Path, help="config file (default: config/default.toml)")
    parser.add_argument("--index", type=Path, help="index folder (default: a temporary one)")
    parser.add_argument("--label", default="", help="name of this run in the table")
    parser.add_argument("--out", type=Path, help="append the table to this Markdown file")
    parser.add_argument("--dump", type=Path, help="write every answer (JSON lines) here")
    args = parser.parse_args()

    normalise = load_normalise(args.set)
    questions = [json.loads(line) for line in (args.set / "questions.jsonl").read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as scratch:
        index = args.index or Path(scratch) / "index"
        bot = Chatbot.from_config(args.config, docs=args.set / "docs", index=index)
        started = time.perf_counter()
        report = bot.index(force=args.index is None)
        indexing = time.perf_counter() - started
        started = time.perf_counter()
        answers = [answer.to_dict() for answer in bot.ask_batch([question["q"] for question in questions])]
        answering = time.perf_counter() - started
    skipped = [skip["path"] for skip in report.to_dict().get("skipped", [])]
    figures = score(questions, answers, normalise)
    figures["documents read"] = f"{14 - len(skipped)}/14" + (f" (skipped: {', '.join(skipped)})" if skipped else "")
    figures["indexing, s"] = f"{indexing:.1f}"
    figures["answering, s per question"] = f"{answering / len(questions):.3f}"
    width = max(len(name) for name in figures)
    table = "\n".join(f"{name:<{width}}  {value}" for name, value in figures.items())
    print(table)
    if args.dump:
        with args.dump.open("w", encoding="utf-8") as handle:
            for question, answer in zip(questions, answers):
                hit = is_hit(answer, question["gold"], normalise) if question["kind"] == "answerable" else answer["abstained"]
                handle.write(json.dumps({"question": question, "right": hit, "answer": answer}, ensure_ascii=False) + "\n")
    if args.out:
        with args.out.open("a", encoding="utf-8") as handle:
            handle.write(f"\n### {args.label or 'run'}\n\n| figure | value |\n|---|---|\n")
            handle.writelines(f"| {name.strip()} | {value} |\n" for name, value in figures.items())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
