"""Hostile input: records larger than the cap, compression bombs, lengths that lie.

Each test builds a small file whose one bad record would, read naively, cost
far more memory than the cap, and checks three things: the bad record keeps
at most the cap (marked truncated, counted, reported), the records after it
are read as usual, and the memory the reader allocates stays near the cap
(tracemalloc sees every bytes object zlib and the readers create).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import tracemalloc
import zlib

import pytest

from curate.core.counters import Counters
from curate.core.document import read_documents
from curate.ingest.archive import iter_records
from curate.ingest.http import parse_response
from curate.ingest.records import read_archive
from curate.ingest.reference import read_gutenberg

CAP = 256 * 1024
PAGE = b"<html><body><article><h1>After</h1><p>" + b"The page after the huge one is read as usual. " * 20 + b"</p></article></body></html>"


def _member(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _record(n: int, block: bytes, *, length: int | None = None, digest: bool = False,
            wtype: str = "response") -> bytes:
    length = len(block) if length is None else length
    head = (f"WARC/1.0\r\nWARC-Type: {wtype}\r\nWARC-Record-ID: <urn:uuid:{n:08d}-0000-0000-0000-000000000000>\r\n"
            f"WARC-Target-URI: http://example.org/{n}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
            f"Content-Type: application/http; msgtype=response\r\n")
    if digest:
        head += f"WARC-Block-Digest: sha1:{base64.b32encode(hashlib.sha1(block).digest()).decode()}\r\n"
    if length >= 0:
        head += f"Content-Length: {length}\r\n"
    return head.encode() + b"\r\n" + block + b"\r\n\r\n"


def _http(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{extra}\r\n".encode() + body


def _huge_body(size: int) -> bytes:
    unit = b"<p>All work and no play makes Jack a dull boy.</p>\n"
    return b"<html><body>" + unit * (size // len(unit))


def _peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("compress", [True, False])
def test_a_record_over_the_cap_is_cut_and_the_next_one_read(tmp_path, fast, compress):
    big = _record(1, _http(_huge_body(24 * 2**20)))
    after = _record(2, _http(PAGE))
    path = tmp_path / ("big.warc.gz" if compress else "big.warc")
    path.write_bytes(_member(big) + _member(after) if compress else big + after)
    errors, counters = [], Counters()
    recs, peak = _peak(lambda: [(r.record_id[-12:], len(r.block), r.truncated) for r in
                                iter_records(path, errors, counters, prefer_fastwarc=fast, max_record_bytes=CAP)])
    assert [r[0] for r in recs] == ["000000000000"] * 2
    assert recs[0][1:] == (CAP, "length") and recs[1][2] == ""
    assert counters["read:cut:too_large"] == 1
    assert len(errors) == 1 and "cut at" in errors[0].reason and errors[0].offset == 0
    # the 24 MiB record costs a few caps, not its size
    assert peak < 16 * CAP, peak


def test_a_gzip_bomb_body_inflates_only_to_the_cap(tmp_path):
    bomb = _member(_huge_body(64 * 2**20))  # ~200 KB that inflate to 64 MiB
    path = tmp_path / "bomb.warc"
    path.write_bytes(_record(1, _http(bomb, "Content-Encoding: gzip\r\n")) + _record(2, _http(PAGE)))
    errors, counters = [], Counters()
    docs = list(read_archive(path, errors, counters, max_record_bytes=CAP))
    assert [d.url for d in docs] == ["http://example.org/1", "http://example.org/2"]
    assert docs[0].metadata["truncated"] == "length" and "truncated" not in docs[1].metadata
    assert counters["read:cut:too_large"] == 1
    assert any("gzip body larger than" in e.reason for e in errors)
    # the decoder itself allocates about the cap, not the 64 MiB the body inflates to
    block = next(iter_records(path, [])).block
    resp, peak = _peak(lambda: parse_response(block, max_body=CAP))
    assert len(resp.body) == CAP and resp.cut
    assert peak < 4 * CAP, peak


@pytest.mark.parametrize("fast", [True, False])
def test_a_short_length_on_a_blank_line_does_not_cut_the_page(tmp_path, fast):
    """A Content-Length that is short but lands on a blank line inside the page:
    the block digest shows the length is wrong, and the whole page is read."""
    body = _http(b"<html><body><p>first part</p>\n\n<p>" + b"second part " * 50 + b"</p></body></html>")
    cut_at = body.index(b"\n\n", body.index(b"first part"))
    path = tmp_path / "short.warc"
    path.write_bytes(_record(1, body, length=cut_at, digest=True) + _record(2, _http(PAGE)))
    errors = []
    recs = list(iter_records(path, errors, prefer_fastwarc=fast))
    assert [len(r.block) for r in recs] == [len(body), len(_http(PAGE))]
    assert len(errors) == 1 and "does not match record end" in errors[0].reason


@pytest.mark.parametrize("fast", [True, False])
def test_a_record_without_length_is_read_to_the_next_record(tmp_path, fast):
    path = tmp_path / "nolength.warc"
    path.write_bytes(_record(1, _http(PAGE), length=-1) + _record(2, _http(PAGE)))
    errors = []
    recs = list(iter_records(path, errors, prefer_fastwarc=fast))
    assert [len(r.block) for r in recs] == [len(_http(PAGE))] * 2
    assert len(errors) == 1 and "invalid Content-Length" in errors[0].reason


def test_a_folded_record_type_keeps_its_first_word(tmp_path):
    path = tmp_path / "folded.warc"
    path.write_bytes(_record(1, _http(PAGE), wtype="response\r\n  continued") + _record(2, _http(PAGE)))
    assert [r.record_type for r in iter_records(path, [])] == ["response", "response"]


def test_a_header_block_never_runs_into_the_next_record(tmp_path):
    """A header whose blank line is lost must not take the following record
    (its header and page) as header values: the next record is still read."""
    broken = _record(1, _http(PAGE)).replace(b"\r\n\r\nHTTP/1.1", b"\r\nHTTP/1.1", 1)
    path = tmp_path / "unterminated.warc"
    path.write_bytes(broken + _record(2, _http(PAGE)) + _record(3, _http(PAGE)))
    recs = list(iter_records(path, [], prefer_fastwarc=False))
    assert [r.url for r in recs][-2:] == ["http://example.org/2", "http://example.org/3"]
    assert all(len(v) < 200 for r in recs for v in r.headers.values())


def test_a_jsonl_line_over_the_cap_is_skipped_and_the_next_read(tmp_path):
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write('{"id": "a", "text": "before"}\n')
        fh.write('{"id": "b", "text": "' + "x" * 5000 + '"}\n')
        fh.write('{"id": "c", "text": "after"}\n')
    errors = []
    docs = list(read_documents(path, errors, max_line_chars=1000))
    assert [d.id for d in docs] == ["a", "c"]
    assert errors == [{"file": str(path), "line": 2, "reason": "line longer than 1000 characters; skipped"}]


def test_a_book_over_the_cap_is_cut(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("*** START OF THE PROJECT GUTENBERG EBOOK X ***\n" + "A paragraph of the book.\n\n" * 2000)
    errors = []
    pages = list(read_gutenberg(path, errors=errors, max_chars=10_000))
    assert 0 < sum(len(p.text) for p in pages) <= 10_000
    assert len(errors) == 1 and "cut" in errors[0]["reason"]
