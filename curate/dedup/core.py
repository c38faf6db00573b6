"""One-machine dedup: URL, exact and MinHash LSH near-duplicates, clustered.

Order of the stages, and why:

1. **URL**: documents with the same URL are captures of one page; the newest
   (largest ``created``, then smallest id) is kept, the others point to it.
2. **Exact**: URL survivors with the same normalised text (xxh3-128) form a
   group whose leader is the best by rank key (highest quality, smallest id);
   only leaders go on, so a page copied 10,000 times costs one signature.
3. **Near**: leaders (and reference documents, ``against``) get MinHash
   signatures; band buckets give candidate pairs; each pair is verified on
   the full signature (Jaccard >= threshold, or containment >= containment);
   connected components over verified pairs; the component's smallest rank key
   is its representative.

Every input document gets ``cluster`` (its representative's id) and
``duplicate`` (True unless it is the representative) in ``doc.metadata``:
Document has fixed Parquet columns, and metadata is where per-stage
annotations live, so the shard schema never changes. A document whose
cluster holds a reference document is a duplicate with ``cluster`` = that
reference id and ``duplicate_of_reference`` = True.

>>> from curate.document import Document
>>> docs = [Document(id="a", text="one two three four five six seven"),
...         Document(id="b", text="One two three, four five six seven!"),
...         Document(id="c", text="something else entirely, written independently")]
>>> res = dedup_documents(docs)
>>> [(d.id, d.metadata["cluster"], d.metadata["duplicate"]) for d in res.docs]
[('a', 'a', False), ('b', 'a', True), ('c', 'c', False)]
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import xxhash

from curate.dedup.cluster import UnionFind, quality_of, rank_key
from curate.dedup.minhash import (DedupConfig, band_keys, bucket_pairs, estimate, exact_containment,
                                  is_duplicate, needs_exact, signature)
from curate.dedup.normalize import shingle_hashes, words
from curate.document import Document
from curate.stats import Counters


class DedupError(ValueError):
    """Input that dedup cannot work on (e.g. two documents with one id)."""


def text_key(text: str) -> str:
    """Exact-duplicate key: xxh3-128 of the normalised words.

    >>> text_key("Hello,  world 1") == text_key("hello world 7")
    True
    """
    return xxhash.xxh3_128_hexdigest(" ".join(words(text)))


def newer(a: Document, b: Document) -> Document:
    """The capture to keep of two with one URL: newest ``created``, then smallest id."""
    if a.created != b.created:
        return a if a.created > b.created else b
    return a if a.id < b.id else b


@dataclass
class DedupResult:
    docs: list[Document]                    # every input document, in input order, annotated
    counters: Counters
    pairs: list[tuple[str, str, float, float]] = field(default_factory=list)  # verified (a, b, J, C)
    stats: dict = field(default_factory=dict)


def find_pairs(sigs: np.ndarray, sizes: np.ndarray, cfg: DedupConfig, allowed=None,
               counters: Counters | None = None, shingles=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verified near-duplicate pairs among rows of ``sigs`` (rows in rank-key order).

    Returns (pairs (P, 2) int64 with i < j, Jaccard (P,), containment (P,)).
    ``allowed(i, j)`` (vectorised over arrays) can veto pairs before
    verification (scope rules). ``shingles(i)`` returns row i's sorted shingle
    hashes; pairs that only the containment rule could join are decided on them
    (see :func:`needs_exact`). Memory is O(N * bands) for the band keys: no
    Python object per (document, band), which is what lets 1M documents fit
    in a few GB (datasketch's MinHashLSH keeps a dict entry per band).
    """
    counters = counters if counters is not None else Counters()
    live = np.flatnonzero(sizes > 0)
    if len(live) < 2:
        return np.empty((0, 2), np.int64), np.empty(0), np.empty(0)
    keys = np.vstack([band_keys(sigs[i], cfg) for i in live])  # (L, bands)
    codes = []
    for b in range(cfg.bands):
        col = keys[:, b]
        order = np.argsort(col, kind="stable")  # stable: members stay in rank order
        sk = col[order]
        same = np.flatnonzero(sk[1:] == sk[:-1])
        if not len(same):
            continue
        # runs of equal keys = buckets with >= 2 members
        starts = same[np.r_[True, np.diff(same) > 1]]
        for s in starts:
            e = s + 1
            while e < len(sk) and sk[e] == sk[s]:
                e += 1
            members = np.sort(live[order[s:e]])
            if len(members) > cfg.max_bucket + 1:
                counters.inc("dedup:buckets_capped")
            for i, j in bucket_pairs(members.tolist(), cfg.max_bucket):
                codes.append(i * len(sizes) + j)
    if not codes:
        return np.empty((0, 2), np.int64), np.empty(0), np.empty(0)
    codes = np.unique(np.asarray(codes, dtype=np.int64))
    pi, pj = codes // len(sizes), codes % len(sizes)
    if allowed is not None:
        ok = allowed(pi, pj)
        pi, pj = pi[ok], pj[ok]
    counters.inc("dedup:candidate_pairs", len(pi))
    if not len(pi):
        return np.empty((0, 2), np.int64), np.empty(0), np.empty(0)
    js, cs, keep = [], [], []
    for s in range(0, len(pi), 65536):  # chunks bound the (chunk, num_perm) temporaries
        a, b = pi[s:s + 65536], pj[s:s + 65536]
        j, c = estimate(sigs[a], sigs[b], sizes[a], sizes[b])
        dup = j >= cfg.threshold
        if shingles is not None:
            check = np.flatnonzero(needs_exact(j, c, sizes[a], sizes[b], cfg))
            counters.inc("dedup:exact_containment_checks", len(check))
            for k in check:
                c[k] = exact_containment(shingles(int(a[k])), shingles(int(b[k])))
            dup = dup | is_duplicate(j, c, sizes[a], sizes[b], cfg)
        else:
            dup = is_duplicate(j, c, sizes[a], sizes[b], cfg)
        js.append(j)
        cs.append(c)
        keep.append(dup)
    j, c, keep = np.concatenate(js), np.concatenate(cs), np.concatenate(keep)
    counters.inc("dedup:verified_pairs", int(keep.sum()))
    counters.inc("dedup:rejected_candidates", int((~keep).sum()))
    return np.stack([pi[keep], pj[keep]], axis=1), j[keep], c[keep]


