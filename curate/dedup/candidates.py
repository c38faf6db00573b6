"""Candidate pairs that a site template cannot blow up.

Two pages of one site share its navigation and footer: on the full shingle
sets they have Jaccard 0.2-0.5, and a low-threshold LSH (64 bands of 2 rows,
which the containment rule needs) made every such pair a candidate: work
quadratic in a site's page count (2.7M candidate pairs for 20k pages of 50
sites). Here candidates come from two indexes, and a cap per page:

1. **Jaccard index**: the full signatures, banded for the Jaccard threshold
   (:meth:`DedupConfig.jaccard_index`, datasketch's optimal setting, 9 x 13 at
   0.8): near-copies of whole pages, template included.
2. **Containment index**: signatures of each page's *content* shingles, its
   *common* shingles left out: those that many pages of its host hold (its
   template) and those that many pages anywhere hold (a CMS banner, a
   licence, a cookie notice). Common is counted on samples, so it costs a
   bounded amount whatever the host or corpus size: per host the
   ``common_pages`` pages whose id hashes lowest (:func:`sample_key`), and
   globally the ``global_pages`` lowest. Banded 64 x 2 (low threshold: a copy
   inside a longer page has a low Jaccard), it finds a page's copies, cut-down
   or not, on any host, and pages of one site no longer collide through
   their template.
3. **Cap**: a page keeps its ``max_candidates`` best candidates
   (:func:`cap_pairs`); a pair stays if either end keeps it, so the pairs are
   at most ``max_candidates`` x pages, and the counters say when it binds.

Both dedup paths (numpy on one machine, the Beam job) call these functions
on the same samples and so generate the same candidates.

>>> sample_key("doc-1") == sample_key("doc-1")
True
"""

from __future__ import annotations

import math

import numpy as np
import xxhash

from curate.core.counters import Counters
from curate.dedup.config import DedupConfig


def sample_key(doc_id: str) -> int:
    """The key by which pages are sampled for common-shingle counts: lowest first, on both paths."""
    return xxhash.xxh3_64_intdigest(doc_id.encode("utf-8", "surrogatepass"))


def sample_min_pages(cfg: DedupConfig) -> int:
    """The fewest pages a host needs for a sample: fewer can have no common shingles (:func:`host_commons`).

    >>> sample_min_pages(DedupConfig()), sample_min_pages(DedupConfig(small_host_pages=0))
    (3, 4)
    """
    return max(min(cfg.common_docs, cfg.check_common_docs, cfg.small_host_pages or cfg.check_common_docs), 1)


