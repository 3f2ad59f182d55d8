# Quick start: `make demo` (the smoke suite: tiny model on CPU, results under runs/smoke/) and `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev,metrics]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default: the smoke suite (tiny model on CPU; generate -> score -> summary).
demo: $(STAMP)
	$(VENV)/bin/deepforcing-eval --suite smoke

lint: $(STAMP)
	$(VENV)/bin/ruff check deepforcing tests benchmarks

test: $(STAMP) lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_chunk_latency.py

clean:
	rm -rf $(VENV) out .pytest_cache
