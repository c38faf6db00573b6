"""Benchmark decontamination on Beam: the same documents and report as ``curate decontaminate``.

    python -m pipelines.decontam --benchmark ../shared/data/eval/*.jsonl \\
        --input 'out/sample/dedup/kept/*.parquet' --out out/sample/decontam

Stages (each a thin DoFn over ``curate.decontam.overlap.Decontaminator``)::

    driver: benchmark JSONL -> 13-gram index (sorted hashes; ~10 bytes per n-gram,
            shipped to workers with the DoFns)
    pass 1: documents -> distinct benchmark n-grams each one contains -> CombinePerKey(sum)
            -> n-grams in more than max_doc_freq documents (a small side input)
    pass 2: documents -> cut (GPT-3 Appendix C) with the frequent n-grams ignored
            -> OUT/docs/part-N.parquet (cleaned, dropped ones omitted; sorted by id)
            -> partial reports per bundle -> one combined report -> OUT/report.json

The job counts what enters and leaves each shuffle (benchmark n-gram hits
before and after the per-n-gram sum, documents kept and written) and exits 1
when they differ (:func:`_lost`): Beam 2.77's DirectRunner with several
processes was seen to drop elements of large shuffles without an error
(a race now guarded: pipelines.direct_fix).

Pass 1 needs every document before pass 2 can start, as on one machine:
"13-grams found in more than 10 training documents" is a corpus-wide count.
Only benchmark n-grams are counted, so the combine is bounded by the
benchmarks' size, not the corpus's. Outputs go through Beam's FileSystems, so
OUT may be gs:// on Dataflow.
"""

from __future__ import annotations

import json
import sys

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from curate.core.counters import merge_counts
from curate.decontam.overlap import (
    BenchmarkError,
    DecontamConfig,
    Decontaminator,
    empty_report,
    load_benchmarks,
    merge_reports,
    summarize_report,
)
from curate.ingest.sources import SourceError
from pipelines.common import (BeamCounters, job_lock, ByShard, ReadDocsFn, add_runner_args, auto_shards,
                              counter_totals, job_parser, make_pipeline, metric, put_documents, run_main, say_lost,
                              shard_name)
from pipelines.fileio import expand, get, join, put_json


# Metrics counters taken before and after the job's shuffles (see _lost); "docs"
# and "kept" are CleanFn's own counters.
HITS_OUT, HITS_IN, WRITTEN = "decontam:ngram_hits_emitted", "decontam:ngram_hits_summed", "decontam:docs_written"


def _hit_keys(doc, dec: Decontaminator):
    """Pass 1: a document -> (benchmark n-gram hash, 1) for each distinct one it contains."""
    keys = dec.hit_keys(doc).tolist()
    if keys:
        metric(HITS_OUT, len(keys))
    for key in keys:
        yield key, 1


class CleanFn(beam.DoFn):
    """Pass 2: a document -> its cleaned version (or nothing); a partial report per bundle."""

    def __init__(self, dec: Decontaminator):
        self.dec = dec

    def setup(self):
        self._ignoring = False

    def start_bundle(self):
        self.dec.take_report()  # a failed bundle's partial report is not this bundle's
        self.counters = BeamCounters()

    def process(self, doc, frequent):
        if not self._ignoring:  # the side input is the same for the whole job
            self.dec.ignore(frequent)
            self._ignoring = True
        self.counters.inc("docs")
        out = self.dec.clean_document(doc, self.counters)
        if out is not None:
            self.counters.inc("kept")
            yield out

    def finish_bundle(self):
        yield beam.pvalue.TaggedOutput("report", GlobalWindows.windowed_value(
            (self.dec.take_report(), self.counters.as_dict())))


class MergeReportsFn(beam.CombineFn):
    """Partial (report, counters) pairs -> one."""

    def create_accumulator(self):
        return {}, {}

    def add_input(self, acc, item):
        return self.merge_accumulators([acc, item])

    def merge_accumulators(self, accs):
        report, counts = {}, []
        for rep, cnt in accs:
            merge_reports(report, rep)
            counts.append(cnt)
        return report, merge_counts(counts)

    def extract_output(self, acc):
        return acc


def _frequent(kv: tuple[int, int], max_doc_freq: int) -> bool:
    _, docs = kv
    metric(HITS_IN, docs)
    return docs > max_doc_freq


def _write_shard(element: tuple[int, list], out: str) -> int:
    shard, docs = element
    put_documents(join(out, "docs", shard_name(shard)), docs)
    metric(WRITTEN, len(docs))
    return shard


