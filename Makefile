# `make run` starts the chatbot and `make test` runs the tests (`make quick` the fast ones); each first creates .venv and installs
# the project into it. torch is installed before the rest so that pip takes the CPU build that lies on
# these machines' disk (TORCH=... picks another); elsewhere, if that release cannot be had, pip's own
# choice is taken.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install run chat test quick readme index screenshot clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH)" || $(BIN)/pip install torch
	$(BIN)/pip install -e ".[test]"
	touch $@

run: install
	$(BIN)/chatbot serve

chat: install
	$(BIN)/chatbot chat

index: install
	$(BIN)/chatbot index

# Every test (CI runs this one).
test: install
	$(BIN)/python -m pytest -q

# The tests that run in a few minutes: those marked slow (training, the browser, the benchmark scripts and large
# builds, Milvus, processes run side by side or stopped with Ctrl-C, the README's examples) are left out.
quick: install
	$(BIN)/python -m pytest -q -m "not slow"

# Rewrite the README's checked examples (tests/test_readme.py) from what the commands print now.
readme: install
	$(BIN)/python -m tests.test_readme --update

screenshot: install
	$(BIN)/python benchmarks/screenshot.py

clean:
	rm -rf $(VENV) index/CURRENT index/builds
