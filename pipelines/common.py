"""What every Beam job shares: counters, reading and writing documents, the runner, the command.

- :data:`NAMESPACE` and :class:`BeamCounters`: a :class:`curate.core.counters.Counters`
  whose increments also go to Beam Metrics; a DoFn passes one to the library
  functions it calls, as a test passes a plain ``Counters``.
- :class:`ReadDocsFn`: a documents file (local or gs://) -> its Documents.
- :class:`ByShard`, :func:`put_documents`, :func:`auto_shards`: documents out as
  ``part-NNNNN.parquet`` shards, the same files on every rerun and runner.
- :func:`add_runner_args`, :func:`pipeline_options`, :func:`make_pipeline`: which runner and
  what it needs (``--runner DirectRunner|DataflowRunner|PortableRunner``, ``--workers N``,
  ``--project --region --temp`` for Dataflow, ``--job-endpoint host:port`` for a portable
  job server). Options a job does not know go to Beam unchanged, so any runner
  flag (``--max_num_workers``, ``--machine_type``, ...) works too.
- :func:`job_parser` and :func:`run_main`: a job's command line and its exit
  status (expected errors are one line on stderr, exit status 2, no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import operator
import os
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from curate.core.counters import Counters
from curate.core.document import (
    Document,
    DocumentFormatError,
    DocumentWriter,
    read_documents,
)
from curate.core.fields import SettingsError
from curate.core.files import OutputError, output_lock
from curate.ingest.sources import SourceError
from pipelines import direct_fix
from pipelines.fileio import local_copy, put

NAMESPACE = "curate"


# --------------------------------------------------------------------------- counters

@functools.lru_cache(maxsize=None)
def _metric(name: str):
    # a Metrics counter finds the running bundle's container on every inc, so
    # one object per name serves every bundle and thread
    return Metrics.counter(NAMESPACE, name)


def metric(name: str, n: int = 1) -> None:
    """Add ``n`` to the Beam Metrics counter ``name`` (for counts no stats file holds)."""
    _metric(name).inc(n)


def counter_totals(result) -> dict[str, int] | None:
    """{name: total over all steps} of this job's Metrics counters (committed values,
    else attempted) from a finished run's result; None when the runner reports none.

    A job compares counts taken on both sides of a shuffle with these (see
    ``pipelines.dedup``): Beam 2.77's DirectRunner in multi_processing mode was
    seen to drop elements of shuffles of several hundred MB without an error (a
    race that ``pipelines.direct_fix`` now guards), so a job that moves that much
    checks that nothing went missing."""
    try:
        found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    except (AttributeError, NotImplementedError, KeyError) as exc:
        print(f"warning: the runner reports no metrics ({type(exc).__name__}: {exc}); "
              "element counts not checked", file=sys.stderr)
        return None
    totals: dict[str, int] = {}
    for m in found:
        value = m.committed if m.committed is not None else m.attempted
        totals[m.key.metric.name] = totals.get(m.key.metric.name, 0) + int(value or 0)
    return totals


class BeamCounters(Counters):
    """:class:`Counters` whose every increment also goes to ``Metrics.counter(NAMESPACE, name)``:
    the job writes the totals it reads back to its stats files, the runner's UI
    shows them live. Outside a running pipeline the Metrics side does nothing.

    >>> c = BeamCounters(); c.inc("kept"); c.update({"dropped:short": 2})
    >>> c.as_dict()
    {'dropped:short': 2, 'kept': 1}
    """

    def inc(self, name: str, n: int = 1) -> None:
        super().inc(name, n)
        metric(name, n)


# --------------------------------------------------------------------------- documents in

class ReadDocsFn(beam.DoFn):
    """A documents file -> its Documents; bad lines are counted and skipped, and an
    unreadable file is counted and named on stderr while its readable part is kept.
    ``job`` names the counters (``<job>:input_errors``, ``<job>:files_failed``)."""

    def __init__(self, job: str):
        self.job = job

    def process(self, path: str):
        yield from read_counted(path, self.job)


def read_counted(path: str, job: str) -> Iterator[Document]:
    """The documents of one file (local or any Beam filesystem), with ReadDocsFn's rules:
    bad lines counted (``<job>:input_errors``) and skipped, an unreadable file counted
    (``<job>:files_failed``) and named on stderr, its readable part kept."""
    errors: list = []
    try:
        with local_copy(path) as local:
            yield from read_documents(local, errors=errors)
    except (DocumentFormatError, OSError) as exc:
        metric(f"{job}:files_failed")
        say_error(f"pipelines.{job}", exc)
    finally:
        metric(f"{job}:input_errors", len(errors))


# --------------------------------------------------------------------------- documents out

# one output shard per this much input: a worker holds one shard's documents
SHARD_INPUT_BYTES = 256 << 20


def auto_shards(paths: list[str]) -> int:
    """Output shards for these inputs (local or any Beam filesystem): one per 256 MB."""
    total = sum(m.size_in_bytes for r in FileSystems.match(paths) for m in r.metadata_list) if paths else 0
    return max(1, -(-total // SHARD_INPUT_BYTES))


def shard_name(shard: int) -> str:
    """>>> shard_name(3)
    'part-00003.parquet'
    """
    return f"part-{shard:05d}.parquet"


def _with_shard(doc: Document, shards: int) -> tuple[int, Document]:
    # a hash of the id, not of run order: a rerun writes each document to the same shard
    return zlib.crc32(doc.id.encode()) % shards, doc


def _sorted_by_id(shard: int, docs: Iterable[Document]) -> tuple[int, list[Document]]:
    return shard, sorted(docs, key=operator.attrgetter("id"))


@beam.ptransform_fn
def ByShard(docs, shards: int):
    """Documents -> ``(shard, documents sorted by id)`` for ``shards`` shards, chosen by id."""
    return (docs
            | "Shard" >> beam.Map(_with_shard, shards)
            | "Group" >> beam.GroupByKey()
            | "SortById" >> beam.MapTuple(_sorted_by_id))


def put_documents(dest: str, docs: Iterable[Document]) -> None:
    """Documents as one Parquet file at ``dest`` (local or gs://): built on the worker's
    disk, since Parquet wants a seekable file, then put there with temp+rename."""
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "part.parquet")
        with DocumentWriter(local) as w:
            for d in docs:
                w.write(d)
        put(dest, Path(local).read_bytes())


# --------------------------------------------------------------------------- runner

# the names --runner accepts for Beam's DirectRunner (the local one: --workers applies)
DIRECT_RUNNERS = ("DirectRunner", "direct")


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


def starts_worker_processes(args) -> bool:
    """Whether the runner the arguments name is the DirectRunner with worker processes
    (its multi_processing mode), the case :mod:`pipelines.direct_fix` is for."""
    return args.runner in DIRECT_RUNNERS and args.workers > 1


def pipeline_options(args, beam_args: list[str]) -> PipelineOptions:
    """PipelineOptions for the runner the arguments name, plus Beam's own flags.

    >>> ap = argparse.ArgumentParser(); add_runner_args(ap, workers=2)
    >>> pipeline_options(ap.parse_args([]), []).get_all_options()["direct_num_workers"]
    2
    """
    opts = ["--runner", args.runner]
    if starts_worker_processes(args):
        opts += [f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"]
    elif args.runner in DIRECT_RUNNERS:
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


def make_pipeline(args, beam_args: list[str], test_pipeline: beam.Pipeline | None = None) -> beam.Pipeline:
    """The pipeline a job runs on: ``test_pipeline`` when a test injects one, else one for
    the runner :func:`add_runner_args`' options name."""
    if test_pipeline:
        return test_pipeline
    if starts_worker_processes(args):
        # worker processes: the runner's data plane drops chunks without the guard,
        # and the processes keep what they free without the allocator settings
        direct_fix.install()
        direct_fix.release_memory()
    return beam.Pipeline(options=pipeline_options(args, beam_args))


# --------------------------------------------------------------------------- the command

def job_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A job's parser, described by the first paragraph of its module docstring."""
    return argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])


