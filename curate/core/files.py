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
import socket
import time
from pathlib import Path
from typing import Iterable, Iterator


class OutputError(Exception):
    """An output that cannot be written: no space left, no permission, a path
    that is not a directory. It names the path, and it is not an ``OSError``, so
    that code which treats an unreadable *input* as a counted error can never
    mistake a failing *output* for one and carry on writing half a result."""


def output_error(path, exc: OSError) -> OutputError:
    return OutputError(f"{path}: cannot write ({exc.strerror or exc})")


def dumps_json(obj) -> str:
    """Stable JSON text (sorted keys) so reruns write byte-identical files."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def temp_name(path: Path) -> Path:
    """Where an atomic write of ``path`` goes first: beside it, unique to this process."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


class OutputInUse(OutputError):
    """Another run is writing to the same output directory."""


_LOCK_NAME = "_RUNNING.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def output_lock(out: str | os.PathLike, job: str) -> Iterator[None]:
    """Hold ``out`` (a local directory) for one run of ``job``.

    A second run into the same directory (a second ``make filter`` started by
    mistake) stops at once with ``OutputInUse`` naming the first one, instead of
    interleaving its files with the first run's. The lock is a file created with
    O_EXCL, so two runs cannot both take it; one left by a run that died (its
    pid is gone on this host) is taken over. Removed when the run ends, however
    it ends.
    """
    out = Path(out)
    # the folders this run creates, outermost first: removed again if the run
    # ends having written nothing (bad settings found after the lock was taken)
    created = [p for p in reversed([out, *out.parents]) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    lock = out / _LOCK_NAME
    me = {"job": job, "host": socket.gethostname(), "pid": os.getpid(),
          "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            other = _read_lock(lock)
            if other is not None and other.get("host") == me["host"] and not _pid_alive(int(other.get("pid", -1))):
                lock.unlink(missing_ok=True)  # its run died: take over (the job resumes what it left)
                continue
            raise OutputInUse(_in_use_message(out, other)) from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps_json(me))
        break
    else:
        raise OutputInUse(_in_use_message(out, _read_lock(lock)))
    try:
        yield
    finally:
        if _read_lock(lock) == me:
            lock.unlink(missing_ok=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):  # not empty: the run wrote something, keep it
                folder.rmdir()


def _read_lock(lock: Path) -> dict | None:
    try:
        obj = json.loads(lock.read_text(encoding="utf-8"))
        return obj if isinstance(obj, dict) else None
    except (OSError, ValueError):
        return None


def _in_use_message(out, other: dict | None) -> str:
    who = (f"{other.get('job', 'a run')} (pid {other.get('pid')} on {other.get('host')}, started {other.get('started')})"
           if other else "another run")
    return (f"{out}: in use by {who}; wait for it to finish, or remove {Path(out) / _LOCK_NAME} "
            f"if no run is writing there")


# errno values that say the output, not the input, is the problem
_OUTPUT_ERRNOS = {28, 27, 30, 122}  # ENOSPC, EFBIG, EROFS, EDQUOT


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` on a clean exit.

    The temporary file is ``<name>.<pid>.tmp`` in the same directory (two
    runs writing one output never share a temp file), so the rename
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
    tmp = temp_name(path)
    try:
        yield tmp
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is not None and str(tmp) == str(exc.filename) or exc.errno in _OUTPUT_ERRNOS:
            raise output_error(path, exc) from exc
        raise
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
