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


def books_and_news(articles: int = 150) -> tuple[list, list]:
    """Real text for the shard and trainer tests: two Gutenberg novels as book pages, and the
    first ``articles`` hand-cleaned news articles (about 1 MB in all)."""
    from itertools import islice

    from curate.ingest.reference import read_gutenberg, read_jsonl

    books_dir = shared("reference", "books")
    web = shared("reference", "webtext_like", "dragnet-2012-articles.train.jsonl.gz")
    books = [doc for name in ("pg11_Alice-s-Adventures-in-Wonderland.txt.gz", "pg35_The-Time-Machine.txt.gz")
             for doc in read_gutenberg(books_dir / name)]
    return books, list(islice(read_jsonl(web, text_field="article"), articles))


@pytest.fixture
def shared_data():
    return shared()
