"""Reading web archives: WARC (0.17-1.1), legacy ARC v1/v2, WET and WAT.

Two readers share one record type:

* **FastWARC** on the hot path. It reads gzip WARC several times faster than a
  Python parser, but refuses ARC and stops at the first damaged record.
* **A lenient reader** written here for everything FastWARC refuses: ARC files
  (Common Crawl's 2008-2009 crawls included), truncated files and records, a
  wrong ``Content-Length`` (we resynchronise on the next record header), corrupt
  gzip members, garbage between records.

``iter_records`` starts with FastWARC and, on its first error, hands over to the
lenient reader from the start of the file, skipping the records already
yielded (matched by WARC-Record-ID), so a damaged file loses only what is
really unreadable. Every problem is reported as an ``ArchiveError`` with the
file, byte offset and reason; the iteration itself never raises for bad input.

>>> from pathlib import Path
>>> sample = Path(__file__).resolve().parents[2] / "sample" / "CC-MAIN-2024-22-excerpt.warc.gz"
>>> errors = []
>>> [(r.record_type, r.offset) for r in iter_records(sample, errors)], errors
([('warcinfo', 0), ('request', 516), ('response', 1023), ('metadata', 18374)], [])

A copy cut inside the response still gives what is there, and says what is missing:

>>> import gzip, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     cut = Path(tmp, "cut.warc")
...     _ = cut.write_bytes(gzip.decompress(sample.read_bytes())[:5000])
...     [(r.record_type, r.truncated) for r in iter_records(cut, errors)]
[('warcinfo', ''), ('request', ''), ('response', 'length')]
>>> [(e.offset, e.reason) for e in errors]
[(1551, 'record truncated: 2860 of 74581 bytes')]
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator

from curate.core.counters import Counters

# Read size for the lenient reader's decompressed buffer.
_CHUNK = 1 << 20
# A WARC/ARC header block longer than this is not a header: resynchronise.
_MAX_HEADER = 64 * 1024
# The most of one record any stage holds. A longer record keeps its first
# MAX_RECORD_BYTES (marked truncated "length", counted as read:cut:too_large
# and reported) and the rest is streamed past, so a 1 GiB page inflating from a
# 1 MB gzip member costs a few MiB, and the records after it are read as usual.
# Common Crawl itself truncates payloads at 1 MiB; 4 MiB leaves room for the
# HTTP headers and the odd larger capture of other crawls. Every reader takes a
# ``max_record_bytes`` argument (``--max-record-mb`` on the commands).
MAX_RECORD_BYTES = 4 * 1024 * 1024


def add_max_record_argument(parser) -> None:
    """``--max-record-mb``: the per-record memory cap, for every command that reads archives."""
    parser.add_argument("--max-record-mb", type=_positive_mb, default=MAX_RECORD_BYTES / 2**20, metavar="MB",
                        help="keep at most this much of one record (MiB; the rest is skipped, the record "
                             f"marked truncated and counted as read:cut:too_large; default {MAX_RECORD_BYTES >> 20})")


def max_record_bytes(mb: float) -> int:
    return int(mb * 2**20)


def _positive_mb(value: str) -> float:
    import argparse

    try:
        mb = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.001 <= mb <= 4096:
        raise argparse.ArgumentTypeError(f"{value} MiB is outside 0.001..4096")
    return mb


@dataclass
class ArchiveRecord:
    """One record of a web archive, in the reader-independent form stages use.

    ``block`` is the record content: for WARC ``response`` records the full HTTP
    message (status line, headers, body); for ``resource``/``conversion`` the
    payload itself; for ARC records the HTTP message as archived.
    """

    file: str
    offset: int  # byte offset of the record (of its gzip member for .gz files)
    record_type: str  # response, resource, conversion, metadata, request, revisit, warcinfo, ...
    block: bytes
    record_id: str = ""
    url: str = ""
    date: str = ""  # ISO 8601 as found (WARC-Date, or ARC 14-digit date converted)
    content_type: str = ""  # WARC Content-Type (e.g. application/http; msgtype=response)
    headers: dict[str, str] = field(default_factory=dict)
    truncated: str = ""  # "" if complete, else why the block is incomplete
    index: int = 0  # position of the record in the file (0-based), for ids of ARC records


@dataclass
class ArchiveError:
    """A problem found while reading: the file, where, and what."""

    file: str
    offset: int
    reason: str
    record_id: str = ""

    def to_json(self) -> dict:
        out = {"file": self.file, "offset": self.offset, "reason": self.reason}
        if self.record_id:
            out["record_id"] = self.record_id
        return out

    def __str__(self) -> str:
        return f"{self.file}: offset {self.offset}: {self.reason}"


class NotAnArchiveError(ValueError):
    """The file holds no archive records at all (e.g. a gzipped HTML page)."""


ErrorSink = Callable[[ArchiveError], None]


def _sink(errors) -> ErrorSink:
    if errors is None:
        return lambda e: None
    if callable(errors):
        return errors
    return errors.append


# --------------------------------------------------------------------------- sniffing

_WARC_MAGIC = b"WARC/"
_ARC_MAGIC = b"filedesc://"


Opener = Callable[[], BinaryIO]


def as_opener(source: "str | os.PathLike | Opener") -> tuple[Opener, str]:
    """(a function returning a fresh binary stream, a name for messages).

    A path opens the file; a callable is used as is (e.g. a retrying HTTP
    stream from ``curate.ingest.sources.open_input``), and is called again when the
    file must be re-read from the start (the lenient fallback).
    """
    if callable(source):
        return source, getattr(source, "name", None) or repr(source)
    path = os.fspath(source)
    return (lambda: open(path, "rb")), str(path)


def _decode_head(raw: bytes, n: int = 64) -> tuple[bytes, bool]:
    """The first ``n`` decompressed bytes of a file starting with ``raw``, and whether it is gzip."""
    if raw[:2] == b"\x1f\x8b":
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            return d.decompress(raw, n), True
        except zlib.error:
            return b"", True
    return raw[:n], False


def _read_head(fh: BinaryIO, n: int = 4096) -> bytes:
    """Up to ``n`` bytes (a stream's read may return less than asked before its end)."""
    parts, got = [], 0
    while got < n:
        chunk = fh.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _head(opener: Opener, n: int = 64) -> tuple[bytes, bool]:
    with opener() as fh:
        return _decode_head(_read_head(fh), n)


def _kind(head: bytes) -> str:
    """'warc', 'arc' or 'unknown' from a file's first decompressed bytes."""
    head = head.lstrip(b"\r\n\x00 ")
    if head.startswith(_WARC_MAGIC):
        return "warc"
    if head.startswith(_ARC_MAGIC):
        return "arc"
    return "unknown"


def sniff(source: "str | os.PathLike | Opener") -> str:
    """Return 'warc', 'arc' or 'unknown' from the first bytes of the file."""
    return _kind(_head(as_opener(source)[0])[0])


# --------------------------------------------------------------------------- public entry

def iter_records(
    source: "str | os.PathLike | Opener",
    errors=None,
    counters: Counters | None = None,
    prefer_fastwarc: bool = True,
    name: str | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[ArchiveRecord]:
    """Yield every recoverable record of a WARC/ARC/WET/WAT file.

    ``source`` is a path or a function returning a fresh binary stream (called
    more than once if the file must be re-read); ``name`` labels the file in
    records and errors (default: the path). ``errors`` is a list (appended to)
    or a callable receiving ``ArchiveError``s. A record longer than
    ``max_record_bytes`` keeps that much of its block and is marked truncated.
    Raises ``NotAnArchiveError``
    (before yielding anything) when the file is not a web archive at all, and
    ``OSError`` when it cannot be opened.
    """
    opener, default_name = as_opener(source)
    path = name or default_name
    report = _sink(errors)
    counters = counters if counters is not None else Counters()
    # Open once and sniff the first bytes; the first reader gets this same
    # stream with the bytes put back (for remote files that saves a request),
    # later re-reads (the lenient fallback) open a fresh one.
    stream = opener()
    try:
        raw = _read_head(stream)
    except BaseException:
        stream.close()
        raise
    head, gz = _decode_head(raw)
    kind = _kind(head)
    fresh = opener
    handed = False

    def opener():
        nonlocal handed
        if handed:
            return fresh()
        handed = True
        return _Prefixed(raw, stream)

    if kind == "arc":
        counters.inc("read:files:arc")
        yield from _LenientReader(path, opener, report, counters, max_record_bytes).arc_records()
        return
    if kind == "unknown":
        stream.close()
        what = "gzip data" if gz else "data"
        start = head.lstrip(b"\r\n\x00 ")[:24]
        raise NotAnArchiveError(
            f"{path}: not a WARC or ARC file (no archive record found; {what} starts with {start!r})"
        )
    counters.inc("read:files:warc")
    seen: set[str] = set()
    if prefer_fastwarc:
        try:
            for rec in _fastwarc_records(opener, path, report, counters, max_record_bytes):
                if rec.record_id:
                    seen.add(rec.record_id)
                yield rec
            counters.inc("read:reader:fastwarc")
            return
        except BaseException as exc:
            # FastWARC stops at the first damaged record (OSError/ValueError);
            # its Rust core can also panic, which pyo3 raises as a
            # BaseException subclass. Either way re-read leniently and skip
            # what it already gave us. Not an error entry of its own: the
            # lenient reader reports what is really wrong, with its offset.
            if not isinstance(exc, (OSError, ValueError)) and type(exc).__name__ != "PanicException":
                raise
            counters.inc("read:fastwarc_fallback")
            counters.inc("read:reader:lenient")
            first = len(seen)
            for rec in _LenientReader(path, opener, report, counters, max_record_bytes).warc_records():
                if rec.record_id and rec.record_id in seen:
                    continue
                if not rec.record_id and rec.index < first:
                    continue
                yield rec
            return
    counters.inc("read:reader:lenient")
    yield from _LenientReader(path, opener, report, counters, max_record_bytes).warc_records()


# --------------------------------------------------------------------------- FastWARC

def _fastwarc_records(opener: Opener, path: str, report: ErrorSink, counters: Counters,
                      max_record_bytes: int) -> Iterator[ArchiveRecord]:
    from fastwarc.warc import ArchiveIterator

    with opener() as raw:
        seekable = getattr(raw, "seekable", None)
        fh = raw if isinstance(raw, _Tell) or (seekable is not None and seekable()) else _Tell(raw)
        # parse_http=False: we parse HTTP ourselves so both readers decode the
        # same way; quirks_mode off so any damage sends us to the lenient reader,
        # which records what it finds.
        #
        # A record is handed on only once FastWARC has parsed the header of the
        # next one (or reached the end cleanly): a Content-Length that is wrong
        # but lands on something FastWARC accepts would otherwise give a cut or
        # swollen record that the lenient fallback then skips as already read.
        # Held back, it is re-read by the lenient reader, which checks where
        # the record really ends.
        held: ArchiveRecord | None = None
        for i, rec in enumerate(ArchiveIterator(fh, parse_http=False, quirks_mode=False)):
            if held is not None:
                yield held
                held = None
            h = rec.headers
            clen = (h.get("Content-Length") or "").strip()
            if not clen.isdigit():
                # FastWARC reads such a block as empty; the lenient reader takes it
                # up to the next record header and reports the bad length
                raise ValueError(f"record at {rec.stream_pos}: Content-Length {clen!r}")
            block = _read_capped(rec.reader, max_record_bytes)
            if len(block) > max_record_bytes or len(block) < int(clen):
                # Over the cap, or the file ends inside the record: FastWARC would
                # trust the length, but a wrong one swallows the records it runs
                # over. The lenient reader checks it (and cuts, streaming past).
                raise ValueError(f"record at {rec.stream_pos}: {len(block)} bytes read of {clen}")
            record_id = _clean_id(h.get("WARC-Record-ID") or "")
            held = ArchiveRecord(
                file=path,
                offset=rec.stream_pos,
                record_type=_record_type(h.get("WARC-Type")),
                block=block,
                record_id=record_id,
                url=_clean_uri(h.get("WARC-Target-URI") or ""),
                date=_clean_date(h.get("WARC-Date") or ""),
                content_type=h.get("Content-Type") or "",
                headers={k: _cap_header(v) for k, v in h.items()},
                truncated=h.get("WARC-Truncated") or "",
                index=i,
            )
        if held is not None:
            yield held


def _read_capped(reader, cap: int) -> bytes:
    """Up to ``cap + 1`` bytes of a record block (one more than the cap tells that it was cut)."""
    parts, got = [], 0
    while got <= cap:
        chunk = reader.read(cap + 1 - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class _Tell:
    """Adds tell() (bytes read so far) to a stream that lacks it; FastWARC needs it."""

    def __init__(self, raw):
        self._raw = raw
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Prefixed(_Tell):
    """A stream whose first bytes were already read: gives them back, then the rest."""

    def __init__(self, prefix: bytes, raw):
        super().__init__(raw)
        self._prefix = prefix

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            if n is None or n < 0:
                data = self._prefix + self._raw.read()
                self._prefix = b""
            else:
                data, self._prefix = self._prefix[:n], self._prefix[n:]
            self._pos += len(data)
            return data
        return super().read(n)


# --------------------------------------------------------------------------- helpers

def _record_type(value: str | None) -> str:
    """The record type as one lower-case token.

    WARC-Type is a single token; a value with more in it (a folded header line
    that ran into the next ones) keeps its first word, so the record is still
    read as what it says it is.
    """
    words = (value or "").split(None, 1)
    return words[0].lower() if words else "unknown"


# Header values longer than this are cut: no real WARC header needs more, and a
# header block that ran into a following record must not carry that record along.
_MAX_HEADER_VALUE = 8192


def _cap_header(value: str) -> str:
    return value if len(value) <= _MAX_HEADER_VALUE else value[:_MAX_HEADER_VALUE]


def _clean_id(value: str) -> str:
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value


def _clean_uri(value: str) -> str:
    # wget writes <http://...>; some writers leave spaces in (kept, but stripped at the ends)
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


def _clean_date(value: str) -> str:
    value = value.strip()
    if not value or value.lower() in ("null", "none", "-"):
        return ""
    return value


def arc_date_to_iso(value: str) -> str:
    """'20080509190241' -> '2008-05-09T19:02:41Z'; longer digit runs are cut to 14."""
    digits = value.strip()
    if len(digits) < 8 or not digits[:14].isdigit():
        return ""
    d = (digits + "000000")[:14]
    return f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}Z"


# --------------------------------------------------------------------------- byte source

class _Source:
    """Decompressed bytes of a file with gzip member bookkeeping.

    Handles plain files, per-record gzip (many members), one-stream gzip, a
    truncated last member and corrupt members (skipped to the next gzip magic).
    ``member_offset(pos)`` maps a decompressed position to the compressed
    offset of the gzip member holding it, which is what a Common Crawl index
    calls a record's offset.
    """

    def __init__(self, opener: Opener, path: str, report: ErrorSink):
        self.path = path
        self.report = report
        self.fh: BinaryIO = opener()
        # streams need not seek (HTTP): the first chunk is read here and kept
        self._pending = self.fh.read(_CHUNK)
        self._raw_pos = len(self._pending)
        self._pending_at = 0  # compressed offset of _pending's first byte
        self.gzip = self._pending[:2] == b"\x1f\x8b"
        self.buf = bytearray()
        self.base = 0  # decompressed offset of buf[0]
        self.eof = False
        self._members: list[tuple[int, int]] = [(0, 0)]  # (decompressed start, compressed start)
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.gzip else None
        self._member_has_data = False

    def close(self) -> None:
        self.fh.close()

    def member_offset(self, pos: int) -> int:
        """The offset to report for a record starting at decompressed ``pos``.

        For a gzip member that starts exactly at the record (one member per
        record, as Common Crawl writes them) that is the member's compressed
        offset, which is what a CDX index gives; otherwise (plain files, one
        gzip stream for the whole file) the offset in the decompressed stream.
        """
        if not self.gzip:
            return pos
        for dstart, cstart in reversed(self._members):
            if dstart <= pos:
                return cstart if dstart == pos else pos
        return pos

    def _fill(self) -> bool:
        """Append more decompressed bytes to buf; False at end of file.

        One call adds at most about ``_CHUNK`` decompressed bytes: input that
        would inflate to more (a 1 MB member can hold a 1 GiB page) waits in
        ``_pending`` for the next call, so memory follows what callers keep,
        not what a member inflates to.
        """
        if self.eof:
            return False
        if self._pending:
            raw, chunk_start = self._pending, self._pending_at
            self._pending = b""
        else:
            raw, chunk_start = self.fh.read(_CHUNK), self._raw_pos
            self._raw_pos += len(raw)
        if not self.gzip:
            if not raw:
                self.eof = True
                return False
            self.buf += raw
            return True
        if not raw:
            if self._member_has_data and self._d is not None and not self._d.eof:
                self.report(ArchiveError(self.path, self._members[-1][1],
                                         "gzip stream truncated (last member incomplete)"))
            self.eof = True
            return False
        data = raw
        consumed_in_chunk = 0
        produced = 0
        while data:
            if produced >= _CHUNK:
                self._keep(data, chunk_start + len(raw) - len(data))
                return True
            try:
                out = self._d.decompress(data, _CHUNK)
            except zlib.error as exc:
                # corrupt member: find the next gzip header and carry on from there
                where = self._members[-1][1]
                nxt = raw.find(b"\x1f\x8b\x08", consumed_in_chunk + 1)
                self.report(ArchiveError(self.path, where, f"corrupt gzip member ({exc}); skipped"))
                if nxt < 0:
                    return True
                consumed_in_chunk = nxt
                data = raw[nxt:]
                self._new_member(chunk_start + nxt)
                continue
            if out:
                self._member_has_data = True
                self.buf += out
                produced += len(out)
            if self._d.eof:
                rest = self._d.unused_data
                consumed_in_chunk = len(raw) - len(rest)
                self._new_member(chunk_start + consumed_in_chunk)
                # skip NUL/whitespace padding between members
                stripped = rest.lstrip(b"\x00\r\n ")
                consumed_in_chunk += len(rest) - len(stripped)
                if stripped and stripped[:2] != b"\x1f\x8b":
                    # plain bytes after a gzip member: treat them as data (rare mixed files)
                    self.report(ArchiveError(self.path, chunk_start + consumed_in_chunk,
                                             "non-gzip bytes between gzip members; skipped to next member"))
                    nxt = stripped.find(b"\x1f\x8b\x08")
                    if nxt < 0:
                        data = b""
                        break
                    consumed_in_chunk += nxt
                    stripped = stripped[nxt:]
                self._members[-1] = (len(self.buf) + self.base, chunk_start + consumed_in_chunk)
                data = stripped
            elif self._d.unconsumed_tail:
                # this member holds more than one call may inflate: the rest next time
                tail = self._d.unconsumed_tail
                self._keep(tail, chunk_start + len(raw) - len(tail))
                return True
            else:
                data = b""
        return True

    def _keep(self, data: bytes, at: int) -> None:
        """Compressed input not used yet (``at``: its offset in the file), for the next fill."""
        self._pending, self._pending_at = bytes(data), at

    def _new_member(self, cstart: int) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._member_has_data = False
        self._members.append((len(self.buf) + self.base, cstart))
        # keep the member table small: only members that may still be looked up
        if len(self._members) > 4096:
            self._members = self._members[-2048:]

    def ensure(self, pos: int, n: int) -> bool:
        """Make buf hold [pos, pos+n) if the file has it; False if it ends first."""
        while pos + n > self.base + len(self.buf):
            if not self._fill():
                return False
        return True

    def find(self, needle: bytes | re.Pattern, start: int, limit: int | None = None,
             release: bool = False) -> int:
        """Absolute position of the first match at or after ``start`` (-1 if none).

        ``release``: bytes scanned without a match are dropped as the search
        goes, so skipping a huge block costs a chunk of memory, not the block
        (the caller must not need them: ``get`` before ``start`` fails after).
        """
        scanned = start
        while True:
            rel = scanned - self.base
            if isinstance(needle, bytes):
                i = self.buf.find(needle, rel)
                hit = i + self.base if i >= 0 else -1
            else:
                m = needle.search(self.buf, rel)
                hit = m.start() + self.base if m else -1
            if hit >= 0:
                return hit
            if limit is not None and self.base + len(self.buf) - start > limit:
                return -1
            # keep some overlap so a match spanning the chunk boundary is found
            scanned = max(start, self.base + len(self.buf) - 256)
            if release:
                self.discard_before(scanned)
            if not self._fill():
                # the last fill may have appended data: one more search
                rel = scanned - self.base
                if isinstance(needle, bytes):
                    i = self.buf.find(needle, rel)
                    return i + self.base if i >= 0 else -1
                m = needle.search(self.buf, rel)
                return m.start() + self.base if m else -1

    def rewind(self, opener: Opener, pos: int) -> None:
        """Read the file again from its start and stop with ``pos`` buffered
        (problems already reported are not reported twice)."""
        report = self.report
        self.fh.close()
        self.__init__(opener, self.path, lambda e: None)
        self.skip_to(pos)
        self.report = report

    def skip_to(self, pos: int) -> bool:
        """Read on until ``pos`` is buffered, releasing what lies before it;
        False if the file ends first."""
        while self.base + len(self.buf) <= pos:
            self.discard_before(min(pos, self.end()))
            if not self._fill():
                return False
        return True

    def get(self, pos: int, end: int) -> bytes:
        return bytes(self.buf[pos - self.base : end - self.base])

    def end(self) -> int:
        return self.base + len(self.buf)

    def discard_before(self, pos: int) -> None:
        """Drop buffered bytes before ``pos`` so memory stays flat."""
        cut = pos - self.base
        if cut > _CHUNK:
            del self.buf[:cut]
            self.base = pos


# --------------------------------------------------------------------------- lenient reader

# Bytes allowed between records (padding) and how far past a declared record
# end we look for the next record.
_NOT_PADDING = re.compile(rb"[^\r\n\x00 \t]")
_PADDING_LOOKAHEAD = 512
# A WARC record starts with a version line at the start of a line.
_WARC_START = re.compile(rb"(?:^|(?<=\n))WARC/\d\.\d+\r?\n")
# An ARC v1/v2 record header line: URL (may contain spaces), IP or '-', 14+ digit date,
# content type, ..., length. Used to resynchronise after a bad length.
_ARC_HEADER = re.compile(
    rb"(?:^|(?<=\n))(?:[a-zA-Z][a-zA-Z0-9+.-]*:\S*)(?: \S+)*? (?:\d{1,3}(?:\.\d{1,3}){3}|-|\S+) \d{12,18} \S+(?: \S+)* -?\w+\r?\n"
)


class _LenientReader:
    def __init__(self, path: str, opener: Opener, report: ErrorSink, counters: Counters,
                 max_record_bytes: int = MAX_RECORD_BYTES):
        self.path = path
        self.opener = opener
        self.report = report
        self.counters = counters
        self.cap = max_record_bytes

    def _error(self, src: _Source, pos: int, reason: str, record_id: str = "") -> None:
        self.counters.inc("read:errors")
        self.report(ArchiveError(self.path, src.member_offset(pos), reason, record_id))

    def _resync(self, src: _Source, pos: int, header: re.Pattern, search_from: int, found: str, lost: str) -> int:
        """Report the bad bytes at ``pos`` and return where the next record header
        starts (-1 if none does: the rest of the file is lost), saying which."""
        nxt = src.find(header, search_from)
        self._error(src, pos, found if nxt >= 0 else lost)
        return nxt

    def _records(self, parse: Callable[[_Source], Iterator[ArchiveRecord]]) -> Iterator[ArchiveRecord]:
        """``parse`` over the file's bytes; the file is closed however the iteration ends."""
        src = _Source(self.opener, self.path, self.report)
        try:
            yield from parse(src)
        finally:
            src.close()

    # ----------------------------------------------------------------- WARC
    def warc_records(self) -> Iterator[ArchiveRecord]:
        return self._records(self._warc)

    @staticmethod
    def _skip_padding(src: _Source, pos: int) -> int:
        """The first byte at or after ``pos`` that is not padding (NUL, CR, LF, space, tab);
        padding is released as it is passed, however long it runs."""
        while True:
            if not src.ensure(pos, 1):
                return pos
            m = _NOT_PADDING.search(src.buf, pos - src.base)
            if m:
                return m.start() + src.base
            pos = src.end()
            src.discard_before(pos)

    def _next_start(self, src: _Source, pos: int) -> int:
        """Where the next record starts, at ``pos`` or after the padding there
        (-1 at the end of the file); bytes before it are released."""
        src.discard_before(pos)
        pos = self._skip_padding(src, pos)
        return pos if src.ensure(pos, 1) else -1

    def _read_block(self, src: _Source, framing: "_Framing", rec_start: int, body_start: int,
                    length_raw: str, record_id: str = "", digest: str = "") -> tuple[bytes, str, int]:
        """(block, truncated, where the next record starts) of the record at
        ``rec_start`` whose block starts at ``body_start`` and declares
        ``length_raw`` bytes.

        The declared length is trusted when the record really ends there;
        otherwise (no usable length, or one that does not land on a record
        end) the block runs to the next record header. Every problem is
        reported at ``rec_start``.
        """
        if not length_raw.isdigit():
            # a length of -1 or 'abc': the record is empty or its end is unknown;
            # take up to the next header and say so
            self._error(src, rec_start,
                        f"invalid {framing.length_field} {length_raw!r}; block taken up to next record", record_id)
            return self._block_to_header(src, framing, rec_start, body_start, record_id)
        length = int(length_raw)
        take = min(length, self.cap)
        if not src.ensure(body_start, take):
            # the file ends before the declared length: a truncated file, or a
            # length that is wrong (too large) with more records after it
            nxt = self._next_plausible(src, framing, body_start + 1)
            if nxt >= 0:
                self._error(src, rec_start, f"{framing.length_field} {length} runs past the next record; "
                                            f"{framing.resynchronised}", record_id)
                return _strip_tail(src.get(body_start, nxt)), "", nxt
            got = src.end() - body_start
            self._error(src, rec_start, f"{framing.record} truncated: {got} of {length} bytes", record_id)
            return src.get(body_start, src.end()), "length", src.end()
        end = body_start + take
        src.ensure(end, framing.lookahead)
        if length > take:
            # a wrong length, not a large record, when a record starts inside what we hold
            nxt = self._next_plausible(src, framing, body_start + 1, stop=end)
            if nxt >= 0:
                self._error(src, rec_start, f"{framing.length_field} {length} runs past the next record; "
                                            f"{framing.resynchronised}", record_id)
                return _strip_tail(src.get(body_start, nxt)), "", nxt
            self._cut(src, rec_start, f"{framing.record} of {length} bytes cut at {take}", record_id)
            block = src.get(body_start, end)
            # skip the rest by its length (no scan) when the next record is where it says
            stop = body_start + length
            if src.skip_to(stop) and src.ensure(stop, framing.lookahead) and framing.ends_at(src, stop):
                return block, "length", stop
            # it is not: the length was wrong after all, and the records it ran
            # over were released while skipping. Read the file again up to the
            # cut and look for them (rare: a damaged length over the cap).
            src.rewind(self.opener, end)
            nxt = self._next_plausible(src, framing, end)
            return block, "length", nxt if nxt >= 0 else src.end()
        if framing.ends_at(src, end):
            return src.get(body_start, end), "", end
        if framing.separated(src, end):
            # the record separator is there but no record follows: either
            # garbage after a right length, or a short length that landed on a
            # blank line inside the page. The block digest, when there is one,
            # tells them apart; without one the length is trusted.
            block = src.get(body_start, end)
            if _digest_matches(block, digest) is not False:
                return block, "", end
        # wrong length: the record really ends at the next header, which may
        # lie inside or after the declared block
        self._error(src, rec_start,
                    f"{framing.length_field} {length} does not match record end; {framing.resynchronised}", record_id)
        return self._block_to_header(src, framing, rec_start, body_start, record_id)

    def _cut(self, src: _Source, rec_start: int, reason: str, record_id: str) -> None:
        self.counters.inc("read:cut:too_large")
        self._error(src, rec_start, reason, record_id)

    def _block_to_header(self, src: _Source, framing: "_Framing", rec_start: int, body_start: int,
                         record_id: str) -> tuple[bytes, str, int]:
        """(block, truncated, next record) for a block that runs to the next record
        header: all of it when that is within the cap, else the first ``cap``
        bytes, marked truncated, with the rest streamed past."""
        nxt = src.find(framing.header, body_start, limit=self.cap)
        if 0 <= nxt <= body_start + self.cap:
            return _strip_tail(src.get(body_start, nxt)), "", nxt
        if src.eof and src.end() - body_start <= self.cap:
            return _strip_tail(src.get(body_start, src.end())), "", src.end()
        self._cut(src, rec_start, f"{framing.record} without a usable length runs past {self.cap} bytes; cut", record_id)
        src.ensure(body_start, self.cap)
        block = src.get(body_start, min(src.end(), body_start + self.cap))
        return block, "length", self._next_header(src, framing, body_start + self.cap)

    @staticmethod
    def _next_plausible(src: _Source, framing: "_Framing", start: int, stop: int | None = None) -> int:
        """The first record header at or after ``start`` (and before ``stop``) that
        looks like a real one, not a version line inside a page; -1 if none."""
        pos = start
        while True:
            hit = src.find(framing.header, pos, limit=None if stop is None else max(0, stop - pos),
                           release=stop is None)
            if hit < 0 or (stop is not None and hit >= stop):
                return -1
            if framing.plausible(src, hit):
                return hit
            pos = hit + 1

    @staticmethod
    def _next_header(src: _Source, framing: "_Framing", start: int) -> int:
        """Start of the next record header at or after ``start``, else the end of the
        file. The bytes in between are not needed and are released as they are scanned."""
        nxt = src.find(framing.header, start, release=True)
        return nxt if nxt >= 0 else src.end()

    def _warc(self, src: _Source) -> Iterator[ArchiveRecord]:
        pos = 0
        index = 0
        while True:
            pos = self._next_start(src, pos)
            if pos < 0:
                return
            if not src.ensure(pos, len(_WARC_MAGIC)) or src.get(pos, pos + 5) != _WARC_MAGIC:
                pos = self._resync(src, pos, _WARC_START, pos, "garbage before record header; resynchronised",
                                   "garbage at end of file; skipped")
                if pos < 0:
                    return
                continue
            hdr_end = src.find(b"\r\n\r\n", pos, limit=_MAX_HEADER)
            lf_end = src.find(b"\n\n", pos, limit=_MAX_HEADER)
            # a header block ends before the next record starts: one that runs
            # into a following record (its blank line lost) would take that
            # record's header and page as header values
            nxt_rec = src.find(_WARC_START, pos + 5, limit=_MAX_HEADER)
            if nxt_rec >= 0:
                hdr_end = hdr_end if hdr_end < nxt_rec else -1
                lf_end = lf_end if lf_end < nxt_rec else -1
            if hdr_end < 0 and lf_end < 0:
                self._error(src, pos, "record header not terminated (file truncated?)")
                nxt = src.find(_WARC_START, pos + 5, release=True)
                if nxt < 0:
                    return
                pos = nxt
                continue
            if hdr_end < 0 or (0 <= lf_end < hdr_end):
                head_bytes, body_start = src.get(pos, lf_end), lf_end + 2
            else:
                head_bytes, body_start = src.get(pos, hdr_end), hdr_end + 4
            headers = _parse_headers(head_bytes.split(b"\n", 1)[1] if b"\n" in head_bytes else b"")
            rid = _clean_id(headers.get("WARC-Record-ID", ""))
            rec_start = pos
            block, truncated, pos = self._read_block(src, _WARC_FRAMING, rec_start, body_start,
                                                     headers.get("Content-Length", "").strip(), rid,
                                                     headers.get("WARC-Block-Digest", ""))
            yield ArchiveRecord(
                file=self.path,
                offset=src.member_offset(rec_start),
                record_type=_record_type(headers.get("WARC-Type")),
                block=block,
                record_id=rid,
                url=_clean_uri(headers.get("WARC-Target-URI", "")),
                date=_clean_date(headers.get("WARC-Date", "")),
                content_type=headers.get("Content-Type", ""),
                headers=headers,
                truncated=truncated or headers.get("WARC-Truncated", ""),
                index=index,
            )
            index += 1

    # ----------------------------------------------------------------- ARC
    def arc_records(self) -> Iterator[ArchiveRecord]:
        return self._records(self._arc)

    def _arc(self, src: _Source) -> Iterator[ArchiveRecord]:
        pos = self._skip_padding(src, 0)
        # The filedesc record: header line, then a version block that ends with a
        # blank line. Its declared length is unreliable (Common Crawl's 2008 ARCs
        # overstate it), so the block is read by lines, not by length.
        nl = src.find(b"\n", pos)
        if nl < 0:
            self._error(src, pos, "ARC file header incomplete")
            return
        fields = src.get(pos, nl).decode("latin-1").strip().split(" ")
        ncols = 4  # v1: URL IP date type length
        blank = src.find(b"\n\n", nl)
        version_block = src.get(nl + 1, blank if blank >= 0 else src.end())
        first_line = version_block.split(b"\n", 1)[0].strip()
        if first_line.startswith(b"2"):
            ncols = 9  # v2: URL IP date type result checksum location offset filename length
        yield ArchiveRecord(
            file=self.path, offset=src.member_offset(pos), record_type="warcinfo",
            block=version_block, url=fields[0] if fields else "",
            date=arc_date_to_iso(fields[2]) if len(fields) > 2 else "",
            content_type=fields[3] if len(fields) > 3 else "", index=0,
        )
        pos = blank + 2 if blank >= 0 else src.end()
        index = 1
        while True:
            pos = self._next_start(src, pos)
            if pos < 0:
                return
            nl = src.find(b"\n", pos, limit=_MAX_HEADER)
            if nl < 0:
                self._error(src, pos, "ARC record header incomplete at end of file")
                return
            line = src.get(pos, nl).decode("latin-1").rstrip("\r")
            parts = line.split(" ")
            if len(parts) < ncols + 1 or not _ARC_HEADER.match(src.get(pos, nl + 1)):
                what = f"not an ARC record header ({line[:60]!r})"
                pos = self._resync(src, pos, _ARC_HEADER, nl + 1, f"{what}; resynchronised", f"{what}; rest of file skipped")
                if pos < 0:
                    return
                continue
            url = " ".join(parts[: len(parts) - ncols])
            date_raw, ctype, length_raw = parts[-ncols + 1], parts[-ncols + 2], parts[-1]
            block, truncated, next_pos = self._read_block(src, _ARC_FRAMING, pos, nl + 1, length_raw)
            yield ArchiveRecord(
                file=self.path,
                offset=src.member_offset(pos),
                record_type="response" if _looks_http(block) else "resource",
                block=block,
                url=url,
                date=arc_date_to_iso(date_raw),
                content_type=ctype,
                headers={"arc-header": line},
                truncated=truncated,
                index=index,
            )
            index += 1
            pos = next_pos


def _at_warc(src: _Source, pos: int) -> bool:
    p = pos
    src.ensure(p, 16)
    chunk = src.get(p, p + 16).lstrip(b"\r\n\x00")
    return chunk.startswith(_WARC_MAGIC)


def _at_arc(src: _Source, pos: int) -> bool:
    src.ensure(pos, 2048)
    chunk = src.get(pos, pos + 2048).lstrip(b"\r\n")
    return bool(_ARC_HEADER.match(chunk))


def _warc_plausible(src: _Source, pos: int) -> bool:
    """A WARC header starts at ``pos``: a version line, then within a header's
    length a WARC-Type or WARC-Record-ID field and the blank line that ends it."""
    src.ensure(pos, 4096)
    head = src.get(pos, pos + 4096)
    end = head.find(b"\r\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    if end < 0:
        return False
    head = head[:end].lower()
    return b"\nwarc-type:" in head or b"\nwarc-record-id:" in head


def _warc_separated(src: _Source, pos: int) -> bool:
    """The record separator (CRLF CRLF, bare LFs, or only padding) follows ``pos``."""
    tail = src.get(pos, pos + 4)
    return tail.startswith(b"\r\n\r\n") or tail.startswith(b"\n\n") or not tail.strip(b"\r\n\x00 \t")


def _digest_matches(block: bytes, digest: str) -> bool | None:
    """Whether ``block`` has the WARC-Block-Digest ``digest`` (sha1, base32 or hex);
    None when there is no digest we can check."""
    algo, _, value = digest.strip().partition(":")
    if algo.lower() != "sha1" or not value:
        return None
    got = hashlib.sha1(block).digest()
    value = value.strip()
    if len(value) == 40:
        return got.hex() == value.lower()
    return base64.b32encode(got).decode() == value.upper()


def _warc_ends_at(src: _Source, pos: int) -> bool:
    """A WARC block ends at ``pos``: after it, past the record separator and
    any padding, comes the next record or the end of the file.

    A separator alone is not enough: a length that is short by a few bytes can
    land on a blank line inside the page, and the record would be cut there.
    """
    src.ensure(pos, _PADDING_LOOKAHEAD)
    window = src.get(pos, pos + _PADDING_LOOKAHEAD)
    rest = window.lstrip(b"\r\n\x00 \t")
    if rest:
        return rest.startswith(_WARC_MAGIC)
    # only padding in sight: the end of the file, or more padding than we look at
    return len(window) < _PADDING_LOOKAHEAD or _at_warc(src, pos)


def _arc_ends_at(src: _Source, pos: int) -> bool:
    """An ARC block ends at ``pos``: a line break, the end of the file, or the next record follows."""
    return src.get(pos, pos + 1) in (b"\n", b"\r", b"") or _at_arc(src, pos)


@dataclass(frozen=True)
class _Framing:
    """How a format delimits records, and the words the lenient reader's
    messages use for it (the two formats' messages differ, and stay as they were)."""

    header: re.Pattern  # the start of a record header, to resynchronise on
    lookahead: int  # bytes made available past a declared end before checking it
    ends_at: Callable[[_Source, int], bool]  # does a block end cleanly at this position (next record or EOF)?
    separated: Callable[[_Source, int], bool]  # is a record separator there (perhaps with garbage after)?
    plausible: Callable[[_Source, int], bool]  # does a real record header start here?
    length_field: str  # "Content-Length"
    record: str  # "record"
    resynchronised: str  # what a length that misses the record end leads to


_WARC_FRAMING = _Framing(_WARC_START, _PADDING_LOOKAHEAD, _warc_ends_at, _warc_separated, _warc_plausible, "Content-Length", "record",
                         "resynchronised on next record header")
_ARC_FRAMING = _Framing(_ARC_HEADER, 2, _arc_ends_at, _arc_ends_at, _at_arc, "ARC record length", "ARC record",
                        "resynchronised")


def _strip_tail(block: bytes) -> bytes:
    # the record separator (CRLF CRLF) belongs to the framing, not the content
    return block.rstrip(b"\r\n\x00")


def _looks_http(block: bytes) -> bool:
    return block[:5] == b"HTTP/"


def _parse_headers(raw: bytes) -> dict[str, str]:
    """Parse 'Name: value' lines leniently (folded lines joined; bad lines ignored)."""
    headers: dict[str, str] = {}
    last = None
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        if line[0] in " \t" and last is not None:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        last = name.strip()
        # the first occurrence wins, as in most readers
        headers.setdefault(last, value.strip())
    return headers
