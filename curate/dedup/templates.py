"""Hosts and site templates: the shingles a site repeats on its pages (navigation, footers).

A host's template is counted over at most ``template_pages`` of its checked
pages, picked by content hash (:func:`set_key`), so both the one-machine path and
the Beam job see the same pages and no worker needs all of a site.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import xxhash


def host_key(url: str | None) -> int:
    """A 64-bit key of a URL's host (lower-cased, ``www.`` dropped); 0 when there is none.

    >>> host_key("https://www.Example.org/a") == host_key("http://example.org/b") != 0
    True
    >>> host_key(None), host_key("not a url")
    (0, 0)
    """
    if not url:
        return 0
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return 0
    if not host:
        return 0
    if host.startswith("www."):
        host = host[4:]
    return xxhash.xxh3_64_intdigest(host) or 1


def set_key(arr: np.ndarray) -> int:
    """A 64-bit key of a shingle set's content: picks a host's template pages the same way on both paths."""
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(arr, dtype=np.uint32).tobytes())


def shingle_counts(arrs: list) -> tuple[np.ndarray, np.ndarray]:
    """(sorted shingles of these sets, how many of the sets hold each)."""
    if not arrs:
        return np.empty(0, np.uint32), np.empty(0, np.int64)
    return np.unique(np.concatenate(arrs), return_counts=True)


def host_counts(sets: dict, hosts: dict, max_pages: int = 0) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """host -> :func:`shingle_counts` of its documents among ``sets``.

    ``sets`` maps a node to its sorted unique shingle hashes and ``hosts`` a node
    to its :func:`host_key` (0, no host, is left out). With ``max_pages``, only
    that many of a host's documents count: those with the lowest :func:`set_key`.
    Both dedup paths call this on the same documents: those in a containment check.

    >>> c = host_counts({1: np.array([1, 2, 5]), 2: np.array([1, 2, 6]), 3: np.array([7])},
    ...                 {1: 9, 2: 9, 3: 0})
    >>> [x.tolist() for x in c[9]], list(c)
    ([[1, 2, 5, 6], [2, 2, 1, 1]], [9])
    >>> int(host_counts({1: np.array([1]), 2: np.array([1]), 3: np.array([1])}, {1: 9, 2: 9, 3: 9}, 2)[9][1][0])
    2
    """
    by_host: dict[int, list] = {}
    for node, arr in sets.items():
        h = hosts.get(node, 0)
        if h:
            by_host.setdefault(h, []).append(arr)
    if max_pages > 0:
        by_host = {h: sorted(arrs, key=set_key)[:max_pages] if len(arrs) > max_pages else arrs
                   for h, arrs in by_host.items()}
    return {h: shingle_counts(arrs) for h, arrs in by_host.items()}


def count_in(arr: np.ndarray, counts: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """For each shingle of ``arr``, how many documents of one host hold it (``host_counts``' entry).

    >>> count_in(np.array([1, 3, 6]), (np.array([1, 2, 6]), np.array([4, 1, 2]))).tolist()
    [4, 0, 2]
    """
    if counts is None or not len(counts[0]) or not len(arr):
        return np.zeros(len(arr), np.int64)
    vals, n = counts
    at = np.minimum(np.searchsorted(vals, arr), len(vals) - 1)
    return np.where(vals[at] == arr, n[at], 0).astype(np.int64)


def site_counts(a: np.ndarray, b: np.ndarray, host_a: int, host_b: int, counts: dict) -> tuple | None:
    """(counts of ``a``'s shingles, of ``b``'s) over the checked pages of the pair's site(s).

    One host: that host's pages. Two hosts: both hosts' pages together, so a
    template that a network of sites shares (one owner's news sites, one
    forum provider's boards, one Q&A network) is found across them. No host on
    either side: None (no template applies).
    """
    if not (host_a and host_b):
        return None
    ca = counts.get(host_a)
    cb = counts.get(host_b) if host_b != host_a else None  # one host counts once
    return count_in(a, ca) + count_in(a, cb), count_in(b, ca) + count_in(b, cb)


def template_masks(a, b, counts, min_docs):
    """Which shingles of ``a`` and of ``b`` are not the site template (all, without counts)."""
    if counts is None or min_docs <= 0:
        return np.ones(len(a), bool), np.ones(len(b), bool)
    return counts[0] < min_docs, counts[1] < min_docs


def with_common(a: np.ndarray, b: np.ndarray, host_a: int, host_b: int, counts: tuple | None, common: dict,
                min_docs: int) -> tuple | None:
    """``counts`` (:func:`site_counts`) with the pair's hosts' *common* shingles (those a
    sample of each host's pages shares, :mod:`curate.dedup.candidates`) counted as template.

    The checked pages of a host are few when its pages are not copies of each
    other, too few to show its template (``template_docs`` of them); the sample
    shows it whatever the checks, so a pair of one site's short pages is not
    joined through their navigation and footer, and a copy on another site is
    judged without either site's template.

    >>> with_common(np.array([1, 2, 3]), np.array([2, 3]), 7, 7, None, {7: np.array([3])}, 4)
    (array([0, 0, 4]), array([0, 4]))
    """
    if not (host_a and host_b) or not common:
        return counts
    parts = [c for c in (common.get(host_a), common.get(host_b) if host_b != host_a else None) if c is not None]
    if not parts:
        return counts
    cs = np.concatenate(parts) if len(parts) > 1 else parts[0]
    ca, cb = counts if counts is not None else (np.zeros(len(a), np.int64), np.zeros(len(b), np.int64))
    return (ca + min_docs * np.isin(a, cs).astype(np.int64), cb + min_docs * np.isin(b, cs).astype(np.int64))
