# curate: web archives -> clean corpus -> token shards -> GPT.
# Every user-facing target installs what it needs by itself (into .venv).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CURATE := $(VENV)/bin/curate
STAMP := $(VENV)/.installed

# `make filter` inputs: INPUT (files or globs) or, with neither INPUT nor CRAWL,
# the bundled Common Crawl sample.
SAMPLE := $(wildcard sample/*.warc.gz sample/*.arc.gz)
INPUT ?=
CRAWL ?=
OUT ?= out/$(if $(CRAWL),$(CRAWL),sample)/filter
WORKERS ?= $(shell nproc)

.DEFAULT_GOAL := help
.PHONY: help install test bench filter clean

help:  ## list targets
	@echo "curate: GPT-3's data recipe, from web archives to a filtered corpus"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "  variables: INPUT=<archives>  OUT=<dir>  (default: bundled sample -> out/sample/filter)"

install: $(STAMP)  ## create .venv with everything (idempotent)

# torch is installed first, exactly 2.13.0 (a CPU wheel): any looser spec pulls
# several GB of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[beam,train,bench,dev]'
	@touch $@

test: $(STAMP)  ## run the test suite
	$(PY) -m pytest -q -n 2

bench: $(STAMP)  ## throughput and quality figures, side by side with peers
	$(PY) -m benchmarks.extraction
	$(PY) -m benchmarks.readers
	$(PY) -m benchmarks.ingest

filter: $(STAMP)  ## read + extract + language id + heuristic filters (bundled sample by default)
	@if [ -n "$(CRAWL)" ]; then echo "make filter: CRAWL= is not supported yet; use INPUT=<archive files>" >&2; exit 2; fi
	@mkdir -p $(OUT)
	$(CURATE) read $(or $(INPUT),$(SAMPLE)) -o $(OUT)/docs.parquet --errors $(OUT)/errors.jsonl || test $$? -eq 1
	$(CURATE) filter -i $(OUT)/docs.parquet -o $(OUT)/kept.parquet
	@echo "documents: $(OUT)/docs.parquet  kept: $(OUT)/kept.parquet  errors: $(OUT)/errors.jsonl  stats: $(OUT)/*.stats.json"

clean:  ## remove outputs (keeps .venv)
	rm -rf out .pytest_cache
