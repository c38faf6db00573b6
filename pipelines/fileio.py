"""Atomic reads and writes on any Beam filesystem (local paths, gs://, ...).

Pipelines write their outputs from workers through Beam's FileSystems so the
same code serves the DirectRunner on a laptop and Dataflow writing to GCS.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> put(os.path.join(d, "a", "x.txt"), b"hi"); get(os.path.join(d, "a", "x.txt"))
b'hi'
"""

from __future__ import annotations

import os
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


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
    if "://" not in dest:
        # object stores have no directories; local ones must exist (several
        # workers may create the same one at once, hence exist_ok)
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(data)
    if FileSystems.exists(dest):
        FileSystems.delete([dest])
    FileSystems.rename([tmp], [dest])


def get(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return fh.read()
