"""A Common Crawl-shaped mirror on loopback, with fault injection, for tests.

``build_mirror`` lays out the real sample archives from ``../shared/data/warc``
the way ``data.commoncrawl.org`` does (``collinfo.json``,
``crawl-data/<ID>/warc.paths.gz``, ``crawl-data/<ID>/segments/<seg>/warc/<file>``),
and ``MirrorServer`` serves any directory over HTTP on 127.0.0.1 with byte
ranges, HEAD and 404, and can misbehave on purpose the ways real servers do
(drop a connection mid-body, answer 503, cut a file short, ignore ``Range``),
so the retry and resume logic of ``curate.ingest.sources`` is tested against a real
socket instead of mocks. Any test (the Beam end-to-end ones too) can use it::

    mirror = build_mirror(tmp_path / "cc")
    with MirrorServer(mirror["root"]) as server:
        server.add_fault("00000.warc.gz", drop_after=(5000, 2))
        run_pipeline(crawl="CC-MAIN-2020-34", base=server.url)
        assert server.requests_for("00000.warc.gz")[1].range == "bytes=5000-"
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tests.common import SHARED

SHARED_WARC = SHARED / "warc"

# Real Common Crawl names for the sample files (from their WARC-Filename headers);
# the segment ids are made up but shaped like CC's (<timestamp ms>.<n>).
_LAYOUT = {
    "CC-MAIN-2014-35": {
        "segment": "1408500800168.29",
        "files": {
            "warc": [("cc-main-2014-35_wdps-CommonCrawl-sample.warc",
                      "CC-MAIN-20140820021320-00000-ip-10-180-136-8.ec2.internal.warc.gz")],
        },
        "name": "August 2014 Index",
    },
    "CC-MAIN-2020-34": {
        "segment": "1596439737883.59",
        "files": {
            "warc": [("cc-main-2020-34_resiliparse-warcfile.part1.warc.gz",
                      "CC-MAIN-20200808165417-20200808195417-00395.warc.gz")],
        },
        "name": "August 2020 Index",
    },
    "CC-MAIN-2024-22": {
        "segment": "1715971057216.39",
        "files": {
            "warc": [("cc-main-2024-22_whirlwind.warc.gz",
                      "CC-MAIN-20240517233122-20240518023122-00000.warc.gz")],
            "wet": [("cc-main-2024-22_whirlwind.warc.wet.gz",
                     "CC-MAIN-20240517233122-20240518023122-00000.warc.wet.gz")],
            "wat": [("cc-main-2024-22_whirlwind.warc.wat.gz",
                     "CC-MAIN-20240517233122-20240518023122-00000.warc.wat.gz")],
        },
        "name": "May 2024 Index",
    },
}


def _gzip_bytes(data: bytes) -> bytes:
    # mtime=0: the same input gives the same bytes, so mirrors are reproducible.
    return gzip.compress(data, compresslevel=6, mtime=0)


def _split_warc_records(data: bytes) -> list[bytes]:
    """Split an uncompressed WARC before each ``WARC/1.x`` line that follows a blank
    line. Cruder than following Content-Length, but it keeps a truncated last
    record (the 2014 sample ends mid-record) as a member of its own."""
    starts = [0] + [m.start() for m in re.finditer(rb"(?<=\r\n\r\n)WARC/1\.[01]\r\n", data)]
    starts = sorted(set(starts))
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)]) if data[a:b]]


def warc_to_cc_gzip(data: bytes) -> bytes:
    """Compress an uncompressed WARC the way Common Crawl does: one gzip member per
    record, so each record starts at a member boundary. Already-gzipped input is kept."""
    if data[:2] == b"\x1f\x8b":
        return data
    return b"".join(_gzip_bytes(r) for r in _split_warc_records(data))


def build_mirror(root: Path, shared_warc_dir: Path | None = None) -> dict:
    """Lay out a Common Crawl-shaped tree under ``root`` from the shared sample files.

    Returns ``{"root": Path, "ids": [...], "crawls": {id: {kind: [relative paths]}},
    "sources": {relative path: shared sample it came from}}``; paths are relative to ``root``
    (the same strings the ``*.paths.gz`` files hold).
    """
    root = Path(root)
    src_dir = Path(shared_warc_dir) if shared_warc_dir is not None else SHARED_WARC
    if not src_dir.is_dir():
        raise FileNotFoundError(f"shared WARC samples not found: {src_dir}")
    crawls: dict[str, dict[str, list[str]]] = {}
    sources: dict[str, Path] = {}
    for crawl_id, spec in _LAYOUT.items():
        crawls[crawl_id] = {}
        for kind, entries in spec["files"].items():
            rels = []
            for src_name, cc_name in entries:
                src = src_dir / src_name
                rel = f"crawl-data/{crawl_id}/segments/{spec['segment']}/{kind}/{cc_name}"
                dest = root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(warc_to_cc_gzip(src.read_bytes()))
                rels.append(rel)
                sources[rel] = src
            paths_file = root / "crawl-data" / crawl_id / f"{kind}.paths.gz"
            paths_file.write_bytes(_gzip_bytes("".join(r + "\n" for r in rels).encode()))
            crawls[crawl_id][kind] = rels
    # Shaped like https://index.commoncrawl.org/collinfo.json (newest first).
    collinfo = [
        {
            "id": crawl_id,
            "name": _LAYOUT[crawl_id]["name"],
            "timegate": f"https://index.commoncrawl.org/{crawl_id}/",
            "cdx-api": f"https://index.commoncrawl.org/{crawl_id}-index",
        }
        for crawl_id in sorted(_LAYOUT, reverse=True)
    ]
    (root / "collinfo.json").write_text(json.dumps(collinfo, indent=1) + "\n")
    return {"root": root, "ids": sorted(_LAYOUT), "crawls": crawls, "sources": sources}


# --------------------------------------------------------------------------- server


class LoggedRequest(NamedTuple):
    method: str
    path: str  # relative to the served root, no leading "/"
    range: str | None  # the Range header as sent
    status: int


@dataclass
class Fault:
    """How to misbehave for one path (see ``MirrorServer.add_fault``)."""

    drop_after: tuple[int, int] | None = None  # (body bytes, first N GETs)
    status_first: tuple[int, int] | None = None  # (status, first N requests)
    truncate: int | None = None  # bytes of the file ever sent, forever
    ignore_range: bool = False
    stall_after: tuple[int, int] | None = None  # (body bytes, first N GETs): then go silent
    requests: int = 0  # requests seen (for status_first)
    bodies: int = 0  # bodies started (for drop_after)
    stalls: int = 0  # bodies started (for stall_after)

    def body_limit(self, lock: threading.Lock, rule: str, counter: str) -> int | None:
        """Body bytes this GET may send under ``rule`` (``drop_after`` or ``stall_after``), or
        None when the rule is unset or its first N GETs are used up; counts the GET in ``counter``."""
        setting = getattr(self, rule)
        if not setting:
            return None
        with lock:
            nth = getattr(self, counter)
            setattr(self, counter, nth + 1)
        return setting[0] if nth < setting[1] else None


class MirrorServer:
    """Serve ``root`` over HTTP on 127.0.0.1 (ephemeral port), in a thread.

    ``url`` is the base URL, ending in "/". Supports GET, HEAD, ``Range: bytes=N-``
    and ``bytes=N-M`` (206 + Content-Range; 416 past the end) and 404. Faults are
    set per path (exact relative path, or a suffix of it) with ``add_fault`` or
    ``faults={path: dict(...)}``. ``requests`` is the log of what was asked.

    >>> import tempfile; d = tempfile.mkdtemp(); _ = Path(d, "a.txt").write_bytes(b"hello")
    >>> import urllib.request
    >>> with MirrorServer(d) as s:
    ...     urllib.request.urlopen(s.url + "a.txt").read(), s.requests[0].status
    (b'hello', 200)
    """

    def __init__(self, root: str | os.PathLike, faults: dict[str, dict] | None = None):
        self.root = Path(root).resolve()
        self._faults: dict[str, Fault] = {}
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        for path, kw in (faults or {}).items():
            self.add_fault(path, **kw)
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._stopping = threading.Event()  # wakes stalled handlers on stop

    # -- configuration and inspection

    def add_fault(
        self,
        path: str,
        *,
        drop_after: tuple[int, int] | None = None,
        status_first: tuple[int, int] | None = None,
        truncate: int | None = None,
        ignore_range: bool = False,
        stall_after: tuple[int, int] | None = None,
    ) -> None:
        """Misbehave for ``path`` (relative path, or any path ending with it).

        * ``drop_after=(n, times)``: close the connection after ``n`` body bytes,
          for the first ``times`` GETs that get a body;
        * ``status_first=(status, times)``: answer ``status`` to the first ``times`` requests;
        * ``truncate=n``: never send the file's bytes from offset ``n`` on, while
          declaring the full length (an unrecoverable short file);
        * ``ignore_range=True``: answer 200 with the whole file to Range requests;
        * ``stall_after=(n, times)``: send ``n`` body bytes, then nothing (the
          connection stays open until the client times out or the server stops),
          for the first ``times`` GETs that get a body.
        """
        with self._lock:
            self._faults[path.lstrip("/")] = Fault(drop_after, status_first, truncate, ignore_range, stall_after)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str) -> list[LoggedRequest]:
        """Logged requests whose path is ``path`` or ends with it."""
        return [r for r in self.requests if r.path == path or r.path.endswith(path)]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``; still readable after stop (for assertions)."""
        if self._url is None:
            raise RuntimeError("MirrorServer was never started (use it as a context manager)")
        return self._url

    # -- lifecycle

    def start(self) -> "MirrorServer":
        self._stopping.clear()
        handler = type("_Handler", (_Handler,), {"mirror": self})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        host, port = self._httpd.server_address[:2]
        self._url = f"http://{host}:{port}/"
        self._httpd.daemon_threads = True
        # A short poll interval so leaving the context takes ~50 ms, not 0.5 s.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="ccmirror", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> "MirrorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- used by the handler

    def _fault_for(self, rel: str) -> Fault | None:
        if rel in self._faults:
            return self._faults[rel]
        for key, fault in self._faults.items():
            if rel.endswith(key):
                return fault
        return None

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)


