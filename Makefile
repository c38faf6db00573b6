# curate: web archives -> clean corpus -> token shards -> GPT.
# Every user-facing target installs what it needs by itself (into .venv).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CURATE := $(VENV)/bin/curate
STAMP := $(VENV)/.installed

# `make filter`: CRAWL (an id or a prefix: CC-MAIN-2020 = every 2020 crawl) or
# INPUT (files/globs); with neither, the bundled Common Crawl sample.
SAMPLE := $(wildcard sample/*.warc.gz sample/*.arc.gz)
CRAWL ?=
INPUT ?=
FILES ?=
SOURCE ?= warc
CC_BASE ?= https://data.commoncrawl.org/
OUT ?= out/$(if $(CRAWL),$(CRAWL),$(if $(INPUT),input,sample))/filter
RUNNER ?= DirectRunner
WORKERS ?= $(shell nproc)
PROJECT ?=
REGION ?=
TEMP ?=
JOB_ENDPOINT ?=
FILTER_ARGS = $(if $(CRAWL),--crawl $(CRAWL) --cc-base $(CC_BASE),--input $(or $(INPUT),$(SAMPLE))) \
	$(if $(FILES),--files $(FILES)) --source-kind $(SOURCE) --out $(OUT) \
	--runner $(RUNNER) --workers $(WORKERS) $(if $(PROJECT),--project $(PROJECT)) \
	$(if $(REGION),--region $(REGION)) $(if $(TEMP),--temp $(TEMP)) \
	$(if $(JOB_ENDPOINT),--job-endpoint $(JOB_ENDPOINT)) $(ARGS)

.DEFAULT_GOAL := help
.PHONY: help install test bench filter dist clean

help:  ## list targets
	@echo "curate: GPT-3's data recipe, from web archives to a filtered corpus"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "  make filter variables: CRAWL=<id or prefix> FILES=<n> SOURCE=warc|wet CC_BASE=<url|dir|s3://commoncrawl/>"
	@echo "    INPUT=<files/globs> OUT=<dir> RUNNER=DirectRunner|DataflowRunner|PortableRunner WORKERS=<n>"
	@echo "    PROJECT= REGION= TEMP=gs://... (Dataflow)  JOB_ENDPOINT=host:port (Portable)  ARGS=<more options>"

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

filter: $(STAMP)  ## the filter job on Beam: read, extract, language id, heuristics (bundled sample by default)
	$(PY) -m pipelines.filter $(FILTER_ARGS)

# Dataflow workers install this package from a wheel staged with the job.
dist: $(STAMP)  ## build the wheel that DataflowRunner stages for its workers
	$(PY) -m pip wheel -q --no-deps -w dist .

clean:  ## remove outputs (keeps .venv)
	rm -rf out dist .pytest_cache
