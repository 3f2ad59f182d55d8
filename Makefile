# Quick start: `make demo` (the smoke suite: the trained toy-world model on CPU, results under runs/smoke/) and
# `make test`.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean regress browser example-report

# The regression gate's scratch directory (CI: the smoke suite is generated here, then compared).
SMOKE_OUT ?= $(or $(TMPDIR),/tmp)/deepforcing-smoke

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev,metrics,scenes]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default: the smoke suite (toy-world model on CPU; generate -> score -> summary).
demo: $(STAMP)
	$(VENV)/bin/deepforcing-eval --suite smoke

lint: $(STAMP)
	$(VENV)/bin/ruff check deepforcing tests benchmarks

test: $(STAMP) lint
	$(PY) -m pytest -q

# CI regression gate: generate the smoke suite (toy-world model, CPU) and compare every number with the committed
# reference (reports/baselines/smoke.json); a report of the run is left beside it.
regress: $(STAMP)
	rm -rf $(SMOKE_OUT)
	$(VENV)/bin/deepforcing-eval -q --suite smoke --out $(SMOKE_OUT)
	$(VENV)/bin/deepforcing-eval regress $(SMOKE_OUT)/smoke/toyworld --baseline reports/baselines/smoke.json
	$(VENV)/bin/deepforcing-eval -q report $(SMOKE_OUT)/smoke/toyworld --out $(SMOKE_OUT)/report.html

# The example report committed under reports/examples/ (from the same smoke run, videos copied beside it).
example-report: regress
	rm -rf reports/examples/smoke_videos
	$(VENV)/bin/deepforcing-eval -q report $(SMOKE_OUT)/smoke/toyworld --copy-videos --out reports/examples/smoke.html \
		--title "deepforcing-eval example report: smoke suite (toy-world model, CPU)" \
		--findings reports/toyworld/drift-study.json \
		--markdown reports/examples/smoke-summary.md --latex reports/examples/smoke-summary.tex

# Headless Chromium + driver for the report's browser test (Debian packages; root or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver)

bench: $(STAMP)
	$(PY) benchmarks/bench_chunk_latency.py

clean:
	rm -rf $(VENV) out .pytest_cache $(SMOKE_OUT)
