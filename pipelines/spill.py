"""Large intermediate tables of a job kept in files, not in the runner's shuffle.

A runner holds what it shuffles: the DirectRunner in the driver's memory, and
even a shuffle service moves every byte twice. The dedup job's largest tables
(each page's signatures, its shingles, a site's template counts, every page's
73 band keys) are written by the step that makes them, a file per group, under
a work folder on any Beam filesystem; the shuffle carries only file names, and
a later step reads the few rows it needs by key.

Two kinds of file:

- a **row store** (:func:`put_rows` / :func:`get_row`): rows of uint32 of any
  length, each under a uint64 key, read one row at a time by seeking to it, so
  a reader holds the store's index (16 bytes a row), never its rows;
- a **block** (:func:`put_block` / :func:`get_block`): a few equal-length
  arrays read back whole (one partition of band keys).

Every file name is unique (a retried bundle writes a new file and only the
names its successful attempt emits are read), so a cached index never goes
stale. The job deletes the work folder when it ends.
"""

from __future__ import annotations

import io
import uuid
from collections import OrderedDict

import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipelines.fileio import get, join, put

_MAGIC = b"RST1"
_HEAD = 12  # magic and the row count


def unique_path(folder: str, stem: str, suffix: str) -> str:
    """``folder/stem-<random>.suffix``: one attempt's file."""
    return join(folder, f"{stem}-{uuid.uuid4().hex[:12]}.{suffix}")


def put_rows(path: str, keys, rows: list[np.ndarray]) -> None:
    """Write ``rows`` (uint32 arrays) under ``keys`` (distinct uint64) as one row store."""
    keys = np.asarray(keys, np.uint64)
    order = np.argsort(keys, kind="stable")
    lengths = np.fromiter((len(rows[i]) for i in order), np.int64, len(order))
    offsets = np.zeros(len(order) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    buf = io.BytesIO()
    buf.write(_MAGIC)
    buf.write(np.int64(len(keys)).tobytes())
    buf.write(keys[order].tobytes())
    buf.write(offsets.tobytes())
    for i in order:
        buf.write(np.ascontiguousarray(rows[i], np.uint32).tobytes())
    put(path, buf.getvalue())


class _Store:
    """An open row store: its index in memory, its rows read on demand."""

    def __init__(self, path: str):
        self.f = open(path, "rb") if "://" not in path else FileSystems.open(path)
        head = self.f.read(_HEAD)
        if head[:4] != _MAGIC:
            raise ValueError(f"{path}: not a row store")
        n = int(np.frombuffer(head[4:], np.int64)[0])
        self.keys = np.frombuffer(self.f.read(8 * n), np.uint64)
        self.offsets = np.frombuffer(self.f.read(8 * (n + 1)), np.int64)
        self.data_at = _HEAD + 16 * n + 8

    def row(self, key: int) -> np.ndarray | None:
        i = int(np.searchsorted(self.keys, np.uint64(key)))
        if i >= len(self.keys) or int(self.keys[i]) != key:
            return None
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        self.f.seek(self.data_at + 4 * lo)
        return np.frombuffer(self.f.read(4 * (hi - lo)), np.uint32)

    def close(self) -> None:
        self.f.close()


# open stores of this process (a worker reads the same few stores for many elements);
# bounded, so that a long job does not keep every file of its work folder open
_OPEN: OrderedDict[str, _Store] = OrderedDict()
_MAX_OPEN = 128


def get_row(path: str, key: int) -> np.ndarray | None:
    """The row under ``key`` in the row store at ``path``, None when it has none."""
    store = _OPEN.get(path)
    if store is None:
        store = _OPEN[path] = _Store(path)
        if len(_OPEN) > _MAX_OPEN:
            _OPEN.popitem(last=False)[1].close()
    else:
        _OPEN.move_to_end(path)
    return store.row(key)


def put_block(path: str, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    put(path, buf.getvalue())


def get_block(path: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(get(path))) as z:
        return {k: z[k] for k in z.files}


def remove(folder: str) -> None:
    """Delete the work folder and what it holds (nothing when it is not there)."""
    for store in list(_OPEN):
        if store.startswith(folder):
            _OPEN.pop(store).close()
    if FileSystems.exists(folder):
        FileSystems.delete([folder])
