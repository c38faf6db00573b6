"""Token shards: the on-disk format the trainer reads, and the writer.

A shard is a pair of files:

``NAME.bin``  header + token ids; every document is followed by ``<|endoftext|>``
``NAME.idx``  header + uint64 start offset (in tokens) of each document

Both headers are 32 bytes, little-endian: 8 magic bytes (``CURTOKS1`` /
``CURIDX01``), uint32 format version, uint32 dtype code (1 = uint16, 2 = uint32,
3 = uint64), uint64 count of items that follow, 8 reserved zero bytes. Tokens are
uint16 when the vocabulary fits (GPT-2's 50,257 does) else uint32. Document ``i``
is ``tokens[idx[i]:next_start]`` with its end-of-text as the last token.

>>> import tempfile, numpy as np
>>> d = tempfile.mkdtemp()
>>> with ShardWriter(f"{d}/s", np.uint16, eot_id=0) as w:
...     w.add(np.array([5, 6], np.uint16)); w.add(np.array([7], np.uint16))
>>> read_tokens(f"{d}/s.bin").tolist(), read_index(f"{d}/s.idx").tolist()
([5, 6, 0, 7, 0], [0, 3])
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from curate.core.document import AtomicWriter, Document
from curate.core.ids import id_fraction
from curate.mixture.tokenizer import Tokenizer, sha256_file

FORMAT_VERSION = 1
BIN_MAGIC = b"CURTOKS1"
IDX_MAGIC = b"CURIDX01"
HEADER = struct.Struct("<8sIIQ8x")  # magic, version, dtype code, count, reserved
DTYPE_CODES = {1: np.dtype(np.uint16), 2: np.dtype(np.uint32), 3: np.dtype(np.uint64)}
_CODE_OF = {v: k for k, v in DTYPE_CODES.items()}

SPLITS = ("train", "val")


class ShardFormatError(ValueError):
    """A .bin/.idx file whose header is not ours or disagrees with its size."""


def _header(magic: bytes, dtype: np.dtype, count: int) -> bytes:
    return HEADER.pack(magic, FORMAT_VERSION, _CODE_OF[np.dtype(dtype)], count)


def read_header(path: str | os.PathLike) -> tuple[bytes, int, np.dtype, int]:
    """(magic, version, dtype, count) of a shard file, checked against its size."""
    with open(path, "rb") as fh:
        raw = fh.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise ShardFormatError(f"{path}: shorter than the {HEADER.size}-byte header")
    magic, version, code, count = HEADER.unpack(raw)
    if magic not in (BIN_MAGIC, IDX_MAGIC):
        raise ShardFormatError(f"{path}: bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise ShardFormatError(f"{path}: format version {version}, this code reads {FORMAT_VERSION}")
    if code not in DTYPE_CODES:
        raise ShardFormatError(f"{path}: unknown dtype code {code}")
    dtype = DTYPE_CODES[code]
    expected = HEADER.size + count * dtype.itemsize
    size = os.path.getsize(path)
    if size != expected:
        raise ShardFormatError(f"{path}: {size} bytes, header says {expected}")
    return magic, version, dtype, count


def _read(path, magic: bytes) -> np.ndarray:
    got, _, dtype, count = read_header(path)
    if got != magic:
        raise ShardFormatError(f"{path}: magic {got!r}, expected {magic!r}")
    if count == 0:
        return np.zeros(0, dtype=dtype)
    # memmap: the trainer samples windows from files larger than memory
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER.size, shape=(count,))


def read_tokens(path: str | os.PathLike) -> np.ndarray:
    """The token ids of a ``.bin`` shard (memory-mapped)."""
    return _read(path, BIN_MAGIC)


def read_index(path: str | os.PathLike) -> np.ndarray:
    """The document start offsets of an ``.idx`` file."""
    return _read(path, IDX_MAGIC)


def iter_documents(bin_path: str | os.PathLike, idx_path: str | os.PathLike | None = None) -> Iterator[np.ndarray]:
    """Token ids of each document in a shard, without its end-of-text."""
    bin_path = Path(bin_path)
    tokens = read_tokens(bin_path)
    starts = read_index(idx_path or bin_path.with_suffix(".idx"))
    # int64: uint64 mixed with a Python int would promote to float64
    ends = np.append(starts[1:].astype(np.int64), len(tokens))
    for s, e in zip(starts, ends):
        yield tokens[int(s):int(e) - 1]


class ShardWriter(AtomicWriter):
    """Append documents' tokens to ``PREFIX.bin``/``PREFIX.idx``, atomically.

    Both files are written under ``.tmp`` names with a zero count in the header,
    which is filled in and the files renamed only on a clean ``close()``: a
    crash leaves no file under the final name. Memory use is one document.
    """

    def __init__(self, prefix: str | os.PathLike, dtype, eot_id: int):
        self.bin_path = Path(f"{prefix}.bin")
        self.idx_path = Path(f"{prefix}.idx")
        self.bin_path.parent.mkdir(parents=True, exist_ok=True)
        self.dtype = np.dtype(dtype)
        self._eot = np.array([eot_id], dtype=self.dtype)
        self._bin_tmp = self.bin_path.with_name(self.bin_path.name + ".tmp")
        self._idx_tmp = self.idx_path.with_name(self.idx_path.name + ".tmp")
        self._bin = open(self._bin_tmp, "wb")
        self._idx = open(self._idx_tmp, "wb")
        self._bin.write(_header(BIN_MAGIC, self.dtype, 0))
        self._idx.write(_header(IDX_MAGIC, np.uint64, 0))
        self.tokens = 0
        self.documents = 0

    def add(self, ids: np.ndarray) -> None:
        """One document's ids (without end-of-text; it is appended here)."""
        self._idx.write(np.array([self.tokens], dtype=np.uint64).tobytes())
        self._bin.write(np.asarray(ids, dtype=self.dtype).tobytes())
        self._bin.write(self._eot.tobytes())
        self.tokens += len(ids) + 1
        self.documents += 1

    def close(self) -> None:
        for fh, magic, dtype, count in ((self._bin, BIN_MAGIC, self.dtype, self.tokens),
                                        (self._idx, IDX_MAGIC, np.dtype(np.uint64), self.documents)):
            fh.seek(0)
            fh.write(_header(magic, dtype, count))
            fh.close()
        self._bin_tmp.replace(self.bin_path)
        self._idx_tmp.replace(self.idx_path)

    def abort(self) -> None:
        self._bin.close()
        self._idx.close()
        self._bin_tmp.unlink(missing_ok=True)
        self._idx_tmp.unlink(missing_ok=True)


