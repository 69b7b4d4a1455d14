"""Compose an Answer from ranked sentences: verbatim quotes with numbered citations, or an abstention.

Nothing here writes prose: an answer's text is the quoted sentences, each followed by its [n] marker,
or the fixed abstention message.

Usage example:
    answer = compose(question, ranked, hits, data, config.answer)
"""

from __future__ import annotations

from ..config import AnswerConfig
from ..index.store import IndexData
from .answer import ABSTENTION, Answer, confidence_label
from .quote import Quote, Source
from .rank import Ranked, is_fragment
from .retrieve import Hits


def compose(question: str, ranked: Ranked, hits: Hits, data: IndexData, settings: AnswerConfig) -> Answer:
    confidence = ranked.confidence
    label = confidence_label(confidence, settings.high_confidence, settings.medium_confidence)
    if not len(ranked.sentences) or confidence < settings.min_confidence:
        nearest = tuple(
            _source(data, number, int(passage), None)
            for number, passage in enumerate(hits.passages[: settings.max_sources].tolist(), start=1)
        )
        return Answer(question, True, confidence, ABSTENTION, (), nearest, label="low")

    chosen = _choose(ranked, settings, data)
    runs = _merge(data, chosen) if settings.merge_adjacent else [(s, s, p) for s, p in chosen]
    quotes, sources = [], []
    spans = _answer_spans(ranked, data)
    for citation, (first, last, passage) in enumerate(runs, start=1):  # one number per quoted range
        doc, start, _ = (int(value) for value in data.sentences[first])
        end = int(data.sentences[last, 2])
        marked = next((spans[s] for s, _ in chosen if first <= s <= last and s in spans), None)
        sources.append(_source(data, citation, passage, (start, end)))
        entry = data.documents[doc]
        quotes.append(
            Quote(
                citation=citation,
                text=data.texts[doc][start:end],
                source=entry["path"],
                start=start,
                end=end,
                line=data.line_of(doc, start),
                source_sha256=entry["sha256"],
                page=data.page_of(doc, start),
                answer_span=marked,
                section=" › ".join(data.section_path(first)),
                context=data.own_context(first),
            )
        )
    text = " ".join(f"“{quote.text}” [{quote.citation}]" for quote in quotes)
    return Answer(question, False, confidence, text, tuple(quotes), tuple(sources), label=label)


def _choose(ranked: Ranked, settings: AnswerConfig, data: IndexData) -> list[tuple[int, int]]:
    """(sentence, passage) pairs to quote, best first: the best one, then runners-up scored almost as high,
    or a little lower when they run on from one already chosen.

    A sentence between two chosen ones does not run on: it would only lengthen the quote that joins them
    and push the later, better sentence further from the start of the answer. A heading or a question in
    the text never stands alone when the text under it starts with a sentence: that sentence comes with it, in
    the same quote; one with no sentence under it is quoted only when it is the best."""
    top = float(ranked.scores[0])
    chosen: list[tuple[int, int]] = []
    quotes = 0

    def take(sentence: int, passage: int) -> None:
        nonlocal quotes
        quotes += 1
        chosen.append((sentence, passage))
        for body in _body_after(data, sentence) if is_fragment(data, sentence) else ():
            if all(body != other for other, _ in chosen):
                chosen.append((body, passage))

    take(int(ranked.sentences[0]), int(ranked.passages[0]))
    lowest = min(settings.second_quote_ratio, settings.following_quote_ratio) * top
    for sentence, passage, score in zip(ranked.sentences[1:].tolist(), ranked.passages[1:].tolist(), ranked.scores[1:]):
        if quotes >= settings.max_quotes:
            break
        if score < lowest or any(sentence == other for other, _ in chosen):
            continue
        if is_fragment(data, sentence) and not _body_after(data, sentence):
            continue  # a further heading with nothing under it (an empty section) adds no answer
        runs_on = _beside(data, sentence, chosen, after=True) and not _beside(data, sentence, chosen, after=False)
        if score >= settings.second_quote_ratio * top or (score >= settings.following_quote_ratio * top and runs_on):
            take(sentence, passage)
    return chosen


def _answer_spans(ranked: Ranked, data: IndexData) -> dict[int, tuple[int, int]]:
    """Document offsets of the answer's words in the sentences where the verifier marked them."""
    spans = {}
    for sentence, span in zip(ranked.sentences.tolist(), ranked.spans):
        if span is not None:
            start = int(data.sentences[sentence, 1])
            spans[sentence] = (start + span[0], start + span[1])
    return spans


def _body_after(data: IndexData, sentence: int) -> list[int]:
    """The sentence right after a heading or question, when it is the start of the text under it: in the same
    document and on the same page, and neither a heading nor a question itself (an empty section, or one that
    opens with a subheading or a line of code, gets nothing: a quote never reaches into another section)."""
    following = sentence + 1
    if following >= len(data.sentences) or is_fragment(data, following):
        return []
    doc, _, end = (int(value) for value in data.sentences[sentence])
    if data.sentences[following, 0] != doc or "\f" in data.texts[doc][end : int(data.sentences[following, 1])]:
        return []
    return [following]


def _beside(data: IndexData, sentence: int, chosen: list[tuple[int, int]], after: bool) -> bool:
    """Whether the sentence comes just after (or just before) one already chosen, in the same document."""
    step = 1 if after else -1
    doc = data.sentences[sentence, 0]
    return any(sentence - other == step and data.sentences[other, 0] == doc for other, _ in chosen)


def _merge(data: IndexData, chosen: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Runs (first sentence, last sentence, passage) of the chosen sentences, in the order chosen: a sentence
    next to the latest run joins it; each run is cited to the passage of its best sentence.

    A sentence next to an earlier run is a quote of its own instead: joined to that run, its text would
    come before the runs chosen since, and push a better sentence further from the start of the answer."""
    runs: list[tuple[int, int, int]] = []
    for sentence, passage in chosen:
        run = (sentence, sentence, passage)
        while runs and _touch(data, runs[-1], run):  # joining the latest run can close its gap to the one before
            first, last, cited = runs.pop()
            run = (min(first, run[0]), max(last, run[1]), cited)
        runs.append(run)
    return runs


def _touch(data: IndexData, run: tuple[int, int, int], other: tuple[int, int, int]) -> bool:
    """Whether two runs of sentences stand next to each other in one document."""
    same_document = data.sentences[run[0], 0] == data.sentences[other[0], 0]
    return bool(same_document) and (run[1] + 1 == other[0] or other[1] + 1 == run[0])


def _source(data: IndexData, citation: int, passage: int, covering: tuple[int, int] | None) -> Source:
    """The passage as a source; widened to cover the quote when the quote runs past it."""
    doc, start, end = (int(value) for value in data.passages[passage, :3])
    if covering is not None:
        start, end = min(start, covering[0]), max(end, covering[1])
    return Source(
        citation,
        data.documents[doc]["path"],
        start,
        end,
        data.line_of(doc, start),
        data.texts[doc][start:end],
        page=data.page_of(doc, start),
    )
