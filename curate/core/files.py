"""Writing files so that a reader never sees half of one, and reading their digests.

Every JSON file the project writes goes through :func:`dumps_json` (sorted keys,
indent 2), so reruns write the same bytes and all stats files look alike.

>>> print(dumps_json({"b": 1, "a": "x"}), end="")
{
  "a": "x",
  "b": 1
}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator


def dumps_json(obj) -> str:
    """Stable JSON text (sorted keys) so reruns write byte-identical files."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` on a clean exit.

    The temporary file is ``<name>.tmp`` in the same directory, so the rename
    stays on one file system and replaces ``path`` in one step: a reader sees the
    old file or the new one, never half of one. When the block raises, the
    temporary file is removed and ``path`` is left as it was. Writers that hand
    the file to a library (``torch.save``, ``np.savez``, ``savefig``, fastText)
    write to the yielded path; text goes through :func:`write_atomic`.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "w.bin"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_bytes(b"new")
    ...     target.exists()
    False
    >>> target.read_bytes(), sorted(p.name for p in target.parent.iterdir())
    (b'new', ['w.bin'])
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
    except BaseException:  # KeyboardInterrupt too: never leave a half-written temp behind
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`), so a reader
    never sees half a file and a crash leaves none under the final name."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    """:func:`dumps_json` of ``obj`` to ``path``, atomically (:func:`write_atomic`)."""
    write_atomic(path, dumps_json(obj))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, streamed (shards and models can be many GB).

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "abc"
    >>> _ = f.write_bytes(b"abc")
    >>> sha256_file(f)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dumps_jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")
