"""The layout of a filter job's output directory, and the pure helpers behind it.

One set of files per input archive, so a rerun can skip finished inputs and a
retried bundle rewrites the same names with the same bytes::

    OUT/docs/<key>.parquet       kept documents of that input, in record order
    OUT/errors/<key>.jsonl       every problem found in it (file, offset, reason)
    OUT/rejected/<key>.jsonl     a seeded sample of dropped documents with reasons
    OUT/stats/<key>.json         its counters
    OUT/done/<key>.json          completion marker (written last)
    OUT/stats.json               all counters of the job, merged
    OUT/config.json              the resolved configuration

``key`` is derived from the input's location (for Common Crawl, the file's path
under ``crawl-data/``, so the same file read from a mirror or from S3 gets the
same key).

>>> input_key("https://data.commoncrawl.org/crawl-data/CC-MAIN-2020-34/segments/159/warc/CC-MAIN-2020-0001.warc.gz")
'CC-MAIN-2020-34--CC-MAIN-2020-0001--63ebbfdc'
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from curate.core.document import Document
from curate.core.ids import id_fraction

KINDS = ("docs", "errors", "rejected", "stats", "done")


SUFFIX = {"docs": ".parquet", "errors": ".jsonl", "rejected": ".jsonl", "stats": ".json", "done": ".json"}


_ARCHIVE_SUFFIX = re.compile(r"(\.(warc|arc|wet|wat))?(\.(gz|zst|bz2))?$", re.I)


def _stable_part(location: str) -> str:
    """The part of a location that names the file independent of where it is served."""
    i = location.find("crawl-data/")
    return location[i:] if i >= 0 else location


def input_key(location: str) -> str:
    """A short, filesystem-safe, stable name for one input file."""
    stable = _stable_part(location)
    digest = hashlib.sha1(stable.encode("utf-8")).hexdigest()[:8]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", _ARCHIVE_SUFFIX.sub("", stable.rsplit("/", 1)[-1]))[:80]
    m = re.search(r"crawl-data/(CC-MAIN-\d{4}-\d{2})/", stable)
    prefix = f"{m.group(1)}--" if m else ""
    return f"{prefix}{base}--{digest}"


def output_path(out: str, kind: str, key: str) -> str:
    return f"{out.rstrip('/')}/{kind}/{key}{SUFFIX[kind]}"


def in_rejected_sample(doc_id: str, rate: float) -> bool:
    """Whether a dropped document goes into the rejected sample (seeded by its id)."""
    return id_fraction(doc_id, "rejected-sample") < rate


def rejected_record(doc: Document, reason: str, max_chars: int = 2000) -> dict:
    return {"id": doc.id, "url": doc.url, "reason": reason,
            "language": doc.metadata.get("language"), "language_score": doc.metadata.get("language_score"),
            "text": doc.text[:max_chars]}


def doc_order(doc: Document) -> tuple:
    """Record order within an input: by archive offset, then id (stable under any runner)."""
    return (int(doc.metadata.get("warc_offset", 0) or 0), doc.id)


def sort_errors(errors: Iterable[dict]) -> list[dict]:
    return sorted(errors, key=lambda e: (int(e.get("offset", 0) or 0), e.get("reason", ""), e.get("record_id", "")))
