"""The guard for the local runner's data-plane race (pipelines.direct_fix): a chunk written
while the periodic flush holds the buffer it took is sent, not cleared with it."""

from __future__ import annotations

import argparse
import os
import threading
import time

import pytest

from tests.common import require

pytestmark = pytest.mark.beam
require("apache_beam")

from apache_beam.runners.worker import data_plane  # noqa: E402

from pipelines import direct_fix  # noqa: E402
from pipelines.common import add_runner_args, make_pipeline  # noqa: E402


def _stream_with_a_slow_flush(sent: list, in_flush: threading.Event):
    """A runner-side stream whose first non-empty flush waits 0.3 s inside the send
    callback, as it does when the send queue is full."""
    def flushed(data: bytes) -> None:
        if not data:
            return  # the periodic flush runs on an empty buffer too
        sent.append(data)
        if len(sent) == 1:
            in_flush.set()
            time.sleep(0.3)
    return data_plane.TimeBasedBufferingClosableOutputStream(
        sent.append, flush_callback=flushed, time_flush_threshold_ms=20)


def test_a_write_during_a_blocked_flush_is_sent():
    assert direct_fix.install()
    sent: list[bytes] = []
    in_flush = threading.Event()
    stream = _stream_with_a_slow_flush(sent, in_flush)
    stream.write(b"a" * 1000)
    assert in_flush.wait(5), "the periodic flush never ran"
    # the flusher has taken b"a..." and not yet cleared the buffer: without the guard
    # this write goes into the buffer that _clear() then empties
    stream.write(b"b" * 1000)
    stream.write(b"c" * 1000)
    stream.close()
    assert b"".join(sent) == b"a" * 1000 + b"b" * 1000 + b"c" * 1000


def test_a_pipeline_with_worker_processes_installs_it(monkeypatch):
    # release_memory sets the allocator variables: in a copy of the environment, dropped after the test
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items()
                                        if not k.startswith(("MALLOC_", "ARROW_DEFAULT_MEMORY_POOL"))})
    cls = data_plane.TimeBasedBufferingClosableOutputStream
    saved = vars(cls).get("write")
    monkeypatch.setattr(direct_fix, "_installed", False)
    try:
        if saved is not None:
            delattr(cls, "write")   # as on a fresh interpreter
        ap = argparse.ArgumentParser()
        add_runner_args(ap, workers=1)
        make_pipeline(ap.parse_args([]), [])
        assert "write" not in vars(cls), "one process has no data plane, so no guard"
        make_pipeline(ap.parse_args(["--workers", "2"]), [])
        assert "write" in vars(cls)
        assert os.environ["MALLOC_ARENA_MAX"] == "2", "worker processes inherit the allocator settings"
    finally:
        if "write" in vars(cls):
            delattr(cls, "write")
        if saved is not None:
            cls.write = saved


def test_a_class_of_another_shape_is_left_alone(monkeypatch):
    class Other:
        def write(self, b, nested=False):
            pass
    monkeypatch.setattr(direct_fix, "_installed", False)
    monkeypatch.setattr(data_plane, "TimeBasedBufferingClosableOutputStream", Other)
    assert direct_fix.install() is False
    assert Other.write.__doc__ is None
