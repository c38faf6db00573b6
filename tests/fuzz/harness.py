"""The fuzz targets, the mutations and the properties every case must keep.

Used by the short run in ``make test`` (``tests/fuzz/test_fuzz.py``, Hypothesis
drawing the cases) and by the long run ``make fuzz`` (``python -m tests.fuzz``,
a seeded random search with a summary). Both call :func:`run_case`, so a case
that fails one fails the other the same way.

Seeds are real files: the web archives in ``../shared/data/{warc,bad}`` (when
present) and the bundled sample. Each archive seed is cut to its first few
records and kept in three framings (plain, one gzip member per record, one
gzip stream) so that truncation, reordered members and rewritten lengths all
hit real structure. Mutations are the damage real files show: flipped bytes,
truncation, repeated and inserted chunks, rewritten ``Content-Length`` values,
reordered gzip members, huge headers, deeply nested HTML.

Properties, per case:

* no exception escapes a reader except the documented ones (``NotAnArchiveError``
  for a file that is not an archive, ``DocumentFormatError`` for a documents
  file that is not one);
* no hang: every case finishes within ``TIME_LIMIT`` seconds;
* memory is bounded by the cap: no record block exceeds ``CAP``;
* the same input always gives the same output (each case runs twice);
* damage to one record loses no other: after a rewritten ``Content-Length`` or
  bytes flipped inside one record's payload, every other record is read with
  exactly its original bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests.common import SAMPLE, SHARED

CAP = 64 * 1024  # the record cap the fuzz cases run under (small, so that cutting is exercised)
TIME_LIMIT = 10.0  # seconds per case (all targets of the case, run twice)
SEED_RECORDS = 6  # records kept per archive seed
SEED_BYTES = 96 * 1024  # at most this much of a seed's records


class Failure(AssertionError):
    """A property does not hold for a case."""


# --------------------------------------------------------------------------- seeds

@dataclass(frozen=True)
class ArchiveSeed:
    name: str
    records: tuple[bytes, ...]  # the raw (uncompressed) bytes of each record, framing included
    kind: str  # "warc" or "arc"


_WARC_START = re.compile(rb"(?:^|(?<=\n))WARC/\d\.\d+\r?\n")


def _archive_files() -> list[Path]:
    files = sorted(SAMPLE.glob("*.warc.gz")) + sorted(SAMPLE.glob("*.arc.gz"))
    for sub in ("warc", "bad"):
        d = SHARED / sub
        if d.is_dir():
            files += sorted(p for p in d.iterdir() if ".warc" in p.name or ".arc" in p.name)
    return files


def _decompress(raw: bytes) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    out, data = [], raw
    while data[:2] == b"\x1f\x8b":  # member by member; a damaged member ends the seed
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out.append(d.decompress(data))
        except zlib.error:
            break
        data = d.unused_data.lstrip(b"\x00\r\n ")
    return b"".join(out)


def archive_seeds() -> list[ArchiveSeed]:
    """The first records of every real archive we have, split at record starts."""
    seeds = []
    for path in _archive_files():
        data = _decompress(path.read_bytes())
        if data.lstrip().startswith(b"WARC/"):
            starts = [m.start() for m in _WARC_START.finditer(data)][: SEED_RECORDS + 1]
            if len(starts) > SEED_RECORDS:
                data = data[: starts[-1]]
                starts = starts[:-1]
            bounds = starts[1:] + [len(data)]
            records = [data[a:b] for a, b in zip(starts, bounds)]
            # keep whole records up to the size budget (at least one)
            kept, size = [], 0
            for rec in records:
                if kept and size + len(rec) > SEED_BYTES:
                    break
                kept.append(rec)
                size += len(rec)
            seeds.append(ArchiveSeed(path.name, tuple(kept), "warc"))
        elif data.lstrip().startswith(b"filedesc://"):
            seeds.append(ArchiveSeed(path.name, (data[:SEED_BYTES],), "arc"))
    return seeds


def frame(seed: ArchiveSeed, framing: str, order: list[int] | None = None) -> bytes:
    """The seed's records as one file: ``plain``, ``members`` (gzip per record) or ``stream``."""
    recs = [seed.records[i] for i in (order or range(len(seed.records)))]
    if framing == "plain":
        return b"".join(recs)
    if framing == "members":
        return b"".join(gzip.compress(r, 6, mtime=0) for r in recs)
    return gzip.compress(b"".join(recs), 6, mtime=0)


