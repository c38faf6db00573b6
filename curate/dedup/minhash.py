"""MinHash signatures, LSH band keys, the s-curve, and pair verification.

Signatures are datasketch 2.0 MinHash signatures (scheme ``affine32``,
pinned in pyproject.toml because 1.x signatures are not comparable) of our own
32-bit shingle hashes (see :mod:`curate.dedup.normalize`), i.e. what
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

from dataclasses import asdict, dataclass
from typing import Iterable
from urllib.parse import urlsplit

import datasketch
import numpy as np
import xxhash
from datasketch import MinHash

from curate.dedup.normalize import shingle_batch, word_tokens

# Everything that changes signature values; stored beside every signature /
# stats file so signatures from different settings are never mixed.
SIGNATURE_FIELDS = ("num_perm", "seed", "ngram", "scheme", "shingles")
# How a shingle becomes the 32-bit value MinHash sees (curate.dedup.normalize);
# part of the saved config because a change here changes every signature.
SHINGLE_HASH = ("words: NFKD-lowercased, digits->0, runs of [^\\W_]; w_i = xxh3_64(utf8(word)); "
                "n-gram = fmix64(((w_1*P + w_2)*P + ...)*P + w_n + n) mod 2**64, P = 0x9E3779B97F4A7C15; "
                "shingle = its top 32 bits; MinHash input = distinct shingles")


@dataclass
class DedupConfig:
    """Dedup settings. Defaults chosen by measurement (see benchmarks/dedup.py).

    - ``ngram=5``: word 5-grams. Clough-Stevenson independent ('non') answers
      share at most 4% of their 5-grams with any other answer (9.5% for
      3-grams), while copied ('cut') answers share 45-95%, so 5-grams give the
      widest gap between copying and writing about the same topic.
    - ``bands=64, rows=2`` (128 permutations): a low-threshold s-curve
      (50% detection at Jaccard 0.10, 90% at 0.19, 100.0% at 0.5) because the
      containment rule must find pairs whose Jaccard is low only because one
      side is longer (a 200-word copy inside a 300-word page has Jaccard 0.3
      even when fully contained). Precision comes from verification, not from
      the bands.
    - ``threshold=0.8``: estimated Jaccard at which two documents are
      near-duplicates (the symmetric rule).
    - ``containment=0.4``: estimated share of the smaller document's shingles
      found in the larger one (the containment rule). Copied Clough-Stevenson
      answers sit at 0.45-0.95, independent ones at <= 0.04; CopyCat pairs
      with S3 >= 0.8 all have containment >= 0.85.
    - ``min_shingles=20`` and ``max_ratio=4``: the containment rule is skipped
      for tiny documents (a 5-word "page not found" is contained in anything)
      and for size ratios above 4, where the estimate from 128 permutations is
      too noisy (its standard deviation grows with the ratio) to act on.
    - ``containment_slack=0.2``: containment estimates within 0.2 below the
      threshold are checked on the exact shingle sets (see :func:`needs_exact`).
    - ``max_bucket=256``: a band bucket larger than this (shared boilerplate)
      pairs each member with its 256 first members only, bounding the work
      per bucket; identical in the one-machine and Beam paths.
    - ``template_docs=4``: in a containment check between two pages with
      URLs, shingles found in at least this many checked pages of their host
      (of both hosts together when they differ) are the site's template
      (navigation, footers) and do not count towards containment (see
      :func:`template_containment`). Without it, different articles of one
      news site or wiki whose text is mostly navigation were "contained" in
      each other (34 of the 48 CopyCat removals outside a canonical-link
      pair); counting both hosts catches the template a network of sites
      shares (11 more CopyCat removals across hosts); 0 turns it off.
    - ``template_pages=64``: at most this many checked pages of a host count
      towards its template (those whose shingle sets hash lowest, the same on
      both paths): a navigation is on nearly every page, so a sample finds
      it, and one host's template never needs all its pages on one worker
      (a wiki can have a million); 0 counts every checked page.
    - ``opening=50, opening_share=0.1, opening_below=0.5``: a containment
      join of a page less than half contained in the other, or of two pages
      of one host, also needs at least 10% of the smaller page's opening (its
      first 50 shingles in text order, the site template left out) in the
      larger page (see :func:`copy_containment`): a copy begins with its
      source's text. Every Clough-Stevenson copy has at least 18% there; 9 of
      the 10 CopyCat containment pairs of different articles (pages of one
      site sharing a list of headlines) had 0%. Across hosts a page more than
      half contained needs no opening: a copy on another site gets another
      header (Gutenberg editions cut to 40k characters, whose licence headers
      differ, have 0-8% there). 0 turns the check off.
    """

    num_perm: int = 128
    seed: int = 1
    ngram: int = 5
    bands: int = 64
    rows: int = 2
    threshold: float = 0.8
    containment: float = 0.4
    min_shingles: int = 20
    max_ratio: float = 4.0
    max_bucket: int = 256
    containment_slack: float = 0.2
    template_docs: int = 4
    template_pages: int = 64
    opening: int = 50
    opening_share: float = 0.1
    opening_below: float = 0.5
    scheme: str = "affine32"

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows={self.bands * self.rows} exceeds num_perm={self.num_perm}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shingles"] = SHINGLE_HASH
        d["datasketch"] = datasketch.__version__ if hasattr(datasketch, "__version__") else "2.0"
        return d


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

    ``hashes``/``sizes`` as returned by :func:`curate.dedup.normalize.shingle_batch`.
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


def band_keys(sig: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """64-bit key of each band of one signature, (bands,) uint64.

    The band index is part of the hash so equal values in different bands never
    collide; the same function keys Beam's GroupByKey, so both paths see the
    same buckets.
    """
    r = cfg.rows
    raw = np.ascontiguousarray(sig[: cfg.bands * r], dtype="<u4").tobytes()
    out = np.empty(cfg.bands, dtype=np.uint64)
    for b in range(cfg.bands):
        out[b] = xxhash.xxh3_64_intdigest(raw[b * r * 4:(b + 1) * r * 4], seed=b)
    return out


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


def _template_masks(a, b, counts, min_docs):
    """Which shingles of ``a`` and of ``b`` are not the site template (all, without counts)."""
    if counts is None or min_docs <= 0:
        return np.ones(len(a), bool), np.ones(len(b), bool)
    return counts[0] < min_docs, counts[1] < min_docs


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
    keep_a, keep_b = _template_masks(a, b, counts, cfg.template_docs)
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
    keep_a, keep_b = _template_masks(a, b, counts, min_docs)
    return min(plain, exact_containment(a[keep_a], b[keep_b]))


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
