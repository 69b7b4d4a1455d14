"""Loading the embedding model from the Python API."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from transformers.utils import logging as transformers_logging

from chatbot.config import ModelConfig
from chatbot.index import embed


def test_loading_the_model_prints_no_progress_bar_and_leaves_the_setting_alone(capfd):
    key = (ModelConfig().name, "cpu", "bfloat16")  # a model no other test keeps loaded
    embed._models.pop(key, None)
    transformers_logging.enable_progress_bar()
    try:
        model = embed._load_model(*key)
        assert model is embed._load_model(*key)
        assert "Loading weights" not in capfd.readouterr().err
        assert transformers_logging.is_progress_bar_enabled()
    finally:
        embed._models.pop(key, None)


def test_word_vectors_are_unit_rows_that_put_related_words_close(seed_bot):
    embedder = seed_bot.embedder
    vectors = embedder.word_vectors(["restrictions", "restricted", "banana", "restrictions"])
    assert vectors.shape == (4, embedder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[3])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert np.array_equal(embedder.word_vectors(["restricted"])[0], vectors[1])  # from the cache, unchanged
    assert embedder.word_vectors([]).shape == (0, embedder.dimension)
    assert not embedder.word_vectors([""]).any()  # "no word" matches nothing


def test_a_model_without_a_word_piece_table_has_none():
    assert embed._input_table((object(),)) is None


def test_word_vectors_asked_from_many_threads_agree(seed_bot):
    fresh = embed.Embedder(seed_bot.embedder.name)  # its own, empty word table; the shared model
    words = [f"{prefix}{stem}" for prefix in ("un", "re", "pre", "") for stem in ("built", "made", "done", "seen")]
    expected = fresh.word_vectors(words)
    fresh = embed.Embedder(seed_bot.embedder.name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: fresh.word_vectors(words[i % 5 :] + words[: i % 5]), range(40)))
    for i, vectors in enumerate(results):
        assert np.array_equal(vectors, np.roll(expected, -(i % 5), axis=0))


def test_word_vectors_of_a_model_with_a_projection_head(seed_bot, tmp_path):
    """A Dense head makes sentence vectors narrower than the input table: word vectors keep the table's width."""
    from sentence_transformers import SentenceTransformer, models

    bundled = seed_bot.embedder.model
    SentenceTransformer(modules=[bundled[0], bundled[1], models.Dense(384, 128)]).save(str(tmp_path))
    embedder = embed.Embedder(str(tmp_path))
    try:
        assert embedder.dimension == 128
        vectors = embedder.word_vectors(["chip", "semiconductor", "banana"])
        assert vectors.shape == (3, 384)
        assert np.array_equal(vectors, seed_bot.embedder.word_vectors(["chip", "semiconductor", "banana"]))
    finally:
        embed._models.pop((str(tmp_path), "cpu", "float32"), None)


def test_documents_come_back_in_order_whatever_order_their_batches_ran_in(seed_bot):
    import torch

    name, dtype = seed_bot.embedder.name, seed_bot.embedder.dtype
    embedder = embed.Embedder(name, batch_size=3, dtype=dtype)
    texts = [("Copper conducts electricity. " * n).strip() for n in (1, 9, 2, 7, 3)]
    texts += ["The Danube ends in the Black Sea.", "Bronze is copper and tin.", "Oaks live long.", "Tea."]
    threads = torch.get_num_threads()
    batches: list[int] = []
    vectors = embedder.encode_documents(texts, on_batch=batches.append)
    assert torch.get_num_threads() == threads  # one thread a batch only while documents are embedded
    assert sum(batches) == 9 and max(batches) <= 3 and vectors.shape == (9, embedder.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    questions = embedder.encode(texts)  # float32, one call: each row must be its own text's
    assert np.einsum("ij,ij->i", vectors, questions).min() > 0.999
    assert embedder.encode_documents([]).shape == (0, embedder.dimension)


def test_bfloat16_batches_take_few_shapes(seed_bot, monkeypatch):
    """In bfloat16, each batch holds texts of one length padded to a multiple of PAD_TO word-pieces, as many as
    that length allows or a power of two (filled up with its own texts again), so that oneDNN meets few shapes."""
    embedder = embed.Embedder(seed_bot.embedder.name, batch_size=4, dtype="bfloat16")
    model = embedder.document_model
    texts = [("Copper conducts electricity. " * n).strip() for n in range(1, 12)] * 2 + ["Tea.", "Oaks live."]
    shapes, real = [], model.encode

    def spy(batch, **settings):
        lengths = embedder.token_counts(batch)
        padded = set(np.ceil(lengths / embed.PAD_TO).astype(int) * embed.PAD_TO)
        assert len(padded) == 1 and settings["processing_kwargs"] == {"text": {"pad_to_multiple_of": embed.PAD_TO}}
        shapes.append((len(batch), padded.pop()))
        return real(batch, **settings)

    monkeypatch.setattr(model, "encode", spy)
    counts: list[int] = []
    vectors = embedder.encode_documents(texts, on_batch=counts.append)
    assert sum(counts) == len(texts)  # repeats are not counted as texts embedded
    for rows, length in shapes:
        full = max(1, min(4, embed.BATCH_WORD_PIECES // length))
        assert rows == full or (rows < full and rows & (rows - 1) == 0), (rows, length)
    monkeypatch.undo()
    assert np.einsum("ij,ij->i", vectors, embedder.encode(texts)).min() > 0.999


def test_batches_alternate_long_and_short_so_the_rate_holds():
    assert embed._interleaved([1, 2, 3, 4, 5]) == [1, 5, 2, 4, 3]
    assert embed._interleaved([1, 2]) == [1, 2] and embed._interleaved([]) == []


def test_questions_are_embedded_in_float32_whatever_the_documents_precision(seed_bot):
    embedder = embed.Embedder(seed_bot.embedder.name, dtype="bfloat16")
    assert embedder.dtype == "bfloat16" and embedder.model is seed_bot.embedder.model
    assert str(next(embedder.model.parameters()).dtype) == "torch.float32"
    assert str(next(embedder.document_model.parameters()).dtype) == "torch.bfloat16"
