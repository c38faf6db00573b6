"""Strict reading of saved configs: a key the dataclass does not have is an error.

Configs are saved next to every model, checkpoint and output and read back on
resume or load. Passing ``cls(**d)`` the keys it knows and dropping the rest would
let a file from another version lose a setting silently, so every ``from_dict``
checks first. Plain ``dataclasses`` only: no torch, so any stage can use it.

>>> from dataclasses import dataclass
>>> @dataclass
... class Point:
...     x: int = 0
...     y: int = 0
>>> check_fields(Point, {"x": 1})
>>> check_fields(Point, {"x": 1, "z": 2, "w": 3}, "Point fields")
Traceback (most recent call last):
...
ValueError: unknown Point fields: ['w', 'z']
"""

from __future__ import annotations

from dataclasses import fields


class SettingsError(ValueError):
    """A setting a user gave cannot be used (an unknown preset, a threshold out of
    range). Commands answer it with one line and exit status 2, never a traceback;
    it is a ValueError, so library callers that catch that still do."""


def check_fields(cls, d: dict, what: str = "fields", error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming the keys of ``d`` that are not fields of the dataclass ``cls``:
    a saved config from another version fails loudly instead of losing a setting."""
    extra = set(d) - {f.name for f in fields(cls)}
    if extra:
        raise error(f"unknown {what}: {sorted(extra)}")
