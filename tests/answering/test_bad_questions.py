"""Questions people (and programs) really send: empty, enormous, full of control characters or binary junk,
in other scripts. None may crash; each gets an answer or an abstention."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot import Answer, ChatbotError

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("question", ["", " ", "\n\t \r\n", "\u3000"])
def test_empty_or_blank_question_is_a_clear_error(seed_bot, question):
    with pytest.raises(ChatbotError, match="the question is empty"):
        seed_bot.ask(question)


# A question with no word in it (a letter or digit of any script) is empty too: answering "?" quoted "1." "2."
NO_WORDS = {
    "bell": "\x07",
    "zero-width space": "\u200b",
    "zero-width joiner and space": "\u200d\u200b \u2060",
    "clear screen": "\x1b[2J",
    "colour codes": "\x1b[31m?\x1b[0m",
    "bytes that are not UTF-8": b"\xff\xfe".decode("utf-8", "surrogateescape"),
    "a lone question mark": "?",
    "punctuation only": "?!.,;:",
    "underscores and symbols": "__ -- ** ## ~~ ©®",
    "combining marks only": "\u0301\u20dd",
}


@pytest.mark.parametrize("name", sorted(NO_WORDS))
def test_a_question_without_a_word_is_empty(seed_bot, name):
    with pytest.raises(ChatbotError, match="^the question is empty: it has no words") as caught:
        seed_bot.ask(NO_WORDS[name])
    assert "\n" not in str(caught.value)


def test_a_question_without_a_word_on_the_command_line_is_one_clear_line():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "chatbot", "ask", "\x1b[2J?"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == (
        "error: the question is empty: it has no words, only punctuation, symbols or control characters"
    )


@pytest.mark.parametrize("size", [2001, 1_000_000])
def test_a_question_over_the_length_cap_is_refused_without_echoing_it(seed_bot, size):
    question = ("Which chip did Guangdong highlight? " * (size // 36 + 1))[:size]
    with pytest.raises(ChatbotError, match=f"the question is {size:,} characters long; at most 2,000") as caught:
        seed_bot.ask(question)
    assert len(str(caught.value)) < 200
    assert seed_bot.ask(question[:2000]).question == question[:2000]
    if size < 10_000:  # a larger cap takes a longer question (a million characters would take seconds)
        assert seed_bot.replace(answer={"max_question_chars": size}).ask(question).question == question


def test_a_question_over_the_length_cap_on_the_command_line_is_one_clear_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    config = tmp_path / "short.toml"
    config.write_text(f'[paths]\ndocs = "{ROOT / "seeds"}"\nindex = "{tmp_path / "index"}"\n[answer]\nmax_question_chars = 10\n')
    result = subprocess.run(
        [sys.executable, "-m", "chatbot", "ask", "Where is DeepSeek based?", "--config", str(config)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == (
        "error: the question is 24 characters long; at most 10 are accepted ([answer] max_question_chars)"
    )
    assert not (tmp_path / "index").exists()  # refused before any work


def test_a_question_that_is_not_text_is_named_as_such(seed_bot):
    with pytest.raises(ChatbotError, match="a question must be text, got int"):
        seed_bot.ask(42)
    with pytest.raises(ChatbotError, match="takes a list of questions"):
        seed_bot.ask_batch("Where is DeepSeek based?")


def test_empty_question_on_the_command_line_is_one_clear_line():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "chatbot", "ask", "   "], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: the question is empty"


QUESTIONS = {
    "2,000 characters, the longest taken": ("Which chip did Guangdong highlight? " * 60)[:2000],
    "2,000 characters of one word": "chip" * 500,
    "control characters": "Which\x00 chip\x07 did \x1b[31mGuangdong\x1b[0m highlight?\x7f\x08",
    "every byte as Latin-1": bytes(range(256)).decode("latin-1"),
    "random binary junk": random.Random(7).randbytes(2000).decode("latin-1"),
    "Chinese": "广东强调了哪款芯片？",
    "Arabic": "ما هي الشريحة التي سلطت غوانغدونغ الضوء عليها؟",
    "Russian": "Какой чип выделил Гуандун?",
    "emoji": "🤖🚀💾 chip? 🇨🇳",
    "zero-width and combining marks": "\u200b\u200dWhich\u0301 chip\u20dd?",
    "punctuation and a digit": "?!.,;:7",
    "one letter": "x",
    "right-to-left override": "\u202eWhich chip did Guangdong highlight?",
}


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_odd_questions_get_an_answer_or_an_abstention(seed_bot, name):
    question = QUESTIONS[name]
    answer = seed_bot.ask(question)
    assert isinstance(answer, Answer) and 0.0 <= answer.confidence <= 1.0
    assert answer.question == question
    if answer.abstained:
        assert not answer.quotes
    for quote in answer.quotes:
        assert seed_bot.data.text_of(quote.source)[quote.start : quote.end] == quote.text


def test_odd_questions_in_one_batch_match_one_by_one(seed_bot):
    questions = [QUESTIONS[name] for name in sorted(QUESTIONS)]
    batch = seed_bot.ask_batch(questions)
    assert [answer.text for answer in batch] == [seed_bot.ask(question).text for question in questions]


def test_lone_surrogates_do_not_crash(seed_bot):
    answer = seed_bot.ask(b"\xff\xfe which chip?".decode("utf-8", "surrogateescape"))
    assert answer.question == "\ufffd\ufffd which chip?"
    answer.to_dict()  # and it can be written out


def test_a_question_longer_than_the_model_reads_is_noted(seed_bot, caplog, monkeypatch):
    import logging

    monkeypatch.setattr(logging.getLogger("chatbot"), "propagate", True)  # the CLI's own handler may be set
    with caplog.at_level("WARNING", logger="chatbot"):
        seed_bot.ask("Which chip did Guangdong highlight? " * 55)  # 1,980 characters: taken, but over 256 pieces
    assert "longer than the model reads" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="chatbot"):
        seed_bot.ask("Which chip did Guangdong highlight?")
    assert "longer than the model reads" not in caplog.text
