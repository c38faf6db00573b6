"""A small real token-shard set for the trainer's tests (built once per session).

Two Gutenberg novels and 150 hand-cleaned news articles from ../shared/data,
tokenised with the ``tiny`` tokenizer preset (vocabulary 4,096) into a
two-source mixture (books 0.4, web 0.6) with 10% of documents held out for
validation, so every source has validation tokens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from curate.core.document import write_documents
from curate.mixture.build import MixtureConfig, SourceConfig, build
from tests.common import WEIGHTS, books_and_news


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    """Path of ``manifest.json`` for the small real shard set."""
    books, news = books_and_news()
    d = tmp_path_factory.mktemp("train-corpus")
    write_documents(d / "books.parquet", books)
    write_documents(d / "web.parquet", news)
    base = MixtureConfig.preset("tiny")
    config = MixtureConfig(
        sources=[SourceConfig("books", [str(d / "books.parquet")], WEIGHTS["books"]),
                 SourceConfig("web", [str(d / "web.parquet")], WEIGHTS["web"])],
        tokenizer=base.tokenizer, val_fraction=0.1, budget_tokens=1_000_000, shard_tokens=1 << 20)
    out = d / "shards"
    build(config, out, log=lambda m: None)
    return out / "manifest.json"


@pytest.fixture
def one_thread():
    """One torch thread for the test (``usefixtures("one_thread")``): the suite shares two
    cores, and OpenMP threads that wait for each other make small models' steps many times
    slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
