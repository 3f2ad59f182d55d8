# Quick start: `make demo` (tiny model on CPU, writes out/demo.mp4) and `make test`.
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

demo: $(STAMP)
	$(VENV)/bin/deepforcing-eval generate --model tiny --method self-forcing \
		--prompt "a red circle bouncing on a dark green background" \
		--num-latent-frames 42 --seed 0 --output out/demo.mp4

lint: $(STAMP)
	$(VENV)/bin/ruff check deepforcing tests benchmarks

test: $(STAMP) lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_chunk_latency.py

clean:
	rm -rf $(VENV) out .pytest_cache
