"""The filter job: Common Crawl (or any archives) -> filtered document shards, on Beam.

    python -m pipelines.filter --crawl CC-MAIN-2020 --files 10 --out out/CC-MAIN-2020/filter
    python -m pipelines.filter --input 'archives/*.warc.gz' --runner DirectRunner --workers 2
    python -m pipelines.filter --crawl CC-MAIN-2024-22 --runner DataflowRunner \\
        --project P --region us-central1 --temp gs://bucket/tmp --out gs://bucket/out

Stages (each a thin DoFn over a ``curate`` function)::

    locations -> Reshuffle -> Read (archive -> documents: curate.ingest.records)
              -> Filter (language id + heuristics: curate.filters.stage)
              -> Quality (classifier score + Pareto keep rule, with --quality-model)
              -> CoGroupByKey(input) -> WritePerInput (curate.core.layout layout)

Everything random is seeded from document ids and every output is written
per input file, to a temp name then renamed, with a completion marker last, so
a rerun skips finished inputs and reproduces the same bytes, and a retried
bundle only rewrites identical files. The driver resolves inputs, skips the
finished ones, runs the pipeline and then merges the per-input stats.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from curate.core.counters import Counters, merge_counts, summary_table
from curate.core.files import dumps_jsonl
from curate.core.layout import (
    doc_order,
    in_rejected_sample,
    input_key,
    output_path,
    rejected_record,
    sort_errors,
)
from curate.core.progress import rss_mb
from curate.filters.stage import FilterStage, StageConfig
from curate.ingest.archive import (
    MAX_RECORD_BYTES,
    ArchiveError,
    NotAnArchiveError,
    add_max_record_argument,
    max_record_bytes,
)
from curate.ingest.records import default_source, read_archive
from curate.ingest.sources import (
    DEFAULT_BASE,
    SourceError,
    expand_inputs,
    list_files,
    open_input,
    resolve_crawls,
)
from pipelines.common import (
    job_lock,
    BeamCounters,
    add_runner_args,
    job_parser,
    make_pipeline,
    put_documents,
    run_main,
)
from pipelines.fileio import get, put, put_json


# --------------------------------------------------------------------------- DoFns

class ReadArchiveFn(beam.DoFn):
    """One input location -> (key, Document)s, plus its errors, stats and location."""

    def __init__(self, source: str = "", retries: int = 5, backoff: float = 1.0,
                 max_record_bytes: int = MAX_RECORD_BYTES):
        self.source = source
        self.retries = retries
        self.backoff = backoff
        self.max_record_bytes = max_record_bytes

    def process(self, location: str):
        key = input_key(location)
        counters = BeamCounters()
        errors: list[dict] = []

        def report(err: ArchiveError) -> None:
            errors.append(err.to_json())

        def opener():
            return open_input(location, retries=self.retries, backoff=self.backoff, counters=counters)

        source = self.source or default_source(location)
        try:
            for doc in read_archive(opener, report, counters, source=source, name=location,
                                    max_record_bytes=self.max_record_bytes):
                yield key, doc
            counters.inc("read:files")
        except (NotAnArchiveError, SourceError, OSError) as exc:
            # the file (or the rest of it) cannot be read: what was read is kept,
            # the input is recorded as failed so a rerun tries it again
            counters.inc("read:files_failed")
            errors.append({"file": location, "offset": -1, "reason": str(exc) or type(exc).__name__})
        for err in errors:
            yield beam.pvalue.TaggedOutput("errors", (key, err))
        yield beam.pvalue.TaggedOutput("stats", (key, counters.as_dict()))
        yield beam.pvalue.TaggedOutput("inputs", (key, location))


class _PerInputCountsFn(beam.DoFn):
    """A DoFn that counts per input and emits the counters once per bundle."""

    def start_bundle(self):
        self.counts: dict[str, BeamCounters] = {}

    def counters(self, key: str) -> BeamCounters:
        """The counters of input ``key`` in this bundle."""
        return self.counts.setdefault(key, BeamCounters())

    def finish_bundle(self):
        # counters per input, once per bundle rather than once per document
        for key, counters in self.counts.items():
            yield beam.pvalue.TaggedOutput(
                "stats", GlobalWindows.windowed_value((key, counters.as_dict())))


class FilterFn(_PerInputCountsFn):
    """Language id + heuristic filters; kept docs out, a seeded sample of rejects aside.

    ``final=False`` when a quality stage follows: passing the heuristics is then
    not yet ``kept`` (the quality stage counts that), so every document is
    counted once, as kept or dropped for one reason.
    """

    def __init__(self, config: StageConfig, rejected_rate: float, final: bool = True):
        self.config = config
        self.rejected_rate = rejected_rate
        self.final = final
        self.stage: FilterStage | None = None

    def setup(self):
        # the fastText model is loaded once per worker, not per bundle
        self.stage = FilterStage(self.config)
        self.stage.lid.model

    def process(self, element):
        key, doc = element
        decision = Counters()
        doc, reason = self.stage.decide(doc, decision)
        self.counters(key).update({name: n for name, n in decision.as_dict().items()
                                   if self.final or name != "kept"})
        if not reason:
            yield key, doc
        elif in_rejected_sample(doc.id, self.rejected_rate):
            yield beam.pvalue.TaggedOutput("rejected", (key, rejected_record(doc, reason)))


class QualityFn(_PerInputCountsFn):
    """Quality score (``metadata["quality"]``) and GPT-3's Pareto keep rule.

    ``scorer_factory`` (e.g. ``functools.partial(classifiers.scoring.make_scorer,
    model_dir)``) is called once per worker; without one the stage passes
    documents through unchanged. With one, this is the job's last decision, so
    it counts ``kept`` (see :class:`FilterFn`'s ``final``).
    """

    def __init__(self, scorer_factory=None, rejected_rate: float = 0.01):
        self.scorer_factory = scorer_factory
        self.rejected_rate = rejected_rate
        self.scorer = None

    def setup(self):
        if self.scorer_factory is not None:
            self.scorer = self.scorer_factory()

    def process(self, element):
        if self.scorer is None:
            yield element
            return
        key, doc = element
        counters = self.counters(key)
        kept = self.scorer(doc, counters)
        if kept is not None:
            counters.inc("kept")
            yield key, kept
            return
        if in_rejected_sample(doc.id, self.rejected_rate):
            yield beam.pvalue.TaggedOutput("rejected", (key, rejected_record(doc, "quality")))


DOCS_LOST = "write:docs_lost_in_shuffle"


class WritePerInputFn(beam.DoFn):
    """All outputs of one input, in a fixed order, then its completion marker."""

    def __init__(self, out: str):
        self.out = out

    def process(self, element):
        key, groups = element
        location = (list(groups["inputs"]) or [key])[0]
        docs = sorted(groups["docs"], key=doc_order)
        stats = merge_counts(groups["stats"])
        errors = sort_errors(groups["errors"])
        rejected = sorted(groups["rejected"], key=lambda r: r["id"])
        put_documents(output_path(self.out, "docs", key), docs)
        put(output_path(self.out, "errors", key), dumps_jsonl(errors))
        put(output_path(self.out, "rejected", key), dumps_jsonl(rejected))
        # kept documents are counted before the shuffle and received after it. Beam 2.77's
        # DirectRunner with several processes was seen to drop elements of large shuffles
        # without an error (guarded now: pipelines.direct_fix); an input that lost any is marked
        # incomplete, so the run fails and a rerun redoes it.
        lost = stats.get("kept", 0) - len(docs)
        if lost:
            stats[DOCS_LOST] = abs(lost)
        put_json(output_path(self.out, "stats", key), stats)
        marker = {"input": location, "key": key, "docs_read": stats.get("docs", 0), "kept": len(docs),
                  "errors": len(errors), "complete": stats.get("read:files_failed", 0) == 0 and not lost}
        put_json(output_path(self.out, "done", key), marker)
        yield marker


# --------------------------------------------------------------------------- graph

def build(p: beam.Pipeline, locations: list[str], out: str, config: StageConfig,
          rejected_rate: float = 0.01, source: str = "", retries: int = 5, backoff: float = 1.0,
          scorer_factory=None, max_record_bytes: int = MAX_RECORD_BYTES):
    """Add the filter job's transforms to ``p``; returns the PCollection of markers."""
    read = (
        p
        | "Inputs" >> beam.Create(sorted(locations))
        | "Reshuffle" >> beam.Reshuffle()  # spread files over workers before the heavy work
        | "Read" >> beam.ParDo(ReadArchiveFn(source, retries, backoff, max_record_bytes)).with_outputs(
            "errors", "stats", "inputs", main="docs")
    )
    filtered = read.docs | "Filter" >> beam.ParDo(
        FilterFn(config, rejected_rate, final=scorer_factory is None)).with_outputs("rejected", "stats", main="kept")
    scored = filtered.kept | "Quality" >> beam.ParDo(QualityFn(scorer_factory, rejected_rate)).with_outputs(
        "rejected", "stats", main="kept")
    stats = (read.stats, filtered.stats, scored.stats) | "AllStats" >> beam.Flatten()
    rejected = (filtered.rejected, scored.rejected) | "AllRejected" >> beam.Flatten()
    grouped = {"docs": scored.kept, "errors": read.errors, "rejected": rejected,
               "stats": stats, "inputs": read.inputs} | "ByInput" >> beam.CoGroupByKey()
    return grouped | "WritePerInput" >> beam.ParDo(WritePerInputFn(out))


# --------------------------------------------------------------------------- driver

def _parser() -> argparse.ArgumentParser:
    ap = job_parser("pipelines.filter", __doc__)
    src = ap.add_argument_group("inputs")
    src.add_argument("--crawl", help="crawl id (CC-MAIN-2020-34) or prefix (CC-MAIN-2020 = every 2020 crawl)")
    src.add_argument("--files", type=int, help="take a deterministic sample of N files per crawl")
    src.add_argument("--source-kind", default="warc", choices=["warc", "wet"], help="WARC (default) or WET files")
    src.add_argument("--cc-base", default=DEFAULT_BASE,
                     help="Common Crawl base: https URL (default data.commoncrawl.org), s3://commoncrawl/, or a mirror URL/dir")
    src.add_argument("--input", action="extend", nargs="*", default=[], help="local archive files or globs (instead of --crawl)")
    src.add_argument("--seed", type=int, default=0, help="seed of the --files sample")
    job = ap.add_argument_group("job")
    job.add_argument("--out", help="output directory (local or gs://); default out/<crawl>/filter")
    job.add_argument("--preset", default="gpt3", help="filter preset (gpt3, filters:<name>)")
    job.add_argument("--languages", help="comma-separated languages to keep (default en)")
    job.add_argument("--lang-threshold", type=float, help="minimum language score (default 0.65)")
    job.add_argument("--quality-model", help="quality classifier model dir or URL (classifiers/); none: no quality stage")
    job.add_argument("--quality-alpha", type=float, help="Pareto alpha of the keep rule (default: the model card's, 9)")
    job.add_argument("--rejected-rate", type=float, default=0.01, help="share of dropped documents sampled to rejected/")
    job.add_argument("--retries", type=int, default=5, help="retries per remote file (consecutive failures)")
    job.add_argument("--backoff", type=float, default=1.0, help="first retry wait in seconds (doubles each time)")
    job.add_argument("--source", default="", help="source name on documents (default: from file names)")
    add_max_record_argument(job)
    job.add_argument("-q", "--quiet", action="store_true")
    add_runner_args(ap)
    return ap


def resolve_inputs(args) -> list[str]:
    """Input locations from --input or --crawl (sorted, deduplicated)."""
    if args.input:
        return expand_inputs(args.input)
    if not args.crawl:
        raise SourceError("give --crawl CC-MAIN-... or --input FILES")
    locations: list[str] = []
    for crawl in resolve_crawls(args.crawl, args.cc_base):
        locations += list_files(crawl, args.cc_base, kind=args.source_kind, files=args.files, seed=args.seed)
    return sorted(set(locations))


def _done_keys(out: str) -> set[str]:
    """Keys of inputs whose marker says complete."""
    done = set()
    pattern = f"{out.rstrip('/')}/done/*.json"
    try:
        matches = FileSystems.match([pattern])[0].metadata_list
    except (BeamIOError, OSError):  # no output directory yet: nothing is done
        return done
    for m in matches:
        try:
            with FileSystems.open(m.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
                marker = json.loads(fh.read())
        except (OSError, ValueError):
            continue  # an unreadable marker: redo that input
        if marker.get("complete"):
            done.add(marker["key"])
    return done


def _read_json(path: str):
    return json.loads(get(path))


class _Watcher(threading.Thread):
    """Local progress: a rate line every ``every`` seconds from the done markers."""

    def __init__(self, out: str, total: int, every: float = 10.0, already: int = 0):
        super().__init__(daemon=True)
        self.out, self.total, self.every = out, total, every
        self.already = already  # inputs a previous run finished: no part of this run's rate
        self.stop = threading.Event()
        self.start_time = time.monotonic()

    def line(self) -> str:
        markers = [m for m in Path(self.out, "done").glob("*.json")] if "://" not in self.out else []
        docs = kept = 0
        for m in markers:
            try:
                d = json.loads(m.read_text())
            except (OSError, ValueError):
                continue
            docs += d.get("docs_read", 0)
            kept += d.get("kept", 0)
        el = max(time.monotonic() - self.start_time, 1e-9)
        share = 100.0 * kept / docs if docs else 0.0
        # ETA by inputs finished in this run (inputs are what the job's work is split by)
        fresh = len(markers) - self.already
        left = self.total - len(markers)
        eta = f", ETA {el * left / fresh:.0f}s" if fresh > 0 and left > 0 else ""
        return (f"filter: {len(markers)}/{self.total} inputs done, {docs} docs ({docs / el:.1f} docs/s), "
                f"{share:.1f}% kept, driver peak RSS {rss_mb():.0f} MiB, {el:.0f}s{eta}")

    def run(self):
        while not self.stop.wait(self.every):
            print(self.line(), file=sys.stderr, flush=True)


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Run the filter job; returns the merged stats. ``test_pipeline`` lets tests inject one."""
    args, beam_args = _parser().parse_known_args(argv)
    locations = resolve_inputs(args)
    if not locations:
        raise SourceError("no input files")
    out = args.out or f"out/{args.crawl or 'input'}/filter"
    # "none" (as --help says) or nothing: no quality stage
    quality_model = None if (args.quality_model or "none").lower() == "none" else args.quality_model
    if quality_model:
        from classifiers.models import ModelError
        from classifiers.scoring import make_scorer

        try:
            make_scorer(quality_model)  # fail fast, in the driver, before anything is written
        except (ModelError, OSError) as exc:
            raise SourceError(f"quality model: {exc}") from exc
    with job_lock(out, "pipelines.filter"):
        config = StageConfig.preset(args.preset)
        if args.languages:
            config.langid.languages = tuple(x.strip() for x in args.languages.split(",") if x.strip())
        if args.lang_threshold is not None:
            config.langid.threshold = args.lang_threshold
        keys = {input_key(loc): loc for loc in locations}
        if len(keys) != len(locations):
            raise SourceError("two inputs map to the same output key; rename one of them")
        done = _done_keys(out) & set(keys)
        todo = [loc for loc in locations if input_key(loc) not in done]
        resolved = {"inputs": locations, "config": config.to_dict(), "rejected_rate": args.rejected_rate,
                    "quality_model": quality_model, "quality_alpha": args.quality_alpha,
                    "max_record_bytes": max_record_bytes(args.max_record_mb),
                    "crawl": args.crawl, "files": args.files, "seed": args.seed, "source_kind": args.source_kind}
        put_json(f"{out.rstrip('/')}/config.json", resolved)
        if not args.quiet:
            print(f"filter: {len(locations)} inputs, {len(done)} already done, {len(todo)} to process -> {out}",
                  file=sys.stderr, flush=True)
        if todo:
            p = make_pipeline(args, beam_args, test_pipeline)
            scorer_factory = None
            if quality_model:
                scorer_factory = functools.partial(make_scorer, quality_model, args.quality_alpha)
            build(p, todo, out, config, args.rejected_rate, args.source, args.retries, args.backoff,
                  scorer_factory=scorer_factory, max_record_bytes=max_record_bytes(args.max_record_mb))
            watcher = _Watcher(out, len(locations), already=len(done)) if not args.quiet and "://" not in out else None
            if watcher:
                watcher.start()
            try:
                result = p.run()
                result.wait_until_finish()
            finally:
                if watcher:
                    watcher.stop.set()
        stats = merge_counts(_read_json(output_path(out, "stats", k)) for k in sorted(keys)
                             if FileSystems.exists(output_path(out, "stats", k)))
        failed = sorted(k for k in keys if k not in _done_keys(out))
        put_json(f"{out.rstrip('/')}/stats.json",
                 {"counters": stats, "inputs": len(locations), "incomplete_inputs": failed})
        if not args.quiet:
            print(summary_table(f"filter: done -> {out}", stats), file=sys.stderr)
        if failed:  # said even with --quiet: it is an error, not progress
            print(f"filter: {len(failed)} input(s) could not be read completely (see {out}/errors/): "
                  + ", ".join(failed[:5]), file=sys.stderr)
        if stats.get(DOCS_LOST):
            print(f"filter: the runner lost {stats[DOCS_LOST]} kept document(s) in a shuffle; their inputs are "
                  "marked incomplete and a rerun redoes them (with the DirectRunner, --workers 1 avoids it)",
                  file=sys.stderr)
        return {"counters": stats, "incomplete_inputs": failed, "out": out}


def _exit_status(result: dict) -> int:
    # an input read only in part is written and marked, but the run is not a success
    return 1 if result["incomplete_inputs"] else 0


def main(argv=None) -> int:
    return run_main("pipelines.filter", run, argv, status=_exit_status)


if __name__ == "__main__":
    sys.exit(main())
