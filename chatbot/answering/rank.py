"""Score candidate sentences against a question, and how likely the best of them answers it.

Two small logistic models with their weights in config, both fitted by `chatbot calibrate`:
- [ranking] orders the candidate sentences: how likely each holds the answer, from its similarity to
  the question (vectors, shared words and near words, for the sentence, its passage and its neighbours),
  whether it holds the kind of thing asked for, and how it compares with the other candidates;
- [confidence] turns the evidence into the answer's confidence: how close the question comes to the
  documents at all, the best sentence's lead over the runner-up and whether it holds the kind of thing
  asked for, and signs that the question asks about something the passage does not say (a name it
  never uses, a negation the sentence lacks).

Usage example:
    ranked = rank_sentences(data, question, tokens, vector, hits, config.ranking, config.confidence,
                            embedder.word_vectors)
    ranked.sentences[0], ranked.confidence         # best sentence id, confidence of the answer
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

from ..config import ConfidenceConfig, RankingConfig
from ..documents.segment import KIND_CODES, is_heading, line_around
from ..index.lexical import LexicalIndex, content_words, stem
from ..index.store import IndexData
from .retrieve import Hits

RANKING_FEATURES = tuple(f.name for f in fields(RankingConfig) if f.name != "bias")
CONFIDENCE_FEATURES = tuple(f.name for f in fields(ConfidenceConfig) if f.name != "bias")

_NUMBER_WORDS = r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|billion|trillion|dozen|half|single|double|twice"
_MONTHS = r"january|february|march|april|may|june|july|august|september|october|november|december"
_REASON_WORDS = (
    r"because|since|due to|owing to|thanks to|so that|so as|in order|designed to|aim(?:ed|s)? (?:to|at)|intended|"
    r"meant to|purpose|reason|response|essential|crucial|critical|key to|vital|necessary|needed|as a result|"
    r"to (?:mitigate|reduce|ensure|avoid|prevent|limit|protect|counter|overcome|help|enable|allow|secure|"
    r"strengthen|boost|support)|result(?:s|ed)? (?:in|from)|lead(?:s|ing)? to|led to|prompt(?:s|ed|ing)?|"
    r"driv(?:en|ing) by"
)
_KINDS = (
    # (kind, question pattern, pattern a sentence must contain to hold that kind of answer). The question
    # pattern is matched where the question starts and where its first wh-word stands: in "What was he
    # alluding to when he spoke?" the "when" does not ask for a date.
    (
        "date",
        r"when\b|what (?:year|date|day|month|century|decade|time|era|period)\b|which year\b",
        rf"\b(?:1\d{{3}}|20\d{{2}}|\d{{1,2}}(?:st|nd|rd|th)|{_MONTHS}|century|centuries|decade|bc|ad|bce|ce)\b|\d0s\b",
    ),
    (
        "number",
        r"how (?:many|much|long|old|far|large|big|high|tall|deep|wide|often|fast)\b|what (?:percentage|percent|number|amount|proportion|share|size)\b",
        rf"\d|\b(?:{_NUMBER_WORDS})\b|%",
    ),
    (
        "reason",
        r"why\b|.*?\b(?:purpose|reason|rationale|motive|aim|goal|point) (?:of|for|behind)\b|what for\b",
        rf"\b(?:{_REASON_WORDS})\b",
    ),
    (
        "name",
        r"who\b|whom\b|whose\b|where\b|what (?:company|city|country|province|state|organi[sz]ation|firm|person|place)\b",
        r"\b[A-Z][\w’'-]+",
    ),
)
_COMPILED = tuple(
    (kind, re.compile(question, re.I), re.compile(answer, 0 if kind == "name" else re.I))
    for kind, question, answer in _KINDS
)
_ANSWER_PATTERNS = {kind: answer for kind, _, answer in _COMPILED}
_WH_WORD = re.compile(r"\b(?:what|which|who|whom|whose|where|when|why|how)\b", re.I)
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|neither|without|cannot)\b|n[’']t\b", re.I)
_NAME = re.compile(r"(?<=\s)[A-Z][\w’'-]*[a-z][\w’'-]*")
_QUESTION_END = re.compile(r"\?[\"'”’)\]*_]*$")
# Words that open a sentence whose subject is in the sentence before it.
_CONTINUING = re.compile(
    r"(?:[\"“‘*_]*)(?:this|these|that|those|it|its|they|their|such|he|she|his|her|there|here|"
    r"in fact|indeed|furthermore|moreover|however|also|additionally|besides|still|yet|but|and|so|thus|hence|"
    r"therefore|as a result|consequently|instead|meanwhile|likewise|similarly|in turn|in addition)\b",
    re.I,
)


@dataclass(frozen=True)
class Ranked:
    """Candidate sentences for one question, best first, and the confidence that the best answers it."""

    sentences: np.ndarray  # int64 sentence ids
    passages: np.ndarray  # int64: for each sentence, the retrieved passage holding it closest to the question
    scores: np.ndarray  # float64 in [0, 1]: the ranking model's probability that the sentence holds the answer
    features: np.ndarray  # float64 (n, len(RANKING_FEATURES))
    confidence: float = 0.0
    signals: np.ndarray | None = None  # float64 (len(CONFIDENCE_FEATURES),) behind the confidence
    # Set when the answer verifier read the best candidates (verifier.apply), for those first in the order:
    verified: np.ndarray | None = None  # float64 probability that each answers the question
    spans: tuple[tuple[int, int] | None, ...] = ()  # the answer's characters inside each, or None
    verified_signals: np.ndarray | None = None  # float64 (len(verifier.CONFIDENCE_SIGNALS),) behind the confidence

    @property
    def relevance(self) -> float:
        """How close the question comes to the documents at all (the best sentence or passage cosine)."""
        return float(self.signals[CONFIDENCE_FEATURES.index("relevance")]) if self.signals is not None else 0.0


def expected_kind(question: str) -> str | None:
    """The kind of answer a question asks for: "date", "number", "name", or None when it does not say."""
    first = _WH_WORD.search(question)
    asked = question[first.start() :] if first else question
    for kind, asks, _ in _COMPILED:
        if asks.match(asked) or asks.match(question):  # "The aim of the law was what?" asks for a reason
            return kind
    return None


def holds_kind(kind: str | None, sentence: str, question: str) -> float:
    """+1 when the sentence holds the kind of thing asked for, -1 when it cannot, 0 when no kind is asked."""
    if kind is None:
        return 0.0
    pattern = _ANSWER_PATTERNS[kind]
    if kind != "name":
        return 1.0 if pattern.search(sentence) else -1.0
    asked = _lower_words(question)
    names = (match.group(0).lower() for match in pattern.finditer(sentence) if match.start() > 0)
    return 1.0 if any(name not in asked for name in names) else -1.0


@lru_cache(maxsize=1024)
def _lower_words(text: str) -> frozenset[str]:
    return frozenset(word.lower() for word in re.findall(r"\w+", text))


def rank_sentences(
    data: IndexData,
    question: str,
    tokens: list[str],
    vector: np.ndarray,
    hits: Hits,
    ranking: RankingConfig,
    confidence: ConfidenceConfig,
    word_vectors: Callable[[Sequence[str]], np.ndarray],
) -> Ranked:
    """Every sentence of the retrieved passages, and the best single sentences, scored and ordered.

    `word_vectors` gives unit vectors of single words (Embedder.word_vectors), for matching a question's
    words to a sentence's when they differ in form or are near in meaning."""
    ids, passages, cosine, fused = _candidates(data, hits, vector)
    if not len(ids):
        empty = np.zeros(0, dtype=np.int64)
        return Ranked(empty, empty, np.zeros(0), np.zeros((0, len(RANKING_FEATURES))))
    sentence_coverage = data.sentence_lexical.coverage(tokens)
    texts = data.texts
    rows = data.sentences[ids]
    kind = expected_kind(question)
    lexical = data.sentence_lexical
    sentence_vectors = np.asarray(data.sentence_vectors[ids])
    sentence_cosine = sentence_vectors @ vector
    coverage = sentence_coverage[ids]
    previous = np.where(ids > 0, ids - 1, 0)
    following = np.minimum(ids + 1, len(data.sentences) - 1)
    same_document = (ids > 0) & (data.sentences[previous, 0] == rows[:, 0])
    next_in_document = (ids + 1 < len(data.sentences)) & (data.sentences[following, 0] == rows[:, 0])
    # What each candidate says: a table row, item, term or code block read with its header, term or heading.
    sentence_texts = [data.indexed_text(int(sentence)) for sentence in ids]
    previous_cosine = np.where(same_document, np.asarray(data.sentence_vectors[previous]) @ vector, 0.0)
    facts = np.array([_sentence_facts(texts[d], s, e) for d, s, e in rows.tolist()], dtype=np.float64).reshape(-1, 3)
    _, continuing, length = facts.T
    fragment = np.array([is_fragment(data, int(sentence)) for sentence in ids], dtype=np.float64)
    columns = {
        "sentence_cosine": sentence_cosine,
        "passage_cosine": cosine,
        "sentence_coverage": coverage,
        "word_match": _word_match(question, sentence_texts, lexical, word_vectors),
        "passage_coverage": data.passage_lexical.coverage(tokens)[passages],
        "previous_coverage": np.where(same_document, sentence_coverage[previous], 0.0),
        "previous_cosine": previous_cosine,
        "next_cosine": np.where(next_in_document, np.asarray(data.sentence_vectors[following]) @ vector, 0.0),
        "answer_type": [holds_kind(kind, text, question) for text in sentence_texts],
        "fused_rank": fused,
        "cosine_gap": sentence_cosine - sentence_cosine.max(),
        "coverage_gap": coverage - coverage.max(),
        "novelty": 1.0 - lexical.shared_terms(tokens)[ids] / np.maximum(lexical.distinct_terms[ids], 1),
        "length": length,
        "continuation": np.where(continuing > 0, previous_cosine, 0.0),
        "centrality": np.einsum(
            "ij,ij->i", sentence_vectors, np.stack([data.centroid_of(int(doc)) for doc in rows[:, 0]])
        ),
        "fragment": fragment,
    }
    features = np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in RANKING_FEATURES])
    logits = features @ np.array([getattr(ranking, name) for name in RANKING_FEATURES]) + ranking.bias
    order = np.argsort(-logits, kind="stable")
    ids, passages, features, logits = ids[order], passages[order], features[order], logits[order]
    relevance = max(float(sentence_cosine.max()), float(cosine.max()))
    signals = _answer_signals(data, question, relevance, logits, features, int(passages[0]), sentence_texts[order[0]])
    return Ranked(
        sentences=ids,
        passages=passages,
        scores=_sigmoid(logits),
        features=features,
        confidence=float(confidence_of(signals, confidence)),
        signals=signals,
    )


