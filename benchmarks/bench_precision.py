"""The answer verifier in each precision and runtime this CPU offers: warm `ask` time against a bare float32
forward, and agreement with the float32 answers, so that the next machine can be judged in one command.

    python benchmarks/bench_precision.py [--rounds 3] [--squad 300] [--bfloat16]

Ways measured: PyTorch float32 (the reference answers: what `[verifier] runtime = "torch"` gives), ONNX
Runtime float32 and int8, and PyTorch bfloat16 where the CPU has native bfloat16 arithmetic (or with
--bfloat16; without it, bfloat16 is emulated and several times slower than float32).
- Time: the seed article and benchmarks/seed_questions_reader.jsonl. For each question, back to back:
  the bare float32 forward of the verifier's network (the bundled MiniLM-L6 with its two heads, PyTorch)
  over the question and the candidates `ask` reads, as one padded batch, timed alone (the reference);
  then warm `ask` in each way. p50 over questions and rounds, and its ratio to the reference's p50. Then,
  per round, `ask_batch` of all the questions in each way: its time per question, median over rounds.
- Agreement: every seed set on seeds/, ../shared/eval/realdocs-dev/ and the first --squad questions of the
  SQuAD development half (shuffled by a fixed seed) on its articles, answered each way: the share of
  answers identical to float32's (the same abstention and the same quoted ranges), hits per set, and the
  largest change of the confidence.
Prints the CPU's flags that decide the choice. Writes the "precision" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_realdocs import DEFAULT_SET, is_hit as realdocs_hit, load_normalise  # noqa: E402
from results_md import load_average, table, write_section  # noqa: E402

from chatbot import Chatbot  # noqa: E402
from chatbot.answering.verifier import candidates_of, encode_pairs, load, pair_text  # noqa: E402
from chatbot.index.embed import cpu_has_bf16, torch_threads  # noqa: E402
from chatbot.training.evaluate import build_corpus, is_hit, read_questions  # noqa: E402

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
SEED_SETS = sorted((ROOT / "benchmarks").glob("seed_questions*.jsonl"))


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    present = set(re.findall(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)[0].split()) if "flags" in text else set()
    return ", ".join(f"{flag} {'yes' if flag in present else 'no'}" for flag in FLAGS)


def ways(include_bf16: bool) -> list[tuple[str, dict]]:
    found = [("float32, torch", {"dtype": "float32", "runtime": "torch"})]
    if include_bf16:
        found.append(("bfloat16, torch", {"dtype": "bfloat16", "runtime": "torch"}))
    found += [("float32, onnx", {"dtype": "float32", "runtime": "onnx"}), ("int8, onnx", {"dtype": "int8", "runtime": "onnx"})]
    return found


def bare_forward(bot: Chatbot, question: str) -> float:
    """Seconds of the float32 network's forward alone over `question` and the candidates `ask` reads."""
    import torch

    data = bot.data
    _, evidence = bot.explain_batch([question])[0]
    seconds = [pair_text(c) for c in candidates_of(data, evidence.verification.sentences)]
    model, tokenizer, _ = load(bot.verifier.folder, "float32")
    batch = encode_pairs(tokenizer, [question] * len(seconds), seconds, bot.verifier.max_length)
    batch.pop("offset_mapping")
    with torch.inference_mode(), torch_threads(bot.config.model.answer_threads):
        started = time.perf_counter()
        model(**batch)
        return time.perf_counter() - started


def timing(bots: dict[str, Chatbot], questions: list[str], rounds: int) -> dict[str, list[float]]:
    reference = bots["float32, torch"]
    for bot in bots.values():  # warm: models loaded, ONNX files exported
        bot.ask(questions[0])
    bare_forward(reference, questions[0])
    times: dict[str, list[float]] = {"bare": [], **{name: [] for name in bots}, **{f"{name} batch": [] for name in bots}}
    for _ in range(rounds):
        for question in questions:
            times["bare"].append(bare_forward(reference, question))
            for name, bot in bots.items():
                started = time.perf_counter()
                bot.ask(question)
                times[name].append(time.perf_counter() - started)
        for name, bot in bots.items():
            started = time.perf_counter()
            bot.ask_batch(questions)
            times[f"{name} batch"].append((time.perf_counter() - started) / len(questions))
    return times


