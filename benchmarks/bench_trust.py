"""Trust across domains: fit the answer's confidence, the abstention threshold and the "high"/"medium" labels on
the development half, the real documents and the seed sets together, cross-validated, and report each set.

    python benchmarks/bench_trust.py --fold 1/2=chatbot/models/verifier --work /tmp/trust \
        [--reuse] [--write config/default.toml]

Sets (each question answered once; its evidence is kept in --work so that --reuse refits without answering):
- `squad2-dev-half`: ../shared/eval/squad2-dev-half.json, only the questions of fold K, answered with the
  verifier of that fold (trained with `--cross-validate ... --fold K/N`, so it never saw those articles);
  grouped by article;
- `realdocs-dev`: ../shared/eval/realdocs-dev (its 105 questions over its 14 documents); grouped by document
  (off-topic questions spread over the groups), scored by the set's own rule (check_golds.normalise);
- `seeds`: every benchmarks/seed_questions*.jsonl about seeds/, grouped by file.

The confidence is the [verifier] logistic model over verifier.CONFIDENCE_SIGNALS, fitted to "the answer given
would be right" with each of the three sets weighing the same in all. Every figure below comes from
out-of-fold confidences: 5 folds by group, each fold's questions scored by a model fitted on the other four.
The threshold is the one of best mean overall accuracy over the three sets with false abstention at most
--max-false-abstention on each; "high" is the lowest confidence from which answers were right at least 0.9
of the time on every set, "medium" 0.7. With --write, the model fitted on all questions and these thresholds
go into the config. Writes benchmarks/results/trust.md and trust-reliability.png.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatbot import Chatbot  # noqa: E402
from chatbot.answering.compose import compose  # noqa: E402
from chatbot.answering.verifier import CONFIDENCE_SIGNALS, apply  # noqa: E402
from chatbot.training.calibrate import _set_value  # noqa: E402
from chatbot.training.evaluate import build_corpus, is_hit, read_questions  # noqa: E402
from chatbot.training.train_verifier import in_fold  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
SETS = ("squad2-dev-half", "realdocs-dev", "seeds")
FOLDS = 5


@dataclass(frozen=True)
class Asked:
    """One question of a set, with what makes its answer right."""

    set: str
    group: str  # the article, document or file it belongs to (cross-validation keeps a group together)
    question: str
    golds: tuple[str, ...]
    kind: str  # "answerable", "unanswerable" (near-topic) or "offtopic"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", required=True, metavar="K/N=MODEL", help="the development fold and its verifier")
    parser.add_argument("--model", type=Path, help="verifier for the other sets (default: the --fold one)")
    parser.add_argument("--config", type=Path, help="config to start from (default: config/default.toml)")
    parser.add_argument("--work", type=Path, help="folder for the corpora, indexes and evidence")
    parser.add_argument("--reuse", action="store_true", help="reuse the evidence an earlier run left in --work")
    parser.add_argument("--max-false-abstention", type=float, default=0.08)
    parser.add_argument("--write", type=Path, help="config file to write the fitted settings into")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    part, fold_model = args.fold.split("=", 1)
    fold, folds = (int(value) for value in part.split("/"))
    model = Path(args.model or fold_model).resolve()
    scratch = tempfile.TemporaryDirectory(prefix="bench-trust-")
    work = args.work or Path(scratch.name)
    work.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    pool: list[tuple[Asked, object]] = []  # (question, evidence)
    dev = SHARED / "squad2-dev-half.json"
    build_corpus(dev, work / "dev-docs")
    held = [item for item in read_questions(dev) if in_fold(f"{dev.name}:{item.article}", folds, fold - 1)]
    asked = [Asked("squad2-dev-half", item.article, item.question, item.answers, _kind(item)) for item in held]
    pool += _gathered(work, "dev", args, asked, work / "dev-docs", Path(fold_model).resolve())
    pool += _gathered(work, "realdocs", args, _realdocs(), SHARED / "realdocs-dev" / "docs", model)
    seeds = []
    for path in sorted((ROOT / "benchmarks").glob("seed_questions*.jsonl")):
        seeds += [Asked("seeds", path.stem, i.question, i.answers, _kind(i)) for i in read_questions(path)]
    pool += _gathered(work, "seeds", args, seeds, ROOT / "seeds", model)
    seconds = time.perf_counter() - started

    bot = Chatbot.from_config(args.config)
    settings = bot.config
    normalise = _realdocs_normalise()
    signals = np.array([evidence.ranked.verified_signals for _, evidence in pool])
    answers = [compose(a.question, evidence.ranked, evidence.hits, evidence.data, replace(settings.answer, min_confidence=0.0))
               for a, evidence in pool]
    right = np.array([_right(a, answer, normalise) for (a, _), answer in zip(pool, answers)])
    sets = np.array([a.set for a, _ in pool])
    weights = np.zeros(len(pool))
    for name in SETS:
        weights[sets == name] = 1.0 / max(1, np.sum(sets == name))
    groups = np.array([f"{a.set}:{a.group}" for a, _ in pool])
    out_of_fold = _cross_validated(signals, right, weights, groups)
    threshold = _threshold(pool, right, out_of_fold, args.max_false_abstention)
    high = _label_threshold(pool, right, out_of_fold, threshold, 0.9)
    medium = _label_threshold(pool, right, out_of_fold, threshold, 0.7)
    final = _fit(signals, right, weights)
    ablation = _ablation(pool, signals, right, weights, groups, args.max_false_abstention)
    report = _report(args, pool, right, out_of_fold, threshold, high, medium, final, seconds, ablation)
    args.out.mkdir(parents=True, exist_ok=True)
    _reliability_plot(pool, right, out_of_fold, args.out / "trust-reliability.png")
    (args.out / "trust.md").write_text(report, encoding="utf-8")
    print(report)
    if args.write:
        _write(args.write, final, threshold, high, medium)
        print(f"settings written to {args.write}", file=sys.stderr)
    return 0


def _kind(item) -> str:
    return "unanswerable" if item.impossible else "answerable"


def _realdocs() -> list[Asked]:
    rows = [json.loads(line) for line in (SHARED / "realdocs-dev" / "questions.jsonl").read_text().splitlines() if line]
    documents = sorted({row["doc"] for row in rows if row.get("doc")})
    asked = []
    for number, row in enumerate(rows):
        group = row.get("doc") or documents[number % len(documents)]  # off-topic: spread over the documents
        asked.append(Asked("realdocs-dev", group, row["q"], tuple(row["gold"]), row["kind"]))
    return asked


def _realdocs_normalise():
    spec = importlib.util.spec_from_file_location("check_golds", SHARED / "realdocs-dev" / "check_golds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.normalise


def _gathered(work: Path, name: str, args, asked: list[Asked], docs: Path, model: Path) -> list:
    """(question, evidence) of every question, answered with `model` over `docs` (or read back with --reuse)."""
    path = work / f"evidence-{name}.pkl"
    if args.reuse and path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    bot = Chatbot.from_config(args.config, docs=docs, index=work / f"index-{name}", verifier={"model": str(model)})
    bot.index()
    pairs = []
    for lo in range(0, len(asked), 256):
        chunk = asked[lo : lo + 256]
        pairs += [(a, evidence) for a, (_, evidence) in zip(chunk, bot.explain_batch([a.question for a in chunk]))]
        print(f"{name}: {len(pairs)} of {len(asked)} answered", file=sys.stderr)
    with path.open("wb") as handle:
        pickle.dump(pairs, handle)
    return pairs


def _right(asked: Asked, answer, normalise) -> bool:
    """Whether the answer (as given when not abstaining) would be right: a hit, by the set's own rule."""
    if asked.kind != "answerable" or answer.abstained:
        return False
    if asked.set == "realdocs-dev":
        quoted = normalise(" ".join(quote.text for quote in answer.quotes))[:400]
        return any(normalise(gold) in quoted for gold in asked.golds)
    return is_hit(answer, asked.golds)


