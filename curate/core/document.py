"""The Document: one schema for every stage, and its Parquet / JSONL forms.

A Document is what flows between stages: after reading and extraction, through
annotation (fields added to ``metadata``), filtering, dedup and mixing. Parquet is
the shard format; JSONL uses Dolma's field names (``id``, ``text``, ``source``,
``created``, ``metadata``) so our output can be read by Dolma-style tools and
Dolma-style files can be read here.

The file format is picked from the suffix: ``.parquet``, ``.jsonl``, ``.jsonl.gz``
(``.json`` and ``.json.gz`` are accepted as JSONL too).

>>> doc = Document(id="a", text="hello", source="web", url="http://x/")
>>> write_documents("/tmp/_docs.jsonl", [doc])
1
>>> [d.text for d in read_documents("/tmp/_docs.jsonl")]
['hello']
"""

from __future__ import annotations

import gzip
import io
import json
import os
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Self

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.files import output_error, temp_name

# The Arrow schema of a document shard. ``metadata`` is a JSON object serialised to
# a string: annotations differ per stage and per source, and a string column keeps
# the schema fixed so shards written by different stages and runs always concat.
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("url", pa.string()),
        pa.field("created", pa.string()),  # ISO 8601 capture time (WARC-Date), "" if unknown
        pa.field("metadata", pa.string()),  # JSON object
    ]
)

# Rows per Parquet row group: small enough that readers stream, large enough that
# the per-group overhead is negligible for web pages (~5 KB of text each).
ROW_GROUP_SIZE = 2048


