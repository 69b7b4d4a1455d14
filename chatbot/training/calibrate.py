"""Fit the ranking and confidence models on a question set, and choose how many quotes to give and when
to abstain.

In order:
1. ranking: a logistic regression over rank.py's features, of candidate sentences that hold a gold answer
   against those that do not;
2. quotes: every [answer] max_quotes, second_quote_ratio and following_quote_ratio of a small grid is
   tried on the answers the new ranking gives; among those whose median answer stays within a length,
   the one kept gives the shortest answers whose hit rate is within one standard error of the best
   (quoting more than needed is not rewarded, and a few questions more are no reason to quote more);
3. confidence: a logistic regression of answers (so composed) that are hits against those that are not,
   every answer to an unanswerable question counting as not;
4. the abstention threshold is swept; the one kept has the best overall accuracy among those whose
   false-abstention rate stays within a limit.
The weights and settings are plain numbers written into a config file's [ranking], [confidence] and
[answer] sections.

Usage example:
    result = calibrate(bot, items)
    write_config(Path("config/default.toml"), result)
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..answering.bot import Chatbot, Evidence
from ..answering.compose import compose
from ..answering.rank import CONFIDENCE_FEATURES, RANKING_FEATURES, confidence_of
from ..answering.verifier import CONFIDENCE_SIGNALS, apply, logit, verified_confidence
from ..config import ConfidenceConfig
from .evaluate import Item, is_hit, normalize, quoted_text


@dataclass(frozen=True)
class SweepPoint:
    threshold: float
    hit_rate: float
    false_abstention: float
    unanswerable_abstention: float
    overall_accuracy: float


@dataclass(frozen=True)
class QuotePoint:
    max_quotes: int
    second_quote_ratio: float
    following_quote_ratio: float
    hit_rate: float
    median_chars: float
    # Whether each answerable question was a hit: comparing two settings on the same questions tells a
    # real difference from noise.
    hits: np.ndarray | None = field(default=None, compare=False, repr=False)
    weights: np.ndarray | None = field(default=None, compare=False, repr=False)  # of each question in `hits`


# The [answer] settings tried: at most this many quoted sentences, a further sentence's least share of the
# best score, and that share for a sentence following one already quoted (never more than the other).
_RATIOS = tuple(round(float(ratio), 2) for ratio in np.arange(0.2, 0.651, 0.05))
_FOLLOWING = (0.1, 0.15, 0.2, 0.3)
QUOTE_GRID = tuple(
    (quotes, ratio, following)
    for quotes in (1, 2, 3, 4)
    for ratio in _RATIOS
    for following in ([ratio] if quotes == 1 else [f for f in _FOLLOWING if f < ratio] + [ratio])
)


# With the answer verifier on, its two logistic models are fitted instead of [ranking] and [confidence]:
# the order of the candidates it read, and the answer's confidence ([verifier] rank_* and confidence_*).
VERIFIER_RANKING = ("verifier", "prior")


@dataclass
class Calibration:
    ranking: dict[str, float]
    confidence: dict[str, float]
    points: list[SweepPoint] = field(default_factory=list)
    chosen: SweepPoint | None = None
    quote_points: list[QuotePoint] = field(default_factory=list)
    quotes: QuotePoint | None = None
    verifier: dict[str, float] | None = None  # [verifier] weights, when the verifier is on


def calibrate(
    bot: Chatbot,
    items: list[Item],
    max_false_abstention: float = 0.10,
    off_topic: Chatbot | None = None,
    max_answer_chars: float = 300,
    explained: list[Evidence] | None = None,
    weights: np.ndarray | None = None,
    off_topic_items: list[Item] | None = None,
) -> Calibration:
    """Fit both models on `items`, pick the quote settings and the threshold; `bot` itself is left unchanged.

    With `off_topic` (a chatbot over documents that answer none of the questions), the questions are
    asked there too, as unanswerable ones, so the confidence also learns what an unrelated question
    looks like; the threshold is still chosen on `items` alone. With the verifier on, `explained` may give
    the evidence of `items` already gathered (say, each by a verifier that was not trained on it), and
    `weights` how much each item counts (say, more for a small set of the documents' own kind of questions
    beside a large general one), and `off_topic_items` which of them to ask `off_topic` (default: all).
    """
    if bot.config.verifier.enabled:
        return _calibrate_verified(
            bot, items, max_false_abstention, off_topic, max_answer_chars, explained, weights, off_topic_items
        )
    features, labels = candidate_samples(bot, items)
    ranking = fit_logistic(features, labels, RANKING_FEATURES, bot.config.ranking)
    ranked_bot = bot.replace(ranking=ranking)
    explained = [evidence for _, (_, evidence) in _explained(ranked_bot, items, 256)]
    data, settings = ranked_bot.data, replace(ranked_bot.config.answer, min_confidence=0.0)
    quote_points = quote_sweep(settings, items, explained)
    quotes = choose_quotes(quote_points, max_answer_chars)
    settings = replace(
        settings,
        max_quotes=quotes.max_quotes,
        second_quote_ratio=quotes.second_quote_ratio,
        following_quote_ratio=quotes.following_quote_ratio,
    )
    hits = np.array(
        [
            not item.impossible and is_hit(compose(item.question, e.ranked, e.hits, data, settings), item.answers)
            for item, e in zip(items, explained)
        ],
        dtype=bool,
    )
    impossible = np.array([item.impossible for item in items], dtype=bool)
    signals = np.array([_signals(evidence) for evidence in explained]).reshape(-1, len(CONFIDENCE_FEATURES))
    training, labels = signals, hits
    if off_topic is not None:
        unrelated, _, _, _ = answer_samples(off_topic.replace(ranking=ranking), items)
        training = np.vstack([signals, unrelated])
        labels = np.concatenate([hits, np.zeros(len(unrelated), dtype=bool)])
    confidence = fit_logistic(training, labels, CONFIDENCE_FEATURES, bot.config.confidence)
    # The signals and hits do not depend on the confidence weights: score them, rather than ask again.
    scores = confidence_of(signals, ConfidenceConfig(**confidence))
    points = sweep(scores, hits, impossible)
    return Calibration(ranking, confidence, points, choose(points, max_false_abstention), quote_points, quotes)


def _calibrate_verified(
    bot: Chatbot,
    items: list[Item],
    max_false_abstention: float,
    off_topic: Chatbot | None,
    max_answer_chars: float,
    explained: list[Evidence] | None = None,
    weights: np.ndarray | None = None,
    off_topic_items: list[Item] | None = None,
) -> Calibration:
    """`calibrate` with the answer verifier on: the ranking model picks what it reads and is left as it is."""
    if explained is None:
        explained = [evidence for _, (_, evidence) in _explained(bot, items, 256)]
    weights = np.ones(len(items)) if weights is None else np.asarray(weights, dtype=np.float64)
    features, labels, sample = [], [], []
    for item, evidence, weight in zip(items, explained, weights):
        golds = [] if item.impossible else [gold for gold in map(normalize, item.answers) if gold]
        data = evidence.data  # pooled evidence may come from several indexes
        read = evidence.verification
        prior = logit(evidence.prior.scores[: len(read.sentences)])
        for sentence, value, before in zip(read.sentences.tolist(), read.logits, prior):
            doc, start, end = (int(v) for v in data.sentences[sentence])
            features.append((value, before))
            labels.append(any(gold in normalize(data.texts[doc][start:end]) for gold in golds))
            sample.append(weight)
    current = bot.config.verifier
    ranking = _prefixed(
        fit_logistic(
            np.array(features).reshape(-1, 2),
            np.array(labels, dtype=bool),
            VERIFIER_RANKING,
            _Named(current, "rank_"),
            sample_weight=np.array(sample),
        ),
        "rank_",
    )
    settings = replace(current, **ranking)
    explained = [replace(e, ranked=apply(e.prior, e.verification, settings)) for e in explained]
    answer = replace(bot.config.answer, min_confidence=0.0)
    quote_points = quote_sweep(answer, items, explained, weights)
    quotes = choose_quotes(quote_points, max_answer_chars)
    answer = replace(
        answer,
        max_quotes=quotes.max_quotes,
        second_quote_ratio=quotes.second_quote_ratio,
        following_quote_ratio=quotes.following_quote_ratio,
    )
    hits = np.array(
        [
            not item.impossible
            and is_hit(compose(item.question, e.ranked, e.hits, e.data, answer), item.answers)
            for item, e in zip(items, explained)
        ],
        dtype=bool,
    )
    impossible = np.array([item.impossible for item in items], dtype=bool)
    width = len(CONFIDENCE_SIGNALS)
    signals = np.array([e.ranked.verified_signals for e in explained]).reshape(-1, width)
    training, targets, sample = signals, hits, weights
    if off_topic is not None:
        other = off_topic.replace(verifier=ranking)
        asked = items if off_topic_items is None else off_topic_items
        unrelated = np.array([e.ranked.verified_signals for _, (_, e) in _explained(other, asked, 256)])
        training = np.vstack([signals, unrelated.reshape(-1, width)])
        targets = np.concatenate([hits, np.zeros(len(unrelated), dtype=bool)])
        sample = np.concatenate([weights, np.ones(len(unrelated))])
    confidence = _prefixed(
        fit_logistic(training, targets, CONFIDENCE_SIGNALS, _Named(current, "confidence_"), sample_weight=sample),
        "confidence_",
    )
    scores = verified_confidence(signals, replace(current, **confidence))
    points = sweep(scores, hits, impossible, weights=weights)
    return Calibration({}, {}, points, choose(points, max_false_abstention), quote_points, quotes, ranking | confidence)


class _Named:
    """Reads `prefix + name` of a settings object: current weights for fit_logistic under short names."""

    def __init__(self, settings: object, prefix: str) -> None:
        self.settings, self.prefix = settings, prefix

    def __getattr__(self, name: str) -> float:
        return getattr(self.settings, self.prefix + name)


def _prefixed(weights: dict[str, float], prefix: str) -> dict[str, float]:
    return {prefix + name: value for name, value in weights.items()}


def quote_sweep(
    settings, items: list[Item], explained: list[Evidence], weights: np.ndarray | None = None
) -> list[QuotePoint]:
    """Hit rate (weighted by `weights`, when given) and median answer length of the answerable items at each
    QUOTE_GRID setting (no abstention)."""
    weights = np.ones(len(items)) if weights is None else np.asarray(weights, dtype=np.float64)
    answerable = [(item, evidence) for item, evidence in zip(items, explained) if not item.impossible]
    counted = np.array([weight for item, weight in zip(items, weights) if not item.impossible])
    points = []
    for max_quotes, ratio, following in QUOTE_GRID:
        tried = replace(settings, max_quotes=max_quotes, second_quote_ratio=ratio, following_quote_ratio=following)
        hits, lengths = [], []
        for item, evidence in answerable:
            answer = compose(item.question, evidence.ranked, evidence.hits, evidence.data, tried)
            hits.append(is_hit(answer, item.answers))
            lengths.append(len(quoted_text(answer)))
        hit = np.array(hits, dtype=bool)
        points.append(
            QuotePoint(
                max_quotes,
                ratio,
                following,
                float(counted @ hit / counted.sum()) if len(counted) else 0.0,
                statistics.median(lengths) if lengths else 0.0,
                hit,
                counted,
            )
        )
    return points


def choose_quotes(points: list[QuotePoint], max_answer_chars: float) -> QuotePoint:
    """Of the settings whose median answer is at most `max_answer_chars` long, the shortest answers whose
    hit rate is within one standard error of the best (the "one-standard-error rule" of model selection,
    with shorter answers as the simpler model); the shortest answers if no setting fits."""
    allowed = [point for point in points if point.median_chars <= max_answer_chars]
    if not allowed:
        return min(points, key=lambda point: (point.median_chars, -point.hit_rate))
    best = max(allowed, key=lambda point: (round(point.hit_rate, 6), -point.median_chars, -point.max_quotes))
    close = [point for point in allowed if best.hit_rate - point.hit_rate <= _paired_error(best, point) + 1e-9]
    return min(close, key=lambda point: (point.median_chars, -round(point.hit_rate, 6), point.max_quotes))


def _paired_error(one: QuotePoint, other: QuotePoint) -> float:
    """Standard error of the difference in hit rate between two settings on the same questions: only the
    questions that one gets right and the other wrong count (0 when either point has no per-question hits)."""
    if one.hits is None or other.hits is None or not len(one.hits):
        return 0.0
    weights = one.weights if one.weights is not None else np.ones(len(one.hits))
    differing = one.hits != other.hits
    return float(np.sqrt(np.sum(weights[differing] ** 2)) / weights.sum())


def candidate_samples(bot: Chatbot, items: list[Item], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Ranking features of every candidate sentence of every question, labelled by whether it holds a gold answer."""
    features, labels = [], []
    data = bot.data
    for item, (_, evidence) in _explained(bot, items, batch_size):
        golds = [] if item.impossible else [gold for gold in map(normalize, item.answers) if gold]
        for sentence, row in zip(evidence.ranked.sentences.tolist(), evidence.ranked.features):
            doc, start, end = (int(value) for value in data.sentences[sentence])
            text = normalize(data.texts[doc][start:end])
            labels.append(any(gold in text for gold in golds))
            features.append(row)
    return np.array(features).reshape(-1, len(RANKING_FEATURES)), np.array(labels, dtype=bool)


