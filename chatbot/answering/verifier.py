"""The answer verifier: a cross-encoder that reads a question and a candidate sentence together and says how
likely the sentence answers it, and which of its words are the answer.

The model is the bundled MiniLM encoder with two small heads, trained by `chatbot train-verifier` and
shipped in chatbot/models/verifier/: one logit on the [CLS] token ("this sentence answers the question"),
and per token a start and an end logit of the answer's words. A candidate is read as the pair
(question, "sentence [SEP] context"), where the context is the sentence before it when that belongs with
it (the same paragraph, or the heading above), so that "It was founded in 1850" can be read as an answer
about what "It" is.

Usage example:
    verifier = Verifier(Path("chatbot/models/verifier"))
    scores = verifier.score("Who founded it?", [Candidate("Ann founded the firm.", "")])
    scores.logits[0], scores.spans[0]      # answer logit, (start, end) of "Ann" in the sentence or None
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config import VerifierConfig
from ..errors import ChatbotError
from ..index.store import IndexData
from . import verifier_onnx
from .rank import Ranked, is_fragment

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "verifier"
FORMAT = "chatbot-verifier/1"  # what verifier.json says a folder holds; bumped when inputs or heads change
MAX_SPAN_TOKENS = 30  # the longest answer phrase the span head may mark
CONTEXT_CHARS = 250  # the most of the sentence before that a candidate carries as context
BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")

_lock = threading.Lock()
_loaded: dict[tuple[str, str], tuple[object, object, dict]] = {}


@dataclass(frozen=True)
class Candidate:
    """A sentence to verify and the text around it that the model reads after it ("" for none)."""

    sentence: str
    context: str = ""


@dataclass(frozen=True)
class Verification:
    """What the verifier made of the best candidates of one question, in the ranking model's order."""

    sentences: np.ndarray  # int64 sentence ids read
    logits: np.ndarray  # float64 answer logit of each
    spans: tuple[tuple[int, int] | None, ...]  # the answer's characters inside each sentence, or None
    margins: np.ndarray | None = None  # float64 span margin of each (null_margin)


@dataclass(frozen=True)
class Scores:
    """The verifier's reading of one question's candidates, in their order."""

    logits: np.ndarray  # float64: log-odds that each sentence answers the question
    spans: tuple[tuple[int, int] | None, ...]  # the answer's characters inside each sentence, or None
    span_scores: np.ndarray  # float64: start + end logit of each span (-inf without one)
    margins: np.ndarray  # float64: span score less the [CLS] "no answer" score (null_margin)


def pair_text(candidate: Candidate) -> str:
    """The second text of the pair the model reads: the sentence first (it is never cut), then its context."""
    return f"{candidate.sentence} [SEP] {candidate.context}" if candidate.context else candidate.sentence


def build_model(encoder):
    """The verifier network around a transformers encoder: an answer logit and start/end logits per token."""
    import torch

    class VerifierModel(torch.nn.Module):
        def __init__(self, encoder) -> None:
            super().__init__()
            self.encoder = encoder
            width = encoder.config.hidden_size
            self.answers = torch.nn.Linear(width, 1)
            self.span = torch.nn.Linear(width, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            start, end = self.span(hidden).float().unbind(-1)
            return self.answers(hidden[:, 0]).float().squeeze(-1), start, end

    return VerifierModel(encoder)


def load(folder: Path, dtype: str = "float32"):
    """(model, tokenizer, settings) from a folder that `save` wrote; loaded once per process and precision."""
    key = (str(Path(folder).resolve()), dtype)
    with _lock:
        if key not in _loaded:
            _loaded[key] = _load(Path(folder), dtype)
        return _loaded[key]


def read_settings(folder: Path) -> dict:
    """What verifier.json in `folder` records (its format checked)."""
    try:
        settings = json.loads((folder / "verifier.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChatbotError(f"no answer verifier in {folder}: {exc}") from None
    if settings.get("format") != FORMAT:
        raise ChatbotError(f"{folder} holds a verifier of format {settings.get('format')!r}, not {FORMAT!r}")
    return settings


def _load(folder: Path, dtype: str):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    settings = read_settings(folder)
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder))
    model = build_model(encoder)
    state = {name: tensor.float() for name, tensor in load_file(folder / "model.safetensors").items()}
    model.load_state_dict(state)
    model.eval()
    if dtype == "bfloat16":
        model.to(torch.bfloat16)
    return model, load_tokenizer(folder), settings


@functools.cache
def load_tokenizer(folder: Path):
    """The verifier's word-piece tokenizer, loaded once per process."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def load_trainable(folder: Path):
    """(model, tokenizer) of a verifier folder in float32, in training mode: a warm start for training."""
    model, tokenizer, _ = _load(Path(folder), "float32")
    model.train()
    return model, tokenizer


def save(model, tokenizer, folder: Path, settings: dict) -> None:
    """Write the model in float16 safetensors with its tokenizer, encoder config and settings."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().to("cpu").half().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, folder / "model.safetensors")
    model.encoder.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "verifier.json").write_text(json.dumps({"format": FORMAT, **settings}, indent=2) + "\n", encoding="utf-8")


