"""Atomic writes (curate.core.files) and strict config fields (curate.core.fields)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from curate.core.fields import check_fields
from curate.core.files import atomic_path, sha256_file, write_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the new")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_write_atomic_writes_utf8_and_replaces(tmp_path):
    target = tmp_path / "card.json"
    write_atomic(target, "first\n")
    write_atomic(target, "naïve\n")
    assert target.read_bytes() == "naïve\n".encode("utf-8")
    assert sha256_file(target) == hashlib.sha256("naïve\n".encode("utf-8")).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_check_fields_names_every_unknown_key_with_the_callers_error():
    @dataclass
    class Config:
        lr: float = 1e-3

    check_fields(Config, {"lr": 0.1})
    with pytest.raises(KeyError, match=r"unknown config fields: \['betas', 'lrr'\]"):
        check_fields(Config, {"lrr": 0.1, "betas": 1}, "config fields", KeyError)
