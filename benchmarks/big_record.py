"""Memory of `curate read` on a record far over the cap (issue 14's case).

    python -m benchmarks.big_record [--gib 1] [--workdir DIR]

Builds two small .warc.gz files in DIR (a temporary folder by default):

* ``big.warc.gz``: one gzip member whose HTML page inflates to ``--gib`` GiB
  (about 1 MB on disk), then an ordinary page;
* ``bigce.warc.gz``: the same page sent with ``Content-Encoding: gzip``, so the
  HTTP body, not the archive, is the bomb; then the same ordinary page.

Runs ``curate read`` on each in its own process and prints wall time, the
child's peak RSS, the documents written and whether the page after the big one
was read. The per-record cap (``--max-record-mb``, 4 MiB) is what keeps the
peak flat: without it the first file took 3.2 GB and ended in MemoryError.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARAGRAPH = b"<p>All work and no play makes Jack a dull boy, again and again and again.</p>\n"
AFTER = (b"<html><head><title>After</title></head><body><article><h1>The page after</h1><p>"
         + b"This page follows the huge one and must be read normally. " * 20 + b"</p></article></body></html>")


def _gzip_member(chunks) -> bytes:
    """One gzip member of the concatenated chunks, compressed as they stream by."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    out = [z.compress(c) for c in chunks]
    out.append(z.flush())
    return b"".join(out)


PIECE = PARAGRAPH * 10_000  # 780 kB
HEAD = b"<html><body>"


def _pieces(size: int) -> int:
    return max(1, size // len(PIECE))


def _page(size: int):
    """An HTML page of about ``size`` bytes, yielded a piece at a time (never whole)."""
    yield HEAD
    for _ in range(_pieces(size)):
        yield PIECE


def _page_len(size: int) -> int:
    return len(HEAD) + _pieces(size) * len(PIECE)


def _record(n: int, url: str, http_head: bytes, body_len: int, body) -> bytes:
    """A WARC response record as one gzip member; ``body`` is an iterable of bytes."""
    http = http_head + b"\r\n\r\n"
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{n:012d}>\r\n"
            f"WARC-Target-URI: {url}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http) + body_len}\r\n\r\n")

    def chunks():
        yield head.encode()
        yield http
        yield from body
        yield b"\r\n\r\n"
    return _gzip_member(chunks())


def build(workdir: Path, size: int) -> dict[str, Path]:
    html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html"
    after = _record(2, "http://after.example/", html, len(AFTER), [AFTER])
    big = workdir / "big.warc.gz"
    big.write_bytes(_record(1, "http://big.example/", html, _page_len(size), _page(size)) + after)
    bomb = _gzip_member(_page(size))
    bigce = workdir / "bigce.warc.gz"
    bigce.write_bytes(_record(3, "http://bigce.example/", html + b"\r\nContent-Encoding: gzip", len(bomb), [bomb])
                      + after)
    return {"archive member": big, "Content-Encoding body": bigce}


def _read(path: Path) -> dict:
    """``curate read`` on ``path`` in a child process: wall time and the child's peak RSS.
    Run in a process of its own (``--one``), since RUSAGE_CHILDREN keeps the largest
    child seen so far and a second file would only show a new maximum."""
    out = path.with_suffix(".jsonl")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cli", "read", str(path), "-o", str(out), "-q"],
                          cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    docs = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return {"file": path.name, "status": proc.returncode, "seconds": round(wall, 2),
            "peak_rss_mb": round(peak_kb / 1024), "documents": len(docs),
            "after_kept": any((d.get("url") or d.get("metadata", {}).get("url")) == "http://after.example/"
                              and "page follows the huge one" in d.get("text", "") for d in docs),
            "errors": [line for line in proc.stderr.splitlines() if "error" in line.lower()][:2]}


def measure(path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.big_record", "--one", str(path)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.big_record", description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="size the page inflates to (default 1 GiB)")
    ap.add_argument("--workdir", help="where the files go (default: a temporary folder)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one file, print JSON
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(_read(Path(args.one))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        files = build(workdir, int(args.gib * 2**30))
        print(f"big_record: a page of {args.gib:g} GiB; curate read with the default cap (4 MiB per record)")
        print(f"{'bomb in':24} {'on disk':>9} {'wall s':>7} {'peak RSS MB':>12} {'docs':>5} {'page after kept':>16}")
        for what, path in files.items():
            r = measure(path)
            print(f"{what:24} {os.path.getsize(path) / 1e6:8.1f}M {r['seconds']:7.2f} {r['peak_rss_mb']:12d} "
                  f"{r['documents']:5d} {str(r['after_kept']):>16}")
            for line in r["errors"]:
                print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
