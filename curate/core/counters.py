"""Named counters shared by every stage.

Every decision a stage makes increments a counter (``kept``, ``dropped:<reason>``,
``read:records``, ...) of the ``Counters`` it is given. In tests and the local
CLI that is a plain :class:`Counters`. The Beam jobs pass
``pipelines.common.BeamCounters``, a subclass whose :meth:`Counters.inc` also
increments ``Metrics.counter("curate", name)``, so the same names show in the
runner's UI while the job still reads the totals it writes to its stats files;
library code never imports Beam.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping

from curate.core.files import write_json


class Counters:
    """A dict of named integer counters.

    >>> c = Counters()
    >>> c.inc("kept"); c.inc("dropped:too_short", 2)
    >>> c.as_dict()
    {'dropped:too_short': 2, 'kept': 1}
    """

    def __init__(self, initial: Mapping[str, int] | None = None):
        self._counts: Counter[str] = Counter(initial or {})

    def inc(self, name: str, n: int = 1) -> None:
        self._counts[name] += n

    def __getitem__(self, name: str) -> int:
        return self._counts.get(name, 0)

    def update(self, other: "Counters | Mapping[str, int]") -> None:
        items = other.as_dict() if isinstance(other, Counters) else other
        for k, v in items.items():
            # through inc, so a subclass that also reports elsewhere sees these too
            self.inc(k, v)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def __repr__(self) -> str:
        return f"Counters({self.as_dict()})"


def summary_table(title: str, counts: "Counters | Mapping[str, int]") -> str:
    """The readable end-of-run summary every command prints: a title, then one
    counter per line.

    >>> print(summary_table("read:", {"docs": 1200, "skipped:revisit": 3}))
    read:
      docs                  1,200
      skipped:revisit           3
    """
    items = counts.as_dict() if isinstance(counts, Counters) else dict(sorted(counts.items()))
    if not items:
        return f"{title} nothing counted"
    width = max(len(k) for k in items)
    return "\n".join([title] + [f"  {k:<{width}}  {v:>10,}" for k, v in items.items()])


def write_stats(path: str | Path, counters: Counters, extra: Mapping | None = None) -> None:
    """Write a stats JSON (counters plus any extra fields), atomically."""
    body = {"counters": counters.as_dict()}
    if extra:
        body.update(extra)
    write_json(path, body)


def merge_counts(dicts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The sum of several counter dicts, sorted by name (per-input stats -> the job's).

    >>> merge_counts([{"kept": 1}, {"kept": 2, "dropped:short": 1}])
    {'dropped:short': 1, 'kept': 3}
    """
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + int(v)
    return dict(sorted(total.items()))
