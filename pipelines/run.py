"""One run, one folder: the stages of ``make pretrain`` in order, each reading only the previous one's output.

    python -m pipelines.run --run out/sample --mixture mixtures/sample.toml filter -- --input sample/*.warc.gz ...
    python -m pipelines.run --run out/sample dedup
    python -m pipelines.run --run out/sample decontam --benchmark extra.jsonl
    python -m pipelines.run --run out/sample shards -- --preset tiny
    python -m pipelines.run --run out/sample train --preset tiny -- --max_steps=20
    python -m pipelines.run --run out/sample report

The run folder::

    RUN/filter/                  the filter job (pipelines.filter): docs/, stats/, errors/, rejected/, ...
    RUN/dedup/<crawl>/           the crawl's near-duplicate removal (pipelines.dedup): docs/, kept/, stats.json
    RUN/dedup/<source>/          each other mixture source as documents (source.parquet, for a reference
                                 format), deduplicated against the crawl's kept pages (--against)
    RUN/decontam/<source>/       every source decontaminated (pipelines.decontam): docs/, report.json
    RUN/shards/                  the weighted token shards (pipelines.shards): manifest.json, <source>/
    RUN/train/                   the GPT (train.train) and its evaluation (train.eval): eval/eval.json
    RUN/report.html              everything above on one page (curate.report), rebuilt after each stage
    RUN/<stage>/stage.json       the stage's completion marker: its steps, commands and wall times

Each stage is one or more steps, and each step is one command run as a
subprocess (the Beam jobs with the same runner options as the filter job,
``--runner``, ``--workers``, ``--project``, ``--region``, ``--temp``,
``--job-endpoint``, and any Beam flag after ``--``). A finished step leaves
``step.json`` with its command; an interrupted stage reruns only the steps
that have none, whose command changed, or whose inputs are newer. The stage
marker is written last, after every step succeeded; ``make`` chains the
stages on these markers.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from curate.core.fields import SettingsError
from curate.core.files import write_json
from curate.core.layout import input_key, output_path
from curate.mixture.sources import Mixture, load_mixture
from pipelines.common import DIRECT_RUNNERS, say_error

STAGES = ("filter", "dedup", "decontam", "shards", "train")
PREVIOUS = dict(zip(STAGES[1:], STAGES[:-1]))
REPO = Path(__file__).resolve().parents[1]
BUNDLED_BENCHMARKS = sorted(str(p) for p in (REPO / "sample" / "eval").glob("*.jsonl"))
LAMBADA = REPO / "sample" / "eval" / "lambada_openai_test.jsonl"
GSM8K = REPO / "sample" / "eval" / "gsm8k_test.jsonl"
PROG = "pipelines.run"


class StageError(RuntimeError):
    """A step failed or a stage's input is missing: one line, exit status 1 (2 for settings)."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _files(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))


def _size(paths: list[str]) -> int:
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _eta(done_bytes: int, total: int, busy: float, steps_done: int, steps: int) -> float | None:
    """Seconds left: by input bytes on large inputs once a tenth of them is done (time
    follows size), else by steps (small inputs: each Beam job's start-up dominates)."""
    if not steps_done or steps_done >= steps:
        return None if not steps_done else 0.0
    if total >= 50e6 and done_bytes >= total / 10:
        return (total - done_bytes) * busy / done_bytes
    return (steps - steps_done) * busy / steps_done


class Step:
    """One command of a stage: what it reads (for freshness and the ETA) and where its marker goes."""

    def __init__(self, name: str, command, inputs: list[str], marker: Path | None):
        # command: a list, or a function giving one when the step is reached
        # (a step may need files an earlier step of the stage writes)
        self.name, self._command, self.inputs, self.marker = name, command, inputs, marker

    @property
    def command(self) -> list[str]:
        return self._command() if callable(self._command) else self._command

    def fresh(self) -> bool:
        """Done before with the same command and no input newer than its marker."""
        if self.marker is None or not self.marker.exists():
            return False
        try:
            done = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        if done.get("command") != self.command:
            return False
        stamp = self.marker.stat().st_mtime
        return all(os.path.getmtime(p) <= stamp for p in self.inputs if os.path.exists(p))


