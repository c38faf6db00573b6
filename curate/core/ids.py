"""Seeds from document ids: every random choice in the project starts here.

A choice seeded by the id (not by run order, a worker or a clock) is the same
on a rerun, on a retried Beam bundle and on another runner.
"""

from __future__ import annotations

import hashlib


def id_fraction(doc_id: str, salt: str = "") -> float:
    """A number in [0, 1) from the document id: the seed of every random choice.

    >>> id_fraction("a") == id_fraction("a") and 0 <= id_fraction("a") < 1
    True
    """
    h = hashlib.blake2b(f"{salt}:{doc_id}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64
