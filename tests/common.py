"""Helpers and constants for the tests; fixtures and hooks live in the conftest.py files.

What a test needs that a bare clone may lack, and what happens when it is missing:

* the real data set, ``../shared/data`` beside the repository: a test reaches it through
  :func:`shared` and is marked ``shared_data``;
* Apache Beam (the ``beam`` extra): the test is marked ``beam``; a module that needs Beam to
  import at all starts with ``beam = require("apache_beam")``.

When something is missing the test is skipped with a reason that names it (``-ra`` lists the
reasons), so the suite still runs in a bare clone; with ``CURATE_TEST_STRICT=1`` in the
environment (``.ci/run`` sets it) it fails instead, so a green run cannot hide code that
never ran.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "sample"

STRICT_VAR = "CURATE_TEST_STRICT"

# Set by tests/conftest.py while a test (its fixtures included) runs, so that shared()
# and require() can check that the test carries the marker that says what it needs.
_current_item: pytest.Item | None = None

# modules whose tests must carry a marker (so that `-m "not beam"` leaves them all out)
_MARKER_FOR_MODULE = {"apache_beam": "beam"}


def strict() -> bool:
    """True when a missing prerequisite must fail the test instead of skipping it."""
    return os.environ.get(STRICT_VAR, "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> NoReturn:
    """Skip the running test (or module) because ``what`` is missing; fail under strict mode."""
    if strict():
        pytest.fail(f"{what} [{STRICT_VAR} is set: a missing prerequisite fails instead of skipping]",
                    pytrace=False)
    pytest.skip(what, allow_module_level=True)


def _check_marker(marker: str, what: str) -> None:
    item = _current_item
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(f"{item.nodeid} uses {what} but is not marked {marker}: add @pytest.mark.{marker} "
                    f"(or pytestmark = pytest.mark.{marker} for the whole module)", pytrace=False)


def shared(*parts: str) -> Path:
    """The path ``../shared/data/<parts...>``, for a test marked ``shared_data``.

    Skips the test when the path does not exist, naming it (fails under
    ``CURATE_TEST_STRICT=1``). Example: ``shared("warc", "cc-main-2024-22_whirlwind.warc.gz")``.
    """
    _check_marker("shared_data", "../shared/data")
    path = SHARED.joinpath(*parts)
    if not path.exists():
        missing(f"real data not found: {path} (expected ../shared/data beside the repository)")
    return path


def require(module: str):
    """Import and return ``module``, or skip naming it (fail under ``CURATE_TEST_STRICT=1``).

    The strict-aware ``pytest.importorskip``: ``beam = require("apache_beam")``.
    """
    if module in _MARKER_FOR_MODULE:
        _check_marker(_MARKER_FOR_MODULE[module], module)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        error = str(exc)
    missing(f"{module} is not importable ({error}); `make install` installs it with the project's extras")


def lines_executed(fn: Callable, *args, **kwargs) -> int:
    """How many Python lines ``fn(*args, **kwargs)`` executes (its callees included).

    A measure of work that does not depend on how busy the machine is: unit tests
    compare it across input sizes to show that work grows linearly, where a
    wall-clock bound would be flaky (the timings themselves are in ``make bench``).
    """
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    previous = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local)
    try:
        fn(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return count


def run_cli(add_parser: Callable, argv: list[str]) -> int:
    """Run one ``curate`` subcommand in process: ``add_parser`` (for example
    ``cli.dedup.add_dedup_parser``) registers it, ``argv`` starts with its name."""
    ap = argparse.ArgumentParser(prog="curate")
    add_parser(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


# --------------------------------------------------------------------------- a small real corpus

# The trainer tests' two-source mixture (tests/train/conftest.py: tiny_manifest).
WEIGHTS = {"books": 0.4, "web": 0.6}


def books_and_news(articles: int = 150) -> tuple[list, list]:
    """Real text for the shard and trainer tests: two Gutenberg novels as book pages, and the
    first ``articles`` hand-cleaned news articles (about 1 MB in all). Needs ``shared_data``."""
    from itertools import islice

    from curate.ingest.reference import read_gutenberg, read_jsonl

    books_dir = shared("reference", "books")
    web = shared("reference", "webtext_like", "dragnet-2012-articles.train.jsonl.gz")
    books = [doc for name in ("pg11_Alice-s-Adventures-in-Wonderland.txt.gz", "pg35_The-Time-Machine.txt.gz")
             for doc in read_gutenberg(books_dir / name)]
    return books, list(islice(read_jsonl(web, text_field="article"), articles))
