"""Runner options shared by every Beam job: which runner, and what it needs.

    --runner DirectRunner|DataflowRunner|PortableRunner  --workers N (DirectRunner processes)
    --project --region --temp (Dataflow)  --job-endpoint host:port (PortableRunner)

Options a job does not know are passed on to Beam unchanged, so any runner
flag (``--max_num_workers``, ``--machine_type``, ...) works too.
"""

from __future__ import annotations

import argparse
import os

from apache_beam.options.pipeline_options import PipelineOptions

from curate.ingest.sources import SourceError


def add_runner_args(ap: argparse.ArgumentParser, workers: int | None = None) -> None:
    """Add the runner option group; ``workers`` is the DirectRunner default (all cores)."""
    run = ap.add_argument_group("runner")
    run.add_argument("--runner", default="DirectRunner", help="DirectRunner, DataflowRunner, PortableRunner, ...")
    run.add_argument("--workers", type=int, default=workers or os.cpu_count() or 1,
                     help="DirectRunner processes (1: in this process)")
    run.add_argument("--project", help="Dataflow: GCP project")
    run.add_argument("--region", help="Dataflow: region")
    run.add_argument("--temp", help="Dataflow: temp/staging location (gs://...)")
    run.add_argument("--job-endpoint", help="PortableRunner: job service (host:port), e.g. a Flink/Spark job server")


def pipeline_options(args, beam_args: list[str]) -> PipelineOptions:
    """PipelineOptions for the runner the arguments name, plus Beam's own flags.

    >>> import argparse
    >>> ap = argparse.ArgumentParser(); add_runner_args(ap, workers=2)
    >>> pipeline_options(ap.parse_args([]), []).get_all_options()["direct_num_workers"]
    2
    """
    opts = ["--runner", args.runner]
    if args.runner in ("DirectRunner", "direct"):
        if args.workers > 1:
            opts += [f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"]
        else:
            opts += ["--direct_running_mode=in_memory"]
    elif args.runner == "DataflowRunner":
        for flag, value in (("--project", args.project), ("--region", args.region), ("--temp_location", args.temp)):
            if value:
                opts += [flag, value]
    elif args.runner == "PortableRunner":
        if not args.job_endpoint:
            raise SourceError("PortableRunner needs --job-endpoint host:port")
        opts += ["--job_endpoint", args.job_endpoint, "--environment_type", "LOOPBACK"]
    return PipelineOptions(opts + beam_args)
