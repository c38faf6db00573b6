"""The archive readers on every real file in ../shared/data, and on real files
damaged in known ways (wrong Content-Length, garbage, truncation, corrupt gzip)."""

from __future__ import annotations

import gzip
import re
import zlib
from collections import Counter

import pytest

from curate.core.counters import Counters
from curate.ingest.archive import (
    NotAnArchiveError,
    arc_date_to_iso,
    iter_records,
    sniff,
)
from tests.common import shared

# Records per file and type: at least what the better of warcio and FastWARC
# reads (../shared/MANIFEST.md), more where both fail (the ARC files).
EXPECTED = {
    "bad/resiliparse_block-sized-records.warc.gz": {"unknown": 3},
    "bad/resiliparse_clipped.warc.gz": {"response": 1},
    "bad/warcio_bad.arc": {"warcinfo": 1, "resource": 3},
    "bad/warcio_example-bad-non-chunked.warc.gz": {"warcinfo": 2, "response": 1, "request": 2, "revisit": 1},
    "bad/warcio_example-bad.warc.gz.bad": {"warcinfo": 1, "response": 2, "request": 2, "revisit": 1},
    "bad/warcio_example-iana.org-chunked.warc": {"warcinfo": 1, "response": 1, "request": 1},
    "bad/warcio_example-space-in-target-uri.warc.gz": {"warcinfo": 1, "resource": 1},
    "bad/warcio_example-space-in-url.arc": {"warcinfo": 1, "response": 1},
    "bad/warcio_example-trunc.warc": {"warcinfo": 2, "response": 1, "request": 1},
    "bad/warcio_example-wget-bad-target-uri.warc.gz": {"warcinfo": 1, "request": 1, "response": 1, "metadata": 1, "resource": 2},
    "bad/warcio_example-wrong-chunks.warc.gz": {"response": 1, "request": 1},
    "warc/cc-2008_arc-small-sample-1213893279526_0.arc": {"warcinfo": 1, "response": 145},
    "warc/cc-main-2014-35_wdps-CommonCrawl-sample.warc": {"warcinfo": 1, "request": 4, "response": 4, "metadata": 3},
    "warc/cc-main-2020-34_resiliparse-warcfile.part1.warc.gz": {"warcinfo": 1, "request": 11, "response": 11, "metadata": 11},
    "warc/cc-main-2024-22_whirlwind.warc.gz": {"warcinfo": 1, "request": 1, "response": 1, "metadata": 1},
    "warc/cc-main-2024-22_whirlwind.warc.wat.gz": {"warcinfo": 1, "metadata": 1},
    "warc/cc-main-2024-22_whirlwind.warc.wet.gz": {"warcinfo": 1, "conversion": 1},
    "warc/clueweb09-ja_resiliparse-clueweb-quirk.warc.gz": {"warcinfo": 1, "response": 29},
    "warc/ia-archive-org-2008_heritrix-web_sample.warc.gz": {"warcinfo": 1, "response": 299, "request": 261, "metadata": 261},
    "warc/liveweb-2014_pywb-iana.warc.gz": {"warcinfo": 1, "response": 48, "request": 171, "revisit": 123},
    "warc/wget-2024_dolma-sample-0000.warc.gz": {"warcinfo": 1, "request": 22, "response": 22, "metadata": 1, "resource": 2},
    "warc/wget-2024_dolma-sample-0001.warc.gz": {"warcinfo": 1, "request": 15, "response": 15, "metadata": 1, "resource": 2},
}

# Files whose damage must be reported, with a phrase of the reason.
EXPECTED_ERRORS = {
    "bad/resiliparse_clipped.warc.gz": ["truncated"],
    "bad/warcio_bad.arc": ["invalid ARC record length '-1'", "invalid ARC record length 'abc'"],
    "bad/warcio_example-space-in-url.arc": ["truncated"],
    "warc/cc-main-2014-35_wdps-CommonCrawl-sample.warc": ["truncated"],
}


def _read(path, **kw):
    errors, counters = [], Counters()
    recs = list(iter_records(path, errors, counters, **kw))
    return recs, errors, counters


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("fast", [True, False], ids=["fastwarc-first", "lenient-only"])
@pytest.mark.shared_data
def test_every_real_file_reads_all_records(name, fast):
    path = shared(*name.split("/"))
    recs, errors, _ = _read(path, prefer_fastwarc=fast)
    assert Counter(r.record_type for r in recs) == EXPECTED[name]
    for phrase in EXPECTED_ERRORS.get(name, []):
        assert any(phrase in e.reason for e in errors), (phrase, [str(e) for e in errors])
    if name not in EXPECTED_ERRORS and not name.endswith("trunc.warc"):
        assert errors == [], [str(e) for e in errors]
    for e in errors:
        assert e.file == str(path) and e.offset >= 0 and e.reason