def html_seeds() -> list[str]:
    """Real pages: the HTML bodies of the sample's responses."""
    from curate.ingest.archive import iter_records

    pages = []
    for path in sorted(SAMPLE.glob("*.warc.gz")):
        for rec in iter_records(path, []):
            body = rec.block.split(b"\r\n\r\n", 1)[-1]
            if b"<html" in body[:2000].lower():
                pages.append(body[:SEED_BYTES].decode("utf-8", "replace"))
    return pages


def jsonl_seed() -> bytes:
    """Real documents as JSONL: the dolma extract when present, else pages read from the sample."""
    p = SHARED / "warc" / "cc-main-2019-30_dolma-extracted-text.part1.jsonl.gz"
    if p.exists():
        lines = gzip.decompress(p.read_bytes()).splitlines(keepends=True)[:20]
        return b"".join(lines)
    from curate.ingest.records import read_archive

    docs = [d for path in sorted(SAMPLE.glob("*.warc.gz")) for d in read_archive(path, [])][:20]
    return b"".join((json.dumps(d.to_json()) + "\n").encode() for d in docs)


# --------------------------------------------------------------------------- mutations

_CLEN = re.compile(rb"(Content-Length:[ \t]*)(\d+)", re.I)
_LENGTHS = [b"0", b"-1", b"abc", b"", b"99999999999", b"4294967296", b" 12"]


def mutate_bytes(data: bytes, rng: random.Random, n_ops: int) -> tuple[bytes, list[str]]:
    """Apply ``n_ops`` random damages to ``data``; returns the bytes and what was done."""
    ops = []
    buf = bytearray(data)
    for _ in range(n_ops):
        op = rng.choice(["flip", "truncate", "repeat", "insert", "length", "header", "delete"])
        if not buf:
            break
        i = rng.randrange(len(buf))
        if op == "flip":
            for _ in range(rng.randint(1, 8)):
                j = rng.randrange(len(buf))
                buf[j] ^= 1 << rng.randrange(8)
        elif op == "truncate":
            del buf[i:]
        elif op == "repeat":
            j = min(len(buf), i + rng.randint(1, 4096))
            buf[i:i] = bytes(buf[i:j]) * rng.randint(1, 4)
        elif op == "insert":
            src = rng.randrange(len(buf))
            chunk = bytes(buf[src: src + rng.randint(1, 2048)]) if rng.random() < 0.5 else rng.randbytes(rng.randint(1, 512))
            buf[i:i] = chunk
        elif op == "delete":
            del buf[i: i + rng.randint(1, 2048)]
        elif op == "length":
            ms = list(_CLEN.finditer(buf))
            if ms:
                m = rng.choice(ms)
                buf[m.start(2):m.end(2)] = _new_length(int(m.group(2)), rng)
        elif op == "header":
            at = buf.find(b"\r\n", i)
            if at >= 0:
                buf[at:at] = b"\r\nX-Huge: " + b"h" * rng.choice([100, 10_000, 200_000])
        ops.append(op)
    return bytes(buf), ops


