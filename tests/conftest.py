"""Hooks for the whole suite (helpers and constants are in tests/common.py).

* A test marked ``shared_data`` (optionally with paths under ../shared/data:
  ``@pytest.mark.shared_data("eval/x.jsonl")``) or ``beam`` is skipped before its
  fixtures run when the data or Apache Beam is missing, with a reason that names it.
* Under ``CURATE_TEST_STRICT=1`` (``.ci/run`` sets it) every skip is a failure
  instead: a test that needs something the machine lacks fails, naming it, and so
  does any other skip of a test (``pytest.skip``, ``importorskip``, ``skipif``), so
  that a green run means every test ran. (A doctest whose examples are all
  ``+SKIP`` is still reported as skipped.)
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from tests import common


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # tests.common.shared() / require() check the running test's markers
    common._current_item = item
    try:
        return (yield)
    finally:
        common._current_item = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("shared_data"):
        for rel in mark.args or ("",):
            common.shared(*PurePosixPath(rel).parts)
    if item.get_closest_marker("beam") is not None:
        common.require("apache_beam")


def _strict_failure(report) -> None:
    """Turn a skipped report into a failed one that says why it would have skipped."""
    where = ""
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        path, lineno, reason = report.longrepr
        where = f"{path}:{lineno}: "
    else:
        reason = str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{where}{reason}\n[{common.STRICT_VAR} is set: a skip is a failure, "
                       f"so that a green run means every test ran]")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # doctests are left alone: one whose examples are all +SKIP is documentation, not a test
    # that lacks something
    if (common.strict() and report.skipped and not hasattr(report, "wasxfail")
            and isinstance(item, pytest.Function)):
        _strict_failure(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if common.strict() and report.skipped:
        _strict_failure(report)
    return report