@pytest.mark.shared_data
def test_readers_agree_on_clean_files():
    path = shared("warc", "ia-archive-org-2008_heritrix-web_sample.warc.gz")
    fast, _, c1 = _read(path, prefer_fastwarc=True)
    slow, _, c2 = _read(path, prefer_fastwarc=False)
    assert c1["read:reader:fastwarc"] == 1 and c2["read:reader:lenient"] == 1
    assert [(r.record_id, r.offset, r.url, r.block) for r in fast] == [
        (r.record_id, r.offset, r.url, r.block) for r in slow
    ]


@pytest.mark.shared_data
def test_arc_2008_common_crawl():
    recs, errors, _ = _read(shared("warc", "cc-2008_arc-small-sample-1213893279526_0.arc"))
    assert errors == []
    first = recs[1]
    assert first.url == "http://cineciudad.com/pelicula/index/502"
    assert first.date == "2008-05-09T19:02:41Z"
    assert first.block.startswith(b"HTTP/1.1 200 OK")
    assert first.offset == 144  # after the filedesc header and its version block
    assert [r.index for r in recs] == list(range(146))


@pytest.mark.shared_data
def test_arc_url_with_spaces():
    recs, _, _ = _read(shared("bad", "warcio_example-space-in-url.arc"))
    assert recs[1].url == ("http://example.com/index.cfm?FuseAction=Email&EmailTitle="
                           "Examples From The Live Web&IsPopUp=False")


@pytest.mark.shared_data
def test_target_uri_quirks():
    recs, _, _ = _read(shared("bad", "warcio_example-wget-bad-target-uri.warc.gz"))
    urls = [r.url for r in recs if r.url]
    assert urls and all(not u.startswith("<") and not u.endswith(">") for u in urls)
    recs, _, _ = _read(shared("bad", "warcio_example-space-in-target-uri.warc.gz"))
    assert any(" " in r.url for r in recs)


def test_arc_date():
    assert arc_date_to_iso("20080509190241") == "2008-05-09T19:02:41Z"
    assert arc_date_to_iso("201404010000000000") == "2014-04-01T00:00:00Z"
    assert arc_date_to_iso("abc") == ""


# ------------------------------------------------------------------ damaged copies of a real file

def _members(path):
    """Split a per-record gzip WARC into its decompressed records."""
    data = path.read_bytes()
    out = []
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out.append(d.decompress(data))
        data = d.unused_data
    return out


@pytest.fixture
def cc_records():
    return _members(shared("warc", "cc-main-2020-34_resiliparse-warcfile.part1.warc.gz"))


def _set_length(record: bytes, delta: int) -> bytes:
    m = re.search(rb"Content-Length: (\d+)", record)
    return record[: m.start(1)] + str(int(m.group(1)) + delta).encode() + record[m.end(1):]


