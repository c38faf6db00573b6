"""When a verified pair is a duplicate: the Jaccard rule, the containment rule and its checks.

A pair is a duplicate when its Jaccard similarity reaches ``threshold``, or when
the smaller page's shingles are ``containment`` contained in the larger one.
Containment is checked on the exact shingle sets near the threshold
(:func:`needs_exact`), with the site template left out
(:func:`template_containment`) and, where a copy would show it, the smaller
page's opening found in the larger (:func:`copy_containment`). Each rule's
measured reason is in :class:`curate.dedup.config.DedupConfig`'s docstring.
"""

from __future__ import annotations

import numpy as np

from curate.dedup.config import DedupConfig
from curate.dedup.templates import template_masks


def containment_applies(size_a, size_b, cfg: DedupConfig):
    """Whether the containment rule may join a pair of these set sizes (vectorised)."""
    size_a = np.asarray(size_a, dtype=np.float64)
    size_b = np.asarray(size_b, dtype=np.float64)
    small = np.minimum(size_a, size_b)
    big = np.maximum(size_a, size_b)
    return (small >= cfg.min_shingles) & (big <= cfg.max_ratio * small)


def is_duplicate(j, c, size_a, size_b, cfg: DedupConfig):
    """The duplicate rule on (exact or estimated) similarities, vectorised.

    Jaccard >= threshold, or containment >= containment where the containment
    rule applies (the smaller side has ``min_shingles``, sizes within ``max_ratio``).
    """
    contain_ok = containment_applies(size_a, size_b, cfg)
    return (np.asarray(j) >= cfg.threshold) | (contain_ok & (np.asarray(c) >= cfg.containment))


def needs_exact(j, c, size_a, size_b, cfg: DedupConfig):
    """Pairs whose containment must be checked on the exact shingle sets.

    Measured: from 128 permutations the containment estimate of a pair with
    size ratio k has a standard deviation of about sd(J) * (1 + k) / (1 + J)**2
    (0.05 at k=1.5, 0.12 at k=4), so acting on it joined 10-15% of pairs whose
    exact containment was below the threshold. Pairs not already duplicates by
    Jaccard whose estimate is within ``containment_slack`` of the threshold are
    therefore checked exactly; there are few of them.
    """
    contain_ok = containment_applies(size_a, size_b, cfg)
    return (np.asarray(j) < cfg.threshold) & contain_ok & (np.asarray(c) >= cfg.containment - cfg.containment_slack)


def exact_containment(a: np.ndarray, b: np.ndarray) -> float:
    """Exact containment of the smaller of two sorted unique shingle-hash arrays in the other.

    >>> exact_containment(np.array([1, 2, 3], np.uint32), np.array([2, 3, 4, 5], np.uint32))
    0.6666666666666666
    """
    if not len(a) or not len(b):
        return 0.0
    return len(np.intersect1d(a, b, assume_unique=True)) / min(len(a), len(b))


def opening_found(a: np.ndarray, first: np.ndarray, keep: np.ndarray, b: np.ndarray, m: int) -> float:
    """Share of ``a``'s first ``m`` shingles in text order (``first``: where each occurs; only
    those in ``keep``) that ``b`` holds; 1.0 when none are left to look at.

    >>> opening_found(np.array([1, 2, 3, 4]), np.array([3, 0, 1, 2]), np.ones(4, bool), np.array([2, 9]), 2)
    0.5
    """
    idx = np.flatnonzero(keep)
    if not len(idx) or m <= 0:
        return 1.0
    head = a[idx[np.argsort(first[idx], kind="stable")[:m]]]
    return float(np.isin(head, b, assume_unique=True).mean())


def copy_containment(a: np.ndarray, first_a: np.ndarray, b: np.ndarray, first_b: np.ndarray,
                     counts: tuple | None, cfg: "DedupConfig", same_host: bool = False) -> float:
    """The exact containment the containment rule acts on: :func:`template_containment`,
    or 0.0 where the pair also needs the smaller page's opening in the larger one and
    it is not there.

    The opening is the smaller page's first ``cfg.opening`` shingles in text
    order, its site template left out; at least ``cfg.opening_share`` of them
    must be in the larger page (of equal sizes, either page's opening will do).
    It is asked of two kinds of pair:

    - a page only partly contained (below ``cfg.opening_below``, half): a copy
      begins with its source's text, so a page with less than half of itself
      in another is a copy only if what it shares is where it begins;
    - two pages of one host, however much they share: one site renders one
      content the same way, title first, while two articles of a site that
      share a block further down (a list of headlines, a sidebar, comments)
      begin with their own titles. Across sites a copy is re-wrapped (another
      header, an intro, a licence) and a mostly contained page needs no more.
    """
    c = template_containment(a, b, counts, cfg.template_docs)
    if cfg.opening <= 0 or c < cfg.containment or (c >= cfg.opening_below and not same_host):
        return c
    keep_a, keep_b = template_masks(a, b, counts, cfg.template_docs)
    if len(a) <= len(b) and opening_found(a, first_a, keep_a, b, cfg.opening) >= cfg.opening_share:
        return c
    if len(b) <= len(a) and opening_found(b, first_b, keep_b, a, cfg.opening) >= cfg.opening_share:
        return c
    return 0.0


def template_containment(a: np.ndarray, b: np.ndarray, counts: tuple | None, min_docs: int) -> float:
    """Exact containment, with the site template left out: shingles that ``min_docs`` or
    more checked pages of the pair's site(s) hold (``counts`` from :func:`site_counts`).

    The template only vetoes: the result is the smaller of the containment with
    and without it, because leaving the template out of a page whose template is
    not in the other page would raise the share of its remaining text found there.

    >>> a, b = np.array([1, 2, 3, 4]), np.array([1, 2, 3, 9])
    >>> template_containment(a, b, None, 4)
    0.75
    >>> template_containment(a, b, (np.array([5, 5, 0, 0]), np.array([5, 5, 0, 1])), 4)
    0.5
    """
    plain = exact_containment(a, b)
    if counts is None or min_docs <= 0:
        return plain
    keep_a, keep_b = template_masks(a, b, counts, min_docs)
    return min(plain, exact_containment(a[keep_a], b[keep_b]))
