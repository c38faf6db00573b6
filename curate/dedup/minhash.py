"""MinHash signatures, the LSH s-curve, and pair verification.

Signatures are datasketch 2.0 MinHash signatures (scheme ``affine32``,
pinned in pyproject.toml because 1.x signatures are not comparable) of our own
32-bit shingle hashes (see :mod:`curate.core.words`), i.e. what
``MinHash(num_perm, seed, hashfunc=int, scheme="affine32").update_batch(shingles)``
gives. For ``affine32`` we compute them with numpy ourselves, from
datasketch's own permutation parameters: ``fmix32(h)`` (MurmurHash3's
finaliser) then ``a_k * h + b_k mod 2**32`` and the minimum per permutation,
which is datasketch's formula bit for bit (tested), without its per-document
Python list and array conversions (measured 217 -> 70 us per 500-word
document). Other schemes go through datasketch's ``update_batch``.

LSH: the signature is cut into ``bands`` bands of ``rows`` values; two
documents are candidates when any band is equal. The probability that a pair
with Jaccard similarity ``s`` becomes a candidate is ``1 - (1 - s**rows)**bands``
(the s-curve, :func:`s_curve`). A candidate is a duplicate only after
verification on the full signature (:func:`verify`), so a bucket collision
alone never removes a document.

>>> cfg = DedupConfig()
>>> sig, size = signature("the quick brown fox jumps over the lazy dog", cfg)
>>> sig.shape, sig.dtype.name, size
((128,), 'uint32', 5)
>>> round(s_curve(0.8, cfg.bands, cfg.rows), 4)
1.0
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from datasketch import MinHash

from curate.core.words import shingle_batch, word_tokens
from curate.dedup.config import DedupConfig


def _identity(x):
    # datasketch calls hashfunc per item; our items are already 32-bit hashes
    return x


_TEMPLATES: dict[tuple, MinHash] = {}


def _template(cfg: DedupConfig) -> MinHash:
    """One empty MinHash per setting: creating the permutations is the slow part."""
    key = (cfg.num_perm, cfg.seed, cfg.scheme)
    m = _TEMPLATES.get(key)
    if m is None:
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=_identity, scheme=cfg.scheme)
        _TEMPLATES[key] = m
    return m


# MurmurHash3's 32-bit finaliser, datasketch's pre-mix for affine32
_F1, _F2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)


_S16, _S13 = np.uint32(16), np.uint32(13)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _S16)
    h *= _F1
    h ^= h >> _S13
    h *= _F2
    h ^= h >> _S16
    return h


def sketch_shingles(hashes: np.ndarray, sizes: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """MinHash signatures (B, num_perm) uint32 of B shingle sets given concatenated.

    ``hashes``/``sizes`` as returned by :func:`curate.core.words.shingle_batch`.
    An empty set gets the all-max signature (datasketch's empty MinHash).
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    tmpl = _template(cfg)
    out = np.empty((len(sizes), cfg.num_perm), np.uint32)
    ends = np.cumsum(sizes)
    if cfg.scheme != "affine32":
        for i, (e, k) in enumerate(zip(ends.tolist(), sizes.tolist())):
            m = tmpl.copy()
            if k:
                m.update_batch(hashes[e - k:e].tolist())
            out[i] = m.hashvalues
        return out
    a, b = tmpl.permutations                        # (num_perm,) uint32 each, a odd
    a, b = a.astype(np.uint32)[:, None], b.astype(np.uint32)[:, None]
    mixed = _fmix32(np.asarray(hashes, dtype=np.uint32))
    # (num_perm, S) for one document at a time, contiguous: ~250 KB, stays in
    # cache (a whole batch at once measured 5-10x slower, memory-bound; a
    # strided view of a wider buffer 1.3x slower)
    buf = np.empty(cfg.num_perm * int(sizes.max(initial=0)), np.uint32)
    for i, (e, k) in enumerate(zip(ends.tolist(), sizes.tolist())):
        if not k:
            out[i] = np.uint32(0xFFFFFFFF)
            continue
        v = buf[:cfg.num_perm * k].reshape(cfg.num_perm, k)
        np.multiply(a, mixed[e - k:e], out=v)       # wraps mod 2**32, as datasketch's uint32 does
        v += b
        v.min(axis=1, out=out[i])
    return out


def signatures(texts: Iterable[str], cfg: DedupConfig, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Signatures of many texts: ((N, num_perm) uint32, (N,) int64 distinct-shingle counts).

    >>> sigs, sizes = signatures(["a b c d e f", ""], DedupConfig())
    >>> sigs.shape, sizes.tolist(), bool((sigs[1] == 2**32 - 1).all())
    ((2, 128), [2, 0], True)
    """
    texts = list(texts)
    sigs = np.empty((len(texts), cfg.num_perm), np.uint32)
    sizes = np.empty(len(texts), np.int64)
    for s in range(0, len(texts), batch):
        h, n = shingle_batch([word_tokens(t) for t in texts[s:s + batch]], cfg.ngram)
        sigs[s:s + len(n)] = sketch_shingles(h, n, cfg)
        sizes[s:s + len(n)] = n
    return sigs, sizes


def signature(text: str, cfg: DedupConfig) -> tuple[np.ndarray, int]:
    """(signature (num_perm,) uint32, number of distinct shingles) of ``text``.

    An empty text has size 0 and an all-max signature; it never enters LSH.
    """
    sigs, sizes = signatures([text], cfg)
    return sigs[0], int(sizes[0])


def s_curve(s: float, bands: int, rows: int) -> float:
    """Probability that a pair with Jaccard ``s`` shares at least one band.

    >>> round(s_curve(0.5, 20, 5), 3)
    0.47
    """
    return 1.0 - (1.0 - s ** rows) ** bands


def s_curve_table(cfg: DedupConfig, points=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> str:
    """The s-curve of ``cfg`` as a small text table (printed by the CLI and the benchmark)."""
    lines = [f"LSH s-curve, bands={cfg.bands} rows={cfg.rows}: P(candidate | Jaccard s)"]
    lines.append("  s     " + " ".join(f"{p:>6.2f}" for p in points))
    lines.append("  P     " + " ".join(f"{s_curve(p, cfg.bands, cfg.rows):>6.3f}" for p in points))
    return "\n".join(lines)


def estimate(sig_a: np.ndarray, sig_b: np.ndarray, size_a, size_b):
    """(Jaccard, containment of the smaller set in the larger) estimated from signatures.

    Works on single signatures or row-aligned (P, num_perm) batches. Containment
    uses the exact set sizes: |A n B| = J (|A| + |B|) / (1 + J).

    >>> a = np.array([1, 2, 3, 4], np.uint32); b = np.array([1, 2, 3, 9], np.uint32)
    >>> j, c = estimate(a, b, 100, 300)
    >>> float(j), round(float(c), 2)
    (0.75, 1.71)
    """
    j = np.mean(sig_a == sig_b, axis=-1)
    size_a = np.asarray(size_a, dtype=np.float64)
    size_b = np.asarray(size_b, dtype=np.float64)
    inter = j * (size_a + size_b) / (1.0 + j)
    c = inter / np.maximum(np.minimum(size_a, size_b), 1.0)
    return j, c


def bucket_pairs(members: list, cap: int) -> list[tuple]:
    """Candidate pairs within one band bucket, members already in node order.

    All pairs when the bucket has at most ``cap`` members; otherwise each
    member is paired with the first ``cap`` members only, which bounds the
    work of a boilerplate bucket while keeping it connected (every member is
    paired with the first one).

    >>> bucket_pairs(["a", "b", "c"], cap=2)
    [('a', 'b'), ('a', 'c'), ('b', 'c')]
    >>> bucket_pairs(["a", "b", "c", "d"], cap=1)
    [('a', 'b'), ('a', 'c'), ('a', 'd')]
    """
    m = len(members)
    if m <= cap + 1:
        return [(members[i], members[k]) for i in range(m) for k in range(i + 1, m)]
    return [(members[i], members[k]) for i in range(min(cap, m)) for k in range(i + 1, m)]
