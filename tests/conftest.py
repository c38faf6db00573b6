"""Shared test helpers: where the real data lives.

The real data set sits beside the repository in ../shared/data (CI has it there
too). Tests that need it skip with a clear reason when it is absent, so the
suite still runs in a bare clone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "sample"


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found: {path} (expected ../shared/data beside the repo)")
    return path


@pytest.fixture
def shared_data():
    return shared()
