"""Lexical matching: a word tokenizer (lower case, stop words out, Snowball stems) and BM25 indexes (bm25s).

Usage example:
    index = LexicalIndex.build([tokenize(text) for text in passages])
    scores = index.scores(tokenize("Which chip did Guangdong highlight?"))
"""

from __future__ import annotations

import array
import functools
import math
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

# Bumped when the same text gives other words, so that indexes counting the old ones are rebuilt.
VERSION = 2  # 2: words joined by dots or hyphens with a digit among them (3.3, x86-64) count whole too
STOPWORDS = frozenset(STOPWORDS_EN_PLUS) | {"whose", "whom", "also", "would", "could", "may", "might", "many", "much"}
_WORD = re.compile(r"\w+")
# A word joined by dots or hyphens to others: a version (3.3, v1.2.3), a name (ASN.1, x86-64, setup.py). Counted
# as a word of its own beside its parts, so that "3.3" finds "3.3" and not every 3.
_COMPOUND = re.compile(r"\w+(?:[.-]\w+)+")
_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball stem of a lower-case word: the form the BM25 indexes count."""
    return _stemmer.stemWord(word)


def content_words(text: str) -> list[str]:
    """The words of `text` that carry meaning: lower case, in order, stop words and stray letters out; a word
    joined to others by dots or hyphens ("3.3", "x86-64") also counts whole, after its parts."""
    lowered = text.lower()
    words = [word for word in _WORD.findall(lowered) if word not in STOPWORDS and (len(word) > 1 or word.isdigit())]
    if "." in lowered or "-" in lowered:
        words += [match.group(0) for match in _COMPOUND.finditer(lowered) if any(c.isdigit() for c in match.group(0))]
    return words


def tokenize(text: str) -> list[str]:
    """Stemmed content words of `text`, in order (repeats kept: BM25 counts them)."""
    return [stem(word) for word in content_words(text)]


def token_table(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The tokens of every text as ids into a vocabulary, in one flat int32 array: text i's tokens are
    ids[offsets[i]:offsets[i + 1]]. Id 0 is "", which stands in for a text without tokens. Compact: lists of
    tokens for a million sentences would take gigabytes."""
    vocab: dict[str, int] = {"": 0}
    ids, offsets = array.array("i"), array.array("q", [0])
    for text in texts:
        ids.extend([vocab.setdefault(token, len(vocab)) for token in tokenize(text)])
        offsets.append(len(ids))
    return np.frombuffer(ids, dtype=np.int32), np.frombuffer(offsets, dtype=np.int64), vocab


class _Slices:
    """Documents as slices of a flat id array, handed to bm25s one list at a time."""

    def __init__(self, ids: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.ids, self.starts, self.ends = ids, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[list[int]]:
        for lo, hi in zip(self.starts.tolist(), self.ends.tolist()):
            yield self.ids[lo:hi].tolist() if hi > lo else [0]


class LexicalIndex:
    """BM25 over a list of token lists, plus how much of a query's weight each document covers."""

    def __init__(self, bm25: bm25s.BM25) -> None:
        self.bm25 = bm25
        self._indptr = np.asarray(bm25.scores["indptr"])
        self._indices = np.asarray(bm25.scores["indices"])
        self.size = int(bm25.scores["num_docs"])

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> LexicalIndex:
        bm25 = bm25s.BM25()
        bm25.index([tokens or [""] for tokens in token_lists], show_progress=False)
        return cls(bm25)

    @classmethod
    def build_from_table(
        cls, ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, vocab: dict[str, int]
    ) -> LexicalIndex:
        """BM25 over documents that are slices ids[starts[i]:ends[i]] of a `token_table`: the same index as
        `build` of their token lists."""
        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenization.Tokenized(ids=_Slices(ids, starts, ends), vocab=dict(vocab)), show_progress=False)
        return cls(bm25)

    def save(self, folder: Path) -> None:
        self.bm25.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        return cls(bm25s.BM25.load(str(folder), mmap=False, allow_pickle=False))  # in memory: see store.py

    def scores(self, query: list[str]) -> np.ndarray:
        """BM25 score of every document for the query tokens (unknown tokens score nothing)."""
        known = [token for token in query if token in self.bm25.vocab_dict]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return self.bm25.get_scores(known).astype(np.float32, copy=False)

    def coverage(self, query: list[str]) -> np.ndarray:
        """Per document, the IDF-weighted share of the query's distinct tokens it contains, in [0, 1].

        Tokens the corpus never uses count against every document: a question about something the
        documents do not mention is covered poorly everywhere.
        """
        covered = np.zeros(self.size, dtype=np.float32)
        total = 0.0
        for token in set(query):
            term = self.bm25.vocab_dict.get(token)
            lo, hi = (int(self._indptr[term]), int(self._indptr[term + 1])) if term is not None else (0, 0)
            weight = self.idf(hi - lo)
            total += weight
            covered[self._indices[lo:hi]] += weight
        return covered / total if total else covered

    @functools.cached_property
    def distinct_terms(self) -> np.ndarray:
        """Per document, how many distinct terms it holds (read off the index once, not per question)."""
        return np.bincount(self._indices, minlength=self.size)

    def shared_terms(self, query: list[str]) -> np.ndarray:
        """Per document, how many of the query's distinct terms it holds."""
        shared = np.zeros(self.size, dtype=np.int32)
        for token in set(query):
            term = self.bm25.vocab_dict.get(token)
            if term is not None:
                shared[self._indices[int(self._indptr[term]) : int(self._indptr[term + 1])]] += 1
        return shared

    def document_frequency(self, token: str) -> int:
        term = self.bm25.vocab_dict.get(token)
        return 0 if term is None else int(self._indptr[term + 1] - self._indptr[term])

    def idf(self, document_frequency: int) -> float:
        return math.log(1.0 + (self.size - document_frequency + 0.5) / (document_frequency + 0.5))