def answer_samples(bot: Chatbot, items: list[Item], batch_size: int = 256):
    """Per question, answered with abstention off: confidence signals, hit, unanswerable, confidence."""
    signals, hits, impossible, confidence = [], [], [], []
    for item, (answer, evidence) in _explained(bot, items, batch_size, answer={"min_confidence": 0.0}):
        signals.append(_signals(evidence))
        hits.append(not item.impossible and is_hit(answer, item.answers))
        impossible.append(item.impossible)
        confidence.append(answer.confidence)
    return np.array(signals), np.array(hits), np.array(impossible), np.array(confidence)


def _signals(evidence: Evidence) -> np.ndarray:
    signals = evidence.ranked.signals
    return signals if signals is not None else np.zeros(len(CONFIDENCE_FEATURES))


def _explained(bot: Chatbot, items: list[Item], batch_size: int, answer=None):
    for lo in range(0, len(items), batch_size):
        batch = items[lo : lo + batch_size]
        yield from zip(batch, bot.explain_batch([item.question for item in batch], answer))


# A feature that is non-zero in fewer than this share of the samples is not fitted: the data says too
# little about it (SQuAD's Wikipedia paragraphs have almost no headings, say), so it keeps its weight.
MIN_SUPPORT = 0.01


def fit_logistic(
    features: np.ndarray,
    labels: np.ndarray,
    names: tuple[str, ...],
    current: object,
    strength: float = 1.0,
    sample_weight: np.ndarray | None = None,
) -> dict[str, float]:
    """L2-regularised logistic-regression weights by feature name, plus "bias".

    Features too rare in `features` to be fitted (MIN_SUPPORT) keep their weight in `current`.
    """
    from sklearn.linear_model import LogisticRegression

    fitted = [column for column in range(len(names)) if np.mean(features[:, column] != 0) >= MIN_SUPPORT]
    model = LogisticRegression(C=strength, max_iter=2000)
    model.fit(features[:, fitted], labels, sample_weight=sample_weight)
    weights = {"bias": round(float(model.intercept_[0]), 4)}
    weights.update({name: float(getattr(current, name)) for name in names})
    weights.update({names[column]: round(float(value), 4) for column, value in zip(fitted, model.coef_[0])})
    return weights


