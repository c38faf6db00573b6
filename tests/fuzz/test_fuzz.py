"""The short fuzz run of ``make test``: Hypothesis draws cases for every target.

``derandomize=True`` makes the run the same on every machine (a CI failure
reproduces locally); the long, random run is ``make fuzz`` (tests/fuzz/__main__.py).
CURATE_FUZZ_EXAMPLES sets the number of cases per target (default 25).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import FRAMINGS, Case, Seeds, run_case

EXAMPLES = int(os.environ.get("CURATE_FUZZ_EXAMPLES", "25"))
_SEEDS: Seeds | None = None


def seeds() -> Seeds:
    global _SEEDS
    if _SEEDS is None:
        _SEEDS = Seeds()
    return _SEEDS


def cases(target: str):
    return st.builds(Case, target=st.just(target), seed=st.integers(0, 1000), rng_seed=st.integers(0, 2**32 - 1),
                     n_ops=st.integers(1, 4), framing=st.sampled_from(FRAMINGS))


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.shared_data("warc", "bad")
@pytest.mark.parametrize("target", ["archive", "survivors"])
def test_archive_readers(target):
    @FUZZ
    @given(cases(target))
    def run(case):
        run_case(case, seeds())

    run()


@pytest.mark.parametrize("target", ["html", "charset", "jsonl", "parquet"])
def test_page_and_document_readers(target):
    @FUZZ
    @given(cases(target))
    def run(case):
        run_case(case, seeds())

    run()


@pytest.mark.shared_data("warc", "bad")
def test_seeds_cover_the_real_files():
    """The archive seeds are the real files: every WARC/ARC in ../shared/data/{warc,bad} that parses as one."""
    names = {s.name for s in seeds().archives}
    assert "clueweb09-ja_resiliparse-clueweb-quirk.warc.gz" in names
    assert "warcio_example-trunc.warc" in names
    assert any(s.kind == "arc" for s in seeds().archives)