class StageRunner:
    """Runs a stage's steps in order, with progress lines (MB done, MB/s, ETA) and the marker."""

    def __init__(self, run: Path, stage: str, every: float = 30.0):
        self.run, self.stage, self.every = run, stage, every
        self.records: list[dict] = []
        self.start = time.monotonic()

    def log(self, msg: str) -> None:
        print(f"{self.stage}: {msg}", file=sys.stderr, flush=True)

    def execute(self, steps: list[Step]) -> None:
        fresh = [s.fresh() for s in steps]
        # once a step runs, every later one runs too: it may read what that step wrote
        first = fresh.index(False) if False in fresh else len(steps)
        todo = steps[first:]
        total = sum(_size(s.inputs) for s in todo) or 1
        done_bytes, busy = 0, 0.0
        self.log(f"{len(steps)} step(s), {first} already done, {len(todo)} to run ({_mb(total)} of input)")
        for i, step in enumerate(todo, 1):
            size = _size(step.inputs)
            self.log(f"step {i}/{len(todo)} {step.name}: {_mb(size)} of input")
            command = step.command
            t0 = time.monotonic()
            status = self._run(step.name, command, i, len(todo), done_bytes, total, busy)
            took = time.monotonic() - t0
            self.records.append({"name": step.name, "command": command, "seconds": round(took, 3),
                                 "status": status, "input_bytes": size})
            if status != 0:
                raise StageError(f"step {step.name} failed (exit status {status}): {shlex.join(command)}")
            if step.marker is not None:
                step.marker.parent.mkdir(parents=True, exist_ok=True)
                write_json(step.marker, {"name": step.name, "command": command, "seconds": round(took, 3),
                                         "finished": _now()})
            done_bytes += size
            total = max(total, done_bytes)  # an input an earlier step wrote was not there to count
            busy += took
            eta = _eta(done_bytes, total, busy, i, len(todo))
            eta = f", ETA {eta:.0f}s" if eta is not None else ""
            # a step whose inputs are not local files (the filter job reads a crawl) has no
            # sizes to show; the job prints its own progress
            rate = (f"{_mb(done_bytes)}/{_mb(total)}, {done_bytes / 1e6 / max(busy, 1e-9):.2f} MB/s"
                    if done_bytes else f"step {i} of {len(todo)}")
            self.log(f"step {i}/{len(todo)} {step.name} done in {took:.1f}s ({rate}{eta})")

    def _run(self, name: str, command: list[str], i: int, n: int, done_bytes: int, total: int,
             busy: float) -> int:
        stop = threading.Event()

        def beat():
            t0 = time.monotonic()
            while not stop.wait(self.every):
                el = time.monotonic() - t0
                left = _eta(done_bytes, total, busy, i - 1, n)
                eta = f", stage ETA ~{max(left - el, 0):.0f}s" if left is not None else ""
                self.log(f"step {i}/{n} {name} running {el:.0f}s{eta} "
                         f"(stage: {time.monotonic() - self.start:.0f}s)")

        watcher = threading.Thread(target=beat, daemon=True)
        watcher.start()
        try:
            # the repository root as the working directory: relative paths in
            # commands and the mixture file mean the same thing from anywhere
            return subprocess.call(command, cwd=REPO)
        finally:
            stop.set()

    def finish(self, extra: dict | None = None) -> dict:
        marker = {"stage": self.stage, "complete": True, "seconds": round(time.monotonic() - self.start, 3),
                  "finished": _now(), "steps": self.records, **(extra or {})}
        # a stage that had nothing left to do keeps the timings of the run that did the work
        old = self.run / self.stage / "stage.json"
        if not self.records and old.exists():
            try:
                prev = json.loads(old.read_text())
                marker["steps"], marker["seconds"] = prev.get("steps", []), prev.get("seconds", 0)
            except (OSError, ValueError):
                pass
        write_json(old, marker)
        return marker


# --------------------------------------------------------------------------- the stages

def _py(*module_and_args: str) -> list[str]:
    return [sys.executable, "-m", *module_and_args]


def runner_args(args, one_process: bool = False) -> list[str]:
    """The runner options every Beam stage gets, as on the filter job's command line.

    ``one_process``: on the DirectRunner, one worker whatever ``--workers`` says. Used for
    dedup, whose memory is lowest in one process: on the 1M scale corpus one process
    took 29.5 min and 2.4 GB, two workers 16.5 min and 3.8 GB (README, dedup). Run
    ``python -m pipelines.dedup --workers 2`` directly for the faster one.

    >>> from argparse import Namespace
    >>> a = Namespace(runner="DirectRunner", workers=4, project=None, region=None, temp=None, job_endpoint=None)
    >>> runner_args(a), runner_args(a, one_process=True)
    (['--runner', 'DirectRunner', '--workers', '4'], ['--runner', 'DirectRunner', '--workers', '1'])
    """
    out = ["--runner", args.runner]
    if one_process and args.runner in DIRECT_RUNNERS:
        out += ["--workers", "1"]
    elif args.workers:
        out += ["--workers", str(args.workers)]
    for flag in ("project", "region", "temp", "job_endpoint"):
        value = getattr(args, flag)
        if value:
            out += [f"--{flag.replace('_', '-')}", value]
    return out


