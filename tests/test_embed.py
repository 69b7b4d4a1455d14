"""Loading the embedding model from the Python API."""

from transformers.utils import logging as transformers_logging

from chatbot import embed
from chatbot.config import ModelConfig


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