def agreement_sets(work: Path, squad: int) -> list[tuple[str, Path, list[str], object]]:
    """(name, docs, questions, hit function of (answer, index)) for each set answered."""
    sets = []
    for path in SEED_SETS:
        items = read_questions(path)
        sets.append((path.stem, ROOT / "seeds", [i.question for i in items],
                     lambda answer, n, items=items: not items[n].impossible and is_hit(answer, items[n].answers)))
    if (DEFAULT_SET / "questions.jsonl").is_file():
        records = [json.loads(line) for line in (DEFAULT_SET / "questions.jsonl").read_text().splitlines() if line]
        normalise = load_normalise(DEFAULT_SET)
        sets.append(("realdocs-dev", DEFAULT_SET / "docs", [r["q"] for r in records],
                     lambda answer, n: records[n]["kind"] == "answerable"
                     and realdocs_hit(answer.to_dict(), records[n]["gold"], normalise)))
    squad_file = ROOT.parent / "shared" / "eval" / "squad2-dev-half.json"
    if squad and squad_file.is_file():
        items = read_questions(squad_file)
        random.Random(0).shuffle(items)
        items = items[:squad]
        build_corpus(squad_file, work / "squad-docs")
        sets.append((f"SQuAD dev ({squad})", work / "squad-docs", [i.question for i in items],
                     lambda answer, n, items=items: not items[n].impossible and is_hit(answer, items[n].answers)))
    return sets


def agreement(ways_: list[tuple[str, dict]], work: Path, squad: int, only: str) -> list[list[object]]:
    rows = []
    for set_name, docs, questions, hit in agreement_sets(work, squad if only in "SQuAD dev" else 0):
        if only not in set_name:
            continue
        base = Chatbot.from_config(None, docs=docs, index=work / f"index-{docs.name}", verifier=ways_[0][1])
        base.index()
        reference = base.ask_batch(questions)
        for name, settings in ways_:
            answers = reference if name == ways_[0][0] else base.replace(verifier=settings).ask_batch(questions)
            same = sum(_key(a) == _key(r) for a, r in zip(answers, reference))
            hits = sum(hit(a, n) for n, a in enumerate(answers))
            abstained = sum(a.abstained for a in answers)
            change = max(abs(a.confidence - r.confidence) for a, r in zip(answers, reference))
            rows.append([set_name, name, f"{same}/{len(questions)}", hits, abstained, round(change, 3)])
    return rows


def _key(answer) -> tuple:
    return answer.abstained, tuple((q.source, q.start, q.end) for q in answer.quotes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--squad", type=int, default=300, help="SQuAD development questions to compare (0: none)")
    parser.add_argument("--bfloat16", action="store_true", help="measure PyTorch bfloat16 even where it is emulated")
    parser.add_argument("--questions", type=int, help="time only the first N questions (default: all 62)")
    parser.add_argument("--sets", help="compare only the sets whose name contains this (default: all)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--work", type=Path, help="folder for the indexes (default: a temporary one)")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="bench-precision-")
    work = args.work or Path(scratch.name)
    chosen = ways(args.bfloat16 or cpu_has_bf16())
    load_before = load_average()

    seed = Chatbot.from_config(None, docs=ROOT / "seeds", index=work / "index-seeds", verifier=chosen[0][1])
    seed.index()
    bots = {name: seed.replace(verifier=settings) for name, settings in chosen}
    questions = [item.question for item in read_questions(ROOT / "benchmarks" / "seed_questions_reader.jsonl")]
    questions = questions[: args.questions]
    times = timing(bots, questions, args.rounds)
    bare = statistics.median(times["bare"])
    speed = [["bare float32 forward over the question and its candidates (reference)", round(bare * 1000, 1), 1.0]]
    for label, suffix in (("ask", ""), ("ask_batch, per question", " batch")):
        speed += [[f"{label}, verifier {name}", round(statistics.median(times[name + suffix]) * 1000, 1),
                   round(statistics.median(times[name + suffix]) / bare, 2)] for name, _ in chosen]
    agree = agreement(chosen, work, args.squad, args.sets or "")

    text = "\n".join([
        f"CPU flags: {cpu_flags()}",
        "",
        table(["way", "ms p50", "ratio to the bare forward"], speed),
        "",
        f"{len(questions)} questions of seed_questions_reader.jsonl x {args.rounds} rounds on seeds/, one thread "
        "([model] answer_threads); the verifier reads 6 candidates. Target (issue 27): ask, and ask_batch per question, "
        "at most 0.5 x the bare forward.",
        "",
        table(["set", "way", "answers as float32's", "hits", "abstained", "largest confidence change"], agree),
    ])
    print(text)
    write_section("precision", "Verifier precision and runtime (`bench_precision.py`)", text, load_before, args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
