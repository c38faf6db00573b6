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
import json
import os
import re
from pathlib import Path
from typing import Iterable

from curate.document import Document

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


def dumps_json(obj) -> str:
    """Stable JSON text (sorted keys) so reruns write byte-identical files."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a ``.tmp`` beside it and a rename, so a
    reader never sees half a file and a crash leaves none under the final name."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, obj) -> None:
    """:func:`dumps_json` of ``obj`` to ``path``, atomically (:func:`write_atomic`)."""
    write_atomic(path, dumps_json(obj))


def sha256_file(path) -> str:
    """Hex sha256 of a file, streamed (shards and models can be many GB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def id_fraction(doc_id: str, salt: str = "") -> float:
    """A number in [0, 1) from the document id: the seed of every random choice.

    >>> id_fraction("a") == id_fraction("a") and 0 <= id_fraction("a") < 1
    True
    """
    h = hashlib.blake2b(f"{salt}:{doc_id}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


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


def merge_counts(dicts: Iterable[dict]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + int(v)
    return dict(sorted(total.items()))


def dumps_jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")