@pytest.mark.parametrize("delta", [-200, +300], ids=["too-short", "too-long"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip-per-record"])
@pytest.mark.shared_data
def test_wrong_content_length_resynchronises(tmp_path, cc_records, delta, compress):
    damaged = list(cc_records)
    damaged[2] = _set_length(damaged[2], delta)  # the first response record
    path = tmp_path / ("bad.warc.gz" if compress else "bad.warc")
    path.write_bytes(b"".join(gzip.compress(r, mtime=0) for r in damaged) if compress else b"".join(damaged))
    recs, errors, counters = _read(path)
    # every record is still there, in order, and the damaged one is reported once
    assert Counter(r.record_type for r in recs) == {"warcinfo": 1, "request": 11, "response": 11, "metadata": 11}
    assert len(errors) == 1 and "Content-Length" in errors[0].reason
    assert counters["read:fastwarc_fallback"] == 1
    rid = re.search(rb"WARC-Record-ID: <([^>]+)>", damaged[2]).group(1).decode()
    assert errors[0].record_id == rid
    # the records after the damaged one are intact
    ok = {r.record_id: r.block for r in _read(shared("warc", "cc-main-2020-34_resiliparse-warcfile.part1.warc.gz"))[0]}
    later = [r for r in recs if r.index > 2]
    assert later and all(r.block == ok[r.record_id] for r in later)


@pytest.mark.shared_data
def test_garbage_between_records(tmp_path, cc_records):
    path = tmp_path / "garbage.warc"
    path.write_bytes(b"".join(cc_records[:5]) + b"this is not a record\r\n" * 3 + b"".join(cc_records[5:]))
    recs, errors, _ = _read(path)
    assert len(recs) == 34
    assert len(errors) == 1 and "garbage" in errors[0].reason
    assert errors[0].offset == sum(len(r) for r in cc_records[:5])


@pytest.mark.shared_data
def test_truncated_file_keeps_records_before_the_cut(tmp_path, cc_records):
    full = b"".join(gzip.compress(r, mtime=0) for r in cc_records)
    cut = len(full) * 2 // 3
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(full[:cut])
    recs, errors, _ = _read(path)
    complete = sum(1 for i in range(len(cc_records))
                   if len(b"".join(gzip.compress(r, mtime=0) for r in cc_records[: i + 1])) <= cut)
    assert len([r for r in recs if not r.truncated]) >= complete
    assert errors and any("truncated" in e.reason for e in errors)


@pytest.mark.shared_data
def test_corrupt_gzip_member_loses_only_that_record(tmp_path, cc_records):
    members = [gzip.compress(r, mtime=0) for r in cc_records]
    bad = bytearray(members[4])
    bad[30:60] = b"\xff" * 30
    members[4] = bytes(bad)
    path = tmp_path / "corrupt.warc.gz"
    path.write_bytes(b"".join(members))
    recs, errors, _ = _read(path)
    assert len(recs) == 33
    assert any("corrupt gzip member" in e.reason and e.offset == sum(map(len, members[:4])) for e in errors)


def test_gzipped_html_is_not_an_archive(tmp_path):
    path = tmp_path / "page.warc.gz"
    path.write_bytes(gzip.compress(b"<!doctype html><html><body>hello</body></html>"))
    assert sniff(str(path)) == "unknown"
    with pytest.raises(NotAnArchiveError, match="page.warc.gz"):
        list(iter_records(path))


@pytest.mark.shared_data
def test_warc_date_null(tmp_path, cc_records):
    rec = cc_records[2].replace(b"WARC-Date: 2020-08-08T17:27:41Z", b"WARC-Date: null")
    assert rec != cc_records[2]
    path = tmp_path / "null-date.warc"
    path.write_bytes(b"".join(cc_records[:2]) + rec)
    recs, errors, _ = _read(path)
    assert recs[2].date == "" and errors == []


@pytest.mark.shared_data
def test_memory_is_flat_on_repeated_input(tmp_path):
    """Reading a file 40x the size must not hold it: the lenient buffer stays bounded."""
    src = shared("warc", "ia-archive-org-2008_heritrix-web_sample.warc.gz").read_bytes()
    path = tmp_path / "big.warc.gz"
    with open(path, "wb") as fh:
        for _ in range(8):
            fh.write(src)
    from curate.ingest.archive import _LenientReader, _Source

    seen = 0
    max_buf = 0
    opener = lambda: open(path, "rb")  # noqa: E731
    reader = _LenientReader(str(path), opener, lambda e: None, Counters())
    src_obj = _Source(opener, str(path), lambda e: None)
    orig_fill = src_obj._fill

    def fill():
        nonlocal max_buf
        ok = orig_fill()
        max_buf = max(max_buf, len(src_obj.buf))
        return ok

    src_obj._fill = fill
    for _ in reader._warc(src_obj):
        seen += 1
    assert seen == 822 * 8
    assert max_buf < 8 * (1 << 20)


@pytest.mark.shared_data
def test_arc_gzip_members_of_any_size(tmp_path):
    """Compressed ARC files: one stream (the bundled sample) or many members that
    need not align with records, as 2008-2009 Common Crawl ARC.gz files vary."""
    raw = shared("warc", "cc-2008_arc-small-sample-1213893279526_0.arc").read_bytes()
    path = tmp_path / "chunked.arc.gz"
    path.write_bytes(b"".join(gzip.compress(raw[i:i + 65536], mtime=0) for i in range(0, len(raw), 65536)))
    recs, errors, _ = _read(path)
    assert errors == [] and len(recs) == 146
    plain, _, _ = _read(shared("warc", "cc-2008_arc-small-sample-1213893279526_0.arc"))
    assert [r.block for r in recs] == [r.block for r in plain]


class _NoSeek:
    """A stream that cannot seek or tell, like an HTTP body."""

    def __init__(self, path):
        self._fh = open(path, "rb")
        self.name = str(path)

    def read(self, n=-1):
        return self._fh.read(n)

    def seekable(self):
        return False

    def close(self):
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.mark.parametrize("name", ["warc/cc-2008_arc-small-sample-1213893279526_0.arc",
                                  "warc/cc-main-2014-35_wdps-CommonCrawl-sample.warc",
                                  "bad/warcio_example-trunc.warc"])
@pytest.mark.shared_data
def test_streams_that_cannot_seek(name):
    path = shared(*name.split("/"))
    errors = []
    recs = list(iter_records(lambda: _NoSeek(path), errors, name="remote-copy"))
    assert Counter(r.record_type for r in recs) == EXPECTED[name]
    assert all(r.file == "remote-copy" for r in recs) and all(e.file == "remote-copy" for e in errors)
