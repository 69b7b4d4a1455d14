"""Score the sentences of the retrieved passages against a question; the score is a calibrated confidence.

Each candidate sentence gets a few transparent features, combined by a logistic model whose weights live
in config ([confidence]): the probability that quoting this sentence answers the question.

Usage example:
    ranked = rank_sentences(data, question, tokens, vector, hits, config.confidence)
    ranked.sentences[0], ranked.confidence[0]      # best sentence id and its confidence
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import numpy as np

from .config import ConfidenceConfig
from .retrieve import Hits
from .store import IndexData

FEATURES = tuple(f.name for f in fields(ConfidenceConfig) if f.name != "bias")

_NUMBER_WORDS = r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|billion|trillion|dozen|half|single|double|twice"
_MONTHS = r"january|february|march|april|may|june|july|august|september|october|november|december"
_KINDS = (
    # (kind, question pattern, pattern a sentence must contain to hold that kind of answer)
    ("date", r"\bwhen\b|\bwhat (?:year|date|day|month|century|decade|time|era|period)\b|\b(?:which|what) year\b",
     rf"\b(?:1\d{{3}}|20\d{{2}}|\d{{1,2}}(?:st|nd|rd|th)|{_MONTHS}|century|centuries|decade|bc|ad|bce|ce)\b|\d0s\b"),
    ("number", r"\bhow (?:many|much|long|old|far|large|big|high|tall|deep|wide|often|fast)\b|\bwhat (?:percentage|percent|number|amount|proportion|share|size)\b",
     rf"\d|\b(?:{_NUMBER_WORDS})\b|%"),
    ("name", r"\bwho\b|\bwhom\b|\bwhose\b|\bwhere\b|\bwhat (?:company|city|country|province|state|organi[sz]ation|firm|person|place)\b",
     r"\b[A-Z][\w’'-]+"),
)
_COMPILED = tuple((kind, re.compile(question, re.I), re.compile(answer, 0 if kind == "name" else re.I)) for kind, question, answer in _KINDS)


@dataclass(frozen=True)
class Ranked:
    """Candidate sentences for one question, best first."""

    sentences: np.ndarray  # int64 sentence ids
    passages: np.ndarray  # int64: for each sentence, the best retrieved passage holding it
    confidence: np.ndarray  # float64 in [0, 1]
    features: np.ndarray  # float64 (n, len(FEATURES))


def expected_kind(question: str) -> str | None:
    """The kind of answer a question asks for: "date", "number", "name", or None when it does not say."""
    for kind, asks, _ in _COMPILED:
        if asks.search(question):
            return kind
    return None


def holds_kind(kind: str | None, sentence: str, question: str) -> float:
    """+1 when the sentence holds the kind of thing asked for, -1 when it cannot, 0 when no kind is asked."""
    if kind is None:
        return 0.0
    pattern = next(answer for name, _, answer in _COMPILED if name == kind)
    if kind != "name":
        return 1.0 if pattern.search(sentence) else -1.0
    asked = {word.lower() for word in re.findall(r"\w+", question)}
    names = (match.group(0).lower() for match in pattern.finditer(sentence) if match.start() > 0)
    return 1.0 if any(name not in asked for name in names) else -1.0


def rank_sentences(
    data: IndexData, question: str, tokens: list[str], vector: np.ndarray, hits: Hits, weights: ConfidenceConfig
) -> Ranked:
    """Features and confidence of every sentence in the retrieved passages."""
    if not len(hits.passages):
        empty = np.zeros(0, dtype=np.int64)
        return Ranked(empty, empty, np.zeros(0), np.zeros((0, len(FEATURES))))
    passage_cosine = np.asarray(data.passage_vectors[hits.passages]) @ vector
    passage_coverage = data.passage_lexical.coverage(tokens)[hits.passages]
    fused = hits.scores / hits.scores[0]
    best: dict[int, int] = {}  # sentence -> position in hits of its best passage
    for position, passage in enumerate(hits.passages.tolist()):
        for sentence in range(int(data.passages[passage, 3]), int(data.passages[passage, 4])):
            if sentence not in best or passage_cosine[position] > passage_cosine[best[sentence]]:
                best[sentence] = position
    ids = np.fromiter(best, dtype=np.int64, count=len(best))
    where = np.fromiter(best.values(), dtype=np.int64, count=len(best))
    kind = expected_kind(question)
    texts = data.texts
    rows = data.sentences[ids]
    columns = {
        "sentence_cosine": np.asarray(data.sentence_vectors[ids]) @ vector,
        "passage_cosine": passage_cosine[where],
        "sentence_coverage": data.sentence_lexical.coverage(tokens)[ids],
        "passage_coverage": passage_coverage[where],
        "answer_type": np.array([holds_kind(kind, texts[d][s:e], question) for d, s, e in rows]),
        "fused_rank": fused[where],
    }
    features = np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in FEATURES])
    coefficients = np.array([getattr(weights, name) for name in FEATURES])
    confidence = 1.0 / (1.0 + np.exp(-(features @ coefficients + weights.bias)))
    order = np.argsort(-confidence, kind="stable")
    return Ranked(ids[order], hits.passages[where[order]], confidence[order], features[order])
