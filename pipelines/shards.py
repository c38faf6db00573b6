"""The token-shard job on Beam: the same shards as ``curate shards build``, encoded in parallel.

    python -m pipelines.shards --source 'cc=out/CC-MAIN-2020-34/filter/docs/*.parquet:0.6' \\
        --source 'books=books/*.parquet:0.4' --out out/shards --workers 8

Stages::

    driver: check the mixture, train (or reuse) the tokenizer, skip finished sources
    (source, file number, file) -> encode the file into a part (curate.mixture.shards.write_part)
        -> GroupByKey(source) -> parts in file order through the shard writer
           (curate.mixture.shards.assemble_parts) -> NAME/done.json
    driver: manifest.json from every source's done.json (curate.mixture.build.write_manifest)

Encoding, the expensive step, runs one input file per worker task. Assembly is
a sequential copy per source: documents reach the shard writer in the same
order as on one machine, so the shards, their checksums and the manifest are
byte-identical to ``curate shards build`` on the same input (tests check it).
Reruns skip sources whose ``done.json`` matches; a failed job leaves no shard
under a final name (parts and shards are written under temporary names).

The output folder must be on a file system the driver and workers share (a
local disk for DirectRunner; NFS/Filestore or a FUSE-mounted bucket on a
cluster): tokenizer training and the manifest run in the driver, which
reads the inputs directly.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import apache_beam as beam

from curate.core.document import DocumentFormatError, read_documents
from curate.ingest.sources import SourceError
from curate.mixture.build import (
    BuildPlan,
    finish_source,
    format_table,
    prepare,
    write_manifest,
)
from curate.mixture.options import add_build_args, config_from_args
from curate.mixture.shards import assemble_parts, write_part
from curate.mixture.tokenizer import Tokenizer
from pipelines.common import add_runner_args, job_lock, job_parser, make_pipeline, metric, run_main


class _PlanFn(beam.DoFn):
    """A step of the build: carries the plan, loads its tokenizer once per worker."""

    def __init__(self, plan: BuildPlan):
        self.plan = plan

    def setup(self):
        self.tok = Tokenizer.load(self.plan.tokenizer_path)


class EncodeFileFn(_PlanFn):
    """(source, file number, path) -> (source, (file number, part prefix)); counts tokens."""

    def process(self, element):
        name, number, path = element
        src = self.plan.source(name)
        prefix = str(self.plan.out / "_parts" / name / f"part-{number:05d}")
        counts = write_part(read_documents(path, text_field=src.text_field), self.tok, prefix,
                            self.plan.config.val_fraction, self.plan.config.batch_docs)
        for split, n in counts["tokens"].items():
            metric(f"shards:tokens:{split}", n)
        metric("shards:files")
        yield name, (number, prefix)


class AssembleFn(_PlanFn):
    """(source, parts) -> the source's shards and done.json; the parts are then removed."""

    def process(self, element):
        name, parts = element
        prefixes = [prefix for _, prefix in sorted(parts)]
        if len(prefixes) != len(self.plan.files[name]):
            raise RuntimeError(f"{name}: {len(prefixes)} parts for {len(self.plan.files[name])} input files")
        res = assemble_parts(prefixes, self.plan.out / name, self.plan.out, self.tok.dtype,
                             self.tok.eot_id, self.plan.config.shard_tokens)
        finish_source(self.plan, name, res, log=lambda m: print(f"shards: {m}", file=sys.stderr, flush=True))
        shutil.rmtree(self.plan.out / "_parts" / name, ignore_errors=True)
        yield name


def build(p: beam.Pipeline, plan: BuildPlan) -> None:
    """Add the encode and assemble stages for ``plan.pending`` to ``p``."""
    # absolute input paths: workers may run in another directory
    work = [(name, i, os.path.abspath(path)) for name in plan.pending for i, path in enumerate(plan.files[name])]
    (p
     | "Files" >> beam.Create(work)
     # spread the files over workers instead of keeping Create's single bundle
     | "Spread" >> beam.Reshuffle()
     | "Encode" >> beam.ParDo(EncodeFileFn(plan))
     | "BySource" >> beam.GroupByKey()
     | "Assemble" >> beam.ParDo(AssembleFn(plan)))


def _parser():
    ap = job_parser("pipelines.shards", __doc__)
    add_build_args(ap)
    add_runner_args(ap)
    return ap


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Run the job; returns the manifest. ``test_pipeline`` lets tests inject one."""
    args, beam_args = _parser().parse_known_args(argv)
    if "://" in args.out:
        raise SourceError(f"--out {args.out}: the shard job writes to a shared file system path, "
                          "not an object store URL (mount the bucket, or copy the shards afterwards)")
    with job_lock(args.out, "pipelines.shards"):
        config = config_from_args(args)
        log = (lambda m: None) if args.quiet else (lambda m: print(f"shards: {m}", file=sys.stderr, flush=True))
        # an absolute output folder: workers may run in another directory (the
        # manifest lists shard paths relative to it, so nothing else changes)
        plan = prepare(config, Path(args.out).resolve(), tokenizer_path=args.tokenizer, log=log)
        if plan.pending:
            n_files = sum(len(plan.files[n]) for n in plan.pending)
            log(f"{len(plan.pending)} source(s) to write ({', '.join(plan.pending)}), {n_files} input file(s); "
                f"encoder: {Tokenizer.load(plan.tokenizer_path).backend}")
            p = make_pipeline(args, beam_args, test_pipeline)
            build(p, plan)
            p.run().wait_until_finish()
            shutil.rmtree(plan.out / "_parts", ignore_errors=True)
        manifest = write_manifest(plan)
        if not args.quiet:
            print(format_table(manifest["epochs_table"], config.budget_tokens, config.max_epochs))
            print(f"manifest: {args.out.rstrip('/')}/manifest.json")
        return manifest


def main(argv=None) -> int:
    return run_main("pipelines.shards", run, argv,
                    errors=(SourceError, OSError, ValueError, DocumentFormatError, json.JSONDecodeError))


if __name__ == "__main__":
    sys.exit(main())