def _abs(run: Path, *parts: str) -> str:
    return str((run / Path(*parts)).resolve())


def filter_steps(run: Path, args, extra: list[str]) -> list[Step]:
    # the filter job skips inputs whose marker says complete, so it is always run
    # (no step marker): a rerun after an interrupted or partly failed job redoes
    # only what is missing
    cmd = _py("pipelines.filter", "--out", _abs(run, "filter"), *runner_args(args), *extra)
    return [Step("filter", cmd, [], None)]


def filter_outputs(run: Path) -> list[str]:
    """The documents files of the inputs the last filter run was given (its config.json), not
    whatever else an earlier run with other inputs left in the folder."""
    try:
        inputs = json.loads((run / "filter" / "config.json").read_text())["inputs"]
    except (OSError, ValueError, KeyError) as exc:
        raise StageError(f"{run}/filter/config.json: cannot read the filter job's inputs ({exc})") from exc
    paths = [output_path(_abs(run, "filter"), "docs", input_key(loc)) for loc in inputs]
    return sorted(p for p in paths if os.path.exists(p))


def dedup_steps(run: Path, mix: Mixture, args, extra: list[str]) -> list[Step]:
    crawl = mix.crawl.name
    docs = filter_outputs(run)
    if not docs:
        raise StageError(f"{run}/filter/docs/ holds no documents files: run the filter stage first")
    steps = [Step(crawl, _py("pipelines.dedup", "--input", *docs, "--out", _abs(run, "dedup", crawl),
                             *runner_args(args, one_process=True), *extra),
                  docs, run / "dedup" / crawl / "step.json")]
    kept = _abs(run, "dedup", crawl, "kept", "*.parquet")
    for src in mix.references:
        files = src.files(REPO)
        folder = run / "dedup" / src.name
        if src.kind == "documents":
            documents = files
        else:
            documents = [_abs(run, "dedup", src.name, "source.parquet")]
            convert = _py("cli", "reference", "--kind", src.kind, *files, "-o", documents[0],
                          "--source", src.name, "--text-field", src.text_field, "-q")
            steps.append(Step(f"{src.name}:read", convert, files, folder / "read.json"))
        # the crawl's kept pages as --against: a reference document that copies one is dropped.
        # Its files are only known once the crawl step ran.
        def cmd(documents=documents, folder=folder):
            against = _files(kept)  # empty when no crawl page survived: dedup within the source only
            return _py("pipelines.dedup", "--input", *documents, *(["--against", *against] if against else []),
                       "--out", str(folder.resolve()), *runner_args(args, one_process=True), *extra)
        # the crawl step's marker as an input: a rerun crawl dedup redoes this step
        steps.append(Step(src.name, cmd, [*documents, str(run / "dedup" / crawl / "step.json")],
                          folder / "step.json"))
    return steps


def decontam_steps(run: Path, mix: Mixture, args, extra: list[str]) -> list[Step]:
    benchmarks = [*BUNDLED_BENCHMARKS, *args.benchmark]
    steps = []
    for src in mix.sources:
        kept = _files(_abs(run, "dedup", src.name, "kept", "*.parquet"))
        if not kept:
            raise StageError(f"{run}/dedup/{src.name}/kept/ holds no documents (nothing survived dedup, "
                             f"or the dedup stage has not run)")
        cmd = _py("pipelines.decontam", "--benchmark", *benchmarks, "--input", *kept,
                  "--out", _abs(run, "decontam", src.name), *runner_args(args), *extra)
        steps.append(Step(src.name, cmd, kept + benchmarks, run / "decontam" / src.name / "step.json"))
    return steps


def shards_steps(run: Path, mix: Mixture, args, extra: list[str]) -> list[Step]:
    sources, inputs = [], []
    for src in mix.sources:
        docs = _files(_abs(run, "decontam", src.name, "docs", "*.parquet"))
        if not docs:
            raise StageError(f"{run}/decontam/{src.name}/docs/ holds no documents (run the decontam stage)")
        inputs += docs
        # the manifest lists these paths as the source's inputs
        rel = os.path.relpath(run / "decontam" / src.name / "docs", REPO)
        sources += ["--source", f"{src.name}={rel}/*.parquet:{src.weight:g}"]
    # pipelines.shards keeps its own done.json per source (inputs digest), so it
    # is always run and skips what is current
    cmd = _py("pipelines.shards", *sources, "--out", _abs(run, "shards"), *runner_args(args), *extra)
    return [Step("shards", cmd, inputs, None)]