def _fit(signals: np.ndarray, right: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(signals, right.astype(int), sample_weight=weights * len(weights))
    fitted = {f"confidence_{name}": round(float(w), 4) for name, w in zip(CONFIDENCE_SIGNALS, model.coef_[0])}
    fitted["confidence_bias"] = round(float(model.intercept_[0]), 4)
    return fitted


def _predict(fitted: dict[str, float], signals: np.ndarray) -> np.ndarray:
    weights = np.array([fitted[f"confidence_{name}"] for name in CONFIDENCE_SIGNALS])
    return 1.0 / (1.0 + np.exp(-(fitted["confidence_bias"] + signals @ weights)))


def _ablation(pool, signals, right, weights, groups, limit: float) -> list[str]:
    """Which signal makes off-topic and near-topic questions abstained: the model refitted (and its threshold
    chosen again) without each signal in turn, and with the verifier's two verdicts alone."""
    rows = []
    variants = [("all signals", list(range(len(CONFIDENCE_SIGNALS))))]
    variants += [(f"without {name}", [j for j in range(len(CONFIDENCE_SIGNALS)) if j != i])
                 for i, name in enumerate(CONFIDENCE_SIGNALS)]
    verdicts = [CONFIDENCE_SIGNALS.index(name) for name in ("verifier", "span_margin")]
    closeness = [CONFIDENCE_SIGNALS.index(name) for name in ("relevance", "shortfall")]
    variants += [("verifier and span margin alone", verdicts), ("closeness alone (relevance, shortfall)", closeness)]
    for name, columns in variants:
        masked = np.zeros_like(signals)
        masked[:, columns] = signals[:, columns]
        confidence = _cross_validated(masked, right, weights, groups)
        threshold = _threshold(pool, right, confidence, limit)
        cells = []
        for set_name in SETS:
            f = _figures(pool, right, confidence, threshold, set_name)
            cells.append(f"{f['hits']}/{f['answerable']}, {f['unanswerable_abstained']}/{f['unanswerable']}, "
                         f"{f['offtopic_abstained']}/{f['offtopic']}")
        rows.append(f"| {name} | {threshold:.2f} | " + " | ".join(cells) + " |")
    return rows


def _cross_validated(signals, right, weights, groups) -> np.ndarray:
    """Each question's confidence from a model fitted on the folds its group is not in."""
    names = sorted(set(groups))
    rng = np.random.default_rng(0)
    fold_of = dict(zip(names, rng.permutation(len(names)) % FOLDS))
    folds = np.array([fold_of[group] for group in groups])
    result = np.zeros(len(right))
    for fold in range(FOLDS):
        inside = folds == fold
        result[inside] = _predict(_fit(signals[~inside], right[~inside], weights[~inside]), signals[inside])
    return result


def _figures(pool, right, confidence, threshold: float, name: str, group: str | None = None) -> dict:
    chosen = [i for i, (a, _) in enumerate(pool) if a.set == name and (group is None or a.group == group)]
    answered = [i for i in chosen if confidence[i] >= threshold]
    kinds = {kind: [i for i in chosen if pool[i][0].kind == kind] for kind in ("answerable", "unanswerable", "offtopic")}
    hits = sum(right[i] for i in answered)
    abstained = {kind: sum(confidence[i] < threshold for i in items) for kind, items in kinds.items()}
    correct = hits + abstained["unanswerable"] + abstained["offtopic"]
    return {
        "questions": len(chosen),
        "answerable": len(kinds["answerable"]),
        "hits": int(hits),
        "false_abstention": abstained["answerable"] / max(1, len(kinds["answerable"])),
        "unanswerable": len(kinds["unanswerable"]),
        "unanswerable_abstained": abstained["unanswerable"],
        "offtopic": len(kinds["offtopic"]),
        "offtopic_abstained": abstained["offtopic"],
        "accuracy": correct / max(1, len(chosen)),
    }


def _threshold(pool, right, confidence, limit: float) -> float:
    """The threshold of best mean overall accuracy over the sets, false abstention at most `limit` on each."""
    best, best_accuracy = 0.0, -1.0
    for threshold in np.arange(0.01, 0.96, 0.01):
        figures = [_figures(pool, right, confidence, threshold, name) for name in SETS]
        if any(f["false_abstention"] > limit for f in figures):
            continue
        accuracy = float(np.mean([f["accuracy"] for f in figures]))
        if accuracy > best_accuracy:
            best, best_accuracy = float(threshold), accuracy
    return round(best, 2)


def _precision(pool, right, confidence, name: str, low: float) -> tuple[float, int]:
    chosen = [i for i, (a, _) in enumerate(pool) if a.set == name and confidence[i] >= low]
    return (float(np.mean(right[chosen])) if chosen else float("nan")), len(chosen)


def _label_threshold(pool, right, confidence, threshold: float, wanted: float) -> float:
    """The lowest confidence (not below the threshold) from which answers were right at least `wanted` of the
    time on every set; 1.0 when there is none."""
    for low in np.arange(max(threshold, 0.01), 1.0, 0.01):
        shares = [_precision(pool, right, confidence, name, low) for name in SETS]
        if all(count == 0 or share >= wanted for share, count in shares):
            return round(float(low), 2)
    return 1.0


def _reliability_plot(pool, right, confidence, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(SETS), figsize=(4.2 * len(SETS), 4), dpi=100, sharey=True)
    for axis, name in zip(axes, SETS):
        chosen = np.array([a.set == name for a, _ in pool])
        centres, shares, counts = [], [], []
        for low in np.arange(0.0, 1.0, 0.1):
            inside = chosen & (confidence >= low) & (confidence < low + 0.1 + (1e-9 if low >= 0.9 else 0))
            if inside.any():
                centres.append(low + 0.05)
                shares.append(float(right[inside].mean()))
                counts.append(int(inside.sum()))
        axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        axis.plot(centres, shares, marker="o")
        for x, y, n in zip(centres, shares, counts):
            axis.annotate(str(n), (x, y), xytext=(3, -10), textcoords="offset points", fontsize=7)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("confidence (out of fold)")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("share of answers that are right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _report(args, pool, right, confidence, threshold, high, medium, final, seconds, ablation) -> str:
    rows = ["| set | questions | hits | false abstention | near-topic abstained | off-topic abstained | "
            "overall accuracy | \"high\" right | \"medium\" or better right |", "|---|---|---|---|---|---|---|---|---|"]
    names = [(name, None) for name in SETS]
    names += sorted({("seeds", a.group) for a, _ in pool if a.set == "seeds"})
    for name, group in names:
        f = _figures(pool, right, confidence, threshold, name, group)
        chosen = [i for i, (a, _) in enumerate(pool) if a.set == name and (group is None or a.group == group)]
        labelled = []
        for low in (high, medium):
            given = [i for i in chosen if confidence[i] >= low]
            labelled.append(f"{int(sum(right[i] for i in given))}/{len(given)}")
        rows.append(
            f"| {group or name} | {f['questions']} | {f['hits']}/{f['answerable']} | {f['false_abstention']:.3f} | "
            f"{f['unanswerable_abstained']}/{f['unanswerable']} | {f['offtopic_abstained']}/{f['offtopic']} | "
            f"{f['accuracy']:.3f} | {labelled[0]} | {labelled[1]} |"
        )
    weights = ", ".join(f"{name} {value}" for name, value in final.items())
    return f"""# Trust across domains: confidence, abstention and labels

{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/bench_trust.py {' '.join(sys.argv[1:])}` (answering: {seconds:.0f} s)

Every figure is out of fold: each question's confidence comes from a model fitted without its article,
document or seed file (5 folds by group over the three sets, each set weighing the same). The development
questions are those of fold {args.fold.split('=')[0]}, answered by a verifier that never saw their articles.

Chosen on these figures: abstain below **{threshold:.2f}** (best mean overall accuracy with false abstention at
most {args.max_false_abstention} on each set); **"high"** from {high:.2f} (answers right at least 0.9 of the time on
every set), **"medium"** from {medium:.2f} (0.7).

{chr(10).join(rows)}

Fitted on all questions (what the config ships): {weights}.

![reliability per set](trust-reliability.png)

## What makes a question abstained: each signal left out in turn

The confidence model refitted without one signal (its threshold chosen again the same way), out of fold. Each
cell: hits, near-topic abstained, off-topic abstained (the development half has no off-topic questions).

| signals | threshold | {' | '.join(SETS)} |
|---|---|{'---|' * len(SETS)}
{chr(10).join(ablation)}
"""


def _write(path: Path, fitted: dict[str, float], threshold: float, high: float, medium: float) -> None:
    text = path.read_text(encoding="utf-8")
    for key, value in fitted.items():
        text = _set_value(text, "verifier", key, str(value))
    text = _set_value(text, "answer", "min_confidence", str(threshold))
    text = _set_value(text, "answer", "high_confidence", str(high))
    text = _set_value(text, "answer", "medium_confidence", str(medium))
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
