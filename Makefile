# Two entry points: `make demo` (the main job end to end on generated data) and `make test`.
# Both share .venv and install into it what they need when it is missing or pyproject.toml
# changed, each with its own stamp: the demo the package with TensorFlow for its dnn
# (`.[dnn]`), the tests everything they exercise (`.[dev]`: dnn, ONNX, server, notebook,
# docs, pytest). Neither removes what the other installed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_DIR ?= demo

.PHONY: demo test lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dnn]'
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/hepclf demo-data --out $(DEMO_DIR)/data
	cd $(DEMO_DIR) && ../$(BIN)/hepclf train ../pipelines/demo.yaml --output output

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q

docs: $(DEV_STAMP)
	$(BIN)/mkdocs build --strict

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(DEMO_DIR) .hepclf-cache .pytest_cache site