def train_steps(run: Path, args, extra: list[str]) -> list[Step]:
    manifest = _abs(run, "shards", "manifest.json")
    if not os.path.exists(manifest):
        raise StageError(f"{manifest}: no manifest (run the shards stage)")
    # --resume: an interrupted run continues from its last checkpoint
    train = _py("train.train", "--manifest", manifest, "--out", _abs(run, "train"), "--preset", args.preset,
                "--resume", *extra)
    evaluate = _py("train.eval", "--checkpoint", _abs(run, "train", "ckpt.pt"), "--out", _abs(run, "train", "eval"),
                   "--lambada", args.lambada, "--gsm8k", args.gsm8k, *shlex.split(args.eval_args))
    return [Step("train", train, [manifest], None), Step("eval", evaluate, [], None)]


# --------------------------------------------------------------------------- the command

def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                 epilog="Arguments after `--` go to the stage's own command.")
    ap.add_argument("stage", choices=[*STAGES, "report"])
    ap.add_argument("--run", required=True, help="the run folder (out/<crawl id>, out/input, out/sample)")
    ap.add_argument("--mixture", default=str(REPO / "mixtures" / "sample.toml"),
                    help="the mixture's sources (TOML; see mixtures/sample.toml)")
    ap.add_argument("--benchmark", action="extend", nargs="+", default=[],
                    help="decontam: benchmark JSONL files besides the bundled sample/eval/*.jsonl")
    ap.add_argument("--preset", default="tiny", help="train: the model preset")
    ap.add_argument("--eval-args", default="", help="train: options of train.eval, as one string")
    ap.add_argument("--lambada", default=str(LAMBADA), help="train: LAMBADA JSONL for the evaluation")
    ap.add_argument("--gsm8k", default=str(GSM8K), help="train: GSM8K JSONL for the evaluation")
    ap.add_argument("--settings", default="", help="the make variables behind this call, kept in the marker")
    run = ap.add_argument_group("runner (every Beam stage)")
    run.add_argument("--runner", default="DirectRunner")
    run.add_argument("--workers", type=int, default=0, help="DirectRunner processes (default: the job's own)")
    run.add_argument("--project")
    run.add_argument("--region")
    run.add_argument("--temp")
    run.add_argument("--job-endpoint")
    return ap


def _rebuild_report(run: Path) -> None:
    from curate.report import write_report

    try:
        path = write_report(run)
    except (OSError, ValueError) as exc:  # a report that cannot be built never fails a stage
        say_error(PROG, f"report not rebuilt: {exc}")
        return
    print(f"report: {path}", file=sys.stderr, flush=True)


def run_stage(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    args = _parser().parse_args(argv)
    run = Path(args.run)
    if args.stage == "report":
        _rebuild_report(run)
        return 0
    try:
        mix = load_mixture(args.mixture)
        if args.stage in PREVIOUS and not (run / PREVIOUS[args.stage] / "stage.json").exists():
            raise StageError(f"{run}/{PREVIOUS[args.stage]}/stage.json is missing: the {PREVIOUS[args.stage]} "
                             f"stage has not finished (make runs the stages in order)")
        (run / args.stage).mkdir(parents=True, exist_ok=True)
        runner = StageRunner(run, args.stage)
        if args.stage == "filter":
            steps = filter_steps(run, args, extra)
        elif args.stage == "dedup":
            steps = dedup_steps(run, mix, args, extra)
        elif args.stage == "decontam":
            steps = decontam_steps(run, mix, args, extra)
        elif args.stage == "shards":
            steps = shards_steps(run, mix, args, extra)
        else:
            steps = train_steps(run, args, extra)
        runner.execute(steps)
        marker = runner.finish({"mixture": {"path": mix.path, "text": mix.text},
                                "benchmarks": [*BUNDLED_BENCHMARKS, *args.benchmark] if args.stage == "decontam"
                                else None, "settings": args.settings,
                                "runner": runner_args(args)})
        runner.log(f"complete in {marker['seconds']:.1f}s -> {run / args.stage}")
        return 0
    except SettingsError as exc:
        say_error(PROG, exc)
        return 2
    except StageError as exc:
        say_error(PROG, f"{args.stage}: {exc}")
        return 1
    finally:
        _rebuild_report(run)


def main(argv=None) -> int:
    return run_stage(argv)


if __name__ == "__main__":
    sys.exit(main())
