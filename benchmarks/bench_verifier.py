"""The answer verifier on the development set, cross-validated over its articles, and on the seed question
sets: before and after, the trade-off between false abstention and abstention on unanswerable questions,
and a reliability diagram; with --write, the calibrated settings the project ships.

    python benchmarks/bench_verifier.py ../shared/eval/squad2-dev-half.json --fold 1/2=/tmp/vf1 \
        --model chatbot/models/verifier --also benchmarks/seed_questions.jsonl ... --write config/default.toml

Each --fold K/N=MODEL names a verifier trained by `chatbot train-verifier --cross-validate QA_FILE --fold K/N`:
it never saw the articles of fold K, and only their questions are answered with it. Retrieval is open over
all the articles, as the protocol asks. Each --also SET (JSONL about seeds/, or SET@DOCS) is answered with
--model (default: the shipped verifier, never trained on them) and joins the calibration, each question
counting --also-weight times (the development set is large and of one kind: Wikipedia questions written
against one paragraph; the seed sets are small and of the kind users ask of their own documents). The pool
is then calibrated as `chatbot calibrate` does ([verifier] weights, quotes, abstention threshold; the
development questions are also asked of --off-topic, default seeds/, as off-topic ones), and scored beside
the ranking and confidence models alone ([verifier] enabled = false, shipped settings). Every seed set in
benchmarks/ is scored too, those not named by --also being held out of the calibration.

Writes benchmarks/results/verifier.md, verifier-tradeoff.png and verifier-reliability.png.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatbot import Chatbot  # noqa: E402
from chatbot.answering.answer import confidence_label  # noqa: E402
from chatbot.answering.compose import compose  # noqa: E402
from chatbot.answering.verifier import apply  # noqa: E402
from chatbot.training.calibrate import _explained, calibrate, write_config  # noqa: E402
from chatbot.training.evaluate import build_corpus, is_hit, marked_phrase, normalize, quoted_text, read_questions  # noqa: E402
from chatbot.training.train_verifier import in_fold  # noqa: E402

SEED_SETS = sorted((ROOT / "benchmarks").glob("seed_questions*.jsonl"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa_file", type=Path)
    parser.add_argument("--fold", action="append", required=True, metavar="K/N=MODEL")
    parser.add_argument("--model", type=Path, help="verifier for the --also and held-out seed sets (default: shipped)")
    parser.add_argument("--also", action="append", default=[], metavar="SET[@DOCS]")
    parser.add_argument("--also-weight", type=float, default=8.0)
    parser.add_argument("--off-topic", type=Path, default=ROOT / "seeds")
    parser.add_argument("--max-false-abstention", type=float, default=0.05)
    parser.add_argument("--config", type=Path, help="config to start from (default: config/default.toml)")
    parser.add_argument("--baseline", type=Path, default=ROOT / "config" / "ranking-only.toml",
                        help="config of the 'verifier off' row (default: config/ranking-only.toml)")
    parser.add_argument("--write", type=Path, help="config file to write the fitted settings into")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, help="folder for the corpus and its index (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the evidence an earlier run with the same models and config left in --work")
    args = parser.parse_args()
    if args.reuse and not args.work:
        parser.error("--reuse needs --work")
    model = {"model": str(args.model.resolve())} if args.model else {}

    items = read_questions(args.qa_file)
    scratch = tempfile.TemporaryDirectory(prefix="bench-verifier-")
    work = args.work or Path(scratch.name)
    docs, index = work / "docs", work / "index"
    build_corpus(args.qa_file, docs)
    folds, pool = [], []  # pool: (item, evidence, weight, set name)
    started = time.perf_counter()
    for spec in args.fold:
        part, path = spec.split("=", 1)
        fold, count = (int(value) for value in part.split("/"))
        bot = Chatbot.from_config(args.config, docs=docs, index=index, verifier={"model": str(Path(path).resolve())})
        bot.index()
        held = [item for item in items if in_fold(f"{args.qa_file.name}:{item.article}", count, fold - 1)]
        print(f"fold {part}: {len(held)} questions, verifier {path}", file=sys.stderr)
        folds.append((part, path, len(held)))
        gathered = _gathered(work / f"evidence-fold{fold}.pkl", args.reuse, bot, held)
        pool += [(i, e, 1.0, args.qa_file.stem) for i, e in gathered]
    seconds = time.perf_counter() - started
    sets = {}
    for spec in args.also + [str(path) for path in SEED_SETS]:
        path, _, folder = spec.partition("@")
        if Path(path).stem in sets:
            continue
        seed_bot = Chatbot.from_config(
            args.config, docs=Path(folder or ROOT / "seeds"), index=work / f"index-{Path(folder or 'seeds').name}",
            verifier=model,
        )
        asked = read_questions(Path(path))
        sets[Path(path).stem] = (seed_bot, asked, spec in args.also)
        weight = args.also_weight if spec in args.also else 0.0
        gathered = _gathered(work / f"evidence-{Path(path).stem}.pkl", args.reuse, seed_bot, asked)
        pool += [(i, e, weight, Path(path).stem) for i, e in gathered]
    calibrated = [(i, e, w) for i, e, w, _ in pool if w > 0]
    dev_items = [i for i, _, _, name in pool if name == args.qa_file.stem]
    off_topic = Chatbot.from_config(args.config, docs=args.off_topic, index=work / "index-off-topic",
                                    verifier={"model": str(Path(folds[0][1]).resolve())})
    result = calibrate(
        bot,
        [i for i, _, _ in calibrated],
        args.max_false_abstention,
        off_topic,
        explained=[e for _, e, _ in calibrated],
        weights=np.array([w for _, _, w in calibrated]),
        off_topic_items=dev_items,
    )
    settings = replace(bot.config.verifier, **result.verifier)
    answer = replace(
        bot.config.answer,
        min_confidence=result.chosen.threshold,
        max_quotes=result.quotes.max_quotes,
        second_quote_ratio=result.quotes.second_quote_ratio,
        following_quote_ratio=result.quotes.following_quote_ratio,
    )
    answers = {}
    for item, e, _, name in pool:
        answers.setdefault(name, []).append(
            (item, compose(item.question, apply(e.prior, e.verification, settings), e.hits, e.data, answer))
        )
    after = {name: score(*zip(*pairs)) for name, pairs in answers.items()}
    baseline = Chatbot.from_config(args.baseline, docs=docs, index=index, verifier={"enabled": False})
    before = {args.qa_file.stem: score(dev_items, baseline.ask_batch([i.question for i in dev_items]))}
    for name, (seed_bot, asked, _) in sets.items():
        plain = Chatbot.from_config(args.baseline, docs=seed_bot.config.paths.docs, index=seed_bot.config.paths.index,
                                    verifier={"enabled": False})
        before[name] = score(asked, plain.ask_batch([i.question for i in asked]))

    args.out.mkdir(parents=True, exist_ok=True)
    dev_answers = [a for _, a in answers[args.qa_file.stem]]
    confidence = np.array([a.confidence for a in dev_answers])
    hits = np.array([not i.impossible and is_hit(a, i.answers) for i, a in answers[args.qa_file.stem]])
    tradeoff_plot(result.points, result.chosen, args.out / "verifier-tradeoff.png")
    reliability = reliability_table(confidence, hits, [a.abstained for a in dev_answers])
    reliability_plot(reliability, args.out / "verifier-reliability.png")
    report = render(args, folds, before, after, result, reliability, seconds, sets)
    (args.out / "verifier.md").write_text(report, encoding="utf-8")
    print(report)
    if args.write:
        write_config(args.write, result)
        print(f"settings written to {args.write}", file=sys.stderr)
    return 0


def _gathered(path: Path, reuse: bool, bot: Chatbot, items: list) -> list:
    """(item, evidence) pairs of `items` asked of `bot`: read from `path` when reusing an earlier run's, else
    gathered and saved there."""
    if reuse and path.exists():
        with path.open("rb") as file:
            return pickle.load(file)
    pairs = [(item, evidence) for item, (_, evidence) in _explained(bot, items, 256)]
    with path.open("wb") as file:
        pickle.dump(pairs, file)
    return pairs


def score(items, answers) -> dict[str, float]:
    """The protocol's numbers, plus how often answers labelled high and medium confidence are right."""
    answerable = [(i, a) for i, a in zip(items, answers) if not i.impossible]
    unanswerable = [(i, a) for i, a in zip(items, answers) if i.impossible]
    hits = [is_hit(a, i.answers) for i, a in answerable]
    right = sum(hits) + sum(a.abstained for _, a in unanswerable)
    labelled = {}
    for label in ("high", "medium", "low"):
        given = [
            (not i.impossible and is_hit(a, i.answers))
            for i, a in zip(items, answers)
            if not a.abstained and confidence_label(a.confidence) == label
        ]
        labelled[label] = (float(np.mean(given)) if given else float("nan"), len(given))
    exact = [
        (phrase := marked_phrase(a)) is not None and normalize(phrase) in {normalize(g) for g in i.answers}
        for (i, a), hit in zip(answerable, hits)
        if hit
    ]
    lengths = sorted(len(quoted_text(a)) for a in answers if not a.abstained)
    return {
        "questions": len(items),
        "hit_rate": sum(hits) / max(len(answerable), 1),
        "false_abstention": sum(a.abstained for _, a in answerable) / max(len(answerable), 1),
        "unanswerable_abstention": sum(a.abstained for _, a in unanswerable) / max(len(unanswerable), 1),
        "overall_accuracy": right / max(len(items), 1),
        "median_chars": lengths[len(lengths) // 2] if lengths else 0,
        "span_exact": float(np.mean(exact)) if exact else 0.0,
        "labelled": labelled,
    }


def reliability_table(confidence: np.ndarray, hits: np.ndarray, abstained) -> list[tuple[float, float, float, int]]:
    """(bin low, bin high, share right, count) of answered questions by confidence, in tenths."""
    answered = ~np.array(abstained, dtype=bool)
    rows = []
    for low in np.arange(0.0, 1.0, 0.1):
        inside = answered & (confidence >= low) & (confidence < low + 0.1 + (1e-9 if low >= 0.9 else 0))
        if inside.any():
            rows.append((round(low, 1), round(low + 0.1, 1), float(hits[inside].mean()), int(inside.sum())))
    return rows


def reliability_plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 4.5), dpi=110)
    centres = [(low + high) / 2 for low, high, _, _ in rows]
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    axes.plot(centres, [right for _, _, right, _ in rows], marker="o", label="answers (hit, SQuAD protocol)")
    for x, (_, _, right, count) in zip(centres, rows):
        axes.annotate(str(count), (x, right), xytext=(3, -10), textcoords="offset points", fontsize=7)
    axes.axvspan(0.6, 1.0, color="green", alpha=0.06, label='labelled "high"')
    axes.set_xlabel("confidence")
    axes.set_ylabel("share of answers that are right")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def tradeoff_plot(points, chosen, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    axes.plot([p.false_abstention for p in points], [p.unanswerable_abstention for p in points], marker=".")
    axes.scatter([chosen.false_abstention], [chosen.unanswerable_abstention], color="red", zorder=3,
                 label=f"chosen threshold {chosen.threshold:.2f}")
    axes.set_xlabel("false abstention (answerable questions abstained)")
    axes.set_ylabel("abstention on unanswerable questions")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def render(args, folds, before, after, result, reliability, seconds, sets) -> str:
    dev = args.qa_file.stem
    table = [
        "| system | hit rate | false abstention | abstains on unanswerable | overall accuracy | median chars | answer phrase = gold (of hits) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in ((f"verifier off (ranking and confidence models, {args.baseline.name})", before[dev]),
                    ("verifier on (cross-validated; calibrated as below)", after[dev])):
        table.append(
            f"| {name} | {s['hit_rate']:.3f} | {s['false_abstention']:.3f} | {s['unanswerable_abstention']:.3f} | "
            f"{s['overall_accuracy']:.3f} | {s['median_chars']} | {s['span_exact']:.3f} |"
        )
    seeds = ["| question set | in calibration | answerable: hits off -> on | unanswerable abstained off -> on |",
             "|---|---|---|---|"]
    for name, (_, asked, used) in sets.items():
        b, a = before[name], after[name]
        answerable = sum(not i.impossible for i in asked)
        unanswerable = len(asked) - answerable
        seeds.append(
            f"| {name} | {'yes' if used else 'no'} | {round(b['hit_rate'] * answerable)} -> "
            f"{round(a['hit_rate'] * answerable)} of {answerable} | {round(b['unanswerable_abstention'] * unanswerable)}"
            f" -> {round(a['unanswerable_abstention'] * unanswerable)} of {unanswerable} |"
        )
    labels = ["| confidence label | verifier off: share right (answers) | verifier on: share right (answers) |",
              "|---|---|---|"]
    for label in ("high", "medium", "low"):
        (r0, n0), (r1, n1) = before[dev]["labelled"][label], after[dev]["labelled"][label]
        labels.append(f"| {label} | {r0:.3f} ({n0}) | {r1:.3f} ({n1}) |")
    curve = ["| threshold | hit rate | false abstention | abstains on unanswerable | overall accuracy |",
             "|---|---|---|---|---|"]
    curve += [
        f"| {p.threshold:.2f} | {p.hit_rate:.3f} | {p.false_abstention:.3f} | {p.unanswerable_abstention:.3f} | "
        f"{p.overall_accuracy:.3f} |"
        for p in result.points
        if round(p.threshold * 100) % 5 == 0 or p is result.chosen
    ]
    diagram = ["| confidence | share right | answers |", "|---|---|---|"]
    diagram += [f"| {low:.1f}-{high:.1f} | {right:.3f} | {count} |" for low, high, right, count in reliability]
    fold_lines = "\n".join(f"- fold {part}: {n} questions, verifier `{model}`" for part, model, n in folds)
    quotes = result.quotes
    return f"""# The answer verifier: {args.qa_file.name} (cross-validated) and the seed question sets

{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/bench_verifier.py {' '.join(sys.argv[1:])}`

Each development question is answered by a verifier that never saw its article (`chatbot train-verifier
--cross-validate {args.qa_file.name} --fold K/N`); retrieval is open over all articles ({seconds:.0f} s).
{fold_lines}

## Development set (the folds above)
{chr(10).join(table)}

## Seed question sets (verifier: {args.model or 'shipped'})
{chr(10).join(seeds)}

Calibration pool: the development folds (weight 1) and the sets marked "in calibration" (weight
{args.also_weight}); off-topic: the development questions asked of {args.off_topic.name}/. Chosen (weighted false
abstention at most {args.max_false_abstention}): threshold {result.chosen.threshold:.2f}, max_quotes {quotes.max_quotes},
second_quote_ratio {quotes.second_quote_ratio}, following_quote_ratio {quotes.following_quote_ratio};
[verifier] weights {result.verifier}.

## Confidence labels on the development set
{chr(10).join(labels)}

## Reliability on the development set (answers given, verifier on)
{chr(10).join(diagram)}

![reliability diagram](verifier-reliability.png)

## Trade-off over the calibration pool (weighted): false abstention against abstention on unanswerable questions
{chr(10).join(curve)}

![trade-off](verifier-tradeoff.png)
"""


if __name__ == "__main__":
    sys.exit(main())
