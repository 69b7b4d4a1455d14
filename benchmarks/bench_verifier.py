"""The answer verifier on the development set, cross-validated over its articles: before and after, the
trade-off between false abstention and abstention on unanswerable questions, and a reliability diagram.

    python benchmarks/bench_verifier.py ../shared/eval/squad2-dev-half.json --fold 1/2=/tmp/vf1 [--fold 2/2=/tmp/vf2]

Each --fold K/N=MODEL names a verifier trained by `chatbot train-verifier --cross-validate QA_FILE --fold K/N`:
it never saw the articles of fold K, and only their questions are answered with it. Retrieval is open over
all the articles, as the protocol asks. The answers of all folds together are then calibrated as
`chatbot calibrate` does (the [verifier] weights, how many quotes, the abstention threshold; off-topic
questions from --off-topic, default seeds/) and scored, beside the same questions answered by the
ranking and confidence models alone ([verifier] enabled = false) at their shipped settings.

With --write CONFIG the fitted [verifier] weights, quote settings and threshold go into CONFIG.
Writes benchmarks/results/verifier.md, verifier-tradeoff.png and verifier-reliability.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatbot import Chatbot  # noqa: E402
from chatbot.answer import confidence_label  # noqa: E402
from chatbot.calibrate import _explained, calibrate, write_config  # noqa: E402
from chatbot.compose import compose  # noqa: E402
from chatbot.evaluate import build_corpus, is_hit, marked_phrase, normalize, quoted_text, read_questions  # noqa: E402
from chatbot.train_verifier import in_fold  # noqa: E402
from chatbot.verifier import apply  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa_file", type=Path)
    parser.add_argument("--fold", action="append", required=True, metavar="K/N=MODEL")
    parser.add_argument("--off-topic", type=Path, default=ROOT / "seeds")
    parser.add_argument("--max-false-abstention", type=float, default=0.02)
    parser.add_argument("--write", type=Path, help="config file to write the fitted settings into")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    items = read_questions(args.qa_file)
    scratch = tempfile.TemporaryDirectory(prefix="bench-verifier-")
    docs, index = Path(scratch.name) / "docs", Path(scratch.name) / "index"
    build_corpus(args.qa_file, docs)
    folds, explained, chosen_items = [], [], []
    started = time.perf_counter()
    for spec in args.fold:
        part, model = spec.split("=", 1)
        fold, count = (int(value) for value in part.split("/"))
        bot = Chatbot.from_config(docs=docs, index=index, verifier={"model": str(Path(model).resolve())})
        bot.index()
        held = [item for item in items if in_fold(f"{args.qa_file.name}:{item.article}", count, fold - 1)]
        print(f"fold {part}: {len(held)} questions, verifier {model}", file=sys.stderr)
        folds.append((part, model, len(held)))
        explained += [evidence for _, (_, evidence) in _explained(bot, held, 256)]
        chosen_items += held
    seconds = time.perf_counter() - started
    off_topic = Chatbot.from_config(docs=args.off_topic, verifier={"model": str(Path(folds[0][1]).resolve())})
    result = calibrate(bot, chosen_items, args.max_false_abstention, off_topic, explained=explained)
    settings = replace(bot.config.verifier, **result.verifier)
    answer = replace(
        bot.config.answer,
        min_confidence=result.chosen.threshold,
        max_quotes=result.quotes.max_quotes,
        second_quote_ratio=result.quotes.second_quote_ratio,
        following_quote_ratio=result.quotes.following_quote_ratio,
    )
    data = bot.data
    answers = [
        compose(item.question, apply(e.prior, e.verification, settings), e.hits, data, answer)
        for item, e in zip(chosen_items, explained)
    ]
    after = score(chosen_items, answers)
    baseline = Chatbot.from_config(docs=docs, index=index, verifier={"enabled": False})
    before = score(chosen_items, baseline.ask_batch([item.question for item in chosen_items]))

    args.out.mkdir(parents=True, exist_ok=True)
    confidence = np.array([a.confidence for a in answers])
    hits = np.array([not item.impossible and is_hit(a, item.answers) for item, a in zip(chosen_items, answers)])
    points = result.points
    tradeoff_plot(points, result.chosen, args.out / "verifier-tradeoff.png")
    reliability = reliability_table(confidence, hits, [a.abstained for a in answers])
    reliability_plot(reliability, args.out / "verifier-reliability.png")
    report = render(args, folds, before, after, result, reliability, points, seconds)
    (args.out / "verifier.md").write_text(report, encoding="utf-8")
    print(report)
    if args.write:
        write_config(args.write, result)
        print(f"settings written to {args.write}", file=sys.stderr)
    return 0


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


def render(args, folds, before, after, result, reliability, points, seconds) -> str:
    rows = [
        ("ranking and confidence models alone (verifier off, shipped settings)", before),
        ("with the verifier (cross-validated, calibrated on the same folds)", after),
    ]
    table = ["| system | hit rate | false abstention | abstains on unanswerable | overall accuracy | median chars | answer phrase = gold (of hits) |",
             "|---|---|---|---|---|---|---|"]
    for name, s in rows:
        table.append(
            f"| {name} | {s['hit_rate']:.3f} | {s['false_abstention']:.3f} | {s['unanswerable_abstention']:.3f} | "
            f"{s['overall_accuracy']:.3f} | {s['median_chars']} | {s['span_exact']:.3f} |"
        )
    labels = ["| confidence label | share of answers right | answers |", "|---|---|---|"]
    for name, s in rows:
        for label, (right, count) in s["labelled"].items():
            labels.append(f"| {label} ({name.split(' (')[0]}) | {right:.3f} | {count} |")
    curve = ["| threshold | hit rate | false abstention | abstains on unanswerable | overall accuracy |", "|---|---|---|---|---|"]
    curve += [
        f"| {p.threshold:.2f} | {p.hit_rate:.3f} | {p.false_abstention:.3f} | {p.unanswerable_abstention:.3f} | {p.overall_accuracy:.3f} |"
        for p in points
        if round(p.threshold * 100) % 5 == 0 or p is result.chosen
    ]
    diagram = ["| confidence | share right | answers |", "|---|---|---|"]
    diagram += [f"| {low:.1f}-{high:.1f} | {right:.3f} | {count} |" for low, high, right, count in reliability]
    fold_lines = "\n".join(f"- fold {part}: {n} questions, verifier `{model}`" for part, model, n in folds)
    quotes = result.quotes
    return f"""# The answer verifier on {args.qa_file.name}

{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/bench_verifier.py {' '.join(sys.argv[1:])}`

Each question is answered by a verifier that never saw its article (`chatbot train-verifier
--cross-validate {args.qa_file.name} --fold K/N`); retrieval is open over all articles. Answering with the
verifier took {seconds:.0f} s.
{fold_lines}

{chr(10).join(table)}

Chosen by calibration (max false abstention {args.max_false_abstention}): threshold {result.chosen.threshold:.2f},
max_quotes {quotes.max_quotes}, second_quote_ratio {quotes.second_quote_ratio}, following_quote_ratio
{quotes.following_quote_ratio}; [verifier] weights {result.verifier}.

## Confidence labels
{chr(10).join(labels)}

## Reliability (answers given, with the verifier)
{chr(10).join(diagram)}

![reliability diagram](verifier-reliability.png)

## Trade-off: false abstention against abstention on unanswerable questions
{chr(10).join(curve)}

![trade-off](verifier-tradeoff.png)
"""


if __name__ == "__main__":
    sys.exit(main())
