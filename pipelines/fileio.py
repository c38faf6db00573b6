"""Atomic reads and writes on any Beam filesystem (local paths, gs://, ...).

Pipelines write their outputs from workers through Beam's FileSystems so the
same code serves the DirectRunner on a laptop and Dataflow writing to GCS.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> put(os.path.join(d, "a", "x.txt"), b"hi"); get(os.path.join(d, "a", "x.txt"))
b'hi'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid

from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems

from curate.core.files import OutputError, dumps_json


def join(out: str, *parts: str) -> str:
    """A path under ``out`` on any Beam filesystem (local or gs://)."""
    return FileSystems.join(out.rstrip("/"), *parts) if "://" in out else os.path.join(out, *parts)


def put(dest: str, data: bytes) -> None:
    """Write bytes to ``dest`` atomically: a temp name, then rename.

    The temp name is unique per attempt, so a retried or speculative bundle
    writing the same (identical) file never clobbers another's half-written
    temp file, and a crash never leaves a partial file under the final name.
    """
    tmp = f"{dest}.tmp-{uuid.uuid4().hex}"
    try:
        if "://" not in dest:
            # object stores have no directories; local ones must exist (several
            # workers may create the same one at once, hence exist_ok)
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            fh.write(data)
        if FileSystems.exists(dest):
            FileSystems.delete([dest])
        FileSystems.rename([tmp], [dest])
    except (OSError, BeamIOError) as exc:
        # a full disk or an unwritable location: no temp file left behind, and
        # an error that names the output (pipelines.common.run_main prints it)
        with contextlib.suppress(OSError, BeamIOError):
            if FileSystems.exists(tmp):
                FileSystems.delete([tmp])
        raise OutputError(f"{dest}: cannot write ({getattr(exc, 'strerror', None) or exc})") from exc


def put_json(dest: str, obj) -> None:
    """:func:`put` of ``obj`` as :func:`curate.core.files.dumps_json` writes it (the
    library's one JSON layout: sorted keys, indent 2), so job outputs match the CLI's."""
    put(dest, dumps_json(obj).encode("utf-8"))


def get(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return fh.read()


@contextlib.contextmanager
def local_copy(path: str):
    """A local path for ``path``: itself when local, else a temp copy streamed from gs:// etc.

    The document readers (pyarrow's ParquetFile, gzip JSONL) want a seekable
    local file; a worker on Dataflow reads its input from a bucket, so the file
    is copied to the worker's disk first and removed afterwards. The suffix is
    kept because the format is chosen by it.
    """
    if "://" not in path:
        yield path
        return
    _, dot, rest = os.path.basename(path).partition(".")
    fd, tmp = tempfile.mkstemp(suffix=dot + rest)  # ".jsonl.gz", ".parquet", or ""
    try:
        with os.fdopen(fd, "wb") as out, FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        yield tmp
    finally:
        os.unlink(tmp)


def expand(patterns: list[str]) -> list[str]:
    """Input files from paths and globs, local or on any Beam filesystem (gs://b/docs/*.parquet).

    Local patterns go through :func:`curate.ingest.sources.expand_inputs`; remote globs
    are matched by Beam's FileSystems, sorted, and a pattern matching nothing
    is an error, as it is locally.
    """
    from curate.ingest.sources import SourceError, expand_inputs

    out: list[str] = []
    for pattern in patterns:
        if "://" not in pattern or pattern.startswith(("http://", "https://")):
            out += expand_inputs([pattern])
            continue
        found = sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)
        if not found:
            raise SourceError(f"no input matches {pattern}")
        out += found
    return list(dict.fromkeys(out))
