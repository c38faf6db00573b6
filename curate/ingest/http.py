"""Lenient HTTP response parsing and payload decoding for archived responses.

Archived HTTP messages are often not what the headers say: Common Crawl stores
bodies already de-chunked and decompressed but keeps the original headers under
``X-Crawler-*`` names (older crawls keep them as-is), some servers omit the
reason phrase, chunk framing can be broken and gzip bodies can be cut short. So
every transformation here is tried only when the bytes look like it applies and
falls back to the bytes as they are; each such problem is returned as a note for
the caller to count and record, never raised.

>>> r = parse_response(b"HTTP/1.1 200\\r\\nContent-Type: text/html\\r\\n\\r\\n<p>hi</p>")
>>> r.status, r.content_type, r.body
(200, 'text/html', b'<p>hi</p>')
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

_STATUS_RE = re.compile(rb"^HTTP/\d(?:\.\d)?\s+(\d{3})")
_HEX_RE = re.compile(rb"^[0-9a-fA-F]+")


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-cased names; first occurrence wins
    body: bytes
    problems: list[str] = field(default_factory=list)
    cut: bool = False  # the decoded body was longer than the cap and keeps only its start

    @property
    def content_type(self) -> str:
        """Media type without parameters, lower-cased ('' if absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str:
        """charset parameter of Content-Type ('' if absent)."""
        m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", self.headers.get("content-type", ""), re.I)
        return m.group(1) if m else ""


# The most a decoded body may hold (see curate.ingest.archive.MAX_RECORD_BYTES):
# a small gzip body can inflate a thousandfold.
MAX_BODY_BYTES = 4 * 1024 * 1024


def parse_response(block: bytes, max_body: int = MAX_BODY_BYTES) -> HttpResponse | None:
    """Split an HTTP response into status, headers and decoded body.

    Returns None when the block is not an HTTP response at all. A body that
    decodes to more than ``max_body`` bytes keeps its first ``max_body`` and a
    note says so (the decoder stops there; the rest is never inflated).
    """
    m = _STATUS_RE.match(block)
    if not m:
        return None
    # headers end at the first blank line; accept bare LF line endings too
    end = block.find(b"\r\n\r\n")
    lf_end = block.find(b"\n\n")
    if end < 0 and lf_end < 0:
        head, body = block, b""
    elif end < 0 or (0 <= lf_end < end):
        head, body = block[:lf_end], block[lf_end + 2 :]
    else:
        head, body = block[:end], block[end + 4 :]
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.setdefault(name.strip().lower(), value.strip())
    problems: list[str] = []
    n_problems = len(problems)
    body = _decode_body(body, headers, problems, max_body)
    cut = any(p.endswith("; cut") for p in problems[n_problems:])
    return HttpResponse(int(m.group(1)), headers, body, problems, cut)


def _decode_body(body: bytes, headers: dict[str, str], problems: list[str], max_body: int) -> bytes:
    te = headers.get("transfer-encoding", "").lower()
    if "chunked" in te and _looks_chunked(body):
        body = dechunk(body, problems)
    ce = headers.get("content-encoding", "").lower().strip()
    if ce in ("gzip", "x-gzip", "deflate") and body[:2] in (b"\x1f\x8b", b"\x78\x01", b"\x78\x9c", b"\x78\xda"):
        body = _inflate(body, ce, problems, max_body)
    elif ce == "br" and body and not _looks_text(body):
        body = _unbrotli(body, problems, max_body)
    return body


def _unbrotli(body: bytes, problems: list[str], max_body: int) -> bytes:
    try:
        import brotli  # optional; only present if a peer pulled it in
    except ImportError:
        problems.append("brotli body and no brotli decoder installed")
        return body
    try:
        d = brotli.Decompressor()
        try:
            out = d.process(body, output_buffer_limit=max_body + 1)
        except TypeError:
            # brotli < 1.2 has no output limit: decode only what is small enough to be safe
            if len(body) * 64 > max_body:
                problems.append("brotli body too large to decode safely with this brotli version; body dropped")
                return b""
            out = d.process(body)
    except Exception as exc:  # brotli raises its own error type
        problems.append(f"brotli body undecodable ({type(exc).__name__})")
        return body
    if len(out) > max_body:
        problems.append(f"br body larger than {max_body} bytes; cut")
        return out[:max_body]
    return out


def _looks_chunked(body: bytes) -> bool:
    line, _, _ = body[:20].partition(b"\n")
    return bool(_HEX_RE.match(line.strip())) and len(line.strip().split(b";")[0]) <= 8


def _looks_text(body: bytes) -> bool:
    sample = body[:512].lstrip()
    return sample[:1] in (b"<", b"{", b"[") or sample[:5].lower() == b"<!doc"


def dechunk(body: bytes, problems: list[str] | None = None) -> bytes:
    """Remove chunked transfer-encoding framing, leniently.

    Broken framing (a size line that is not hex, a chunk running past the end)
    keeps everything read so far plus the unframed rest, and adds a note.

    >>> dechunk(b"3\\r\\nabc\\r\\n2\\r\\nde\\r\\n0\\r\\n\\r\\n")
    b'abcde'
    """
    out = bytearray()
    pos = 0
    n = len(body)
    while pos < n:
        nl = body.find(b"\n", pos)
        if nl < 0:
            break
        size_line = body[pos:nl].strip().split(b";", 1)[0]
        if not size_line:
            pos = nl + 1
            continue
        if not _HEX_RE.fullmatch(size_line):
            if problems is not None:
                problems.append(f"broken chunked encoding at body offset {pos}; rest kept as is")
            out += body[pos:]
            return bytes(out)
        size = int(size_line, 16)
        if size == 0:
            return bytes(out)
        start = nl + 1
        if start + size > n:
            if problems is not None:
                problems.append("chunked body truncated")
            out += body[start:]
            return bytes(out)
        out += body[start : start + size]
        pos = start + size
        # the CRLF after the chunk data
        if body[pos : pos + 2] == b"\r\n":
            pos += 2
        elif body[pos : pos + 1] == b"\n":
            pos += 1
    return bytes(out)


def _inflate(body: bytes, ce: str, problems: list[str], max_body: int) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if body[:2] == b"\x1f\x8b" else zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    try:
        # max_length: a 10 KB body can hold a 1 GiB page; inflate no more than we keep
        out = d.decompress(body, max_body + 1)
    except zlib.error as exc:
        problems.append(f"{ce} body undecodable ({exc}); body dropped")
        return b""
    if len(out) > max_body:
        problems.append(f"{ce} body larger than {max_body} bytes; cut")
        return out[:max_body]
    if not d.eof:
        problems.append(f"{ce} body truncated")
    return out
