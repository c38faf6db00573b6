"""Every command, given a missing, unreadable or wrong-format input or a bad option,
answers with one line naming the problem and a non-zero status, and writes nothing.

The list is the one the issue 14 note gives as "commands checked"; a new command
belongs here too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.common import REPO, SAMPLE

PY = sys.executable
WARC = str(SAMPLE / "CC-MAIN-2024-22-excerpt.warc.gz")

# (name, argv with {tmp} for the test's folder, text the error line must hold)
CASES = [
    ("read-missing", ["-m", "cli", "read", "{tmp}/missing.warc.gz", "-o", "{tmp}/out.jsonl"], "missing.warc.gz"),
    ("read-not-archive", ["-m", "cli", "read", "{tmp}/page.warc.gz", "-o", "{tmp}/out.jsonl"], "not a WARC or ARC"),
    ("read-format", ["-m", "cli", "read", WARC, "-o", "{tmp}/out.txt"], "unknown documents format"),
    ("read-cap", ["-m", "cli", "read", WARC, "-o", "{tmp}/out.jsonl", "--max-record-mb", "0"], "max-record-mb"),
    ("filter-missing", ["-m", "cli", "filter", "-i", "{tmp}/missing.jsonl", "-o", "{tmp}/out.jsonl"], "missing.jsonl"),
    ("filter-preset", ["-m", "cli", "filter", "-i", "{tmp}/good.jsonl", "-o", "{tmp}/out.jsonl", "--preset", "nope"],
     "nope"),
    ("reference-missing", ["-m", "cli", "reference", "--kind", "gutenberg", "{tmp}/missing.txt", "-o", "{tmp}/out.jsonl"],
     "missing.txt"),
    ("reference-kind", ["-m", "cli", "reference", "--kind", "nope", "{tmp}/good.jsonl", "-o", "{tmp}/out.jsonl"], "nope"),
    ("quality-missing", ["-m", "cli", "quality", "train", "--positive", "{tmp}/missing.parquet", "--negative",
                         "{tmp}/good.jsonl", "--out", "{tmp}/out"], "missing.parquet"),
    ("dedup-missing", ["-m", "cli", "dedup", "-i", "{tmp}/missing.jsonl", "-o", "{tmp}/out.jsonl"], "missing.jsonl"),
    ("dedup-threshold", ["-m", "cli", "dedup", "-i", "{tmp}/good.jsonl", "-o", "{tmp}/out.jsonl", "--threshold", "7"],
     "threshold"),
    ("decontam-missing", ["-m", "cli", "decontaminate", "--benchmark", "{tmp}/missing.jsonl", "-i", "{tmp}/good.jsonl",
                          "-o", "{tmp}/out.jsonl"], "missing.jsonl"),
    ("decontam-bad", ["-m", "cli", "decontaminate", "--benchmark", "{tmp}/bad.jsonl", "-i", "{tmp}/good.jsonl",
                      "-o", "{tmp}/out.jsonl"], "bad.jsonl"),
    ("shards-missing", ["-m", "cli", "shards", "build", "--source", "cc={tmp}/missing.jsonl:1", "--out", "{tmp}/out"],
     "missing.jsonl"),
    ("shards-source", ["-m", "cli", "shards", "build", "--source", "nonsense", "--out", "{tmp}/out"], "nonsense"),
    ("inspect-missing", ["-m", "cli", "shards", "inspect", "{tmp}/missing.json"], "missing.json"),
    ("train-missing", ["-m", "train.train", "--manifest", "{tmp}/missing.json", "--out", "{tmp}/out"], "missing.json"),
    ("train-bad", ["-m", "train.train", "--manifest", "{tmp}/bad.jsonl", "--out", "{tmp}/out"], "bad.jsonl"),
    ("eval-missing", ["-m", "train.eval", "--checkpoint", "{tmp}/missing.pt", "--out", "{tmp}/out"], "missing.pt"),
    # a file that is not a checkpoint: torch's unpickler raises KeyError, EOFError, ... for those
    ("eval-not-checkpoint", ["-m", "train.eval", "--checkpoint", "{tmp}/bad.jsonl", "--out", "{tmp}/out"], "bad.jsonl"),
    ("export-not-checkpoint", ["-m", "train.export", "--checkpoint", "{tmp}/bad.jsonl", "--out", "{tmp}/out"],
     "bad.jsonl"),
    ("generate-not-checkpoint", ["-m", "train.generate", "--checkpoint", "{tmp}/bad.jsonl", "--prompt", "hi"],
     "bad.jsonl"),
    ("finetune-not-checkpoint", ["-m", "train.finetune", "--checkpoint", "{tmp}/bad.jsonl", "--data", "{tmp}/good.jsonl",
                                 "--out", "{tmp}/out"], "bad.jsonl"),
    ("finetune-missing-data", ["-m", "train.finetune", "--checkpoint", "{tmp}/bad.jsonl", "--data",
                               "{tmp}/missing.jsonl", "--out", "{tmp}/out"], "missing.jsonl"),
]

JOBS = [
    ("filter-missing", ["-m", "pipelines.filter", "--input", "{tmp}/missing.warc.gz", "--out", "{tmp}/out"],
     "missing.warc.gz"),
    ("filter-preset", ["-m", "pipelines.filter", "--input", WARC, "--out", "{tmp}/out", "--preset", "nope",
                       "--quality-model", "none"], "nope"),
    ("filter-model", ["-m", "pipelines.filter", "--input", WARC, "--out", "{tmp}/out", "--quality-model",
                      "{tmp}/nomodel"], "nomodel"),
    ("dedup-missing", ["-m", "pipelines.dedup", "--input", "{tmp}/missing.parquet", "--out", "{tmp}/out"],
     "missing.parquet"),
    ("decontam-missing", ["-m", "pipelines.decontam", "--benchmark", "{tmp}/missing.jsonl", "--input",
                          "{tmp}/good.jsonl", "--out", "{tmp}/out"], "missing.jsonl"),
    ("shards-missing", ["-m", "pipelines.shards", "--source", "cc={tmp}/missing.jsonl:1", "--out", "{tmp}/out"],
     "missing.jsonl"),
]


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "good.jsonl").write_text('{"id": "a", "text": "hello world, a line of text"}\n')
    (tmp_path / "bad.jsonl").write_text("this is not JSON\n")
    import gzip

    (tmp_path / "page.warc.gz").write_bytes(gzip.compress(b"<html><body>a page, not an archive</body></html>"))
    return tmp_path


def _check(argv, needle, tmp):
    proc = subprocess.run([PY] + [a.format(tmp=tmp) for a in argv], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line.lower()]
    assert errors and needle in errors[0], proc.stderr
    assert not (tmp / "out").exists() and not (tmp / "out.jsonl").exists() and not (tmp / "out.txt").exists()
    assert not list(tmp.glob("*.tmp"))


@pytest.mark.parametrize("name,argv,needle", CASES, ids=[c[0] for c in CASES])
def test_commands_answer_bad_input_in_one_line(inputs, name, argv, needle):
    _check(argv, needle, inputs)


@pytest.mark.beam
@pytest.mark.parametrize("name,argv,needle", JOBS, ids=[c[0] for c in JOBS])
def test_jobs_answer_bad_input_in_one_line(inputs, name, argv, needle):
    _check(argv, needle, inputs)
