"""Two fixes for Beam's local runner with worker processes (``--workers`` > 1).

:func:`install`: a guard for a race that silently drops data between processes.
:func:`release_memory`: allocator settings that let the processes give memory back.

The race

With ``--direct_running_mode=multi_processing`` the runner (the driver) sends each
bundle's input to a worker process through a *time-based* buffered stream
(``apache_beam.runners.worker.data_plane.TimeBasedBufferingClosableOutputStream``;
the runner's data server creates it with ``DATA_BUFFER_TIME_LIMIT_MS`` = 1000 in
``fn_api_runner/worker_handlers.py``). A background thread flushes that stream once
a second: under ``_flush_lock`` it takes the buffer (``get()``), hands it to the
send queue and then clears the buffer (``_clear()``). The sending thread's
``write()`` takes no lock. When the send queue is full (it holds 100 MB, so this
happens on large inputs), the flusher waits inside the callback, the sender goes
on writing chunks into the buffer, and ``_clear()`` then discards them. Nothing
fails and nothing is logged: the worker receives less than the runner sent.

Found on Beam 2.77 by tracing ``benchmarks/beam_shuffle_loss.py``: the runner
partitioned a join's input into parts of 297,155,650 and 278,112,362 bytes, sent
278,112,362 and 276,162,827, and 1,016 items (two ~10 MB chunks) were missing
from the join. The SDK side of multi_processing workers is not affected: their
streams are size-based (``data_buffer_time_limit_ms`` 0 by default) and flushed
by the writing thread itself.

:func:`install` makes ``write()`` take the same lock as the flush, so a chunk is
either in the buffer before ``get()`` or written after ``_clear()``. It is a
patch of a private class, so it checks the shape it relies on and does nothing
(returning False) where that shape is different; the jobs' own counts of every
join's items in and out (``pipelines.dedup._lost``) stay as the net under it.
"""

from __future__ import annotations

import ctypes
import os
import threading

_installed = False


def install() -> bool:
    """Guard the runner's time-buffered data streams; True once the guard is in place."""
    global _installed
    if _installed:
        return True
    try:
        from apache_beam.runners.worker import data_plane
    except ImportError:
        return False
    cls = getattr(data_plane, "TimeBasedBufferingClosableOutputStream", None)
    if cls is None or not hasattr(cls, "flush") or "write" in vars(cls):
        # not the class this guard was written against (or already patched by someone)
        return False
    unguarded = cls.write

    def write(self, b, nested=False):
        lock = getattr(self, "_flush_lock", None)
        if not isinstance(lock, type(threading.Lock())):
            return unguarded(self, b, nested)
        with lock:
            return unguarded(self, b, nested)

    write.__doc__ = "write() under the periodic flush's lock (pipelines.direct_fix)"
    cls.write = write
    _installed = True
    return True


# glibc's knobs, as (environment variable, mallopt parameter, value). Why each:
# - M_ARENA_MAX 2: a worker runs bundles on many threads (gRPC, the SDK's pool); each
#   thread gets its own arena by default (8 per core), and freed memory stays in them;
# - M_MMAP_THRESHOLD 1 MiB, fixed: glibc raises this threshold (up to 32 MiB) each time a
#   large mmapped block is freed, after which the 10 MB data-plane buffers come from the
#   heap and are kept there; fixed, they are mapped and unmapped;
# - M_TRIM_THRESHOLD 4 MiB: free heap above this at the top goes back to the system.
_MALLOC = (("MALLOC_ARENA_MAX", -8, 2), ("MALLOC_MMAP_THRESHOLD_", -3, 1 << 20),
           ("MALLOC_TRIM_THRESHOLD_", -1, 4 << 20))


def release_memory() -> None:
    """Settings under which the runner and its worker processes return freed memory.

    Measured on the 100k crawl-shaped dedup corpus with two workers: the workers'
    Python objects never exceeded about 270 MB (tracemalloc) while each process
    grew to 1.1-1.2 GB, and all processes together peaked at 3.0 GB. With these
    settings (and Arrow on the system allocator, whose own pool keeps what it
    frees) the peak was 2.0 GB, with the same output.

    Worker processes inherit the environment; this process gets the same values
    through ``mallopt``. A value the user has set already is kept. Where the C
    library is not glibc, only the Arrow setting applies.
    """
    for env, _, value in _MALLOC:
        os.environ.setdefault(env, str(value))
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:
        libc = ctypes.CDLL("libc.so.6")
        for env, param, _ in _MALLOC:
            libc.mallopt(param, int(os.environ[env]))
    except (OSError, AttributeError, ValueError):
        pass  # not glibc, or a setting that is not a number: the defaults stay
    if os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system":
        import pyarrow as pa
        pa.set_memory_pool(pa.system_memory_pool())
