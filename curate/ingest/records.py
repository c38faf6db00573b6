"""Archive records -> Documents: HTTP decoding, charset, main-content extraction.

This is the 'read' and 'extract' part of the flow. Each record either becomes a
Document or is skipped with a named counter (``skipped:<why>``), so the counters
always add up: ``read:records == docs + sum(skipped:*)``.

>>> from pathlib import Path
>>> from curate.core.counters import Counters
>>> sample = Path(__file__).resolve().parents[2] / "sample" / "CC-MAIN-2024-22-excerpt.warc.gz"
>>> c, errs = Counters(), []
>>> [(d.url, d.text[:29]) for d in read_archive(sample, errs, c)], errs
([('https://an.wikipedia.org/wiki/Escopete', 'Iste articlo ye en proceso de')], [])
>>> c["read:records"], c["docs"], c["skipped:record:request"]
(4, 1, 1)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from curate.core.counters import Counters
from curate.core.document import Document
from curate.ingest.archive import MAX_RECORD_BYTES, ArchiveError, ArchiveRecord, _sink, iter_records
from curate.ingest.charset import decode_html
from curate.ingest.extract import html_to_text
from curate.ingest.http import parse_response

HTML_TYPES = {"text/html", "application/xhtml+xml", "application/xml+xhtml", "text/xhtml"}
# Counter names come from closed sets, never from the file: a damaged record can
# put anything (a whole HTML page, once) where a type belongs. The WARC 1.1 record
# types ("unknown": the header is missing) ...
RECORD_TYPES = frozenset({"warcinfo", "response", "resource", "request", "metadata", "revisit",
                          "conversion", "continuation", "unknown"})
# ... and the non-HTML media types a crawl holds most; any other well-formed type is
# counted under its top-level type (``image/other``), a malformed one as ``other``.
COUNTED_MIME = frozenset({
    "application/pdf", "application/json", "application/javascript", "application/xml", "application/rss+xml",
    "application/atom+xml", "application/octet-stream", "application/zip", "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "text/plain", "text/css",
    "text/xml", "text/javascript", "text/csv", "image/jpeg", "image/png", "image/gif", "image/svg+xml",
    "image/webp", "image/x-icon", "audio/mpeg", "video/mp4", "font/woff2"})
MIME_TOP = frozenset({"application", "audio", "font", "image", "message", "model", "multipart", "text", "video"})
_MIME_RE = re.compile(r"^([a-z]+)/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_RAW_CHARS = 80  # how much of an unexpected value goes into the error record


def mime_counter(mime: str) -> tuple[str, bool]:
    """(the counter's name for a skipped media type, whether the value is malformed).

    >>> mime_counter("application/pdf"), mime_counter("image/avif"), mime_counter("<html><body>")
    (('application/pdf', False), ('image/other', False), ('other', True))
    """
    if not mime:
        return "none", False
    if mime in COUNTED_MIME:
        return mime, False
    m = _MIME_RE.match(mime)
    if m is None or m.group(1) not in MIME_TOP:
        return "other", True
    return f"{m.group(1)}/other", False


def _shown(value: str) -> str:
    """An unexpected value as it goes into an error record: cut short, repr-quoted."""
    return repr(value[:_RAW_CHARS]) + (f" (+{len(value) - _RAW_CHARS} characters)" if len(value) > _RAW_CHARS else "")


def _looks_html(body: bytes) -> bool:
    head = body[:4096].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head


def document_id(rec: ArchiveRecord) -> str:
    """Stable id: the WARC-Record-ID, else '<file name>:<record index>' (ARC)."""
    if rec.record_id:
        return rec.record_id
    return f"{os.path.basename(rec.file)}:{rec.index}"


def record_to_document(
    rec: ArchiveRecord,
    counters: Counters,
    report=None,
    source: str = "",
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Document | None:
    """Turn one archive record into a Document, or None (counted) if it has no page.

    A compressed HTTP body is inflated to at most ``max_record_bytes``.
    """
    report = _sink(report)
    rtype = rec.record_type
    if rtype == "revisit":
        # a revisit points at an earlier capture and carries no payload of its own
        counters.inc("skipped:revisit")
        return None
    if rtype == "metadata" and "json" in rec.content_type.lower():
        counters.inc("skipped:wat")
        return None
    if rtype not in RECORD_TYPES:
        counters.inc("skipped:record:other")
        counters.inc("read:errors")
        report(ArchiveError(rec.file, rec.offset, f"unknown WARC-Type {_shown(rec.headers.get('WARC-Type') or rtype)}", rec.record_id))
        return None
    if rtype not in ("response", "resource", "conversion"):  # no page in it: counted by its (known) type
        counters.inc(f"skipped:record:{rtype}")
        return None

    meta: dict = {
        "warc_file": rec.file,
        "warc_offset": rec.offset,
        "record_type": rtype,
    }
    if rec.truncated:
        meta["truncated"] = rec.truncated

    if rtype == "conversion":
        # WET: text extracted by Common Crawl, always UTF-8
        text = rec.block.decode("utf-8", "replace").strip()
        refers = rec.headers.get("WARC-Refers-To", "")
        if refers:
            meta["refers_to"] = refers.strip("<>")
        meta["content_type"] = "text/plain"
    else:
        if rtype == "response" and ("application/http" in rec.content_type.lower() or rec.block[:5] == b"HTTP/"):
            resp = parse_response(rec.block, max_body=max_record_bytes)
            if resp is None:
                counters.inc("skipped:not_http")
                counters.inc("read:errors")
                report(ArchiveError(rec.file, rec.offset, "response record does not hold an HTTP response", rec.record_id))
                return None
            for problem in resp.problems:
                counters.inc("read:errors")
                counters.inc("read:http_problems")
                report(ArchiveError(rec.file, rec.offset, problem, rec.record_id))
            if resp.cut:
                counters.inc("read:cut:too_large")
                meta["truncated"] = "length"
            meta["http_status"] = resp.status
            if not 200 <= resp.status < 300:
                counters.inc(f"skipped:http_status:{resp.status // 100}xx")
                return None
            body, mime, http_charset = resp.body, resp.content_type, resp.charset
        else:
            body = rec.block
            mime = rec.content_type.split(";", 1)[0].strip().lower()
            http_charset = ""
        if mime not in HTML_TYPES:
            # servers mislabel pages; sniff before skipping what is really HTML
            if mime in ("", "text/plain", "application/octet-stream", "unk", "unknown", "no-type", "text/html-sandboxed") and _looks_html(body):
                mime = "text/html"
            else:
                name, malformed = mime_counter(mime)
                counters.inc(f"skipped:mime:{name}")
                if malformed:
                    counters.inc("read:errors")
                    report(ArchiveError(rec.file, rec.offset, f"malformed Content-Type {_shown(mime)}", rec.record_id))
                return None
        if not body.strip():
            counters.inc("skipped:empty_payload")
            return None
        html, charset, how = decode_html(body, http_charset)
        meta["content_type"] = mime
        meta["charset"] = charset
        meta["charset_source"] = how
        failures: list[Exception] = []
        text = html_to_text(html, on_error=failures.append)
        if failures:
            counters.inc("read:errors")
            counters.inc("skipped:extract_error")
            report(ArchiveError(rec.file, rec.offset,
                                f"extraction failed ({type(failures[0]).__name__}: {failures[0]})", rec.record_id))
            return None
    if not text.strip():
        counters.inc("skipped:no_text")
        return None
    counters.inc("docs")
    return Document(
        id=document_id(rec),
        text=text,
        source=source,
        url=rec.url,
        created=rec.date,
        metadata=meta,
    )


def read_archive(
    path,
    errors=None,
    counters: Counters | None = None,
    source: str = "",
    name: str | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[Document]:
    """Documents from one WARC/ARC/WET file; problems go to ``errors`` and counters.

    ``path`` is a path or a function returning a fresh binary stream (see
    ``curate.ingest.archive.iter_records``); ``name`` labels the file in metadata and
    errors. Raises NotAnArchiveError / OSError for a file that cannot be read.
    """
    counters = counters if counters is not None else Counters()
    report = _sink(errors)
    for rec in iter_records(path, report, counters, name=name, max_record_bytes=max_record_bytes):
        counters.inc("read:records")
        doc = record_to_document(rec, counters, report, source=source, max_record_bytes=max_record_bytes)
        if doc is not None:
            yield doc


def default_source(path: str | os.PathLike) -> str:
    """A source name from a file name: 'CC-MAIN-2020-34-...warc.gz' -> 'cc'; else 'web'."""
    name = Path(path).name.lower()
    return "cc" if name.startswith(("cc-main", "crawl-data", "cc-")) else "web"
