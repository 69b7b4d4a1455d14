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

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("question", ["", " ", "\n\t \r\n", "\u3000"])
def test_empty_or_blank_question_is_a_clear_error(seed_bot, question):
    with pytest.raises(ChatbotError, match="the question is empty"):
        seed_bot.ask(question)


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
    "100,000 characters": ("Which chip did Guangdong highlight? " * 3000)[:100_000],
    "100,000 characters of one word": "chip" * 25_000,
    "control characters": "Which\x00 chip\x07 did \x1b[31mGuangdong\x1b[0m highlight?\x7f\x08",
    "every byte as Latin-1": bytes(range(256)).decode("latin-1"),
    "random binary junk": random.Random(7).randbytes(2000).decode("latin-1"),
    "Chinese": "广东强调了哪款芯片？",
    "Arabic": "ما هي الشريحة التي سلطت غوانغدونغ الضوء عليها؟",
    "Russian": "Какой чип выделил Гуандун?",
    "emoji": "🤖🚀💾 chip? 🇨🇳",
    "zero-width and combining marks": "\u200b\u200dWhich\u0301 chip\u20dd?",
    "punctuation only": "?!.,;:",
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
        seed_bot.ask("Which chip did Guangdong highlight? " * 300)
    assert "longer than the model reads" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="chatbot"):
        seed_bot.ask("Which chip did Guangdong highlight?")
    assert "longer than the model reads" not in caplog.text
