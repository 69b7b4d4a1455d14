"""Find the passages most likely to answer each question: dense and BM25 rankings fused by reciprocal rank.

Four rankings vote: passages by vector, passages by BM25, and the passages holding the best sentences by
vector and by BM25. Reciprocal-rank fusion needs no score calibration between them. The rankings come from
FAISS and bm25s in memory, or from Milvus (`data.searcher`, see milvus.py); the fusion is the same for both.

Usage example:
    hits = retrieve(data, [tokenize(question)], question_vectors, config.retrieve)
    hits[0].passages          # passage ids, best first
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import RetrieveConfig
from ..index.store import IndexData
from ..index.vectors import search_vectors

# Per question: passage ids by vector, sentence ids by vector, passage ids by BM25, sentence ids by BM25; best first.
Rankings = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Hits:
    """What retrieval found for one question: fused passages, best first, and the best single sentences."""

    passages: np.ndarray  # int64 passage ids
    scores: np.ndarray  # float32 RRF scores, same order
    sentences: np.ndarray  # int64 ids of the top sentences by vector and by BM25 (they may lie elsewhere)


def retrieve(
    data: IndexData,
    queries: list[list[str]],
    vectors: np.ndarray,
    settings: RetrieveConfig,
    ef_search: int | None = None,
) -> list[Hits]:
    """Fused passage rankings for a batch of questions (token lists and unit vectors, one row each);
    `ef_search` is the candidates an HNSW search keeps ([search] hnsw_ef_search)."""
    k_dense = min(settings.dense_candidates, len(data.passages))
    k_sentences = min(settings.dense_candidates, len(data.sentences))
    search = data.searcher.rankings if data.searcher is not None else _rankings
    found = search(data, queries, vectors, (k_dense, k_sentences, settings.lexical_candidates), ef_search)
    owner = data.sentence_passage
    results = []
    for tokens, (dense_passages, dense, lexical_passages, lexical) in zip(queries, found):
        rankings = [dense_passages, _unique(owner[dense])]
        if tokens:
            rankings += [lexical_passages, _unique(owner[lexical])]
        passages, scores = _fuse(rankings, settings.rrf_k, settings.passages)
        best = settings.sentences
        results.append(Hits(passages, scores, _unique(np.concatenate([dense[:best], lexical[:best]]))))
    return results


def _rankings(
    data: IndexData, queries: list[list[str]], vectors: np.ndarray, k: tuple[int, int, int], ef_search: int | None
) -> list[Rankings]:
    """The four rankings of each question from the FAISS and bm25s indexes in memory."""
    k_dense, k_sentences, k_lexical = k
    _, dense_passages = search_vectors(data.passage_search, vectors, k_dense, ef_search)
    _, dense_sentences = search_vectors(data.sentence_search, vectors, k_sentences, ef_search)
    found = []
    for row, tokens in enumerate(queries):
        none = np.zeros(0, dtype=np.int64)
        found.append(
            (
                dense_passages[row][dense_passages[row] >= 0],
                dense_sentences[row][dense_sentences[row] >= 0],
                _top(data.passage_lexical.scores(tokens), k_lexical) if tokens else none,
                _top(data.sentence_lexical.scores(tokens), k_lexical) if tokens else none,
            )
        )
    return found


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest positive scores, best first."""
    k = min(k, int(np.count_nonzero(scores > 0)))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _unique(ids: np.ndarray) -> np.ndarray:
    """`ids` without repeats, keeping first occurrences in order."""
    _, first = np.unique(ids, return_index=True)
    return ids[np.sort(first)]


def _fuse(rankings: list[np.ndarray], k: int, keep: int) -> tuple[np.ndarray, np.ndarray]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking.tolist()):
            scores[passage] = scores.get(passage, 0.0) + 1.0 / (k + rank + 1)
    best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:keep]
    passages = np.array([passage for passage, _ in best], dtype=np.int64)
    return passages, np.array([score for _, score in best], dtype=np.float32)