def sweep(
    confidence: np.ndarray, hit: np.ndarray, impossible: np.ndarray, thresholds=None, weights: np.ndarray | None = None
) -> list[SweepPoint]:
    """Hit rate, false abstention, abstention on unanswerable and accuracy at each abstention threshold, each
    question counting by its weight (1 when no weights are given).

    An answer is abstained at threshold t exactly when its confidence is below t, as in the chatbot.
    """
    thresholds = np.round(np.arange(0.0, 1.0001, 0.01), 2) if thresholds is None else thresholds
    weights = np.ones(len(confidence)) if weights is None else np.asarray(weights, dtype=np.float64)
    answerable = max(float(weights[~impossible].sum()), 1e-12)
    unanswerable = max(float(weights[impossible].sum()), 1e-12)
    points = []
    for threshold in thresholds:
        abstain = confidence < threshold
        hits = float(weights[hit & ~abstain].sum())
        right_abstentions = float(weights[impossible & abstain].sum())
        points.append(
            SweepPoint(
                threshold=float(threshold),
                hit_rate=hits / answerable,
                false_abstention=float(weights[~impossible & abstain].sum()) / answerable,
                unanswerable_abstention=right_abstentions / unanswerable if impossible.any() else 0.0,
                overall_accuracy=(hits + right_abstentions) / max(float(weights.sum()), 1e-12),
            )
        )
    return points