def size_histogram(sizes: Iterable[int]) -> dict[str, int]:
    """Cluster sizes in power-of-two bins: {"1": n, "2": n, "3-4": n, "5-8": n, ...}."""
    hist: Counter = Counter()
    for s in sizes:
        if s <= 2:
            hist[str(s)] += 1
            continue
        lo = 2
        while lo * 2 < s:
            lo *= 2
        hist[f"{lo + 1}-{lo * 2}"] += 1
    return dict(sorted(hist.items(), key=lambda kv: int(kv[0].split("-")[0])))


def dedup_documents(docs: Sequence[Document], config: DedupConfig | None = None,
                    against: Sequence[Document] = (), scope: str = "all",
                    counters: Counters | None = None) -> DedupResult:
    """Annotate every document of ``docs`` with ``cluster`` and ``duplicate``.

    ``against``: reference documents (not returned): an input document that
    near-duplicates one is a duplicate. ``scope="source"`` only pairs
    documents of the same ``source`` (reference documents pair with all).
    """
    cfg = config or DedupConfig()
    counters = counters if counters is not None else Counters()
    t0 = time.perf_counter()
    seen: set[str] = set()
    for d in docs:
        if d.id in seen:
            raise DedupError(f"document id {d.id!r} occurs twice in the input")
        seen.add(d.id)

    # 1. URL: newest capture per URL
    by_url: dict[str, Document] = {}
    for d in docs:
        if d.url:
            cur = by_url.get(d.url)
            by_url[d.url] = d if cur is None else newer(cur, d)
    url_winner = {d.id: (by_url[d.url].id if d.url else d.id) for d in docs}

    # 2. exact: one leader per (scope, normalised text)
    by_id = {d.id: d for d in docs}
    groups: dict[tuple, list[Document]] = defaultdict(list)
    for d in docs:
        if url_winner[d.id] == d.id:
            groups[(d.source if scope == "source" else "", text_key(d.text))].append(d)
    exact_leader: dict[str, str] = {}
    for members in groups.values():
        lead = min(members, key=lambda x: rank_key(x.id, x.metadata.get("quality")))
        for m in members:
            exact_leader[m.id] = lead.id

    # 3. near: leaders + references, in rank-key order so the smallest index of
    # a component is its representative
    nodes = [(rank_key(d.id, d.metadata.get("quality")), d, False)
             for d in docs if exact_leader.get(d.id) == d.id]
    nodes += [(rank_key(r.id, r.metadata.get("quality"), True), r, True) for r in against]
    nodes.sort(key=lambda x: x[0])
    t_sig = time.perf_counter()
    sigs = np.empty((len(nodes), cfg.num_perm), np.uint32)
    sizes = np.empty(len(nodes), np.int64)
    for i, (_, d, _) in enumerate(nodes):
        sigs[i], sizes[i] = signature(d.text, cfg)
    t_sig = time.perf_counter() - t_sig
    is_ref = np.array([ref for _, _, ref in nodes], dtype=bool)
    src = np.array([d.source for _, d, _ in nodes], dtype=object)

    def allowed(i, j):
        ok = ~(is_ref[i] & is_ref[j])  # reference-reference pairs change nothing
        if scope == "source":
            ok &= is_ref[i] | is_ref[j] | (src[i] == src[j])
        return ok

    cache: dict[int, np.ndarray] = {}

    def shingles(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = shingle_hashes(nodes[i][1].text, cfg.ngram)
        return cache[i]

    pairs, pj, pc = find_pairs(sigs, sizes, cfg, allowed, counters, shingles)
    cache.clear()
    uf = UnionFind(len(nodes))
    for i, j in pairs:
        uf.union(int(i), int(j))
    roots = uf.roots()
    node_index = {(d.id, ref): k for k, (_, d, ref) in enumerate(nodes)}

    # 4. annotate: doc -> URL winner -> exact leader -> component representative
    out: list[Document] = []
    reasons: Counter = Counter()
    removed_by_source: Counter = Counter()
    total_by_source: Counter = Counter()
    cluster_members: Counter = Counter()
    for d in docs:
        w = url_winner[d.id]
        lead = exact_leader[w]
        root = int(roots[node_index[(lead, False)]])
        rep_doc, rep_ref = nodes[root][1], nodes[root][2]
        dup = rep_ref or rep_doc.id != d.id
        if not dup:
            reason = ""
        elif w != d.id:
            reason = "url"
        elif lead != d.id:
            reason = "exact"
        elif rep_ref:
            reason = "reference"
        else:
            reason = "near"
        meta = dict(d.metadata)
        meta["cluster"] = rep_doc.id
        meta["duplicate"] = bool(dup)
        if dup:
            meta["duplicate_reason"] = reason
        if rep_ref:
            meta["duplicate_of_reference"] = True
        out.append(Document(d.id, d.text, d.source, d.url, d.created, meta))
        total_by_source[d.source] += 1
        cluster_members[(rep_ref, rep_doc.id)] += 1
        if dup:
            reasons[reason] += 1
            removed_by_source[d.source] += 1
            counters.inc(f"dropped:{reason}_duplicate")
        else:
            counters.inc("kept")
        counters.inc("docs")
    id_of = [d.id for _, d, _ in nodes]
    verified = [(id_of[i], id_of[j], float(a), float(b)) for (i, j), a, b in zip(pairs, pj, pc)]
    elapsed = time.perf_counter() - t0
    stats = {
        "config": cfg.to_dict(),
        "scope": scope,
        "documents": len(docs),
        "references": len(against),
        "kept": counters["kept"],
        "removed": sum(reasons.values()),
        "removed_by_reason": dict(sorted(reasons.items())),
        "pairs": {"candidates": counters["dedup:candidate_pairs"], "verified": len(verified)},
        "cluster_size_histogram": size_histogram(cluster_members.values()),
        "removed_share_by_source": {s: round(removed_by_source[s] / n, 6)
                                    for s, n in sorted(total_by_source.items())},
        "seconds": {"total": round(elapsed, 3), "signatures": round(t_sig, 3)},
    }
    return DedupResult(out, counters, verified, stats)
