"""Each benchmark script starts, runs on a tiny input and writes its table (timings are never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, SEEDS

ARTICLES = [
    ("Lighthouses", ["The Eddystone Lighthouse stands on rocks south of Plymouth. It was first lit in 1698.",
                     "Its fourth tower was designed by James Douglass. The light can be seen for 22 miles."]),
    ("Tea", ["Tea is an aromatic drink made from the leaves of Camellia sinensis. It began in China.",
             "Green tea is not oxidised. Black tea is fully oxidised and keeps its flavour for years."]),
]


@pytest.fixture(scope="module")
def tiny_squad(tmp_path_factory):
    """A two-article SQuAD file with a few questions."""
    data = {"data": [
        {"title": title, "paragraphs": [
            {"context": text, "qas": [{"id": f"{title}{n}", "question": f"What is said about {title.lower()}?",
                                       "answers": [{"text": text.split(".")[0], "answer_start": 0}],
                                       "is_impossible": False}]}
            for n, text in enumerate(paragraphs)
        ]}
        for title, paragraphs in ARTICLES
    ]}
    path = tmp_path_factory.mktemp("squad") / "tiny.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], check=False, cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.slow
def test_bench_store_writes_table_and_plot(tmp_path):
    results, plot = tmp_path / "RESULTS.md", tmp_path / "store.png"
    run_script("bench_store.py", "--sizes", "500,2000", "--queries", "5", "--dimension", "16",
               "--search", '{"exact_up_to": 1000}', "--results", str(results), "--plot", str(plot))
    text = results.read_text(encoding="utf-8")
    assert "<!-- begin store -->" in text and "| 2,000 | IndexHNSWSQ" in text and "| 500 | IndexScalarQuantizer" in text
    assert "Load average" in text and "store.png" in text
    assert plot.stat().st_size > 0


@pytest.mark.slow
def test_bench_build_writes_table(tmp_path, tiny_squad):
    results = tmp_path / "RESULTS.md"
    run_script("bench_build.py", "--squad", str(tiny_squad), "--rounds", "1", "--results", str(results))
    text = results.read_text(encoding="utf-8")
    assert "<!-- begin build -->" in text and "chatbot index --rebuild" in text and "bare float32 Sentence" in text
    large = tmp_path / "large.txt"
    large.write_text("The Eddystone Lighthouse stands on rocks. It was first lit in 1698.\n" * 50, encoding="utf-8")
    run_script("bench_build.py", "--large", str(large), "--results", str(results))
    text = results.read_text(encoding="utf-8")
    assert "<!-- begin build-large -->" in text and "| large.txt |" in text and "peak RSS MB" in text


@pytest.mark.slow
def test_bench_batch_writes_both_tables(tmp_path, tiny_squad):
    results = tmp_path / "RESULTS.md"
    run_script("bench_batch.py", "--squad", str(tiny_squad), "--questions", "3", "--rounds", "1",
               "--results", str(results))
    text = results.read_text(encoding="utf-8")
    assert "<!-- begin latency -->" in text and "ask (warm)" in text
    assert "<!-- begin batch -->" in text and "| ask_batch |" in text


@pytest.mark.slow
def test_bench_cold_writes_table(tmp_path):
    results = tmp_path / "RESULTS.md"
    run_script("bench_cold.py", "--docs", str(SEEDS), "--index", str(tmp_path / "index"), "--rounds", "1",
               "--results", str(results))
    text = results.read_text(encoding="utf-8")
    assert "<!-- begin cold -->" in text and "python -m chatbot ask" in text
    assert "| chatbot index --rebuild |" in text and "start-up | imports | load | work | whole" in text


@pytest.mark.slow
def test_bench_precision_writes_time_and_agreement_per_way(tmp_path):
    results = tmp_path / "RESULTS.md"
    run_script("bench_precision.py", "--rounds", "1", "--questions", "2", "--squad", "0", "--sets", "seed_questions_fresh2",
               "--work", str(tmp_path / "work"), "--results", str(results))
    text = results.read_text(encoding="utf-8")
    assert "<!-- begin precision -->" in text and "CPU flags: avx2" in text
    rows = [line for line in text.splitlines() if line.startswith("| seed_questions_fresh2 |")]
    assert [row.split(" | ")[1] for row in rows][:1] == ["float32, torch"] and "int8, onnx" in rows[-1]
    assert rows[0].split(" | ")[2] == "36/36"  # float32 agrees with itself


def test_sections_are_replaced_not_repeated(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from results_md import write_section

    results = tmp_path / "RESULTS.md"
    for body in ("first", "second"):
        write_section("demo", "Demo", body, "0 0 0", results)
    write_section("other", "Other", "third", "0 0 0", results)
    text = results.read_text(encoding="utf-8")
    assert text.count("<!-- begin demo -->") == 1 and "second" in text and "first" not in text and "third" in text


def test_hnsw_index_is_saved_loaded_and_answers_like_exact_search(seed_docs, seed_bot, tmp_path):
    """The approximate index chosen by config goes through store.py's write/read and gives the same answers
    on a small corpus as exact search."""
    import faiss

    from chatbot import Chatbot

    hnsw = Chatbot.from_config(docs=seed_docs, index=tmp_path / "index", search={"kind": "hnsw"})
    hnsw.index()
    reloaded = Chatbot.from_config(docs=seed_docs, index=tmp_path / "index", search={"kind": "hnsw"})
    for bot in (hnsw, reloaded):
        assert isinstance(faiss.downcast_index(bot.data.passage_search), faiss.IndexHNSWSQ)
    assert isinstance(faiss.downcast_index(seed_bot.data.passage_search), faiss.IndexScalarQuantizer)
    question = "Which chip did Guangdong highlight?"
    assert reloaded.ask(question).to_dict() == seed_bot.ask(question).to_dict()


def test_model_dtype_counts_as_a_model_change():
    from chatbot.config import Config, apply_overrides
    from chatbot.index.build import settings_of

    float32 = apply_overrides(Config(), model={"dtype": "float32"})
    assert settings_of(apply_overrides(float32, model={"dtype": "bfloat16"})) != settings_of(float32)
    assert settings_of(float32)["model"] == float32.model.name
