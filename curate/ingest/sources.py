"""Where the input archives come from: crawl ids, paths files, globs, and streams.

``make filter CRAWL=CC-MAIN-2020`` goes through here:

    crawl spec --resolve_crawls--> crawl ids --list_files--> file locations --open_input--> bytes

A *base* is where Common Crawl's tree (``crawl-data/<ID>/warc.paths.gz`` and the
files those list) lives: ``https://data.commoncrawl.org/`` by default, or a mirror
(another http(s) URL, ``s3://commoncrawl/``, or a local directory with the same
layout). Remote files are streamed, never downloaded first, and a stream that
breaks part way reconnects and resumes with a ``Range`` request, because a
multi-hour job over thousands of 1 GB files will see dropped connections and
503s, and restarting a file from byte 0 (or failing the job) wastes the work.

Only the standard library is used for HTTP, so the library stays light and the
behaviour under faults is ours to test (see ``tests/ccmirror.py``).
"""

from __future__ import annotations

import datetime
import difflib
import glob
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from importlib import resources
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "DEFAULT_BASE",
    "COLLINFO_URL",
    "SourceError",
    "UnknownCrawlError",
    "RemoteReadError",
    "RetryingHTTPStream",
    "known_crawls",
    "resolve_crawls",
    "list_files",
    "expand_inputs",
    "is_remote",
    "open_input",
]

DEFAULT_BASE = "https://data.commoncrawl.org/"
COLLINFO_URL = "https://index.commoncrawl.org/collinfo.json"

KINDS = ("warc", "wet", "wat")
USER_AGENT = "curate/0.1 (GPT-3 data recipe; +https://commoncrawl.org/terms-of-use)"

_CRAWL_ID_RE = re.compile(r"^CC-MAIN-(\d{4})-(\d{2})$")
_REMOTE_SCHEMES = ("http", "https", "s3")
# Waits between reconnects grow as backoff * 2**n but never past this, so a long
# outage is retried at a steady pace instead of sleeping for hours.
_MAX_BACKOFF_S = 30.0
_CHUNK = 1 << 20  # 1 MiB: readall() and range-skip granularity


class SourceError(Exception):
    """An input could not be found, listed or read; the message names it."""


class UnknownCrawlError(SourceError):
    """A crawl spec matched no known crawl id."""


class RemoteReadError(SourceError):
    """A remote read failed for good after all its retries."""


# --------------------------------------------------------------------------- locations


def _scheme(location: str) -> str:
    return urllib.parse.urlsplit(location).scheme.lower() if "://" in location else ""


def is_remote(location: str) -> bool:
    """Whether ``location`` is read over the network (http, https, s3) rather than from disk.

    >>> is_remote("https://data.commoncrawl.org/x.warc.gz"), is_remote("S3://bucket/k"), is_remote("/data/x")
    (True, True, False)
    """
    return _scheme(location) in _REMOTE_SCHEMES


def _file_url_to_path(location: str) -> str:
    """``file:///x/y`` -> ``/x/y``; anything else unchanged."""
    if _scheme(location) == "file":
        return urllib.request.url2pathname(urllib.parse.urlsplit(location).path)
    return location


def _join(base: str, rel: str) -> str:
    """Join a base (URL or directory) and a relative path from a paths file."""
    rel = rel.lstrip("/")
    if is_remote(base):
        return base.rstrip("/") + "/" + rel
    return os.path.join(_file_url_to_path(base), *rel.split("/"))


def _is_default_base(base: str) -> bool:
    return base.rstrip("/") == DEFAULT_BASE.rstrip("/")


def _is_mirror(base: str) -> bool:
    """A base that may carry its own collinfo.json: any http(s) URL other than
    Common Crawl's, or a local directory. (``s3://commoncrawl/`` is the same data
    as the default base and holds no collinfo.json.)"""
    if _is_default_base(base):
        return False
    return _scheme(base) in ("http", "https") or not is_remote(base)


def _check_local_base(base: str) -> None:
    if not is_remote(base):
        path = _file_url_to_path(base)
        if not os.path.isdir(path):
            raise SourceError(f"base directory not found: {path}")


def _read_all(location: str, *, timeout: float, retries: int) -> bytes:
    """Read a small file (collinfo.json, a paths file) completely."""
    with open_input(location, retries=retries, timeout=timeout, backoff=0.5) as f:
        return f.read()


# --------------------------------------------------------------------------- crawl ids