class _Handler(http.server.BaseHTTPRequestHandler):
    mirror: MirrorServer  # set on a per-server subclass
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_HEAD(self):
        self._serve(send_body=False)

    def do_GET(self):
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        range_header = self.headers.get("Range")
        mirror = self.mirror
        target = (mirror.root / rel).resolve()
        with mirror._lock:
            fault = mirror._fault_for(rel)
            nth_request = fault.requests if fault else 0
            if fault:
                fault.requests += 1

        def answer(
            status: int, headers: dict[str, str], body: bytes = b"", limit: int | None = None, stall: bool = False
        ) -> None:
            mirror._record(LoggedRequest(self.command, rel, range_header, status))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if send_body and body:
                try:
                    self.wfile.write(body if limit is None else body[:limit])
                    self.wfile.flush()
                    if stall:
                        # Hold the connection open, silent, like a wedged server;
                        # bounded so a client without a timeout cannot hang a test forever.
                        mirror._stopping.wait(timeout=10)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up; nothing to do

        # Only files under root; ".." and directories are "not found".
        if not target.is_relative_to(mirror.root) or not target.is_file():
            answer(404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        if fault and fault.status_first and nth_request < fault.status_first[1]:
            status = fault.status_first[0]
            answer(status, {"Content-Type": "text/plain"}, f"fault: {status}\n".encode())
            return

        data = target.read_bytes()
        size = len(data)
        status, start, end = 200, 0, size - 1
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        m = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", range_header or "")
        if range_header and m and not (fault and fault.ignore_range):
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size or end < start:
                answer(416, {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        body = data[start : end + 1]

        limit, stall = None, False
        if fault and fault.truncate is not None:
            limit = max(0, fault.truncate - start)
        if fault and send_body:
            dropped = fault.body_limit(mirror._lock, "drop_after", "bodies")
            stalled = fault.body_limit(mirror._lock, "stall_after", "stalls")
            limits = [n for n in (limit, dropped, stalled) if n is not None]
            limit = min(limits) if limits else None
            stall = stalled is not None
        answer(status, headers, body, limit, stall)