def _word_match(
    question: str, sentences: list[str], lexical: LexicalIndex, word_vectors: Callable[[Sequence[str]], np.ndarray]
) -> np.ndarray:
    """Per sentence, the IDF-weighted mean over the question's content words of each one's best cosine to
    a word of the sentence: 1 when every word is there, partial credit for "restrictions" against
    "restricted" or "chip" against "semiconductors" (a word the corpus never uses weighs the most)."""
    asked = list(dict.fromkeys(content_words(question)))
    if not asked:
        return np.zeros(len(sentences))
    weights = np.array([lexical.idf(lexical.document_frequency(stem(word))) for word in asked])
    words = [_distinct_words(sentence) for sentence in sentences]
    starts = np.cumsum([0] + [len(group) for group in words[:-1]])
    # einsum, not a matrix product: BLAS would start threads that keep spinning after this small product
    # and slow the model's next forward pass (ask p95 10 -> 25 ms on 2 cores).
    similarity = np.einsum("id,jd->ij", word_vectors(asked), word_vectors([word for group in words for word in group]))
    best = np.maximum.reduceat(similarity, starts, axis=1)  # (asked words, sentences)
    return weights @ best / weights.sum()


def is_fragment(data: IndexData, sentence: int) -> bool:
    """Whether a unit of the index is a heading, or a sentence of prose that asks a question: it names a subject
    rather than saying anything about it, so the text after it is what answers. (A list item, term or table row
    is never one, however short: it says what it says.)"""
    kind = int(data.units[sentence, 0])
    if kind == KIND_CODES["heading"]:
        return True
    if kind != KIND_CODES["paragraph"]:
        return False
    doc, start, end = (int(value) for value in data.sentences[sentence])
    return _sentence_facts(data.texts[doc], start, end)[0] > 0