def _bundled_crawls() -> list[str]:
    text = resources.files("curate").joinpath("data", "crawls.txt").read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _parse_collinfo(raw: bytes, where: str) -> list[str]:
    try:
        entries = json.loads(raw)
        ids = [e["id"] for e in entries if isinstance(e.get("id"), str)]
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise SourceError(f"{where}: not a Common Crawl collinfo.json list ({e})") from e
    if not ids:
        raise SourceError(f"{where}: collinfo.json lists no crawls")
    return ids


def known_crawls(base: str = DEFAULT_BASE, timeout: float = 10) -> tuple[list[str], str]:
    """The crawl ids available at ``base`` (newest first) and where the list came from.

    * a mirror (an http(s) URL other than Common Crawl's, or a local directory)
      with a ``collinfo.json`` at its root: that list, source ``"collinfo"``;
    * the default base (or ``s3://``): ``COLLINFO_URL``, source ``"collinfo"``;
    * otherwise (offline, or a mirror without collinfo.json) the list bundled in
      ``curate/data/crawls.txt``, source ``"bundled"``.

    Network look-ups get one short try (``timeout`` seconds, no retries), so an
    offline machine falls back at once instead of hanging.

    >>> ids, source = known_crawls(str(Path(__file__).parent))  # a dir without collinfo.json
    >>> source, ids[-1]
    ('bundled', 'CC-MAIN-2013-20')
    """
    ids, source, _ = _known_crawls(base, timeout)
    return ids, source


_BUNDLED = "the bundled list curate/data/crawls.txt"


def _known_crawls(base: str, timeout: float) -> tuple[list[str], str, str]:
    """``known_crawls`` plus the place the list was read from, for messages."""
    if _is_mirror(base):
        _check_local_base(base)
        where = _join(base, "collinfo.json")
        if not is_remote(where):
            if os.path.isfile(where):
                return _parse_collinfo(Path(where).read_bytes(), where), "collinfo", where
            return _bundled_crawls(), "bundled", _BUNDLED
        try:
            raw = _read_all(where, timeout=timeout, retries=0)
        except SourceError:
            # A mirror need not publish collinfo.json; its absence is not an error.
            return _bundled_crawls(), "bundled", _BUNDLED
        return _parse_collinfo(raw, where), "collinfo", where
    try:
        raw = _read_all(COLLINFO_URL, timeout=timeout, retries=0)
        return _parse_collinfo(raw, COLLINFO_URL), "collinfo", COLLINFO_URL
    except SourceError:
        # Offline or index server down: the bundled list is good enough to
        # resolve ids; reading the data itself will say clearly if it is unreachable.
        return _bundled_crawls(), "bundled", _BUNDLED


def _crawl_key(crawl_id: str) -> tuple[int, int] | None:
    m = _CRAWL_ID_RE.match(crawl_id)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _nearest(spec: str, ids: list[str], n: int = 5) -> list[str]:
    """Up to ``n`` ids closest to ``spec``: in time for a well-formed id (a typo'd
    week wants its neighbours, not the same week of other years), else by text
    similarity (difflib)."""
    m = re.match(r"^CC-MAIN-(\d{4})(?:-(\d{1,2}))?", spec)
    key = (int(m.group(1)), int(m.group(2) or 26)) if m else None  # a bare year: its middle
    dated = [(k, i) for i, k in ((i, _crawl_key(i)) for i in ids) if k]
    if key and dated:
        def distance(item):
            (y, w), i = item
            return (abs((y * 53 + w) - (key[0] * 53 + key[1])), i)
        return [i for _, i in sorted(dated, key=distance)[:n]]
    return difflib.get_close_matches(spec, ids, n=n, cutoff=0.0)


def resolve_crawls(spec: str, base: str = DEFAULT_BASE) -> list[str]:
    """Crawl ids for a spec: an exact id, or a prefix matching every id it starts.

    Several specs may be given separated by commas. Case does not matter. The
    result is sorted (oldest first) and has no duplicates.

    With the bundled list (offline), a well-formed id newer than every bundled
    id (but not in the future) is accepted as is, because the bundled list may
    predate that crawl; reading its paths file will tell if it exists.

    >>> resolve_crawls("CC-MAIN-2020-34", base=str(Path(__file__).parent))
    ['CC-MAIN-2020-34']
    >>> resolve_crawls("cc-main-2013", base=str(Path(__file__).parent))
    ['CC-MAIN-2013-20', 'CC-MAIN-2013-48']
    >>> resolve_crawls("CC-MAIN-2020-33", base=str(Path(__file__).parent))
    Traceback (most recent call last):
    ...
    curate.ingest.sources.UnknownCrawlError: unknown crawl 'CC-MAIN-2020-33' (...); nearest: CC-MAIN-2020-34, ...
    """
    specs = [s.strip() for s in spec.split(",") if s.strip()]
    if not specs:
        raise UnknownCrawlError(
            f"empty crawl spec {spec!r}: give an id like CC-MAIN-2020-34 or a prefix like CC-MAIN-2020"
        )
    ids, source, where = _known_crawls(base, timeout=10)
    newest = max((k for k in map(_crawl_key, ids) if k), default=None)
    found: set[str] = set()
    this_week = datetime.date.today().isocalendar()[:2]
    for given in specs:
        s = given.upper()
        if s in ids:
            found.add(s)
            continue
        matches = [i for i in ids if i.startswith(s)]
        if matches:
            found.update(matches)
            continue
        key = _crawl_key(s)
        if source == "bundled" and key and newest and newest < key <= this_week:
            found.add(s)
            continue
        nearest = _nearest(s, ids)
        raise UnknownCrawlError(
            f"unknown crawl {given!r} (crawl list from {where}); nearest: {', '.join(nearest)}"
        )
    return sorted(found)