def encode_pairs(tokenizer, questions: Sequence[str], seconds: Sequence[str], max_length: int, tensors: str | None = "pt"):
    """Tokenized (question, second text) pairs with character offsets: padded to the longest, as PyTorch
    arrays ("pt"), or as lists each of its own length (None). A question is cut to its first half of
    `max_length` word-pieces, so that the sentence always has room."""
    return tokenizer(
        [clip_question(tokenizer, question, max_length // 2) for question in questions],
        list(seconds),
        truncation="only_second",
        max_length=max_length,
        padding=tensors is not None,
        return_offsets_mapping=True,
        return_tensors=tensors,
    )


def clip_question(tokenizer, question: str, limit: int) -> str:
    """`question` up to the end of its `limit`-th word-piece (a question that long is rare; past this the
    pair would leave no room for the sentence it is read with)."""
    if len(question) <= limit:  # never more word-pieces than characters
        return question
    offsets = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return question if len(offsets) <= limit else question[: offsets[limit - 1][1]]


RUNTIMES = ("torch", "onnx")


def effective_runtime(runtime: str, dtype: str) -> str:
    """What computes the verifier: "auto" is ONNX Runtime where it is installed and the precision is one it
    runs (float32 or int8), PyTorch otherwise (bfloat16)."""
    if runtime != "auto":
        return runtime
    return "onnx" if dtype in verifier_onnx.DTYPES and verifier_onnx.available() else "torch"


class Verifier:
    """The verifier at `folder`, loaded on first use; `score` reads one question's candidates on their own
    (never batched with another question's), so a question's scores never depend on which other questions
    are asked with it. PyTorch reads them as one padded batch; ONNX Runtime one at a time, unpadded."""

    def __init__(
        self,
        folder: Path = DEFAULT_MODEL,
        dtype: str = "float32",
        max_length: int = 160,
        runtime: str = "torch",
        threads: int = 1,
    ) -> None:
        self.folder = Path(folder)
        self.dtype = dtype
        self.max_length = max_length
        self.runtime = runtime
        self.threads = threads
        if runtime not in RUNTIMES:
            raise ChatbotError(f"the verifier runs on {' or '.join(RUNTIMES)}, not {runtime!r}")
        if runtime == "onnx" and not verifier_onnx.available():
            raise ChatbotError("[verifier] runtime \"onnx\" needs onnxruntime and onnx: pip install onnxruntime onnx")
        if runtime == "onnx" and dtype not in verifier_onnx.DTYPES:
            raise ChatbotError(f"ONNX Runtime runs the verifier in float32 or int8, not {dtype}")
        if runtime == "torch" and dtype == "int8":
            raise ChatbotError("the verifier runs in int8 on ONNX Runtime only: set [verifier] runtime to \"onnx\" or \"auto\"")

    @classmethod
    def from_config(cls, settings: VerifierConfig, threads: int = 1) -> Verifier:
        from ..index.embed import effective_dtype

        folder = Path(settings.model) if settings.model else DEFAULT_MODEL
        dtype = effective_dtype(settings.dtype)
        return cls(folder, dtype, settings.max_length, effective_runtime(settings.runtime, dtype), threads)

    @property
    def precision(self) -> str:
        """The precision and runtime it reads in, as reports name them ("int8, onnx")."""
        return f"{self.dtype}, {self.runtime}"

    def read(self, data: IndexData, question: str, ranked: Ranked, candidates: int) -> Verification:
        """The verifier's logits and answer spans for the first `candidates` sentences of `ranked`."""
        ids = ranked.sentences[:candidates]
        scores = self.score(question, candidates_of(data, ids))
        return Verification(ids, scores.logits, scores.spans, scores.margins)

    @property
    def settings(self) -> dict:
        return read_settings(self.folder)

    def warm_up(self) -> None:
        if self.runtime == "onnx":
            self._session()
            load_tokenizer(self.folder)
        else:
            load(self.folder, self.dtype)

    def _session(self):
        return verifier_onnx.load_session(
            self.folder, self.dtype, self.threads, network=lambda: _load(self.folder, "float32")[:2]
        )

    def score(self, question: str, candidates: Sequence[Candidate]) -> Scores:
        if not candidates:
            return Scores(np.zeros(0), (), np.zeros(0), np.zeros(0))
        seconds = [pair_text(candidate) for candidate in candidates]
        rows = self._read_onnx(question, seconds) if self.runtime == "onnx" else self._read_torch(question, seconds)
        logits, spans, span_scores, margins = [], [], [], []
        for (logit_, start, end, offsets, sequence_ids), candidate in zip(rows, candidates):
            span, value = best_span(start, end, offsets, sequence_ids, len(candidate.sentence))
            logits.append(logit_)
            spans.append(span)
            span_scores.append(value)
            margins.append(null_margin(start, end, value))
        return Scores(
            np.array(logits, dtype=np.float64),
            tuple(spans),
            np.array(span_scores, dtype=np.float64),
            np.array(margins, dtype=np.float64),
        )

    def _read_torch(self, question: str, seconds: list[str]) -> list[tuple]:
        """(answer logit, start logits, end logits, offsets, sequence ids) of each pair, read as one batch."""
        import torch

        model, tokenizer, _ = load(self.folder, self.dtype)
        batch = encode_pairs(tokenizer, [question] * len(seconds), seconds, self.max_length)
        offsets = batch.pop("offset_mapping").numpy()
        with torch.inference_mode():
            logits, starts, ends = model(**batch)
        return [
            (float(logits[row]), starts[row].numpy(), ends[row].numpy(), offsets[row], batch.sequence_ids(row))
            for row in range(len(seconds))
        ]

    def _read_onnx(self, question: str, seconds: list[str]) -> list[tuple]:
        """The same as `_read_torch`, each pair read on its own: no padding is computed."""
        session, tokenizer = self._session(), load_tokenizer(self.folder)
        batch = encode_pairs(tokenizer, [question] * len(seconds), seconds, self.max_length, tensors=None)
        rows = []
        for row in range(len(seconds)):
            encoding = {name: np.array(batch[name][row : row + 1], dtype=np.int64) for name in verifier_onnx.INPUTS}
            logits, starts, ends = verifier_onnx.run(session, encoding)
            offsets = np.array(batch["offset_mapping"][row])
            rows.append((float(logits[0]), starts[0], ends[0], offsets, batch.sequence_ids(row)))
        return rows


def apply(ranked: Ranked, verification: Verification, settings: VerifierConfig) -> Ranked:
    """`ranked` reordered by the verifier: the sentences it read first, by a logistic model over their verifier
    logit and ranking logit, then the rest (scored 0: never quoted); the confidence is a logistic model over
    `confidence_signals`."""
    count = len(verification.sentences)
    if not count:
        return replace(ranked, confidence=0.0, verified=np.zeros(0), spans=())
    combined = settings.rank_bias + settings.rank_verifier * verification.logits
    combined = combined + settings.rank_prior * logit(ranked.scores[:count])
    order = np.argsort(-combined, kind="stable")
    rest = np.arange(count, len(ranked.sentences))
    full = np.concatenate([order, rest])
    signals = confidence_signals(ranked, verification, combined, order, settings.relevance_knee)
    confidence = verified_confidence(signals, settings)
    verified = _sigmoid(verification.logits[order])
    passed = verified >= settings.min_further
    scores = np.where(passed | (np.arange(count) == 0), _sigmoid(combined[order]), 0.0)  # only the verified join the lead
    spans = [verification.spans[i] if settings.answer_spans and ok else None for i, ok in zip(order.tolist(), passed)]
    return replace(
        ranked,
        sentences=ranked.sentences[full],
        passages=ranked.passages[full],
        scores=np.concatenate([scores, np.zeros(len(rest))]),
        features=ranked.features[full],
        confidence=float(confidence),
        verified=verified,
        verified_signals=signals,
        spans=tuple(spans),
    )


# What the answer's confidence is made of, with the verifier on ([verifier] confidence_NAME weights):
# the first quote's verifier logit; how close the question comes to the documents at all; the log-odds
# the [confidence] model gives (its signs of a question the text does not answer, such as a negation the
# sentence lacks); the first quote's [ranking] logit; its lead over the runner-up in the verifier's order;
# its span margin: how far the best answer phrase stands above the span head's "no answer" ([CLS]); and how far
# the question's closeness falls below [verifier] relevance_knee (0 above it): a question foreign to every
# document, whatever word of it happens to match, is told by this, which a weight on the closeness itself
# cannot do without also doubting the questions that come close (benchmarks/RESULTS.md, "Trust").
CONFIDENCE_SIGNALS = ("verifier", "relevance", "prior_confidence", "prior", "margin", "span_margin", "shortfall")


def verified_confidence(signals: np.ndarray, settings: VerifierConfig) -> np.ndarray:
    """The [verifier] confidence model over CONFIDENCE_SIGNALS (one answer's, or a row per answer)."""
    weights = np.array([getattr(settings, f"confidence_{name}") for name in CONFIDENCE_SIGNALS])
    return _sigmoid(settings.confidence_bias + signals @ weights)


def confidence_signals(
    ranked: Ranked, verification: Verification, combined: np.ndarray, order: np.ndarray, knee: float
) -> np.ndarray:
    """CONFIDENCE_SIGNALS of the lead sentence (`order[0]` of the verified candidates, by `combined` score)."""
    lead = int(order[0])
    runner_up = float(combined[order[1]]) if len(order) > 1 else float(combined[lead]) - 5.0
    values = {
        "verifier": float(verification.logits[lead]),
        "relevance": ranked.relevance,
        "prior_confidence": float(logit(np.array([ranked.confidence]))[0]),
        "prior": float(logit(ranked.scores[lead : lead + 1])[0]),
        "margin": float(combined[lead]) - runner_up,
        "span_margin": float(verification.margins[lead]) if verification.margins is not None else 0.0,
        "shortfall": max(0.0, knee - ranked.relevance),
    }
    return np.array([values[name] for name in CONFIDENCE_SIGNALS], dtype=np.float64)


def candidates_of(data: IndexData, sentences: np.ndarray) -> list[Candidate]:
    """The candidates the verifier reads for these sentence ids: each sentence with its context."""
    texts = []
    for sentence in sentences.tolist():
        doc, start, end = (int(value) for value in data.sentences[sentence])
        # A table row, item, term or code block is read with its heading and header, term or lead-in line;
        # prose with the sentence before it.
        context = clip_context(data.context_text(sentence)) or context_of(data, sentence)
        texts.append(Candidate(data.texts[doc][start:end], context))
    return texts


def context_of(data: IndexData, sentence: int) -> str:
    """The sentence before, when it belongs with this one: in the same paragraph, or a heading above it."""
    doc, start, _ = (int(value) for value in data.sentences[sentence])
    if sentence == 0 or int(data.sentences[sentence - 1, 0]) != doc:
        return ""
    before_start, before_end = (int(value) for value in data.sentences[sentence - 1, 1:])
    text = data.texts[doc]
    if BLANK_LINE.search(text, before_end, start) and not is_fragment(data, sentence - 1):
        return ""
    return clip_context(text[before_start:before_end])


def clip_context(text: str) -> str:
    """The end of a context sentence, at most CONTEXT_CHARS long, starting at a word."""
    if len(text) <= CONTEXT_CHARS:
        return text
    cut = text[-CONTEXT_CHARS:]
    return cut[cut.find(" ") + 1 :] if " " in cut else cut


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p kept inside (0, 1)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def null_margin(starts: np.ndarray, ends: np.ndarray, span_score: float, floor: float = -30.0) -> float:
    """How far the best answer span's score (start + end logit) stands above [CLS]'s, the "no answer" of a
    model trained SQuAD 2.0 style: positive when the sentence holds an answer (kept above `floor`)."""
    return max(floor, float(span_score) - float(starts[0] + ends[0]))


def best_span(
    starts: np.ndarray, ends: np.ndarray, offsets: np.ndarray, sequence_ids: list, limit: int
) -> tuple[tuple[int, int] | None, float]:
    """The highest-scoring (start, end) characters of the answer within the first `limit` characters of the
    second text (the sentence), at most MAX_SPAN_TOKENS tokens long; (None, -inf) when no token fits."""
    inside = np.array(
        [sequence == 1 and offsets[i][1] <= limit and offsets[i][1] > offsets[i][0] for i, sequence in enumerate(sequence_ids)]
    )
    tokens = np.flatnonzero(inside)
    if not len(tokens):
        return None, float("-inf")
    start_scores, end_scores = starts[tokens], ends[tokens]
    total = start_scores[:, None] + end_scores[None, :]
    gap = tokens[None, :] - tokens[:, None]
    total = np.where((gap >= 0) & (gap < MAX_SPAN_TOKENS), total, -np.inf)
    first, last = np.unravel_index(int(np.argmax(total)), total.shape)
    return (int(offsets[tokens[first]][0]), int(offsets[tokens[last]][1])), float(total[first, last])