def _sentence_facts(text: str, start: int, end: int) -> tuple[float, float, float]:
    """What the sentence text[start:end] is, whatever the question: 1 for a heading or a question (else
    0), 1 when it opens with a word that refers back (else 0), and log(1 + length / 100)."""
    line_start, line = line_around(text, start, end)
    return _line_facts(line, start - line_start, end - line_start)


@lru_cache(maxsize=16384)
def _line_facts(line: str, start: int, end: int) -> tuple[float, float, float]:
    """_sentence_facts of line[start:end], kept per sentence (by its line, not its whole document, so
    that the cache holds no document text once the index is gone)."""
    sentence = line[start:end]
    fragment = bool(_QUESTION_END.search(sentence)) or is_heading(line, start, end)
    return float(fragment), float(bool(_CONTINUING.match(sentence))), math.log1p(len(sentence) / 100)


@lru_cache(maxsize=65536)
def _distinct_words(sentence: str) -> tuple[str, ...]:
    """A sentence's content words, each once ("" for a sentence without any: it then matches nothing)."""
    return tuple(dict.fromkeys(content_words(sentence))) or ("",)


def _candidates(data: IndexData, hits: Hits, vector: np.ndarray):
    """Candidate sentence ids, the passage credited to each, that passage's cosine and fused score."""
    cosine = dict(zip(hits.passages.tolist(), (np.asarray(data.passage_vectors[hits.passages]) @ vector).tolist()))
    best: dict[int, int] = {}  # sentence -> the retrieved passage holding it that is closest to the question
    for passage in hits.passages.tolist():
        for sentence in range(int(data.passages[passage, 3]), int(data.passages[passage, 4])):
            if sentence not in best or cosine[passage] > cosine[best[sentence]]:
                best[sentence] = passage
    extra = [sentence for sentence in hits.sentences.tolist() if sentence not in best]
    if extra:
        owners = data.sentence_passage[extra]
        cosine.update(zip(owners.tolist(), (np.asarray(data.passage_vectors[owners]) @ vector).tolist()))
        best.update(zip(extra, owners.tolist()))
    fused = dict(zip(hits.passages.tolist(), (hits.scores / hits.scores[0]).tolist())) if len(hits.scores) else {}
    ids = np.fromiter(best, dtype=np.int64, count=len(best))
    passages = np.fromiter(best.values(), dtype=np.int64, count=len(best))
    passage_list = passages.tolist()
    return (
        ids,
        passages,
        np.array([cosine[p] for p in passage_list]),
        np.array([fused.get(p, 0.0) for p in passage_list]),
    )


