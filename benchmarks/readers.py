"""Archive readers: speed on a real WARC, and what each recovers from every shared file.

    python -m benchmarks.readers

1. records/s for FastWARC (our hot path), our lenient reader and warcio on the
   WARC assembled from ../shared/data/warc (see benchmarks.ingest), reading and
   copying every record's content;
2. a table for every file in ../shared/data/bad and ../shared/data/warc: records
   read by warcio, by FastWARC and by us (iter_records), and the errors we report.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmarks.ingest import SHARED, assemble
from curate.ingest.archive import NotAnArchiveError, iter_records
from curate.ingest.records import read_archive
from curate.core.counters import Counters


def _count_fastwarc(path) -> tuple[int, str]:
    from fastwarc.warc import ArchiveIterator

    n = 0
    try:
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh, parse_http=False):
                rec.reader.read()
                n += 1
    except Exception as exc:  # a peer's failure is a result here, reported in the table
        return n, f"{type(exc).__name__}"
    return n, ""


def _count_warcio(path) -> tuple[int, str]:
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    try:
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh, arc2warc=True):
                rec.content_stream().read()
                n += 1
    except Exception as exc:  # a peer's failure is a result here, reported in the table
        return n, f"{type(exc).__name__}"
    return n, ""


def _count_ours(path, fast=True) -> tuple[int, int]:
    errors = []
    n = sum(1 for _ in iter_records(path, errors, Counters(), prefer_fastwarc=fast))
    return n, len(errors)


def _ingest(path) -> tuple[int, int, list]:
    """Records, documents and every error (archive and HTTP level) from read_archive."""
    errors, counters = [], Counters()
    docs = sum(1 for _ in read_archive(path, errors, counters))
    return counters["read:records"], docs, errors


def speed() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = assemble(Path(tmp) / "bench.warc.gz", 3)
        print(f"reader speed on {path.stat().st_size / 1e6:.1f} MB of gzip WARC (one core):")
        for name, fn in [("fastwarc (hot path)", lambda: _count_ours(path, True)[0]),
                         ("lenient (fallback)", lambda: _count_ours(path, False)[0]),
                         ("warcio", lambda: _count_warcio(path)[0])]:
            fn()  # warm the page cache
            t0 = time.process_time()
            n = fn()
            dt = time.process_time() - t0
            print(f"  {name:<22}{n:>7} records {dt:>7.2f} s {n / dt:>10,.0f} records/s")


def recovery_table() -> None:
    files = sorted((SHARED / "bad").iterdir()) + sorted(
        p for p in (SHARED / "warc").iterdir() if not p.name.endswith(".jsonl.gz"))
    print(f"\n{'file':<52}{'warcio':>7}{'fastwarc':>9}{'ours':>6}{'docs':>6}{'errors':>7}  first error")
    for path in files:
        w, werr = _count_warcio(path)
        f, ferr = _count_fastwarc(path)
        try:
            o, docs, errors = _ingest(path)
        except NotAnArchiveError as exc:
            o, docs, errors = 0, 0, [str(exc)]
        wcell = f"{w}{'!' if werr else ''}"
        fcell = f"{f}{'!' if ferr else ''}"
        first = f"@{errors[0].offset}: {errors[0].reason}"[:70] if errors else ""
        print(f"{path.parent.name + '/' + path.name:<52}{wcell:>7}{fcell:>9}{o:>6}{docs:>6}{len(errors):>7}  {first}")
    print("  (! = the library raised after that many records; errors include HTTP-level problems)")


def main() -> int:
    if not (SHARED / "warc").is_dir():
        print(f"benchmarks.readers: error: {SHARED} not found", file=sys.stderr)
        return 2
    speed()
    recovery_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
