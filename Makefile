# Two entry points: `make demo` (the main job end to end on generated data) and `make test`.
# Each creates .venv with the project installed when it is missing or pyproject.toml changed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hepclf demo-data --out $(DEMO_DIR)/data
	cd $(DEMO_DIR) && ../$(BIN)/hepclf train ../pipelines/demo.yaml --output output

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(DEMO_DIR) .hepclf-cache .pytest_cache