def job_lock(out: str, job: str):
    """Hold a local output directory for one run (curate.core.files.output_lock): a
    second run into it stops with one line instead of interleaving its files.

    Object stores (gs://) have no exclusive create through Beam's FileSystems, so
    there is no lock there; what keeps two Dataflow jobs with one OUT apart is
    the layout: every output file is written under a unique temp name and renamed,
    and each is a function of its input and the job's settings alone.
    """
    return output_lock(out, job) if "://" not in out else contextlib.nullcontext()


def say_error(prog: str, message) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)


def say_lost(prog: str, lost: dict | None, consequence: str) -> bool:
    """Whether a job's shuffles lost anything (``lost``: {what: how many} from counts
    taken on both sides, None when the runner reports no counters); if so, one error
    line naming each count, ``consequence`` and the remedy."""
    if not lost or not any(lost.values()):
        return False
    counts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in lost.items())
    say_error(prog, f"the runner lost elements in a shuffle ({counts}), so {consequence}; with the DirectRunner "
                    "rerun with --workers 1 (one process: no data-plane transfer) or use a distributed runner")
    return True


def run_main(prog: str, run: Callable, argv: list[str] | None = None,
             errors: tuple[type[BaseException], ...] = (SourceError, SettingsError),
             status: Callable[[object], int] = lambda result: 0) -> int:
    """A job's ``main``: ``run(argv)``, then ``status(result)`` as the exit status.

    An expected error (one of ``errors``: bad input, settings or location) is
    one line on stderr naming the job, and exit status 2.
    """
    # Beam's worker processes log every option they discard at WARNING; keep
    # the terminal for our progress lines and errors.
    # A worker's exception is logged by the runner and then re-raised to us: we
    # report it (one line, or the traceback of a real bug), so its log copy is noise.
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    try:
        result = run(argv)
    except errors as exc:
        say_error(prog, exc)
        return 2
    except OutputError as exc:
        say_error(prog, exc)
        return 1
    except Exception as exc:
        # Beam's runners re-raise a worker's error wrapped (RuntimeError naming the
        # step); an output that cannot be written is still one line, not a traceback.
        found = _wrapped_output_error(exc)
        if found is None:
            raise
        say_error(prog, found)
        return 1
    return status(result)


def _wrapped_output_error(exc: BaseException) -> str | None:
    """The message of an OutputError (or a full-disk OSError) inside ``exc``, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OutputError):
            return str(exc)
        text = str(exc)
        for marker in ("OutputError: ", "[Errno 28] "):
            if marker in text:
                return text[text.index(marker) + (len(marker) if marker.startswith("Output") else 0):].split("\n")[0]
        exc = exc.__cause__ or exc.__context__
    return None