# --------------------------------------------------------------------------- paths files


def _sample(paths: list[str], files: int, seed: int) -> list[str]:
    """The ``files`` paths with the smallest sha1(f"{seed}:{path}"), in input order.

    Hash ranks (not ``random.sample``) make the choice depend only on the seed and
    each path, so a rerun, another machine or a longer paths file with the same
    entries picks the same files.
    """
    if files >= len(paths):
        return list(paths)
    rank = sorted(range(len(paths)), key=lambda i: hashlib.sha1(f"{seed}:{paths[i]}".encode()).digest())
    chosen = set(rank[:files])
    return [p for i, p in enumerate(paths) if i in chosen]


def list_files(
    crawl_id: str,
    base: str = DEFAULT_BASE,
    kind: str = "warc",
    files: int | None = None,
    seed: int = 0,
) -> list[str]:
    """Full locations of a crawl's files, read from ``<base>/crawl-data/<ID>/<kind>.paths.gz``.

    ``kind`` is ``warc``, ``wet`` or ``wat``. Locations are URLs for an http(s)
    or s3 base and filesystem paths for a local directory. ``files=N`` keeps a
    deterministic sample of N files (by seeded hash, see ``_sample``), in the
    paths file's order.

    >>> list_files("CC-MAIN-2020-34", base="/no/such/dir")
    Traceback (most recent call last):
    ...
    curate.ingest.sources.SourceError: base directory not found: /no/such/dir
    """
    if kind not in KINDS:
        raise SourceError(f"unknown file kind {kind!r}: expected one of {', '.join(KINDS)}")
    if files is not None and files < 1:
        raise SourceError(f"files must be a positive number of files, got {files}")
    _check_local_base(base)
    where = _join(base, f"crawl-data/{crawl_id}/{kind}.paths.gz")
    if not is_remote(where) and not os.path.isfile(where):
        raise SourceError(f"paths file not found: {where}")
    try:
        raw = _read_all(where, timeout=30, retries=3)
    except RemoteReadError:
        raise  # already names the URL, the position and the cause
    except SourceError as e:
        raise SourceError(f"cannot read paths file: {e}") from e
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise SourceError(f"paths file {where} is not valid gzip: {e}") from e
    paths = [ln.strip() for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
    if not paths:
        raise SourceError(f"paths file {where} lists no files")
    if files is not None:
        paths = _sample(paths, files, seed)
    return [_join(base, p) for p in paths]


# --------------------------------------------------------------------------- local inputs


def expand_inputs(patterns: list[str]) -> list[str]:
    """Expand local files and globs (``**`` included); URLs pass through unchanged.

    Each glob's matches are sorted; the result keeps the patterns' order and drops
    repeats. A pattern that matches no file is an error, because a typo in a
    glob would otherwise silently process nothing.

    >>> expand_inputs(["https://data.commoncrawl.org/crawl-data/x.warc.gz"])
    ['https://data.commoncrawl.org/crawl-data/x.warc.gz']
    >>> expand_inputs(["/no/such/*.warc.gz"])
    Traceback (most recent call last):
    ...
    curate.ingest.sources.SourceError: no input matches /no/such/*.warc.gz
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(item: str, key: str) -> None:
        if key not in seen:
            seen.add(key)
            out.append(item)

    for pattern in patterns:
        if is_remote(pattern):
            add(pattern, pattern)
            continue
        path = _file_url_to_path(pattern)
        if glob.has_magic(path):
            matches = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
            if not matches:
                raise SourceError(f"no input matches {pattern}")
            for m in matches:
                add(m, os.path.normpath(os.path.abspath(m)))
        elif os.path.isfile(path):
            add(path, os.path.normpath(os.path.abspath(path)))
        elif os.path.isdir(path):
            hint = os.path.join(path, "*.warc.gz")
            raise SourceError(f"input is a directory: {pattern} (use a glob such as {hint})")
        else:
            raise SourceError(f"no input matches {pattern}")
    return out


# --------------------------------------------------------------------------- streams


class _RetryableError(Exception):
    """A failure worth reconnecting for (reset, timeout, 5xx, 429, short body)."""


class RetryingHTTPStream(io.RawIOBase):
    """A streaming HTTP(S) GET that survives dropped connections and busy servers.

    Bytes are read from the open response as the caller asks for them. When the
    connection resets, times out, or ends before its ``Content-Length``, or the
    server answers 5xx/429, the stream waits ``backoff * 2**n`` seconds (capped
    at 30 s; no jitter, so runs are reproducible) and reconnects with
    ``Range: bytes=<pos>-``; a server that ignores the range and answers 200 has
    its first ``pos`` bytes skipped. The retry budget applies to consecutive
    failures: any new byte read restores it, so a long file may survive many
    separate drops. A 4xx other than 429 is final at once.

    The first request is made in the constructor, so a missing file fails at
    ``open_input`` time.

    >>> s = RetryingHTTPStream("http://127.0.0.1:9/none", retries=0, timeout=1)
    Traceback (most recent call last):
    ...
    curate.ingest.sources.RemoteReadError: http://127.0.0.1:9/none: read failed at byte 0 after 0 retries: ...
    """

    def __init__(
        self,
        url: str,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 30,
        counters=None,
        max_backoff: float = _MAX_BACKOFF_S,
    ):
        super().__init__()
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.counters = counters
        self.pos = 0  # bytes handed to the caller so far
        self.size: int | None = None  # total size, once a response tells us
        self.retries_used = 0  # total over the stream's life, for reporting
        self._failures = 0  # consecutive failures since the last byte read
        self._eof = False
        self._resp: http.client.HTTPResponse | None = None
        self._with_retries(self._connect)

    # -- io.RawIOBase

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def readinto(self, b) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        if len(b) == 0:
            return 0
        return self._with_retries(lambda: self._readinto_once(b))

    def readall(self) -> bytes:
        # RawIOBase.readall reads 8 KiB at a time; whole-file reads are common
        # (paths files, small archives), so use bigger reads.
        chunks = bytearray()
        buf = bytearray(_CHUNK)
        while True:
            n = self.readinto(buf)
            if not n:
                return bytes(chunks)
            chunks += buf[:n]

    def close(self) -> None:
        self._drop()
        super().close()

    # -- internals

    def _drop(self) -> None:
        if self._resp is not None:
            try:
                self._resp.close()
            except OSError:
                pass
            self._resp = None

    def _with_retries(self, op):
        while True:
            try:
                return op()
            except _RetryableError as e:
                self._drop()
                self._failures += 1
                if self._failures > self.retries:
                    raise RemoteReadError(
                        f"{self.url}: read failed at byte {self.pos} after {self.retries} retries: {e}"
                    ) from None
                self.retries_used += 1
                if self.counters is not None:
                    self.counters.inc("fetch:retries")
                time.sleep(min(self.backoff * 2 ** (self._failures - 1), self.max_backoff))

    def _connect(self) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if self.pos:
            headers["Range"] = f"bytes={self.pos}-"
        req = urllib.request.Request(self.url, headers=headers)
        try:
            resp = urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 416 and self.pos and self.size is not None and self.pos >= self.size:
                return  # asked past the end: nothing left to read
            if e.code == 429 or e.code >= 500:
                raise _RetryableError(f"HTTP {e.code} {e.reason}") from None
            raise SourceError(f"{self.url}: HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise _RetryableError(f"cannot connect: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:
            raise _RetryableError(_describe(e)) from None
        self._resp = resp
        if resp.status == 206:
            start, total = _parse_content_range(resp.headers.get("Content-Range", ""))
            if start is None or start > self.pos:
                self._drop()
                raise RemoteReadError(
                    f"{self.url}: asked for bytes={self.pos}- but got Content-Range "
                    f"{resp.headers.get('Content-Range')!r}"
                )
            self._set_size(total)
            self._skip(self.pos - start)
        else:
            length = resp.headers.get("Content-Length")
            self._set_size(int(length) if length is not None and length.isdigit() else None)
            # 200 to a Range request: the server sends the whole file, so throw
            # away what the caller already has.
            self._skip(self.pos)

    def _set_size(self, total: int | None) -> None:
        # Resuming is only sound if it is the same file: a different total size
        # means it was replaced between requests, and splicing would corrupt it.
        if total is not None and self.size is not None and total != self.size:
            self._drop()
            raise RemoteReadError(
                f"{self.url}: size changed from {self.size} to {total} bytes while reading "
                f"(at byte {self.pos}); the file was replaced"
            )
        if total is not None:
            self.size = total

    def _skip(self, n: int) -> None:
        assert self._resp is not None
        while n > 0:
            try:
                got = self._resp.read(min(n, _CHUNK))
            except (OSError, http.client.HTTPException) as e:
                raise _RetryableError(f"while skipping to byte {self.pos}: {_describe(e)}") from None
            if not got:
                raise _RetryableError(f"connection closed while skipping to byte {self.pos}")
            n -= len(got)

    def _readinto_once(self, b) -> int:
        if self._eof:
            return 0
        if self._resp is None:
            if self.size is not None and self.pos >= self.size:
                return 0
            self._connect()
            if self._resp is None:  # 416 at the end
                return 0
        try:
            # read1, not readinto: readinto keeps reading until the buffer is full,
            # so a stall after partial data would lose those bytes with the timeout;
            # read1 hands over what has arrived, and pos always counts delivered bytes.
            data = self._resp.read1(len(b))
        except (OSError, http.client.HTTPException) as e:
            raise _RetryableError(_describe(e)) from None
        n = len(data)
        if n:
            b[:n] = data
            self.pos += n
            self._failures = 0
            return n
        # http.client signals a body cut short (fewer bytes than Content-Length)
        # as a plain EOF, so compare with what the headers promised.
        remaining = getattr(self._resp, "length", None)
        if remaining or (self.size is not None and self.pos < self.size):
            expected = self.size if self.size is not None else self.pos + remaining
            raise _RetryableError(f"connection closed at byte {self.pos} of {expected}")
        self._drop()
        self._eof = True
        return 0


def _describe(e: BaseException) -> str:
    if isinstance(e, http.client.IncompleteRead):
        return f"IncompleteRead ({len(e.partial)} bytes read, {e.expected} more expected)"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _parse_content_range(value: str) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` -> (100, 1000); total is None for ``*``."""
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", value)
    if not m:
        return None, None
    return int(m.group(1)), (int(m.group(2)) if m.group(2) != "*" else None)


class _S3Stream(io.RawIOBase):
    """Adapts a boto3 ``StreamingBody`` to ``io.RawIOBase``."""

    def __init__(self, location: str, body):
        super().__init__()
        self.location = location
        self._body = body
        self.pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def readinto(self, b) -> int:
        try:
            data = self._body.read(len(b))
        except Exception as e:  # botocore raises many unrelated types; name the file
            raise RemoteReadError(f"{self.location}: read failed at byte {self.pos}: {e}") from e
        n = len(data)
        b[:n] = data
        self.pos += n
        return n

    def close(self) -> None:
        self._body.close()
        super().close()


def _open_s3(location: str) -> BinaryIO:
    try:
        import boto3  # optional: only s3:// inputs need it
    except ImportError:
        raise SourceError(
            f"{location}: reading s3:// needs boto3 (pip install boto3), "
            f"or use the https base {DEFAULT_BASE}"
        ) from None
    parts = urllib.parse.urlsplit(location)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    try:
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as e:  # botocore's errors (credentials, NoSuchKey, ...) share no base we can import
        raise SourceError(f"{location}: {e}") from e
    return _S3Stream(location, body)


def open_input(
    location: str,
    *,
    retries: int = 5,
    backoff: float = 0.5,
    timeout: float = 30,
    counters=None,
) -> BinaryIO:
    """Open a local path, ``file://``, ``http(s)://`` or ``s3://`` location for binary reading.

    HTTP(S) is streamed by a ``RetryingHTTPStream`` (resumes after drops, see
    there); ``counters`` gets ``fetch:retries`` once per reconnect. Wrap the
    result in ``io.BufferedReader`` for small reads.

    >>> with open_input(__file__) as f:
    ...     len(f.read(10))
    10
    >>> open_input("/no/such/file.warc.gz")
    Traceback (most recent call last):
    ...
    curate.ingest.sources.SourceError: cannot open /no/such/file.warc.gz: No such file or directory
    """
    scheme = _scheme(location)
    if scheme in ("http", "https"):
        return RetryingHTTPStream(
            location, retries=retries, backoff=backoff, timeout=timeout, counters=counters
        )
    if scheme == "s3":
        return _open_s3(location)
    path = _file_url_to_path(location)
    try:
        return open(path, "rb")
    except OSError as e:
        raise SourceError(f"cannot open {path}: {e.strerror or e}") from e
