"""The suite's own rules: a test that needs ../shared/data or Beam says so with a marker, is
skipped naming what is missing in a bare clone, and fails instead under CURATE_TEST_STRICT=1
(what CI sets), as does any other skip.

Small test files are run by a fresh pytest with this suite's hooks (tests/conftest.py) and
settings (pyproject.toml), with a data path that does not exist.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.common import REPO, SHARED, STRICT_VAR

TESTS = '''
import pytest

from tests.common import require, shared


@pytest.mark.shared_data
def test_reads_a_missing_file():
    shared("no-such-dir", "missing.jsonl")


@pytest.mark.shared_data("no-such-dir/marked.jsonl")
def test_marked_with_a_missing_path():
    pass


def test_needs_a_missing_module():
    require("no_such_module_for_curate_tests")


@pytest.mark.skipif(True, reason="some other reason")
def test_skipped_for_another_reason():
    pass


def test_runs():
    pass


def test_reads_shared_data_without_the_marker():
    shared()
'''

# a module that cannot even be imported without a module it lacks
MODULE = '''
from tests.common import require

require("no_such_module_for_curate_tests")


def test_never_collected():
    pass
'''

# without ../shared/data at all (a bare clone) the marker's own check names the folder first
MISSING_FILE = str(SHARED / "no-such-dir" / "missing.jsonl") if SHARED.is_dir() else str(SHARED)
MISSING_MARKED = str(SHARED / "no-such-dir" / "marked.jsonl")
MISSING_MODULE = "no_such_module_for_curate_tests is not importable"


def _pytest(tmp_path, *args: str, strict: bool) -> tuple[int, str]:
    (tmp_path / "test_tiny.py").write_text(TESTS)
    (tmp_path / "test_tiny_module.py").write_text(MODULE)
    env = {k: v for k, v in os.environ.items() if k != STRICT_VAR}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])), COLUMNS="400")
    if strict:
        env[STRICT_VAR] = "1"
    r = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path),
                        "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", *args],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def _summary(out: str, outcome: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(outcome + " ")]


def test_bare_clone_skips_naming_what_is_missing(tmp_path):
    rc, out = _pytest(tmp_path, "test_tiny.py", "test_tiny_module.py", strict=False)
    assert rc == 1, out  # only the test that reads data without saying so fails
    skipped = "\n".join(_summary(out, "SKIPPED"))
    for reason in (MISSING_FILE, MISSING_MARKED, MISSING_MODULE, "some other reason"):
        assert reason in skipped, out
    assert "1 passed" in out, out
    [failed] = _summary(out, "FAILED")
    assert "test_reads_shared_data_without_the_marker" in failed and "not marked shared_data" in failed, out


def test_strict_turns_every_skip_into_a_failure_naming_what_is_missing(tmp_path):
    rc, out = _pytest(tmp_path, "test_tiny.py", "-k", "not without_the_marker", strict=True)
    assert rc == 1, out
    assert not _summary(out, "SKIPPED") and "1 passed" in out, out
    failures = {line.split(" - ")[0].split("::")[-1]: line
                for line in _summary(out, "FAILED") + _summary(out, "ERROR")}
    assert sorted(failures) == ["test_marked_with_a_missing_path", "test_needs_a_missing_module",
                                "test_reads_a_missing_file", "test_skipped_for_another_reason"], out
    assert MISSING_FILE in failures["test_reads_a_missing_file"]
    assert MISSING_MARKED in failures["test_marked_with_a_missing_path"]
    assert MISSING_MODULE in failures["test_needs_a_missing_module"]
    assert "some other reason" in failures["test_skipped_for_another_reason"]
    assert out.count(f"{STRICT_VAR} is set") >= 4, out


def test_strict_fails_a_module_that_would_be_skipped(tmp_path):
    rc, out = _pytest(tmp_path, "test_tiny_module.py", strict=True)
    assert rc != 0 and "skipped" not in out, out
    assert MISSING_MODULE in out and f"{STRICT_VAR} is set" in out, out
