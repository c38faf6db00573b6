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

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable


def dumps_json(obj) -> str:
    """Stable JSON text (sorted keys) so reruns write byte-identical files."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a ``.tmp`` beside it and a rename, so a
    reader never sees half a file and a crash leaves none under the final name."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, obj) -> None:
    """:func:`dumps_json` of ``obj`` to ``path``, atomically (:func:`write_atomic`)."""
    write_atomic(path, dumps_json(obj))


def sha256_file(path) -> str:
    """Hex sha256 of a file, streamed (shards and models can be many GB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dumps_jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")