def split_of(doc_id: str, val_fraction: float) -> str:
    """``val`` or ``train``, from the hashed id: stable across reruns and input order.

    >>> split_of("any-id", 0.0)
    'train'
    """
    return "val" if id_fraction(doc_id, "split") < val_fraction else "train"


@dataclass
class ShardFile:
    """One written shard, as the manifest lists it (paths relative to the manifest)."""

    bin: str
    idx: str
    tokens: int
    documents: int
    bin_sha256: str = ""
    idx_sha256: str = ""


@dataclass
class SourceShards:
    """What was written for one source."""

    tokens: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    documents: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    files: dict[str, list[ShardFile]] = field(default_factory=lambda: {s: [] for s in SPLITS})


def _batches(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for d in docs:
        batch.append(d)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class SplitWriter:
    """One split's documents into numbered shards ``SPLIT-NNNNN``, a new one after ``shard_tokens``.

    The roll-over rule (start a new shard at the first document boundary once a
    shard holds ``shard_tokens`` tokens) lives only here, so the one-machine
    writer and the Beam job's assembly step cut shards at the same places.
    """

    def __init__(self, out_dir: str | os.PathLike, root: str | os.PathLike, split: str,
                 dtype, eot_id: int, shard_tokens: int):
        self.out_dir, self.root, self.split = Path(out_dir), Path(root), split
        self.dtype, self.eot_id, self.shard_tokens = np.dtype(dtype), eot_id, shard_tokens
        self.files: list[ShardFile] = []
        self.tokens = 0
        self.documents = 0
        self._w: ShardWriter | None = None

    def add(self, ids: np.ndarray) -> None:
        if self._w is None:
            self._w = ShardWriter(self.out_dir / f"{self.split}-{len(self.files):05d}", self.dtype, self.eot_id)
        self._w.add(ids)
        self.tokens += len(ids) + 1
        self.documents += 1
        if self._w.tokens >= self.shard_tokens:
            self._finish()

    def _finish(self) -> None:
        w, self._w = self._w, None
        if w is None:
            return
        w.close()
        self.files.append(ShardFile(
            bin=str(w.bin_path.relative_to(self.root)), idx=str(w.idx_path.relative_to(self.root)),
            tokens=w.tokens, documents=w.documents,
            bin_sha256=sha256_file(w.bin_path), idx_sha256=sha256_file(w.idx_path)))

    def close(self) -> list[ShardFile]:
        self._finish()
        return self.files

    def abort(self) -> None:
        if self._w is not None:
            self._w.abort()
            self._w = None


def _encoded(docs: Iterable[Document], tokenizer: Tokenizer, val_fraction: float,
             batch_docs: int, progress=None) -> Iterator[tuple[str, np.ndarray]]:
    """(split, ids) per non-empty document, in input order, encoded ``batch_docs`` at a time."""
    for batch in _batches((d for d in docs if d.text), batch_docs):
        for doc, ids in zip(batch, tokenizer.encode_batch([d.text for d in batch])):
            yield split_of(doc.id, val_fraction), ids
        if progress is not None:
            progress(len(batch))


def _write_splits(items: Iterable[tuple[str, np.ndarray]], out_dir: Path, root: Path, dtype,
                  eot_id: int, shard_tokens: int) -> SourceShards:
    writers = {s: SplitWriter(out_dir, root, s, dtype, eot_id, shard_tokens) for s in SPLITS}
    try:
        for split, ids in items:
            writers[split].add(ids)
        result = SourceShards()
        for split, w in writers.items():
            result.files[split] = w.close()
            result.tokens[split], result.documents[split] = w.tokens, w.documents
        return result
    except BaseException:
        for w in writers.values():
            w.abort()
        raise


def write_source_shards(
    docs: Iterable[Document],
    tokenizer: Tokenizer,
    out_dir: str | os.PathLike,
    root: str | os.PathLike | None = None,
    val_fraction: float = 0.005,
    shard_tokens: int = 1 << 30,
    batch_docs: int = 1024,
    progress=None,
) -> SourceShards:
    """Tokenise ``docs`` into ``out_dir/{train,val}-NNNNN.{bin,idx}``.

    Documents are streamed and encoded ``batch_docs`` at a time (``encode_batch``
    uses every core), so memory is flat in the input size. A new shard starts at
    the first document boundary after ``shard_tokens`` tokens. Empty documents
    are skipped (they would only add an end-of-text). File paths in the result
    are relative to ``root`` (the manifest's folder; default ``out_dir``).

    >>> import tempfile
    >>> from curate.mixture.tokenizer import train_tokenizer
    >>> tok = train_tokenizer(["a b c"] * 9)
    >>> r = write_source_shards([Document(id="1", text="a b")], tok, tempfile.mkdtemp(), val_fraction=0)
    >>> r.documents
    {'train': 1, 'val': 0}
    """
    out_dir = Path(out_dir)
    root = Path(root) if root is not None else out_dir
    return _write_splits(_encoded(docs, tokenizer, val_fraction, batch_docs, progress),
                         out_dir, root, tokenizer.dtype, tokenizer.eot_id, shard_tokens)


# --------------------------------------------------------------------------- parts (Beam)
#
# The Beam job encodes every input file on its own worker into a "part" (one
# .bin/.idx pair per split, the shard format without roll-over), then one step
# per source streams its parts, in input-file order, through the same
# SplitWriter. The documents reach the writer in the same order as in
# ``write_source_shards``, so the shards are byte-identical.

def write_part(docs: Iterable[Document], tokenizer: Tokenizer, prefix: str | os.PathLike,
               val_fraction: float, batch_docs: int = 1024) -> dict[str, dict[str, int]]:
    """Encode one input file's documents to ``PREFIX.{train,val}.{bin,idx}``; returns counts.

    Both splits' files are always written (possibly empty) so assembly never has
    to guess whether a part is missing or merely empty.
    """
    prefix = str(prefix)
    writers = {s: ShardWriter(f"{prefix}.{s}", tokenizer.dtype, tokenizer.eot_id) for s in SPLITS}
    try:
        for split, ids in _encoded(docs, tokenizer, val_fraction, batch_docs):
            writers[split].add(ids)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.close()
    return {"tokens": {s: w.tokens for s, w in writers.items()},
            "documents": {s: w.documents for s, w in writers.items()}}


def assemble_parts(prefixes: Iterable[str | os.PathLike], out_dir: str | os.PathLike,
                   root: str | os.PathLike, dtype, eot_id: int, shard_tokens: int) -> SourceShards:
    """Shards from parts written by ``write_part``, in the given order (one part in memory at a time)."""
    def items() -> Iterator[tuple[str, np.ndarray]]:
        for prefix in prefixes:
            for split in SPLITS:
                for ids in iter_documents(f"{prefix}.{split}.bin", f"{prefix}.{split}.idx"):
                    yield split, ids

    # documents must alternate between splits in input order, exactly as in
    # write_source_shards; the two splits go to separate writers, so the order
    # *within* each split is all that matters, and iterating a part split by
    # split keeps it.
    return _write_splits(items(), Path(out_dir), Path(root), dtype, eot_id, shard_tokens)
