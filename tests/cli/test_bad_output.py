"""Outputs that cannot be written, and two runs into one output.

A full disk is simulated with RLIMIT_FSIZE (a write past the limit fails with
EFBIG, which Python reports as an OSError, as it does ENOSPC): each command
must answer with one line naming the output, a non-zero status, and leave no
file behind, temp files included.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from curate.core.files import OutputInUse, output_lock
from tests.common import REPO, SAMPLE, shared

PY = sys.executable
WARC = str(SAMPLE / "CC-MAIN-2020-34-excerpt.warc.gz")
BOOKS = sorted(str(p) for p in (SAMPLE / "reference").glob("*.txt.gz"))


def _limit_files(max_bytes: int):
    def set_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return set_limit


def _run(argv: list[str], limit: int | None = None, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=300,
                          preexec_fn=_limit_files(limit) if limit else None)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.mark.parametrize("argv", [
    ["-m", "cli", "read", WARC, "-o", "{out}/docs.jsonl", "-q"],
    ["-m", "cli", "read", WARC, "-o", "{out}/docs.parquet", "-q"],
    ["-m", "cli", "reference", "--kind", "gutenberg", *BOOKS, "-o", "{out}/books.jsonl", "-q"],
], ids=["read-jsonl", "read-parquet", "reference"])
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, argv):
    out = tmp_path / "out"
    out.mkdir()
    proc = _run([PY] + [a.format(out=out) for a in argv], limit=16 * 1024)
    assert proc.returncode == 1, proc.stderr
    line = _one_line(proc.stderr)
    assert "cannot write" in line and str(out) in line, line
    assert list(out.iterdir()) == [], list(out.iterdir())


def test_an_output_path_under_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = _run([PY, "-m", "cli", "read", WARC, "-o", str(blocker / "docs.jsonl"), "-q"])
    assert proc.returncode == 1
    assert "cannot write" in _one_line(proc.stderr)


@pytest.mark.beam
@pytest.mark.slow
@pytest.mark.shared_data("warc")
def test_a_job_on_a_full_disk_is_one_line(tmp_path):
    out = tmp_path / "out"
    warc = shared("warc", "wget-2024_dolma-sample-0000.warc.gz")  # enough kept pages to pass the limit
    proc = _run([PY, "-m", "pipelines.filter", "--input", str(warc), "--out", str(out), "--quality-model", "none",
                 "--workers", "1", "-q"], limit=8 * 1024)
    assert proc.returncode == 1, proc.stderr
    assert "cannot write" in _one_line(proc.stderr)
    assert not list(out.rglob("*.tmp*")), list(out.rglob("*"))


def test_a_second_run_into_one_output_is_refused(tmp_path):
    with output_lock(tmp_path, "first"):
        with pytest.raises(OutputInUse, match="in use by first"):
            with output_lock(tmp_path, "second"):
                pass
    # released when the first run ends: the next run may start
    with output_lock(tmp_path, "third"):
        pass
    assert not (tmp_path / "_RUNNING.json").exists()


def test_the_lock_of_a_run_that_died_is_taken_over(tmp_path):
    dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    import json
    import socket

    (tmp_path / "_RUNNING.json").write_text(json.dumps({"job": "old", "host": socket.gethostname(), "pid": pid}))
    with output_lock(tmp_path, "new"):
        assert json.loads((tmp_path / "_RUNNING.json").read_text())["pid"] == os.getpid()


@pytest.mark.beam
@pytest.mark.slow
def test_a_second_filter_job_into_one_output_stops_at_once(tmp_path):
    out = tmp_path / "out"
    with output_lock(out, "pipelines.filter"):
        proc = _run([PY, "-m", "pipelines.filter", "--input", WARC, "--out", str(out), "--quality-model", "none",
                     "--workers", "1", "-q"])
    assert proc.returncode == 1
    assert "in use by pipelines.filter" in _one_line(proc.stderr)
    # nothing was written: the folder the first run's lock made goes with it
    assert not out.exists()
