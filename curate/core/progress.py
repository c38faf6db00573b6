"""Progress for long work: a tqdm bar on a terminal, a periodic rate line otherwise.

Both show documents/s, the share kept so far and resident memory, so a user
watching a long job (or reading its log) sees the rate and whether memory is
flat.
"""

from __future__ import annotations

import resource
import sys
import time


def rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Read from ``VmHWM`` in /proc/self/status where there is one: Linux keeps
    ``ru_maxrss`` across exec, so a process started by a large one (a
    benchmark driver, a notebook) would report its parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Progress:
    """Count processed/kept items and report every ``every`` seconds.

    >>> p = Progress("filter", enabled=False)
    >>> p.update(kept=True); p.done_line()
    'filter: 1 docs in 0.0s (... docs/s), 100.0% kept, peak RSS ... MiB'
    """

    def __init__(self, label: str, total: int | None = None, every: float = 10.0,
                 enabled: bool | None = None, stream=None, show_kept: bool = True):
        self.label = label
        self.show_kept = show_kept
        self.stream = stream or sys.stderr
        # on by default: a bar on a terminal, a rate line every `every` seconds in a log
        self.enabled = True if enabled is None else enabled
        self.every = every
        self.start = time.monotonic()
        self.last = self.start
        self.n = 0
        self.kept = 0
        self._bar = None
        if self.enabled and self.stream.isatty():
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=label, unit="doc", file=self.stream, smoothing=0.1)
            except ImportError:
                self._bar = None

    def update(self, n: int = 1, kept: bool | int = False) -> None:
        self.n += n
        self.kept += int(kept)
        if self._bar is not None:
            self._bar.update(n)
            return
        if self.enabled:
            now = time.monotonic()
            if now - self.last >= self.every:
                self.last = now
                print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        kept = f"{100.0 * self.kept / self.n if self.n else 0.0:.1f}% kept, " if self.show_kept else ""
        return (f"{self.label}: {self.n} docs in {elapsed:.1f}s ({self.n / elapsed:.1f} docs/s), "
                f"{kept}peak RSS {rss_mb():.0f} MiB")

    def done_line(self) -> str:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        return self.line()