def _lost(counters: dict | None, report_counts: dict) -> dict | None:
    """What went missing in the shuffles (all 0 on a sound run), None when the runner
    reports no counters: benchmark n-gram hits between emitted and summed (a lost hit
    can hide a frequent n-gram, so text would be cut that one machine keeps),
    documents between kept and written, and documents between those cleaned and
    those the combined report counts (a lost partial report)."""
    if counters is None:
        return None
    return {"ngram_hits": counters.get(HITS_OUT, 0) - counters.get(HITS_IN, 0),
            "documents": counters.get("kept", 0) - counters.get(WRITTEN, 0),
            "report_documents": counters.get("docs", 0) - report_counts.get("docs", 0)}


def _exit_status(result: dict) -> int:
    return 1 if say_lost("pipelines.decontam", result.get("lost_elements"), "the output is not to be trusted") else 0


def build(p: beam.Pipeline, inputs: list[str], dec: Decontaminator, out: str, shards: int, top: int = 50):
    """Add both passes to ``p``; the report lands in OUT/report.json."""
    docs = p | "Inputs" >> beam.Create(sorted(inputs)) | "Read" >> beam.ParDo(ReadDocsFn("decontam"))
    frequent = (docs
                | "HitKeys" >> beam.FlatMap(_hit_keys, dec)
                | "DocFreq" >> beam.CombinePerKey(sum)
                | "Frequent" >> beam.Filter(_frequent, dec.config.max_doc_freq)
                | "Key" >> beam.Keys())
    cleaned = docs | "Clean" >> beam.ParDo(CleanFn(dec), beam.pvalue.AsList(frequent)).with_outputs(
        "report", main="docs")
    (cleaned.docs
     | "ByShard" >> ByShard(shards)
     | "Write" >> beam.Map(_write_shard, out))
    names = dec.names

    def write_report(acc, path=join(out, "report.json")):
        report, counts = acc
        # benchmarks nothing collided with still get their (zero) row
        report = merge_reports(empty_report(names), report)
        put_json(path, {"benchmarks": summarize_report(report, top), "counters": counts})

    (cleaned.report | "MergeReports" >> beam.CombineGlobally(MergeReportsFn())
     | "WriteReport" >> beam.Map(write_report))


def _parser():
    ap = job_parser("pipelines.decontam", __doc__)
    ap.add_argument("--benchmark", action="extend", nargs="+", required=True, help="benchmark JSONL files")
    ap.add_argument("--input", action="extend", nargs="+", required=True, help="documents files or globs")
    ap.add_argument("--out", required=True, help="output directory (local or gs://)")
    ap.add_argument("--shards", type=int, default=0, help="output Parquet shards (default: one per 256 MB of input)")
    ap.add_argument("--top", type=int, default=50, help="colliding n-grams listed per benchmark")
    ap.add_argument("-q", "--quiet", action="store_true")
    add_runner_args(ap, workers=1)
    return ap


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Run the job; returns OUT/report.json's content."""
    args, beam_args = _parser().parse_known_args(argv)
    inputs = expand(args.input)
    dec = Decontaminator.build(load_benchmarks(args.benchmark), DecontamConfig())
    if not args.quiet:
        print(f"decontam: {dec.size:,} benchmark {dec.config.n}-grams from {len(dec.names)} benchmark(s); "
              f"{len(inputs)} input file(s)", file=sys.stderr, flush=True)
    p = make_pipeline(args, beam_args, test_pipeline)
    out = args.out
    with job_lock(out, "pipelines.decontam"):
        # a rerun replaces the previous output instead of mixing shard counts
        old = join(out, "docs")
        if FileSystems.exists(old):
            FileSystems.delete([old])
        build(p, inputs, dec, out, args.shards or auto_shards(inputs), args.top)
        run_result = p.run()
        run_result.wait_until_finish()
        result = json.loads(get(join(out, "report.json")).decode())
        totals = counter_totals(run_result)
        result["lost_elements"] = _lost(totals, result["counters"])
        if totals is not None:
            result["counters"].update({name: totals.get(name, 0) for name in (HITS_OUT, HITS_IN, WRITTEN)})
        put_json(join(out, "report.json"), result)
        if not args.quiet:
            c = result["counters"]
            print(f"decontam: {c.get('docs', 0)} documents, {c.get('decontam:touched', 0)} "
                  f"touched, {c.get('kept', 0)} kept -> {out}", file=sys.stderr)
        return result


def main(argv=None) -> int:
    return run_main("pipelines.decontam", run, argv, errors=(SourceError, BenchmarkError, OSError, ValueError),
                    status=_exit_status)


if __name__ == "__main__":
    sys.exit(main())