def _answer_signals(
    data: IndexData,
    question: str,
    relevance: float,
    logits: np.ndarray,
    features: np.ndarray,
    passage: int,
    sentence: str,
) -> np.ndarray:
    """The question-level evidence for CONFIDENCE_FEATURES, from all candidates and the best one."""
    doc, start, end = (int(value) for value in data.passages[passage, :3])
    context = (data.texts[doc][start:end] + " " + data.documents[doc]["path"].replace("_", " ")).lower()
    names = {name.lower() for name in _NAME.findall(" " + question)}
    signals = {
        "relevance": relevance,
        "margin": logits[0] - logits[1] if len(logits) > 1 else 5.0,
        "answer_type": features[0, RANKING_FEATURES.index("answer_type")],
        "missing_name": sum(name not in context for name in names) / len(names) if names else 0.0,
        "negation_mismatch": float(bool(_NEGATION.search(question)) and not _NEGATION.search(sentence)),
    }
    return np.array([signals[name] for name in CONFIDENCE_FEATURES], dtype=np.float64)


def confidence_of(signals: np.ndarray, weights: ConfidenceConfig) -> np.ndarray:
    """The confidence model applied to signal rows (CONFIDENCE_FEATURES order)."""
    coefficients = np.array([getattr(weights, name) for name in CONFIDENCE_FEATURES])
    return _sigmoid(signals @ coefficients + weights.bias)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))
