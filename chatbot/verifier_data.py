"""Training examples for the answer verifier, made from extractive question-answering data (SQuAD JSON).

Every example is a (question, sentence, context) read the way the chatbot reads a candidate, labelled 1 when
the sentence holds a gold answer (with the answer's characters in it) and 0 when it does not. The negatives
are chosen to teach answerability, not topic:
- other sentences of the same paragraph, those sharing most words with the question first;
- for a question the paragraph does not answer (SQuAD 2.0), the sentence holding its plausible answer and
  the sentences sharing most words with it;
- near-topic questions made here: an answerable question with one of its names or numbers, one that the
  answer sentence uses, swapped for another the paragraph never mentions ("When did Beyoncé leave Destiny's
  Child?" -> "... leave Coldplay?"), paired with the sentence that answered the original.

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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ChatbotError
from .lexical import tokenize
from .segment import split_blocks
from .verifier import BLANK_LINE, Candidate, clip_context

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
    kind: str  # "answer", "paragraph", "unanswerable" or "swap": where the example came from


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


def make_examples(
    paragraphs: Iterable[Paragraph], rng: random.Random, negatives: int = 3, swap_share: float = 0.25
) -> list[Example]:
    """Examples of every question of `paragraphs`: its answer sentence, `negatives` sentences that do not
    answer it, and for a `swap_share` of answerable questions a near-topic question the paragraph cannot answer."""
    paragraphs = list(paragraphs)
    names = _name_pool(paragraphs)
    examples: list[Example] = []
    for paragraph in paragraphs:
        text = paragraph.context
        sentences = sentences_of(text)
        if not sentences:
            continue
        words = [set(tokenize(text[start:end])) for start, end, _ in sentences]
        for number, qa in enumerate(paragraph.questions):
            question = str(qa.get("question", "")).strip()
            if not question:
                continue
            qid = str(qa.get("id", f"{paragraph.group}#{number}"))
            asked = set(tokenize(question))
            by_overlap = sorted(range(len(sentences)), key=lambda i: (-len(asked & words[i]), rng.random()))

            def example(index: int, label: int, kind: str, span=None, text_of_question: str = question) -> Example:
                start, end, context = sentences[index]
                return Example(text_of_question, Candidate(text[start:end], context), label, span, paragraph.group, qid, kind)

            golds = _gold_spans(qa.get("answers", []), text)
            if qa.get("is_impossible") or not golds:
                plausible = _gold_spans(qa.get("plausible_answers", []), text)
                first = [_holding(sentences, *plausible[0])] if plausible else []
                chosen = [i for i in dict.fromkeys(first + by_overlap) if i is not None][: negatives + 1]
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
            hard = others[: max(negatives - 1, 0)]
            rest = others[len(hard) :]
            picked = hard + ([rng.choice(rest)] if rest and negatives else [])
            examples.extend(example(i, 0, "paragraph") for i in picked)
            if rng.random() < swap_share:
                swapped = _swap(question, text[sentences[answer][0] : sentences[answer][1]], text, names, rng)
                if swapped:
                    examples.append(example(answer, 0, "swap", text_of_question=swapped))
    return examples


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