def sample_rows(keys: np.ndarray, hosts: np.ndarray, cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """(rows in some host's sample, rows in the global sample) for rows with ``keys`` and ``hosts``.

    A host's sample: its ``common_pages`` rows with the lowest key (hosts too
    small to have common shingles, see :func:`host_common`, have no sample);
    the global sample: the ``global_pages`` rows with the lowest key.

    >>> h, g = sample_rows(np.array([5, 1, 9, 3], np.uint64), np.array([7, 7, 7, 0], np.uint64),
    ...                    DedupConfig(common_pages=2, common_docs=2, global_pages=2))
    >>> h.tolist(), g.tolist()
    ([0, 1], [1, 3])
    """
    keys = np.asarray(keys, np.uint64)
    hosts = np.asarray(hosts, np.uint64)
    n = len(keys)
    if not n:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.lexsort((np.arange(n), keys, hosts))         # by host, then key
    h = hosts[order]
    start = np.r_[True, h[1:] != h[:-1]]
    first = np.flatnonzero(start)
    size = np.diff(np.r_[first, n])
    pos = np.arange(n) - np.repeat(first, size)              # rank within the host
    big = np.repeat(size >= sample_min_pages(cfg), size)
    take = (h != 0) & big & (pos < cfg.common_pages if cfg.common_pages > 0 else True)
    host_rows = np.sort(order[take])
    glob = np.lexsort((np.arange(n), keys))[:cfg.global_pages] if cfg.global_pages > 0 else np.empty(0, np.int64)
    return host_rows, np.sort(glob)


def _common(arrs: list, min_docs: int, share: float) -> np.ndarray:
    if not arrs:
        return np.empty(0, np.uint32)
    need = max(min_docs, math.ceil(share * len(arrs)))
    if len(arrs) < need:
        return np.empty(0, np.uint32)
    vals, counts = np.unique(np.concatenate(arrs), return_counts=True)
    return vals[counts >= need].astype(np.uint32)


def host_common(arrs: list, cfg: DedupConfig, min_docs: int | None = None, small: int = 0) -> np.ndarray:
    """One host's common shingles from its sample pages' shingle sets (sorted uint32):
    held by at least ``min_docs`` (default ``common_docs``) of them and ``common_share`` of them.

    ``small``: a host of at least ``small`` but fewer than ``min_docs`` pages has as
    common the shingles all of its pages hold (``DedupConfig.small_host_pages``).

    >>> cfg = DedupConfig()
    >>> pages = [np.array([1, 2, 5]), np.array([1, 2, 6]), np.array([1, 2, 5])]
    >>> host_common(pages, cfg, 4).tolist(), host_common(pages, cfg, 4, small=3).tolist()
    ([], [1, 2])
    >>> host_common(pages[:2], cfg, 4, small=3).tolist()   # two pages tell no template from a copy
    []
    """
    min_docs = cfg.common_docs if min_docs is None else min_docs
    if 0 < small <= len(arrs) < min_docs:
        min_docs = len(arrs)
    return _common(arrs, min_docs, cfg.common_share)


def host_commons(arrs: list, cfg: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """A host's (common shingles for the containment index, its template for the checks) from
    its sample pages' shingle sets: :func:`host_common` at ``common_docs``, and at
    ``check_common_docs`` with ``small_host_pages``. Both dedup paths call this."""
    return host_common(arrs, cfg), host_common(arrs, cfg, cfg.check_common_docs, cfg.small_host_pages)


def global_common(arrs: list, cfg: DedupConfig) -> np.ndarray:
    """The corpus's common shingles from the global sample's shingle sets (sorted uint32)."""
    return _common(arrs, cfg.global_docs, cfg.global_share)


def content_shingles(hashes: np.ndarray, host_common_set: np.ndarray | None, glob: np.ndarray) -> np.ndarray:
    """A page's shingles (sorted, distinct) without its host's and the corpus's common ones.

    >>> content_shingles(np.array([1, 2, 3, 4], np.uint32), np.array([2]), np.array([4])).tolist()
    [1, 3]
    """
    keep = np.ones(len(hashes), bool)
    if host_common_set is not None and len(host_common_set):
        keep &= ~np.isin(hashes, host_common_set, assume_unique=True)
    if len(glob):
        keep &= ~np.isin(hashes, glob, assume_unique=True)
    return hashes[keep]


# --------------------------------------------------------------------------- the indexes

def unique_sorted(x: np.ndarray) -> np.ndarray:
    # sort + neighbour test: numpy 2's hash-based np.unique is much slower on int64
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if len(x) else x


def bucket_pair_arrays(members: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`curate.dedup.minhash.bucket_pairs` as two index arrays (same pairs, same order).

    >>> [a.tolist() for a in bucket_pair_arrays(np.array([3, 5, 7, 9]), cap=1)]
    [[3, 3, 3], [5, 7, 9]]
    """
    m = len(members)
    rows = m if m <= cap + 1 else min(cap, m)
    counts = m - 1 - np.arange(rows)            # member i pairs with every later member
    i = np.repeat(np.arange(rows), counts)
    j = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + i + 1
    return members[i], members[j]


def band_values(sigs: np.ndarray, live: np.ndarray, b: int, r: int) -> np.ndarray:
    """One int key per live row for band ``b`` of ``r`` rows: equal keys <=> equal band values.

    The Beam path keys buckets by :func:`band_keys64` (a 64-bit mix of a long
    band's values); here the band's values themselves are the key (packed into 64
    bits when they fit), and one machine can afford the exact comparison.
    """
    cols = sigs[live, b * r:(b + 1) * r].astype(np.uint64)
    if r == 1:
        return cols[:, 0]
    if r == 2:
        return (cols[:, 0] << np.uint64(32)) | cols[:, 1]
    view = np.ascontiguousarray(sigs[live, b * r:(b + 1) * r]).view(np.dtype((np.void, 4 * r))).ravel()
    return np.unique(view, return_inverse=True)[1].astype(np.int64)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_FMIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_S33 = np.uint64(33)


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _S33)
    h = h * _FMIX[0]
    h = h ^ (h >> _S33)
    h = h * _FMIX[1]
    return h ^ (h >> _S33)


def band_keys64(sigs: np.ndarray, b: int, r: int) -> np.ndarray:
    """One uint64 key per row of ``sigs`` for band ``b`` of ``r`` rows, for every row at once.

    Up to two rows the key is the band's values themselves (equal keys <=> equal
    values, as :func:`band_values`); longer bands are mixed into 64 bits (seeded by
    the band), where two different bands share a key with probability 2**-64.
    The Beam job writes these keys per partition, so a page's 73 bands cost a
    few array operations, not 73 hash calls.

    >>> s = np.array([[1, 2, 3, 4], [1, 2, 3, 5]], np.uint32)
    >>> band_keys64(s, 0, 2).tolist() == [(1 << 32) | 2] * 2, len(set(band_keys64(s, 0, 4).tolist()))
    (True, 2)
    """
    cols = np.ascontiguousarray(sigs[:, b * r:(b + 1) * r]).astype(np.uint64)
    if r == 1:
        return cols[:, 0]
    if r == 2:
        return (cols[:, 0] << np.uint64(32)) | cols[:, 1]
    h = np.full(len(cols), ((b + 1) * int(_GOLDEN)) & 0xFFFFFFFFFFFFFFFF, np.uint64)  # the band's seed
    for k in range(r):
        h = _fmix64((h ^ cols[:, k]) * _GOLDEN)
    return h


def band_pairs(sigs: np.ndarray, live: np.ndarray, bands: int, rows: int, n: int, max_bucket: int,
               counters: Counters) -> np.ndarray:
    """Distinct candidate pairs of the rows ``live`` (in rank order) as codes ``i * n + j``, i < j:
    rows equal on a band; a bucket over ``max_bucket + 1`` rows pairs each with its first ``max_bucket``."""
    parts: list[np.ndarray] = []
    codes = np.empty(0, np.int64)
    if len(live) < 2:
        return codes
    for b in range(bands):
        key = band_values(sigs, live, b, rows)
        order = np.argsort(key, kind="stable")  # stable: members stay in rank order
        sk = key[order]
        brk = np.flatnonzero(sk[1:] != sk[:-1]) + 1
        starts = np.r_[0, brk]
        lens = np.diff(np.r_[starts, len(sk)])
        two = starts[lens == 2]               # most buckets: one pair, vectorised
        if len(two):
            parts.append(live[order[two]] * n + live[order[two + 1]])
        big = lens > 2
        for s, m in zip(starts[big].tolist(), lens[big].tolist()):  # larger buckets: bucket_pairs' rule
            members = live[order[s:s + m]]
            if len(members) > max_bucket + 1:
                counters.inc("dedup:buckets_capped")
            i, j = bucket_pair_arrays(members, max_bucket)
            parts.append(i * n + j)
        if sum(map(len, parts)) > 4 * max(len(codes), 1 << 20):  # bound the duplicates across bands
            codes = unique_sorted(np.concatenate([codes] + parts))
            parts = []
    if parts:
        codes = unique_sorted(np.concatenate([codes] + parts))
    return codes


def pair_scores(sig_a, sig_b, csig_a, csig_b, csize_a, csize_b) -> tuple[np.ndarray, np.ndarray]:
    """(estimated Jaccard of the content signatures, 0 where either side has no content;
    of the full signatures): what :func:`cap_pairs` ranks a page's candidates by. Vectorised."""
    jc = np.mean(np.asarray(csig_a) == np.asarray(csig_b), axis=-1)
    jc = np.where((np.asarray(csize_a) > 0) & (np.asarray(csize_b) > 0), jc, 0.0)
    return jc, np.mean(np.asarray(sig_a) == np.asarray(sig_b), axis=-1)


def cap_pairs(pi: np.ndarray, pj: np.ndarray, jc: np.ndarray, jf: np.ndarray, cap: int,
              counters: Counters | None = None) -> np.ndarray:
    """Which candidate pairs to keep: each row keeps its ``cap`` best (content Jaccard, then
    full Jaccard, then the other row's rank), and a pair stays when either end keeps it.

    >>> cap_pairs(np.array([0, 0, 0, 1]), np.array([1, 2, 3, 2]), np.array([.9, .1, .5, .2]),
    ...           np.zeros(4), cap=1).tolist()  # (0, 2) is nobody's best; (0, 3) is 3's only pair
    [True, False, True, True]
    """
    p = len(pi)
    if cap <= 0 or not p:
        return np.ones(p, bool)
    ends = np.concatenate([pi, pj])
    other = np.concatenate([pj, pi])
    idx = np.concatenate([np.arange(p), np.arange(p)])
    c2, f2 = np.concatenate([jc, jc]), np.concatenate([jf, jf])
    order = np.lexsort((other, -f2, -c2, ends))
    e = ends[order]
    start = np.r_[True, e[1:] != e[:-1]]
    first = np.flatnonzero(start)
    size = np.diff(np.r_[first, len(e)])
    pos = np.arange(len(e)) - np.repeat(first, size)
    keep = np.zeros(p, bool)
    keep[idx[order[pos < cap]]] = True
    if counters is not None and (size > cap).any():
        counters.inc("dedup:candidate_cap_docs", int((size > cap).sum()))
        counters.inc("dedup:candidates_capped", int(p - keep.sum()))
    return keep
