"""Training examples for the answer verifier, made from extractive question-answering data (SQuAD JSON).

Every example is a (question, sentence, context) read the way the chatbot reads a candidate, labelled 1 when
the sentence holds a gold answer (with the answer's characters in it) and 0 when it does not. The negatives
are chosen to teach answerability, not topic:
- other sentences of the same paragraph, those sharing most words with the question first;
- for a question the paragraph does not answer (SQuAD 2.0), the sentence holding its plausible answer and
  the sentences sharing most words with it;
- near-topic questions made here: an answerable question with one of its names or numbers, one that the
  answer sentence uses, swapped for another the paragraph never mentions ("When did Beyoncé leave Destiny's
  Child?" -> "... leave Coldplay?"), paired with the sentence that answered the original;
- the answer removed: the answer sentence with its gold answer (and the preposition that leads into it)
  taken out, so the sentence is the same but silent on what is asked ("born in Houston in 1981" -> "born in
  Houston");
- the same article, elsewhere: the sentence of the article's other paragraphs that shares most words with
  the question and holds no gold answer;
- another source: the sentence closest by BM25 from text of an unrelated kind (Reddit comments and Amazon
  reviews for a Wikipedia question, Wikipedia for the others), a question foreign to the text.
Every negative's answer span points at the [CLS] token (SQuAD 2.0's "no answer"), so the span head learns to
say when a sentence holds no answer.

Usage example:
    paragraphs = read_paragraphs(Path("../shared/train/qa-train.json.gz"))
    examples = make_examples(paragraphs, random.Random(0))
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..answering.verifier import BLANK_LINE, Candidate, clip_context
from ..documents.segment import split_blocks
from ..errors import ChatbotError
from ..index.lexical import tokenize

_NAME = re.compile(r"(?<=\s)(?:[A-Z][\w'’.-]*)(?:\s+(?:of|the|de|and|&)?\s*[A-Z][\w'’.-]*)*")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")


@dataclass(frozen=True)
class Paragraph:
    source: str  # the file (or the `source` field) it came from
    group: str  # the article it belongs to: held-out splits never divide an article
    context: str
    questions: tuple[dict, ...]  # SQuAD `qas` entries


@dataclass(frozen=True)
class Example:
    question: str
    candidate: Candidate
    label: int  # 1: the sentence answers the question
    span: tuple[int, int] | None  # the answer's characters in the sentence (label 1), when wholly inside it
    group: str
    question_id: str  # examples of one question share it
    kind: str  # "answer", "paragraph", "unanswerable", "swap", "removed", "elsewhere" or "foreign"


def read_paragraphs(path: Path) -> list[Paragraph]:
    """The paragraphs of a SQuAD-format JSON file (gzip-compressed when its name ends in .gz)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            articles = json.load(handle)["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ChatbotError(f"cannot read training data {path}: {exc}") from None
    shared = Counter(str(article.get("title", "")) for article in articles)
    paragraphs = []
    for article in articles:
        title = str(article.get("title", ""))
        source = str(article.get("source", path.name))
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context", "")
            # An article is the unit of a held-out split; a "title" shared by hundreds of unrelated paragraphs
            # (all Reddit comments) is no article, so each such paragraph is its own.
            group = title if title and shared[title] <= 200 else hashlib.sha1(context.encode()).hexdigest()[:12]
            paragraphs.append(Paragraph(source, f"{source}:{group}", context, tuple(paragraph.get("qas", []))))
    return paragraphs


def sentences_of(text: str) -> list[tuple[int, int, str]]:
    """(start, end, context) of each sentence of `text`, as the chatbot segments documents."""
    blocks = split_blocks(text)
    spans = [(start, end, block.heading) for block in blocks for start, end in block.sentences]
    result = []
    for number, (start, end, _) in enumerate(spans):
        context = ""
        if number:
            before_start, before_end, heading = spans[number - 1]
            if heading or not BLANK_LINE.search(text, before_end, start):
                context = clip_context(text[before_start:before_end])
        result.append((start, end, context))
    return result


@dataclass(frozen=True)
class Mix:
    """How many negatives of each kind an answerable question gets (a share: that chance of one)."""

    negatives: int = 3  # other sentences of its paragraph
    swap_share: float = 0.25  # a swapped question with its answer sentence
    removed_share: float = 0.0  # its answer sentence with the answer taken out
    elsewhere_share: float = 0.0  # the closest sentence of the article's other paragraphs
    foreign_share: float = 0.0  # the closest sentence from text of another kind


def make_examples(
    paragraphs: Iterable[Paragraph],
    rng: random.Random,
    negatives: int = 3,
    swap_share: float = 0.25,
    mix: Mix | None = None,
    pool_from: Callable[[Paragraph], bool] = lambda paragraph: True,
) -> list[Example]:
    """Examples of every question of `paragraphs`: its answer sentence and negatives of the kinds `mix` asks
    for (default: `negatives` sentences of its paragraph and, for a `swap_share` of answerable questions, a
    near-topic question the paragraph cannot answer). Sentences for the "another source" negatives are taken
    only from paragraphs for which `pool_from` is true (never from held-out articles)."""
    paragraphs = list(paragraphs)
    mix = mix or Mix(negatives, swap_share)
    names = _name_pool(paragraphs)
    split = [sentences_of(paragraph.context) for paragraph in paragraphs]
    words = [[set(tokenize(p.context[s:e])) for s, e, _ in sentences] for p, sentences in zip(paragraphs, split)]
    articles: dict[str, list[int]] = {}
    for number, paragraph in enumerate(paragraphs):
        articles.setdefault(paragraph.group, []).append(number)
    foreign = _ForeignPools(paragraphs, split, pool_from) if mix.foreign_share else None
    examples: list[Example] = []
    for number, paragraph in enumerate(paragraphs):
        text, sentences = paragraph.context, split[number]
        if not sentences:
            continue
        for index, qa in enumerate(paragraph.questions):
            question = str(qa.get("question", "")).strip()
            if not question:
                continue
            qid = str(qa.get("id", f"{paragraph.group}#{index}"))
            asked = set(tokenize(question))
            by_overlap = sorted(range(len(sentences)), key=lambda i: (-len(asked & words[number][i]), rng.random()))

            def example(i: int, label: int, kind: str, span=None, text_of_question: str = question) -> Example:
                start, end, context = sentences[i]
                return Example(text_of_question, Candidate(text[start:end], context), label, span, paragraph.group, qid, kind)

            golds = _gold_spans(qa.get("answers", []), text)
            if qa.get("is_impossible") or not golds:
                plausible = _gold_spans(qa.get("plausible_answers", []), text)
                first = [_holding(sentences, *plausible[0])] if plausible else []
                chosen = [i for i in dict.fromkeys(first + by_overlap) if i is not None][: mix.negatives + 1]
                examples.extend(example(i, 0, "unanswerable") for i in chosen)
                continue
            answer = _holding(sentences, *golds[0])
            if answer is None:
                answer = _most_overlap(sentences, *golds[0])
                span = None
            else:
                start = sentences[answer][0]
                span = (golds[0][0] - start, golds[0][1] - start)
            touched = {i for gold in golds for i, (s, e, _) in enumerate(sentences) if s < gold[1] and gold[0] < e}
            examples.append(example(answer, 1, "answer", span))
            others = [i for i in by_overlap if i not in touched]
            hard = others[: max(mix.negatives - 1, 0)]
            rest = others[len(hard) :]
            picked = hard + ([rng.choice(rest)] if rest and mix.negatives else [])
            examples.extend(example(i, 0, "paragraph") for i in picked)
            answer_text = text[sentences[answer][0] : sentences[answer][1]]
            gold_texts = {text[s:e].lower() for s, e in golds}
            if rng.random() < mix.swap_share:
                swapped = _swap(question, answer_text, text, names, rng)
                if swapped:
                    examples.append(example(answer, 0, "swap", text_of_question=swapped))
            if span is not None and rng.random() < mix.removed_share:
                removed = remove_answer(answer_text, span, gold_texts)
                if removed:
                    context = sentences[answer][2]
                    context = "" if any(gold in context.lower() for gold in gold_texts) else context
                    examples.append(Example(question, Candidate(removed, context), 0, None, paragraph.group, qid, "removed"))
            if rng.random() < mix.elsewhere_share:
                found = _elsewhere(paragraphs, split, words, articles[paragraph.group], number, asked, gold_texts, rng)
                if found:
                    examples.append(Example(question, found, 0, None, paragraph.group, qid, "elsewhere"))
            if foreign is not None and rng.random() < mix.foreign_share:
                found = foreign.closest(paragraph.source, question, gold_texts)
                if found:
                    examples.append(Example(question, found, 0, None, paragraph.group, qid, "foreign"))
    return examples


# A preposition or article that leads into an answer goes with it: "born in 1981" -> "born".
_LEAD_IN = re.compile(
    r"(?:\b(?:in|on|at|by|from|of|for|to|with|during|since|about|as|than|around|after|before|until|into|"
    r"the|a|an|some|approximately|nearly|over|under|about|roughly)\s+)+$",
    re.I,
)


def remove_answer(sentence: str, span: tuple[int, int], golds: Iterable[str] = ()) -> str | None:
    """`sentence` with the answer at `span` taken out, and the words that only lead into it; None when what is
    left would still hold a gold answer, or hardly anything."""
    before, after = sentence[: span[0]], sentence[span[1] :]
    lead = _LEAD_IN.search(before)
    if lead:
        before = before[: lead.start()]
    before = before.rstrip(" ,;:(\"'“‘")
    after = re.sub(r"^[)\"'”’]*", "", after)
    if not before.strip():  # the answer was the sentence's subject: "Huawei makes it" -> "It makes it"
        after = after.lstrip()
        if not after or not after[0].isalpha():
            return None
        joined = "It " + after
    elif after[:1].isalnum():
        joined = before + " " + after
    else:
        joined = before + after
    joined = re.sub(r"\s{2,}", " ", joined).strip()
    joined = re.sub(r"\s+([,.;:!?])", r"\1", joined)
    lowered = joined.lower()
    if len(tokenize(joined)) < 3 or any(gold and gold in lowered for gold in golds):
        return None
    return joined


def _elsewhere(
    paragraphs: list[Paragraph],
    split: list[list[tuple[int, int, str]]],
    words: list[list[set[str]]],
    article: list[int],
    number: int,
    asked: set[str],
    golds: set[str],
    rng: random.Random,
) -> Candidate | None:
    """The sentence of the article's other paragraphs sharing most words with the question, holding no gold."""
    best, best_overlap = None, 0
    others = [other for other in article if other != number]
    if len(others) > 30:
        others = rng.sample(others, 30)
    for other in others:
        text = paragraphs[other].context
        for i, (start, end, context) in enumerate(split[other]):
            overlap = len(asked & words[other][i])
            if overlap > best_overlap:
                sentence = text[start:end]
                lowered = sentence.lower() + " " + context.lower()
                if not any(gold and gold in lowered for gold in golds):
                    best, best_overlap = Candidate(sentence, context), overlap
    return best


def source_kind(source: str) -> str:
    """What kind of text a training source is: "reddit", "amazon" or "wiki" (Wikipedia, the rest)."""
    lowered = source.lower()
    return "reddit" if "reddit" in lowered else "amazon" if "amazon" in lowered else "wiki"


class _ForeignPools:
    """Sentences of each kind of text with a BM25 index, to find a question's closest sentence in text of
    another kind."""

    SIZE = 40_000  # sentences kept per kind

    def __init__(self, paragraphs: list[Paragraph], split, pool_from: Callable[[Paragraph], bool]) -> None:
        import bm25s

        gathered: dict[str, list[Candidate]] = {}
        for paragraph, sentences in zip(paragraphs, split):
            if pool_from(paragraph):
                pool = gathered.setdefault(source_kind(paragraph.source), [])
                pool.extend(Candidate(paragraph.context[s:e], c) for s, e, c in sentences if e - s >= 20)
        self.pools = {}
        picker = random.Random(1)
        for kind, candidates in gathered.items():
            if len(candidates) > self.SIZE:
                candidates = picker.sample(candidates, self.SIZE)
            index = bm25s.BM25()
            index.index([tokenize(c.sentence) or [""] for c in candidates], show_progress=False)
            self.pools[kind] = (candidates, index)

    def closest(self, source: str, question: str, golds: set[str]) -> Candidate | None:
        kind = source_kind(source)
        choices = [other for other in self.pools if (other == "wiki") != (kind == "wiki")]
        if not choices:
            return None
        candidates, index = self.pools[random.Random(question).choice(choices)]
        tokens = [token for token in tokenize(question) if token in index.vocab_dict]
        if not tokens:
            return None
        scores = index.get_scores(tokens)
        for best in scores.argsort()[::-1][:3].tolist():
            candidate = candidates[best]
            if not any(gold and gold in candidate.sentence.lower() for gold in golds):
                return candidate
        return None


def _gold_spans(answers: list, text: str) -> list[tuple[int, int]]:
    spans = []
    for answer in answers:
        start, value = answer.get("answer_start"), answer.get("text", "")
        if isinstance(start, int) and value and text[start : start + len(value)] == value:
            spans.append((start, start + len(value)))
    return list(dict.fromkeys(spans))


def _holding(sentences: list[tuple[int, int, str]], start: int, end: int) -> int | None:
    """The sentence that holds text[start:end] whole, or None."""
    for index, (first, last, _) in enumerate(sentences):
        if first <= start and end <= last:
            return index
    return None


def _most_overlap(sentences: list[tuple[int, int, str]], start: int, end: int) -> int:
    return max(range(len(sentences)), key=lambda i: min(end, sentences[i][1]) - max(start, sentences[i][0]))


def _name_pool(paragraphs: list[Paragraph]) -> list[str]:
    """Names that questions use (capitalised runs of words after the first), to swap into other questions."""
    pool = {match.group(0) for p in paragraphs for qa in p.questions for match in _NAME.finditer(str(qa.get("question", "")))}
    return sorted(pool)


def _swap(question: str, sentence: str, paragraph: str, names: list[str], rng: random.Random) -> str | None:
    """The question with a name or number that the sentence uses replaced by one the paragraph never uses."""
    lower_sentence, lower_paragraph = sentence.lower(), paragraph.lower()
    found = [m for m in list(_NAME.finditer(question)) + list(_NUMBER.finditer(question)) if m.group(0).lower() in lower_sentence]
    if not found:
        return None
    match = rng.choice(found)
    old = match.group(0)
    if _NUMBER.fullmatch(old):
        value = old.replace(",", "")
        if not value.isdigit():
            return None
        number = int(value)
        new = str(rng.choice([n for n in (number - 7, number - 3, number + 2, number + 5, number + 11) if n > 0] or [number + 1]))
        if str(new) in paragraph:
            return None
    else:  # a few tries at a name the paragraph never mentions
        tries = (rng.choice(names) for _ in range(8)) if names else ()
        new = next((name for name in tries if name.lower() not in lower_paragraph), None)
        if new is None:
            return None
    return question[: match.start()] + new + question[match.end() :]
