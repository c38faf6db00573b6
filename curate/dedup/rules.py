"""When a verified pair is a duplicate: the Jaccard rule, the containment rule and its checks.

A pair is a duplicate when its Jaccard similarity reaches ``threshold``, or when
the smaller page's shingles are ``containment`` contained in the larger one.
Containment is checked on the exact shingle sets near the threshold
(:func:`needs_exact`), with the site template left out
(:func:`template_containment`; a copy on another site without either site's
wrapper, :func:`rewrapped_containment`) and, where a copy would show it, the smaller
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
    head = _in_text_order(a[idx], first[idx])[:m]
    return float(np.isin(head, b, assume_unique=True).mean())


def copy_containment(a: np.ndarray, first_a: np.ndarray, b: np.ndarray, first_b: np.ndarray,
                     counts: tuple | None, cfg: "DedupConfig", same_host: bool = False) -> float:
    """The exact containment the containment rule acts on: :func:`template_containment`
    (across sites, :func:`rewrapped_containment` where that is higher), or 0.0 where
    the pair also needs the smaller page's opening in the larger one and it is not there.

    The opening is the smaller page's first ``cfg.opening`` shingles in text
    order, its site template left out; at least ``cfg.opening_share`` of them
    must be in the larger page (of equal sizes, either page's opening will do).
    It is asked of two kinds of pair:

    - a page only partly contained (below ``cfg.opening_below``, half): a copy
      begins with its source's text, so a page with less than half of itself
      in another is a copy only if what it shares is where it begins. Across
      sites this is not asked of a page with no known template shingle (a
      site of one or two pages in the crawl): its opening is its own
      navigation. Measured on the scale benchmark: recall 0.997 -> 0.9995 at
      100k, precision 0.998 both; CopyCat, Gutenberg, Clough-Stevenson
      unchanged;
    - two pages of one host, however much they share: one site renders one
      content the same way, title first, while two articles of a site that
      share a block further down (a list of headlines, a sidebar, comments)
      begin with their own titles. Across sites a copy is re-wrapped (another
      header, an intro, a licence) and a mostly contained page needs no more.

    Two pages of one host less than half contained also need their *middle*
    found (:func:`middle_found`): what the smaller page holds between the
    prefix and the suffix the pair shares. A host of two pages in a crawl
    has nothing that shows its navigation and footer as template (three
    show it: ``DedupConfig.small_host_pages``), and
    both its pages begin with that navigation, so the opening check passes
    them; but a site's pages share their ends (navigation above, footer
    below), where a copy shares its text. Measured on the scale benchmark
    (`python -m benchmarks.dedup --scale N`): at 10k, 82 of its 86 wrong
    removals were such pairs, 2 of 4 after this check (precision 0.862 ->
    0.993, recall unchanged); at 1M precision 0.860 -> 0.985. On CopyCat every
    pair of S3 >= 0.8 is still joined, and 4 of 217 looser pairs (versions of
    one URL less than half contained, S3 < 0.8) no longer are. Pages more than
    half contained are left to the opening check: there the pair's shared
    ends are most of the page, as with two versions of one page.
    """
    c = template_containment(a, b, counts, cfg.template_docs)
    if not same_host and c < cfg.containment:
        c = max(c, rewrapped_containment(a, b, counts, cfg))
    if cfg.opening <= 0 or c < cfg.containment or (c >= cfg.opening_below and not same_host):
        return c
    if same_host and c < cfg.opening_below and not _middle_found_either(a, first_a, b, first_b, cfg):
        return 0.0
    keep_a, keep_b = template_masks(a, b, counts, cfg.template_docs)
    # across sites, a page none of whose shingles is known template (a site of one or
    # two pages in the crawl) opens with its own navigation, which a copy on another
    # site never carries: its opening cannot be told, so it is not asked for
    across = counts is not None and not same_host   # two sites, each with a host
    if len(a) <= len(b) and ((across and keep_a.all())
                             or opening_found(a, first_a, keep_a, b, cfg.opening) >= cfg.opening_share):
        return c
    if len(b) <= len(a) and ((across and keep_b.all())
                             or opening_found(b, first_b, keep_b, a, cfg.opening) >= cfg.opening_share):
        return c
    return 0.0


# Two sites' templates are "disjoint" when at most this share of their shingles is in
# the other page: a few 5-grams two unrelated navigations happen to share ("terms of
# use privacy policy") do not make them one network's. Set, not tuned.
_DISJOINT_SHARE = 0.1


def rewrapped_containment(a: np.ndarray, b: np.ndarray, counts: tuple | None, cfg: DedupConfig) -> float:
    """Containment of a copy re-wrapped on another site: each page with its own site
    template left out, where the two pages' templates are disjoint; 0.0 otherwise.

    :func:`template_containment` lets a template only veto a join, because a
    network of sites shares one (two local news sites of one owner: leaving
    it out of both pages raises the share of two different articles found in
    each other). Where neither page holds the other's template, the
    templates are only each copy's wrapper, and they dilute the containment
    of a short copy: a 100-word article inside 120 words of another site's
    navigation and footer is less than half "contained" in its source.
    Measured on the scale benchmark (100k pages), recall of the planted
    copies 0.978 -> 0.997 at the same precision (0.998), with CopyCat,
    Gutenberg and Clough-Stevenson unchanged. Both pages must keep
    ``min_shingles`` after the template is left out.

    >>> cfg = DedupConfig()
    >>> own, nav_a, nav_b = np.arange(100, 130), np.arange(0, 40), np.arange(200, 240)
    >>> a, b = np.r_[nav_a, own[:25]], np.r_[own, nav_b]
    >>> counts = (np.r_[np.full(40, 5), np.zeros(25, int)], np.r_[np.zeros(30, int), np.full(40, 5)])
    >>> round(exact_containment(a, b), 2), rewrapped_containment(a, b, counts, cfg)
    (0.38, 1.0)
    >>> shared = np.r_[nav_a, own]   # b carries a's template too: one network's sites
    >>> rewrapped_containment(a, shared, (counts[0], np.r_[np.full(40, 5), np.zeros(30, int)]), cfg)
    0.0
    """
    if counts is None or cfg.template_docs <= 0:
        return 0.0
    keep_a, keep_b = template_masks(a, b, counts, cfg.template_docs)
    ta, tb = a[~keep_a], b[~keep_b]
    if not (len(ta) or len(tb)) or min(int(keep_a.sum()), int(keep_b.sum())) < cfg.min_shingles:
        return 0.0
    shared = np.isin(ta, b, assume_unique=True).sum() + np.isin(tb, a, assume_unique=True).sum()
    if shared > _DISJOINT_SHARE * (len(ta) + len(tb)):
        return 0.0
    return exact_containment(a[keep_a], b[keep_b])


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


def _in_text_order(a: np.ndarray, first: np.ndarray) -> np.ndarray:
    return a[np.argsort(first, kind="stable")]


def middle_found(a: np.ndarray, first_a: np.ndarray, b: np.ndarray, first_b: np.ndarray, ngram: int) -> float:
    """Share of ``a``'s *middle* found in ``b``: ``a``'s shingles in text order after the
    longest prefix and before the longest suffix it shares with ``b`` (also in text
    order); 1.0 when fewer than ``2 * ngram`` are left (the shingles that span the
    seam of a cut are all a cut-down copy has there).

    >>> a = np.array([1, 2, 3, 4, 5, 6]); b = np.array([1, 2, 8, 9, 5, 6])
    >>> middle_found(a, np.arange(6), b, np.arange(6), 1)   # 3, 4 between the shared ends: not in b
    0.0
    """
    sa, sb = _in_text_order(a, first_a), _in_text_order(b, first_b)
    n = min(len(sa), len(sb))
    eq = sa[:n] == sb[:n]
    pre = n if eq.all() else int(np.argmin(eq))
    eq = sa[::-1][:n] == sb[::-1][:n]
    suf = n if eq.all() else int(np.argmin(eq))
    mid = sa[pre:max(pre, len(sa) - suf)]
    if len(mid) < 2 * ngram:
        return 1.0
    return float(np.isin(mid, b, assume_unique=True).mean())


def _middle_found_either(a, first_a, b, first_b, cfg: DedupConfig) -> bool:
    """Whether the smaller page's middle (of equal sizes, either page's) is in the other
    at the containment bar (see :func:`copy_containment`)."""
    if len(a) <= len(b) and middle_found(a, first_a, b, first_b, cfg.ngram) >= cfg.containment:
        return True
    return len(b) <= len(a) and middle_found(b, first_b, a, first_a, cfg.ngram) >= cfg.containment
