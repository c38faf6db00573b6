"""The run driver: steps skip when done, resume after an interruption, and stop on a failure."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("apache_beam")  # pipelines.common imports it

from pipelines.run import StageError, StageRunner, Step, _eta, run_stage  # noqa: E402


def _step(tmp: Path, name: str, inputs=(), fail: bool = False) -> Step:
    """A step that appends its name to tmp/log (and fails when asked)."""
    code = f"open({str(tmp / 'log')!r}, 'a').write({name!r} + '\\n')" + ("; raise SystemExit(3)" if fail else "")
    return Step(name, [sys.executable, "-c", code], [str(p) for p in inputs], tmp / name / "step.json")


def _ran(tmp: Path) -> list[str]:
    log = tmp / "log"
    out = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return out


def test_done_steps_are_skipped_and_an_interrupted_stage_resumes(tmp_path):
    src = tmp_path / "input.txt"
    src.write_text("x")
    steps = lambda: [_step(tmp_path, "a", [src]), _step(tmp_path, "b"), _step(tmp_path, "c")]  # noqa: E731
    StageRunner(tmp_path, "dedup").execute(steps())
    assert _ran(tmp_path) == ["a", "b", "c"]
    StageRunner(tmp_path, "dedup").execute(steps())
    assert _ran(tmp_path) == []
    # interrupted after a: b and everything after it run again, a does not
    (tmp_path / "b" / "step.json").unlink()
    StageRunner(tmp_path, "dedup").execute(steps())
    assert _ran(tmp_path) == ["b", "c"]
    # an input newer than a's marker redoes a (and what follows)
    stamp = (tmp_path / "a" / "step.json").stat().st_mtime
    os.utime(src, (stamp + 10, stamp + 10))
    StageRunner(tmp_path, "dedup").execute(steps())
    assert _ran(tmp_path) == ["a", "b", "c"]


def test_a_changed_command_reruns_its_step(tmp_path):
    StageRunner(tmp_path, "decontam").execute([_step(tmp_path, "a")])
    _ran(tmp_path)
    changed = _step(tmp_path, "a")
    changed.command.append("--more")  # the same script; the command line differs
    assert not changed.fresh()


def test_a_failed_step_stops_the_stage_without_markers(tmp_path):
    runner = StageRunner(tmp_path, "dedup")
    with pytest.raises(StageError, match="step b failed \\(exit status 3\\)"):
        runner.execute([_step(tmp_path, "a"), _step(tmp_path, "b", fail=True), _step(tmp_path, "c")])
    assert _ran(tmp_path) == ["a", "b"]
    assert (tmp_path / "a" / "step.json").exists() and not (tmp_path / "b" / "step.json").exists()
    assert not (tmp_path / "dedup" / "stage.json").exists()


def test_the_marker_records_steps_and_times(tmp_path):
    (tmp_path / "dedup").mkdir()
    runner = StageRunner(tmp_path, "dedup")
    runner.execute([_step(tmp_path, "a")])
    marker = runner.finish({"settings": "--x"})
    assert json.loads((tmp_path / "dedup" / "stage.json").read_text()) == marker
    assert marker["complete"] and [s["name"] for s in marker["steps"]] == ["a"] and marker["settings"] == "--x"
    # a later run with nothing to do keeps the timings of the run that did the work
    again = StageRunner(tmp_path, "dedup")
    again.execute([_step(tmp_path, "a")])
    assert again.finish()["steps"] == marker["steps"]


def test_a_stage_needs_the_previous_one(tmp_path, capsys):
    assert run_stage(["--run", str(tmp_path / "run"), "decontam"]) == 1
    err = capsys.readouterr().err
    assert "dedup/stage.json is missing" in err and "Traceback" not in err


def test_a_bad_mixture_file_is_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "m.toml"
    bad.write_text('[[source]]\nname = "cc"\nkind = "crawl"\nweight = 0.6\n'
                   '[[source]]\nname = "books"\nkind = "novel"\nweight = 0.4\npath = "x"\n')
    assert run_stage(["--run", str(tmp_path / "run"), "--mixture", str(bad), "dedup"]) == 2
    assert "kind 'novel' is not one of" in capsys.readouterr().err


def test_eta_by_steps_on_small_inputs_and_by_bytes_on_large_ones():
    assert _eta(1000, 2000, 10.0, 1, 4) == pytest.approx(30.0)         # 3 steps left at 10 s each
    assert _eta(100e6, 400e6, 50.0, 1, 4) == pytest.approx(150.0)      # 300 MB left at 2 MB/s
    assert _eta(0, 1, 0.0, 0, 2) is None