def _new_length(old: int, rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.3:
        return rng.choice(_LENGTHS)
    if r < 0.7:
        return str(max(0, old + rng.randint(-64, 64))).encode()
    return str(rng.randint(0, 4 * old + 10)).encode()


def nested_html(rng: random.Random) -> str:
    depth = rng.choice([100, 1_000, 10_000, 50_000])
    tag = rng.choice(["div", "span", "table", "ul", "p", "b", "section"])
    inner = "<p>" + "deep text " * rng.randint(1, 50) + "</p>"
    close = "" if rng.random() < 0.5 else f"</{tag}>" * depth
    # what follows each opening tag: nothing (a pure run), a word (so no run of tags
    # shows), or a closing tag of an element that is not open (which the parser ignores)
    between = rng.choice(["", "", "a ", "</x>", "</span>"])
    return f"<html><body>{f'<{tag}>{between}' * depth}{inner}{close}</body></html>"


# --------------------------------------------------------------------------- targets

def _sig(block: bytes) -> str:
    return hashlib.sha1(block).hexdigest()[:12]


def read_all(data: bytes, fast: bool) -> tuple[list[tuple], list[str], str]:
    """Every record of ``data`` as (type, id, url, block size, block hash, truncated), the
    error reasons, and 'ok' or 'not-an-archive'."""
    from curate.ingest.archive import NotAnArchiveError, iter_records

    errors: list = []
    out = []
    try:
        for r in iter_records(lambda: io.BytesIO(data), errors, prefer_fastwarc=fast, name="fuzz",
                              max_record_bytes=CAP):
            if len(r.block) > CAP:
                raise Failure(f"record {r.record_id or r.index} holds {len(r.block)} bytes, over the cap {CAP}")
            out.append((r.record_type, r.record_id, r.url, len(r.block), _sig(r.block), r.truncated))
    except NotAnArchiveError:
        return out, [e.reason for e in errors], "not-an-archive"
    return out, [e.reason for e in errors], "ok"


def documents(data: bytes) -> tuple[list[tuple], int]:
    """The documents the whole ingest path (HTTP, charset, extraction) makes of ``data``."""
    from curate.core.counters import Counters
    from curate.ingest.archive import NotAnArchiveError
    from curate.ingest.records import read_archive

    errors: list = []
    try:
        docs = [(d.id, _sig(d.text.encode())) for d in
                read_archive(lambda: io.BytesIO(data), errors, Counters(), name="fuzz", max_record_bytes=CAP)]
    except NotAnArchiveError:
        docs = []
    return docs, len(errors)


def check_archive(data: bytes) -> dict:
    """Both readers, twice each, and the document path: the archive properties."""
    result = {}
    for fast in (True, False):
        first = read_all(data, fast)
        if read_all(data, fast) != first:
            raise Failure(f"reader (fastwarc={fast}) gave two different outputs for the same input")
        result[fast] = first
    docs = documents(data)
    if documents(data) != docs:
        raise Failure("read_archive gave two different outputs for the same input")
    return result


def check_survivors(seed: ArchiveSeed, damaged: int, data: bytes) -> None:
    """Every record but the ``damaged`` one is read with its original bytes."""
    clean = {r[1]: r for r in read_all(frame(seed, "plain"), False)[0] if r[1]}
    for fast in (True, False):
        got = {r[1]: r for r in read_all(data, fast)[0] if r[1]}
        for i, rec in enumerate(seed.records):
            if i == damaged:
                continue
            rid = _record_id(rec)
            if rid and rid in clean and got.get(rid) != clean[rid]:
                raise Failure(f"record {i} ({rid}) was not read intact after damage to record {damaged} "
                              f"(fastwarc={fast}): {got.get(rid)} != {clean[rid]}")


def _record_id(rec: bytes) -> str:
    m = re.search(rb"WARC-Record-ID:[ \t]*<?([^>\r\n]*)>?", rec[:4096])
    return m.group(1).decode("latin-1").strip() if m else ""


def check_html(html: str) -> None:
    from curate.ingest.extract import html_to_text

    failures: list = []
    text = html_to_text(html, on_error=failures.append)
    if html_to_text(html) != text:
        raise Failure("html_to_text gave two different outputs for the same page")
    if failures:
        # html_to_text never raises, by contract; an internal error is a finding all the same
        raise Failure(f"extraction failed inside: {type(failures[0]).__name__}: {failures[0]}")


def check_charset(body: bytes, label: str) -> None:
    from curate.ingest.charset import decode_html

    text, codec, how = decode_html(body, label)
    if not isinstance(text, str) or decode_html(body, label) != (text, codec, how):
        raise Failure("decode_html is not a function of its input")


def check_documents(data: bytes, suffix: str) -> None:
    import tempfile

    from curate.core.document import DocumentFormatError, read_documents

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"docs{suffix}"
        path.write_bytes(data)
        outs = []
        for _ in range(2):
            errors: list = []
            try:
                docs = [(d.id, _sig(d.text.encode())) for d in read_documents(path, errors=errors)]
                outs.append((docs, len(errors)))
            except DocumentFormatError:
                outs.append("format-error")
        if outs[0] != outs[1]:
            raise Failure("read_documents gave two different outputs for the same file")


# --------------------------------------------------------------------------- one case

@dataclass
class Case:
    target: str  # archive, survivors, html, charset, jsonl, parquet
    seed: int  # which seed (index into the target's seeds)
    rng_seed: int  # the mutations' random seed
    n_ops: int = 1
    framing: str = "plain"

    def describe(self) -> str:
        return f"{self.target} seed={self.seed} rng={self.rng_seed} ops={self.n_ops} framing={self.framing}"


class Seeds:
    """All seeds, loaded once."""

    def __init__(self):
        self.archives = archive_seeds()
        self.pages = html_seeds()
        self.jsonl = jsonl_seed()
        self._parquet = None

    def parquet(self) -> bytes:
        if self._parquet is None:
            import tempfile

            from curate.core.document import Document, DocumentWriter

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "docs.parquet"
                w = DocumentWriter(path)
                for i, line in enumerate(self.jsonl.splitlines()):
                    obj = json.loads(line)
                    w.write(Document(id=str(obj.get("id", i)), text=str(obj.get("text", ""))))
                w.close()
                self._parquet = path.read_bytes()
        return self._parquet


TARGETS = ("archive", "survivors", "html", "charset", "jsonl", "parquet")
FRAMINGS = ("plain", "members", "stream", "reordered")


def run_case(case: Case, seeds: Seeds) -> dict:
    """Run one case; raises Failure (or whatever escaped) when a property breaks.
    Returns what the case did, for the summary."""
    rng = random.Random(case.rng_seed)
    start = time.perf_counter()
    info: dict = {"case": case.describe()}
    if case.target in ("archive", "survivors"):
        seed = seeds.archives[case.seed % len(seeds.archives)]
        info["seed_file"] = seed.name
        if case.target == "survivors":
            if seed.kind != "warc" or len(seed.records) < 3:
                return info
            k = rng.randrange(1, len(seed.records))
            rec = bytearray(seed.records[k])
            how = rng.choice(["length", "flip"])
            if how == "length":
                m = _CLEN.search(rec)
                if not m:
                    return info
                old = int(m.group(2))
                new = _new_length(old, rng)
                # a length that lands on a later record's end makes the two one record,
                # which no reader can tell from a real one without a digest; "on the end"
                # includes landing inside that record's closing CRLFCRLF, since a reader
                # must accept a short separator (real files have them, at EOF above all)
                rest = [len(r) for r in seed.records[k + 1:]]
                ends = {old + sum(rest[:j]) + sep for j in range(1, len(rest) + 1) for sep in range(5)}
                if new.strip().isdigit() and int(new) in ends:
                    return info
                rec[m.start(2):m.end(2)] = new
            else:
                head_end = rec.find(b"\r\n\r\n")
                body_start = head_end + 4 if head_end >= 0 else 0
                # flip inside the payload, away from the record's end so the separator stays
                lo, hi = body_start, len(rec) - 8
                if hi - lo < 16:
                    return info
                for _ in range(rng.randint(1, 16)):
                    j = rng.randrange(lo, hi)
                    rec[j] ^= 1 << rng.randrange(8)
            records = list(seed.records)
            records[k] = bytes(rec)
            data = b"".join(records)
            info["ops"] = [how]
            check_survivors(seed, k, data)
        else:
            order = None
            framing = case.framing
            if framing == "reordered":
                order = list(range(len(seed.records)))
                rng.shuffle(order)
                framing = "members"
            data = frame(seed, framing, order)
            data, ops = mutate_bytes(data, rng, case.n_ops)
            info["ops"] = ops
            check_archive(data)
    elif case.target == "html":
        if rng.random() < 0.25 or not seeds.pages:
            html = nested_html(rng)
            info["ops"] = ["nested"]
        else:
            page = seeds.pages[case.seed % len(seeds.pages)].encode("utf-8")
            data, ops = mutate_bytes(page, rng, case.n_ops)
            html = data.decode("utf-8", "replace")
            info["ops"] = ops
        check_html(html)
    elif case.target == "charset":
        page = seeds.pages[case.seed % len(seeds.pages)].encode(rng.choice(["utf-8", "utf-16", "latin-1"]), "replace")
        data, ops = mutate_bytes(page[:8192], rng, case.n_ops)
        label = rng.choice(["", "utf-8", "iso-8859-1", "shift_jis", "euc-jp", "gb2312", "x-bogus", "utf-7",
                            "windows-1252", "koi8-r", "\x00", "utf-16"])
        info["ops"] = ops + [f"label={label!r}"]
        check_charset(data, label)
    elif case.target == "jsonl":
        data, ops = mutate_bytes(seeds.jsonl, rng, case.n_ops)
        gz = rng.random() < 0.3
        info["ops"] = ops + (["gzip"] if gz else [])
        check_documents(gzip.compress(data, mtime=0) if gz else data, ".jsonl.gz" if gz else ".jsonl")
    elif case.target == "parquet":
        data, ops = mutate_bytes(seeds.parquet(), rng, case.n_ops)
        info["ops"] = ops
        check_documents(data, ".parquet")
    else:
        raise ValueError(f"unknown target {case.target}")
    elapsed = time.perf_counter() - start
    info["seconds"] = elapsed
    if elapsed > TIME_LIMIT:
        raise Failure(f"case took {elapsed:.1f} s (limit {TIME_LIMIT} s)")
    return info