def choose(points: list[SweepPoint], max_false_abstention: float = 0.10) -> SweepPoint:
    """The most accurate point whose false-abstention rate stays within the limit (ties: lower threshold)."""
    allowed = [point for point in points if point.false_abstention <= max_false_abstention] or points[:1]
    return max(allowed, key=lambda point: (round(point.overall_accuracy, 6), -point.threshold))


def plot(points: list[SweepPoint], chosen: SweepPoint, path: Path) -> None:
    """Draw the trade-off against the threshold as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [point.threshold for point in points]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, label in (
        ("hit_rate", "hit rate (answerable)"),
        ("false_abstention", "false abstention (answerable)"),
        ("unanswerable_abstention", "abstention (unanswerable)"),
        ("overall_accuracy", "overall accuracy"),
    ):
        axes.plot(x, [getattr(point, name) for point in points], label=label)
    axes.axvline(chosen.threshold, color="grey", linestyle="--", linewidth=1)
    axes.annotate(f"chosen {chosen.threshold:.2f}", (chosen.threshold, 0.02), xytext=(4, 0), textcoords="offset points")
    axes.set_xlabel("abstention threshold (answer.min_confidence)")
    axes.set_ylim(0, 1)
    axes.grid(alpha=0.3)
    axes.legend(loc="center right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def format_table(points: list[SweepPoint], chosen: SweepPoint, every: int = 5) -> str:
    lines = ["threshold  hit rate  false abst.  abst. unanswerable  accuracy"]
    for number, point in enumerate(points):
        if number % every and point is not chosen:
            continue
        mark = "  <- chosen" if point is chosen else ""
        lines.append(
            f"{point.threshold:9.2f}  {point.hit_rate:8.3f}  {point.false_abstention:11.3f}  "
            f"{point.unanswerable_abstention:19.3f}  {point.overall_accuracy:8.3f}{mark}"
        )
    return "\n".join(lines)


def format_quotes(points: list[QuotePoint], chosen: QuotePoint) -> str:
    """Hit rate and median answer length by max_quotes and following_quote_ratio (rows) and
    second_quote_ratio (columns)."""
    ratios = sorted({point.second_quote_ratio for point in points})
    lines = [
        "max_quotes, following_quote_ratio \\ second_quote_ratio: hit rate, median characters (no abstention)",
        " " * 12 + "".join(f"{ratio:>12.2f}" for ratio in ratios),
    ]

    def following(point: QuotePoint) -> float:  # 1.0 stands for "the same as second_quote_ratio"
        return 1.0 if point.following_quote_ratio == point.second_quote_ratio else point.following_quote_ratio

    for quotes, share in sorted({(point.max_quotes, following(point)) for point in points}):
        row = {
            point.second_quote_ratio: point
            for point in points
            if (point.max_quotes, following(point)) == (quotes, share)
        }
        cells = [
            f"{'*' if row[ratio] is chosen else ' '}{row[ratio].hit_rate:.3f} {row[ratio].median_chars:4.0f}"
            if ratio in row
            else " " * 12
            for ratio in ratios
        ]
        lines.append(f"{quotes:4d}  {'same' if share == 1.0 else f'{share:4.2f}'}  " + "".join(cells))
    lines.append(
        f"* chosen: max_quotes = {chosen.max_quotes}, second_quote_ratio = {chosen.second_quote_ratio}, "
        f"following_quote_ratio = {chosen.following_quote_ratio}"
    )
    return "\n".join(lines)


def write_config(path: Path, result: Calibration) -> None:
    """Put the fitted weights, quote settings and threshold into a config file, keeping its comments and
    other settings."""
    values = {
        "ranking": result.ranking,
        "confidence": result.confidence,
        "verifier": result.verifier or {},
        "answer": {"min_confidence": result.chosen.threshold},
    }
    if result.quotes is not None:
        values["answer"].update(
            max_quotes=result.quotes.max_quotes,
            second_quote_ratio=result.quotes.second_quote_ratio,
            following_quote_ratio=result.quotes.following_quote_ratio,
        )
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for section, pairs in values.items():
        for key, value in pairs.items():
            text = _set_value(text, section, key, repr(value if isinstance(value, int) else float(value)))
    path.write_text(text, encoding="utf-8")


def _set_value(text: str, section: str, key: str, value: str) -> str:
    """Set `key = value` inside [section] of TOML text, adding the section or key when missing."""
    header = re.search(rf"^\[{re.escape(section)}\][ \t]*$", text, re.M)
    if header is None:
        return text.rstrip("\n") + f"\n\n[{section}]\n{key} = {value}\n"
    following = re.search(r"^\[", text[header.end() :], re.M)
    end = header.end() + following.start() if following else len(text)
    body = text[header.end() : end]
    line = re.search(rf"^{re.escape(key)}[ \t]*=.*$", body, re.M)
    if line:
        body = body[: line.start()] + f"{key} = {value}" + body[line.end() :]
    else:
        body = body.rstrip("\n") + f"\n{key} = {value}\n" + ("\n" if following else "")
    return text[: header.end()] + body + text[end:]