@dataclass
class Document:
    """One document.

    ``id`` is stable across runs: derived from the WARC record id, or from
    (file, record index) for formats without one, never from run order.
    """

    id: str
    text: str
    source: str = ""
    url: str = ""
    created: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Dolma-compatible JSON object (url also lives in metadata there)."""
        meta = dict(self.metadata)
        if self.url:
            meta.setdefault("url", self.url)
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "created": self.created,
            "metadata": meta,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any], text_field: str = "text", default_id: str | None = None) -> "Document":
        """Build from a JSON object (ours, Dolma's, or a plain {"id","text"}).

        ``default_id`` is used when the object has no ``id`` (else that is an error).
        """
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            meta = {"metadata": meta}
        meta = dict(meta)
        url = obj.get("url") or meta.pop("url", None) or meta.get("warc_url") or ""
        if "id" not in obj and default_id is None:
            raise ValueError("record has no 'id' field")
        text = obj.get(text_field)
        if not isinstance(text, str):
            raise ValueError(f"record has no string {text_field!r} field")
        return cls(
            id=str(obj["id"]) if "id" in obj else str(default_id),
            text=text,
            source=str(obj.get("source") or ""),
            url=str(url),
            created=str(obj.get("created") or ""),
            metadata=meta,
        )


class DocumentFormatError(ValueError):
    """A documents file that cannot be read, with the file and place named."""


def _format(path: str | os.PathLike) -> str:
    name = str(path).lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")):
        return "jsonl"
    raise DocumentFormatError(
        f"{path}: unknown documents format (use .parquet, .jsonl or .jsonl.gz)"
    )


def _open_text(path: str | os.PathLike, mode: str, gz: bool | None = None):
    if gz is None:
        gz = str(path).lower().endswith(".gz")
    if gz:
        # mtime=0 so a rerun writes byte-identical gzip files
        if "w" in mode:
            raw = open(path, "wb")
            gz = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="")
            return _ClosingTextWrapper(gz, raw)
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


class _ClosingTextWrapper(io.TextIOWrapper):
    """A text wrapper over a GzipFile that also closes the underlying raw file."""

    def __init__(self, gz: gzip.GzipFile, raw):
        super().__init__(gz, encoding="utf-8")
        self._raw = raw

    def close(self) -> None:
        super().close()
        self._raw.close()


# The longest JSONL line (one document) any reader holds, in characters. A
# document file is not a web archive: one line can be a whole book, so the cap
# is larger than an archive record's (curate.ingest.archive.MAX_RECORD_BYTES),
# but a line without an end (a file that is not JSONL, a broken writer) still
# costs at most this much memory: it is skipped and reported.
MAX_LINE_CHARS = 16 * 2**20


def read_documents(
    path: str | os.PathLike,
    errors: list | None = None,
    text_field: str = "text",
    missing_id=None,
    max_line_chars: int = MAX_LINE_CHARS,
) -> Iterator[Document]:
    """Stream Documents from a Parquet or JSONL(.gz) file.

    A malformed JSONL line is reported (file, line number, reason) to ``errors``
    when given, and skipped so the good lines around it are kept; without an
    ``errors`` list it raises DocumentFormatError naming the file and line.
    ``missing_id(line_number) -> str`` names JSONL records that have no ``id``
    (corpora that are not ours); without it such a record is an error.
    """
    fmt = _format(path)
    if fmt == "parquet":
        try:
            # pre_buffer=False: stream row groups instead of loading the whole
            # compressed file first (~1.5 KB per document held otherwise)
            pf = pq.ParquetFile(path, pre_buffer=False)
        except (pa.ArrowInvalid, OSError, ValueError) as exc:
            # ValueError: a damaged schema can hold a column name that is not
            # UTF-8, which pyarrow reports as UnicodeDecodeError
            raise DocumentFormatError(f"{path}: not a readable Parquet file ({exc})") from exc
        batches = pf.iter_batches(batch_size=ROW_GROUP_SIZE)
        row = 0
        while True:
            try:
                batch = next(batches, None)
                if batch is None:
                    return
                cols = batch.to_pydict()
                if not isinstance(cols.get("id"), list) or not isinstance(cols.get("text"), list):
                    raise ValueError("no id and text columns")
            except (pa.ArrowException, OSError, ValueError) as exc:
                # a damaged row group: the rows before it are kept, the rest reported
                msg = f"{path}: row {row}: unreadable Parquet data ({type(exc).__name__}: {exc})"
                if errors is None:
                    raise DocumentFormatError(msg) from exc
                errors.append({"file": str(path), "line": row, "reason": msg})
                return
            n = batch.num_rows
            for i in range(n):
                row += 1
                meta_raw = cols.get("metadata", [None] * n)[i]
                try:
                    meta = json.loads(meta_raw) if meta_raw else {}
                    if not isinstance(meta, dict) or not isinstance(cols["text"][i], str) \
                            or not isinstance(cols["id"][i], str):
                        raise ValueError("id or text is not a string, or metadata is not a JSON object")
                except ValueError as exc:
                    if errors is None:
                        raise DocumentFormatError(f"{path}: row {row}: {exc}") from exc
                    errors.append({"file": str(path), "line": row, "reason": str(exc)})
                    continue
                yield Document(
                    id=cols["id"][i],
                    text=cols["text"][i],
                    source=(cols.get("source") or [""] * n)[i] or "",
                    url=(cols.get("url") or [""] * n)[i] or "",
                    created=(cols.get("created") or [""] * n)[i] or "",
                    metadata=meta,
                )
    with _open_text(path, "rt") as fh:
        lineno = 0
        while True:
            try:
                line = fh.readline(max_line_chars + 1)
                if len(line) > max_line_chars and not line.endswith("\n"):
                    lineno += 1
                    while line and not line.endswith("\n"):  # stream past the rest of the line
                        line = fh.readline(max_line_chars)
                    msg = f"line longer than {max_line_chars} characters; skipped"
                    if errors is None:
                        raise DocumentFormatError(f"{path}:{lineno}: {msg}")
                    errors.append({"file": str(path), "line": lineno, "reason": msg})
                    continue
            except (EOFError, OSError, UnicodeDecodeError) as exc:
                # a truncated .gz or a binary file: keep what was read, report the rest
                msg = f"{path}:{lineno + 1}: unreadable ({type(exc).__name__}: {exc})"
                if errors is None:
                    raise DocumentFormatError(msg) from exc
                errors.append({"file": str(path), "line": lineno + 1, "reason": msg})
                return
            if not line:
                return
            lineno += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("line is not a JSON object")
                default = missing_id(lineno) if missing_id is not None else None
                yield Document.from_json(obj, text_field=text_field, default_id=default)
            except ValueError as exc:
                msg = f"{path}:{lineno}: {exc}"
                if errors is None:
                    raise DocumentFormatError(msg) from exc
                errors.append({"file": str(path), "line": lineno, "reason": str(exc)})


# Writers not yet closed or aborted, so that a command that fails can remove
# every temp file it started (abort_open_writers), whatever raised.
_OPEN_WRITERS: "weakref.WeakSet[AtomicWriter]" = weakref.WeakSet()


def abort_open_writers() -> None:
    """Abort every writer still open: their temp files go, earlier outputs stay."""
    for w in list(_OPEN_WRITERS):
        try:
            w.abort()
        except Exception:  # noqa: BLE001 - best effort while failing already; the first error is reported
            pass


class AtomicWriter:
    """A writer that publishes its output on ``close()`` and removes it on ``abort()``.

    As a context manager it closes when the block ends cleanly and aborts when
    the block raises, so a failed job never leaves a file under the final name.
    """

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class DocumentWriter(AtomicWriter):
    """Write Documents to Parquet or JSONL(.gz), atomically.

    Output goes to ``<path>.<pid>.tmp`` and is renamed on a clean ``close()``, so a
    crashed run never leaves a half-written shard under the final name.

    >>> with DocumentWriter("/tmp/_w.parquet") as w:
    ...     w.write(Document(id="1", text="t"))
    >>> w.count
    1
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.format = _format(path)
        self.tmp = temp_name(self.path)
        self.count = 0
        self._rows: list[Document] = []
        self._pq_writer: pq.ParquetWriter | None = None
        self._fh = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = (_open_text(self.tmp, "wt", gz=str(path).lower().endswith(".gz"))
                        if self.format == "jsonl" else None)
            if self.format == "parquet":
                self._pq_writer = pq.ParquetWriter(
                    self.tmp, SCHEMA, compression="zstd", write_statistics=False
                )
        except OSError as exc:
            if self.path.parent.is_dir():
                self.tmp.unlink(missing_ok=True)
            raise output_error(self.path, exc) from exc
        _OPEN_WRITERS.add(self)

    def write(self, doc: Document) -> None:
        self.count += 1
        try:
            if self._fh is not None:
                self._fh.write(json.dumps(doc.to_json(), ensure_ascii=False) + "\n")
                return
            self._rows.append(doc)
            if len(self._rows) >= ROW_GROUP_SIZE:
                self._flush()
        except OSError as exc:
            self.abort()
            raise output_error(self.path, exc) from exc

    def _flush(self) -> None:
        if not self._rows or self._pq_writer is None:
            return
        table = pa.Table.from_pydict(
            {
                "id": [d.id for d in self._rows],
                "text": [d.text for d in self._rows],
                "source": [d.source for d in self._rows],
                "url": [d.url for d in self._rows],
                "created": [d.created for d in self._rows],
                "metadata": [
                    json.dumps(d.metadata, ensure_ascii=False, sort_keys=True) for d in self._rows
                ],
            },
            schema=SCHEMA,
        )
        self._pq_writer.write_table(table)
        self._rows.clear()

    def close(self) -> None:
        try:
            if self._fh is not None:
                self._fh.close()
            else:
                self._flush()
                assert self._pq_writer is not None
                self._pq_writer.close()
            self.tmp.replace(self.path)
        except OSError as exc:
            self.abort()
            raise output_error(self.path, exc) from exc
        _OPEN_WRITERS.discard(self)

    def abort(self) -> None:
        """Drop the temp file (on an exception), leaving any earlier output intact."""
        _OPEN_WRITERS.discard(self)
        try:
            if self._fh is not None:
                fh, self._fh = self._fh, None
                fh.close()
            elif self._pq_writer is not None:
                w, self._pq_writer = self._pq_writer, None
                w.close()
        except OSError:
            pass  # closing flushes; on a full disk that fails too, and the file goes anyway
        finally:
            self.tmp.unlink(missing_ok=True)


def write_documents(path: str | os.PathLike, docs: Iterable[Document]) -> int:
    """Write all ``docs`` to ``path`` (format from the suffix); returns the count."""
    with DocumentWriter(path) as w:
        for d in docs:
            w.write(d)
    return w.count
