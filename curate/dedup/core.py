"""One-machine dedup: URL, exact and MinHash LSH near-duplicates, clustered.

Order of the stages, and why:

1. **URL**: documents with the same URL are captures of one page; the newest
   (largest ``created``, then smallest id) is kept, the others point to it.
2. **Exact**: URL survivors with the same normalised text (xxh3-128) form a
   group whose leader is the best by rank key (highest quality, smallest id);
   only leaders go on, so a page copied 10,000 times costs one signature.
3. **Near**: leaders (and reference documents, ``against``) get MinHash
   signatures; two LSH indexes give candidate pairs, at most
   ``max_candidates`` per page (:mod:`curate.dedup.candidates`: a Jaccard
   index on the full signatures, a containment index on signatures of the
   page's content, its host's and the corpus's common shingles left out, so
   a site template makes no candidates); each pair is verified on
   the full signature (Jaccard >= threshold, or containment >= containment);
   each removed document then points to a kept document it is a verified copy
   of (:func:`curate.dedup.cluster.representatives`: near pairs in rank-key
   order, then containment, larger pages first, so a page is never removed
   for a smaller one it contains). Whole connected components are not
   collapsed: through containment they chain pages that share no text.

Two entry points, one algorithm (:func:`_solve`, on compact numpy arrays):

- :func:`dedup_documents`: a list of Documents in, annotated Documents out
  (tests, small inputs).
- :func:`dedup_files`: the CLI's path, streaming. Pass 1 reads the files and
  keeps per document only its id, created, quality, source code, a 128-bit URL
  hash and a row into the signature store (one uint32 signature per distinct
  normalised text): about 0.8 KB per document instead of the text. Then a
  read of the sampled pages (common shingles), one of every leader (content
  signatures, another 0.5 KB per document; skipped when nothing is common),
  and one of the pages whose pairs need the exact containment check. The last
  read writes every document with its annotation. Peak memory is bounded by the per-document
  state, not by the corpus text (see ``benchmarks/dedup.py --only memory``).

Every input document gets ``cluster`` (its representative's id: the kept
document it copies, or itself) and ``duplicate`` in ``doc.metadata``:
Document has fixed Parquet columns, and metadata is where per-stage
annotations live, so the shard schema never changes. A document whose
cluster holds a reference document is a duplicate with ``cluster`` = that
reference id and ``duplicate_of_reference`` = True.

>>> from curate.core.document import Document
>>> docs = [Document(id="a", text="one two three four five six seven"),
...         Document(id="b", text="One two three, four five six seven!"),
...         Document(id="c", text="something else entirely, written independently")]
>>> res = dedup_documents(docs)
>>> [(d.id, d.metadata["cluster"], d.metadata["duplicate"]) for d in res.docs]
[('a', 'a', False), ('b', 'a', True), ('c', 'c', False)]
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import xxhash

from curate.core.counters import Counters
from curate.core.document import Document, DocumentWriter, read_documents
from curate.core.words import shingle_batch, shingle_positions, word_tokens
from curate.dedup.candidates import (band_pairs, cap_pairs, global_common, host_commons, pair_scores, sample_key,
                                     sample_rows, unique_sorted)
from curate.dedup.cluster import quality_of, representatives
from curate.dedup.config import DedupConfig
from curate.dedup.minhash import estimate, sketch_shingles
from curate.dedup.rules import copy_containment, is_duplicate, needs_exact
from curate.dedup.templates import host_counts, host_key, site_counts, with_common


class DedupError(ValueError):
    """Input that dedup cannot work on (e.g. two documents with one id)."""


def text_key(text: str) -> str:
    """Exact-duplicate key: xxh3-128 of the normalised words.

    >>> text_key("Hello,  world 1") == text_key("hello world 7")
    True
    """
    return xxhash.xxh3_128_hexdigest(b" ".join(word_tokens(text)))


def newer(a: Document, b: Document) -> Document:
    """The capture to keep of two with one URL: newest ``created``, then smallest id."""
    if a.created != b.created:
        return a if a.created > b.created else b
    return a if a.id < b.id else b


@dataclass
class DedupResult:
    docs: list[Document]                    # every input document, in input order, annotated ([] from dedup_files)
    counters: Counters
    pairs: list[tuple[str, str, float, float]] = field(default_factory=list)  # verified (a, b, J, C)
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- compact per-document state

class _Table:
    """What dedup keeps of each document: no text, ~0.8 KB at 128 permutations.

    ``row[i]`` indexes the signature store, which holds one signature per
    distinct normalised text (xxh3-128 of the words, the exact-duplicate key),
    so ``row`` doubles as the exact-duplicate group and an exact copy costs no
    signature.
    """

    def __init__(self, cfg: DedupConfig, sources: dict[str, int], batch: int = 512):
        self.cfg, self.sources, self.batch = cfg, sources, batch
        self.ids: list[str] = []
        self.created: list[str] = []
        self.quality = array("d")
        self.source = array("i")
        self.url = array("Q")                 # xxh3-128 of the URL as (hi, lo) pairs; (0, 0) = no URL
        self.has_url = bytearray()
        self.host = array("Q")                # host_key of the URL (0 = none): site templates
        self.row = array("q")
        self._key_row: dict[bytes, int] = {}
        self._sig_chunks: list[np.ndarray] = []
        self._size_chunks: list[np.ndarray] = []
        self._texts: list[str] = []
        self.seconds_signatures = 0.0

    def add(self, d: Document) -> None:
        self.ids.append(d.id)
        self.created.append(d.created or "")
        self.quality.append(quality_of(d.metadata.get("quality")))
        self.source.append(self.sources.setdefault(d.source, len(self.sources)))
        if d.url:
            h = xxhash.xxh3_128_intdigest(d.url)
            self.url.extend((h >> 64, h & 0xFFFFFFFFFFFFFFFF))
        else:
            self.url.extend((0, 0))
        self.has_url.append(1 if d.url else 0)
        self.host.append(host_key(d.url))
        self._texts.append(d.text)
        if len(self._texts) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if not self._texts:
            return
        t = time.perf_counter()
        toks = [word_tokens(x) for x in self._texts]
        new: list[int] = []
        n_rows = len(self._key_row)
        for k, tk in enumerate(toks):
            key = xxhash.xxh3_128_digest(b" ".join(tk))
            r = self._key_row.get(key)
            if r is None:
                r = self._key_row[key] = n_rows + len(new)
                new.append(k)
            self.row.append(r)
        if new:
            h, n = shingle_batch([toks[k] for k in new], self.cfg.ngram)
            self._sig_chunks.append(sketch_shingles(h, n, self.cfg))
            self._size_chunks.append(n)
        self._texts.clear()
        self.seconds_signatures += time.perf_counter() - t

    def finish(self) -> "_Table":
        self._flush()
        self._key_row.clear()  # the rows are all that is needed from here on
        self.n = len(self.ids)
        self.sizes = (np.concatenate(self._size_chunks) if self._size_chunks else np.empty(0, np.int64))
        self.row_np = np.frombuffer(self.row, dtype=np.int64) if self.n else np.empty(0, np.int64)
        self.q = np.frombuffer(self.quality, dtype=np.float64) if self.n else np.empty(0)
        self.src = np.frombuffer(self.source, dtype=np.int32) if self.n else np.empty(0, np.int32)
        return self

    def take_signatures(self, rows: np.ndarray, out: np.ndarray, at: np.ndarray) -> None:
        """``out[at[k]] = signature of row rows[k]``; frees the store chunk by chunk."""
        lo = 0
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        for c, chunk in enumerate(self._sig_chunks):
            hi = lo + len(chunk)
            a, b = np.searchsorted(srt, [lo, hi])
            sel = order[a:b]
            out[at[sel]] = chunk[rows[sel] - lo]
            self._sig_chunks[c] = None  # type: ignore[call-overload]  # peak: the output + one chunk
            lo = hi
        self._sig_chunks = []


def _id_ranks(ids: list[str], what: str, check: bool) -> np.ndarray:
    order = sorted(range(len(ids)), key=ids.__getitem__)
    if check:
        for a, b in zip(order, order[1:]):
            if ids[a] == ids[b]:
                raise DedupError(f"document id {ids[a]!r} occurs twice in the {what}")
    rank = np.empty(len(ids), np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(ids), dtype=np.int64)
    return rank


_unique_sorted = unique_sorted


def find_pairs(sigs: np.ndarray, sizes: np.ndarray, cfg: DedupConfig, allowed=None,
               counters: Counters | None = None, shingles=None,
               hosts: np.ndarray | None = None,
               content: tuple[np.ndarray, np.ndarray] | None = None,
               common: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verified near-duplicate pairs among rows of ``sigs`` (rows in rank-key order).

    Returns (pairs (P, 2) int64 with i < j, Jaccard (P,), containment (P,)).
    ``allowed(i, j)`` (vectorised over arrays) can veto pairs before
    verification (scope rules). ``shingles(rows)`` returns {row:
    :func:`curate.core.words.shingle_positions`} for an array of rows;
    pairs that only the containment rule could join are decided on them (see
    :func:`needs_exact` and :func:`curate.dedup.minhash.copy_containment`), and
    it is called once, for just the rows in such pairs; with ``hosts`` (a host
    key per row), a pair's containment leaves out its site template (shingles
    held by ``template_docs`` checked rows of the pair's host or hosts). Candidates:
    :mod:`curate.dedup.candidates` (the Jaccard index on ``sigs``, the containment
    index on ``content`` = (content signatures, content sizes), the per-row cap);
    ``common`` ({host: its common shingles}) counts as site template in the checks.
    Memory is O(N) per band plus the candidate
    pairs: no Python object per (document, band), which is what lets 1M
    documents fit in a few GB (datasketch's MinHashLSH keeps a dict entry per band).
    """
    counters = counters if counters is not None else Counters()
    n = len(sizes)
    empty = (np.empty((0, 2), np.int64), np.empty(0), np.empty(0))
    if len(sizes) < 2:
        return empty
    if content is None:   # no content signatures given: the full ones stand in for them
        content = (sigs, sizes)
    csigs, csizes = content
    jb, jr = cfg.jaccard_index()
    codes = band_pairs(sigs, np.flatnonzero(sizes > 0), jb, jr, n, cfg.max_bucket, counters)
    codes = unique_sorted(np.concatenate([codes, band_pairs(csigs, np.flatnonzero(csizes > 0), cfg.bands, cfg.rows,
                                                            n, cfg.max_bucket, counters)]))
    if not len(codes):
        return empty
    pi, pj = codes // n, codes % n
    del codes
    if allowed is not None:
        ok = allowed(pi, pj)
        pi, pj = pi[ok], pj[ok]
    if cfg.max_candidates > 0 and len(pi):
        jc = np.empty(len(pi))
        jf = np.empty(len(pi))
        for s in range(0, len(pi), 65536):
            a, b = pi[s:s + 65536], pj[s:s + 65536]
            jc[s:s + 65536], jf[s:s + 65536] = pair_scores(sigs[a], sigs[b], csigs[a], csigs[b], csizes[a], csizes[b])
        keep = cap_pairs(pi, pj, jc, jf, cfg.max_candidates, counters)
        pi, pj = pi[keep], pj[keep]
        del jc, jf
    counters.inc("dedup:candidate_pairs", len(pi))
    if not len(pi):
        return empty
    js, cs, dups, checks = [], [], [], []
    for s in range(0, len(pi), 65536):  # chunks bound the (chunk, num_perm) temporaries
        a, b = pi[s:s + 65536], pj[s:s + 65536]
        j, c = estimate(sigs[a], sigs[b], sizes[a], sizes[b])
        js.append(j)
        cs.append(c)
        if shingles is not None:
            chk = np.flatnonzero(needs_exact(j, c, sizes[a], sizes[b], cfg))
            counters.inc("dedup:exact_containment_checks", len(chk))
            checks.append(chk + s)
        else:
            dups.append(is_duplicate(j, c, sizes[a], sizes[b], cfg))
    j, c = np.concatenate(js), np.concatenate(cs)
    if shingles is not None:
        chk = np.concatenate(checks)
        if len(chk):
            shingled = shingles(_unique_sorted(np.concatenate([pi[chk], pj[chk]])))
            sets = {k: v[0] for k, v in shingled.items()}
            first = {k: v[1] for k, v in shingled.items()}
            del shingled
            counts = {}
            if hosts is not None and cfg.template_docs:
                host_of = {k: int(hosts[k]) for k in sets}
                counts = host_counts(sets, host_of, cfg.template_pages)
                counters.inc("dedup:template_hosts", len(counts))
                if cfg.template_pages > 0:
                    pages = Counter(h for h in host_of.values() if h)
                    counters.inc("dedup:template_hosts_sampled", sum(n > cfg.template_pages for n in pages.values()))

            def contained(x: int, y: int) -> float:
                site = (site_counts(sets[x], sets[y], int(hosts[x]), int(hosts[y]), counts)
                        if counts else None)
                if common and cfg.template_docs:
                    site = with_common(sets[x], sets[y], int(hosts[x]), int(hosts[y]), site, common,
                                       cfg.template_docs)
                same = hosts is not None and int(hosts[x]) != 0 and int(hosts[x]) == int(hosts[y])
                return copy_containment(sets[x], first[x], sets[y], first[y], site, cfg, same)

            c[chk] = [contained(int(x), int(y)) for x, y in zip(pi[chk], pj[chk])]
            del sets, first
        keep = (j >= cfg.threshold) | is_duplicate(j, c, sizes[pi], sizes[pj], cfg)
    else:
        keep = np.concatenate(dups)
    counters.inc("dedup:verified_pairs", int(keep.sum()))
    counters.inc("dedup:rejected_candidates", int((~keep).sum()))
    return np.stack([pi[keep], pj[keep]], axis=1), j[keep], c[keep]


def size_bin(size: int) -> str:
    """The histogram bin of one cluster size: "1", "2", "3-4", "5-8", ...

    >>> [size_bin(s) for s in (1, 2, 3, 4, 5, 9)]
    ['1', '2', '3-4', '3-4', '5-8', '9-16']
    """
    if size <= 2:
        return str(size)
    lo = 2
    while lo * 2 < size:
        lo *= 2
    return f"{lo + 1}-{lo * 2}"


def sorted_bins(hist: dict[str, int]) -> dict[str, int]:
    return dict(sorted(hist.items(), key=lambda kv: int(kv[0].split("-")[0])))


def size_histogram(sizes: Iterable[int]) -> dict[str, int]:
    """Cluster sizes in power-of-two bins: {"1": n, "2": n, "3-4": n, "5-8": n, ...}."""
    return sorted_bins(Counter(size_bin(s) for s in sizes))


# --------------------------------------------------------------------------- the algorithm on the tables

# Why a document is a duplicate, stages in the order they remove documents: one
# that several stages would remove gets the first (an older capture of a URL
# that is also an exact copy is a "url" duplicate). A reason code is an index
# here, 0 (kept) being "". Both dedup paths take reasons from reason_codes.
_REASONS = ("", "url", "exact", "reference", "near")


def reason_codes(removed, url, exact, reference):
    """Reason codes (indices into ``_REASONS``): 0 when not ``removed``, else the first
    stage of ``_REASONS`` that applies (``near`` when none of the others does).

    ``url``: the document is not its URL's newest capture; ``exact``: not its
    exact group's leader; ``reference``: its representative is a reference
    document. Vectorised (one document per element), or on plain booleans.

    >>> reason_codes(np.array([False, True, True, True]), np.array([True, False, True, False]),
    ...              np.array([False, True, True, False]), np.array([False, True, False, False])).tolist()
    [0, 2, 1, 4]
    """
    removed = np.asarray(removed, bool)
    applies = {"url": url, "exact": exact, "reference": reference, "near": True}
    return np.select([removed & np.asarray(applies[r], bool) for r in _REASONS[1:]], range(1, len(_REASONS)), 0)


def duplicate_reason(removed: bool, url: bool, exact: bool, reference: bool) -> str:
    """One document's ``duplicate_reason`` ("" when kept), as :func:`reason_codes` decides.

    >>> duplicate_reason(True, url=False, exact=True, reference=True), duplicate_reason(False, True, True, True)
    ('exact', '')
    """
    return _REASONS[int(reason_codes(removed, url, exact, reference))]


def annotate_duplicate(d: Document, cluster: str, reason: str, of_reference: bool) -> Document:
    """``d`` with its dedup annotation in ``metadata``: ``cluster`` (its representative's
    id), ``duplicate``, and ``duplicate_reason`` / ``duplicate_of_reference`` where they apply.

    >>> annotate_duplicate(Document(id="b", text="x"), "a", "near", False).metadata
    {'cluster': 'a', 'duplicate': True, 'duplicate_reason': 'near'}
    """
    meta = dict(d.metadata)
    meta["cluster"] = cluster
    meta["duplicate"] = bool(reason)
    if reason:
        meta["duplicate_reason"] = reason
    if of_reference:
        meta["duplicate_of_reference"] = True
    return Document(d.id, d.text, d.source, d.url, d.created, meta)


@dataclass
class _Solution:
    root_id: list[str]          # per node: its representative's id
    root_ref: np.ndarray        # per node: representative is a reference (bool)
    doc_root: np.ndarray        # per document: its representative node
    reason: np.ndarray          # per document: index into _REASONS (0 = kept)
    pairs: list[tuple[str, str, float, float]]
    stats: dict


def _url_winners(dt: _Table, id_rank: np.ndarray) -> np.ndarray:
    """Stage 1, per document: the capture of its URL that is kept, the newest
    (then the smallest id); a document without a URL is its own winner."""
    winner = np.arange(dt.n, dtype=np.int64)
    with_url = np.flatnonzero(np.frombuffer(bytes(dt.has_url), dtype=np.uint8)) if dt.n else np.empty(0, np.int64)
    if not len(with_url):
        return winner
    url_hash = np.frombuffer(dt.url, dtype=np.uint64).reshape(-1, 2)[with_url]  # (D, 2): 128-bit hashes
    order = np.lexsort((url_hash[:, 1], url_hash[:, 0]))
    by_url = url_hash[order]
    next_url = np.flatnonzero((by_url[1:] != by_url[:-1]).any(axis=1)) + 1
    for same_url in np.split(order, next_url):
        if len(same_url) > 1:
            captures = with_url[same_url].tolist()
            winner[captures] = max(captures, key=lambda i: (dt.created[i], -id_rank[i]))
    return winner


def _exact_leaders(dt: _Table, url_winner: np.ndarray, id_rank: np.ndarray,
                   scope: str) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2: URL winners with one normalised text (and one source, with
    ``scope="source"``) form a group, led by its best by rank key (-quality, id).

    Returns (per document: its group's leader, -1 for one that lost on URL;
    the leaders, in rank-key order).
    """
    n = dt.n
    winners = np.flatnonzero(url_winner == np.arange(n))
    group_src = dt.src[winners] if scope == "source" else np.zeros(len(winners), np.int32)
    order = np.lexsort((id_rank[winners], -dt.q[winners], dt.row_np[winners], group_src))
    grouped = winners[order]  # by (source, text), each group's leader first
    text_row, src = dt.row_np[grouped], group_src[order]
    starts = np.r_[True, (text_row[1:] != text_row[:-1]) | (src[1:] != src[:-1])] if len(order) else np.empty(0, bool)
    leader = np.full(n, -1, np.int64)
    leader[grouped] = grouped[np.flatnonzero(starts)[np.cumsum(starts) - 1]] if len(order) else np.empty(0, np.int64)
    leaders = grouped[starts] if len(order) else np.empty(0, np.int64)
    return leader, leaders[np.lexsort((id_rank[leaders], -dt.q[leaders]))]


@dataclass
class _Nodes:
    """What stage 3 (near) clusters: the reference documents, then the exact
    groups' leaders, each in rank-key order (-quality, id), so that the
    smallest node index of a component is its representative."""

    refs: np.ndarray     # node k < n_refs is row refs[k] of the reference table
    leaders: np.ndarray  # node n_refs + k is document leaders[k]
    is_ref: np.ndarray   # per node (bool)
    sizes: np.ndarray    # per node: its distinct shingles
    src: np.ndarray      # per node: its source code
    hosts: np.ndarray    # per node: host key of its URL (0 = none), for site templates

    @property
    def n_refs(self) -> int:
        return len(self.refs)

    def __len__(self) -> int:
        return len(self.is_ref)

    def ids(self, dt: _Table, rt: _Table) -> list[str]:
        """Per node, its document's id."""
        return [rt.ids[i] for i in self.refs.tolist()] + [dt.ids[i] for i in self.leaders.tolist()]


def _near_nodes(dt: _Table, rt: _Table, leaders: np.ndarray) -> _Nodes:
    """The nodes of stage 3 for these leaders and every reference document."""
    refs = np.lexsort((_id_ranks(rt.ids, "references", check=False), -rt.q)) if rt.n else np.empty(0, np.int64)
    n_refs, n_leaders = len(refs), len(leaders)
    return _Nodes(
        refs, leaders,
        is_ref=np.r_[np.ones(n_refs, bool), np.zeros(n_leaders, bool)],
        sizes=np.concatenate([rt.sizes[rt.row_np[refs]] if n_refs else np.empty(0, np.int64),
                              dt.sizes[dt.row_np[leaders]] if n_leaders else np.empty(0, np.int64)]),
        src=np.concatenate([rt.src[refs] if n_refs else np.empty(0, np.int32), dt.src[leaders]]),
        hosts=np.concatenate([np.asarray(rt.host, np.uint64)[refs] if n_refs else np.empty(0, np.uint64),
                              np.asarray(dt.host, np.uint64)[leaders] if n_leaders else np.empty(0, np.uint64)]),
    )


# (is_ref, index in its table, text) for the wanted documents (bool masks over the doc and
# reference tables), in the order the input yields them
TextsOf = Callable[[np.ndarray, np.ndarray], Iterator[tuple[bool, int, str]]]


def _node_texts(nodes: _Nodes, dt: _Table, rt: _Table, which: np.ndarray,
                texts_of: TextsOf) -> Iterator[tuple[int, str]]:
    """(node, text) for the nodes ``which``, in input order (one read of the input)."""
    n_refs = nodes.n_refs
    want_d, want_r = np.zeros(dt.n, bool), np.zeros(rt.n, bool)
    node_of_doc, node_of_ref = np.full(dt.n, -1, np.int64), np.full(rt.n, -1, np.int64)
    node_of_doc[nodes.leaders] = n_refs + np.arange(len(nodes.leaders))
    node_of_ref[nodes.refs] = np.arange(n_refs)
    which = np.asarray(which, np.int64)
    d, r = which[which >= n_refs], which[which < n_refs]
    want_d[nodes.leaders[d - n_refs]] = True
    want_r[nodes.refs[r]] = True
    for is_ref, k, text in texts_of(want_d, want_r):
        yield int(node_of_ref[k] if is_ref else node_of_doc[k]), text


def _drop_common(h: np.ndarray, k: np.ndarray, hosts: np.ndarray, common: dict,
                 glob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`curate.dedup.candidates.content_shingles` of a batch at once: ``h``/``k`` as
    :func:`shingle_batch` gives them, ``hosts`` per document; (kept hashes, new sizes)."""
    keep = np.ones(len(h), bool)
    if len(glob):
        keep &= ~np.isin(h, glob)
    ids: dict[int, int] = {}
    for host in hosts.tolist():
        if host in common and host not in ids:
            ids[host] = len(ids)
    if ids:
        # one sorted key array (host id << 32 | shingle) for the batch's hosts, one searchsorted
        ck = np.sort(np.concatenate([(np.uint64(j) << np.uint64(32)) | common[host].astype(np.uint64)
                                     for host, j in ids.items()]))
        jd = np.repeat(np.array([ids.get(host, -1) for host in hosts.tolist()], np.int64), k)
        m = np.flatnonzero(jd >= 0)
        q = (jd[m].astype(np.uint64) << np.uint64(32)) | h[m].astype(np.uint64)
        at = np.minimum(np.searchsorted(ck, q), len(ck) - 1)
        keep[m[ck[at] == q]] = False
    doc = np.repeat(np.arange(len(k)), k)
    return h[keep], np.bincount(doc[keep], minlength=len(k)).astype(np.int64)


def content_signatures(node_texts: Iterator[tuple[int, str]], n: int, hosts: np.ndarray, common: dict,
                       glob: np.ndarray, cfg: DedupConfig, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Signatures (n, num_perm) and sizes (n,) of each node's content shingles: its shingles less
    its host's ``common`` ones and the corpus's ``glob`` (:mod:`curate.dedup.candidates`)."""
    sigs = np.full((n, cfg.num_perm), 0xFFFFFFFF, np.uint32)
    sizes = np.zeros(n, np.int64)
    hosts = np.asarray(hosts, np.uint64)
    for rows, h, k in _shingled_batches(node_texts, cfg.ngram, batch):
        kept, sz = _drop_common(h, k, hosts[rows], common, glob)
        sigs[rows] = sketch_shingles(kept, sz, cfg)
        sizes[rows] = sz
    return sigs, sizes


def _shingled_batches(node_texts: Iterator[tuple[int, str]], ngram: int,
                      batch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(nodes, shingle hashes, shingles per node) for ``batch`` (node, text) pairs at a time:
    shingle_batch's vectorised hashing, with no more than a batch of texts held."""
    buf: list[tuple[int, str]] = []
    for item in node_texts:
        buf.append(item)
        if len(buf) >= batch:
            yield _shingle_buffer(buf, ngram)
            buf = []
    if buf:
        yield _shingle_buffer(buf, ngram)


def _shingle_buffer(buf: list[tuple[int, str]], ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, k = shingle_batch([word_tokens(t) for _, t in buf], ngram)
    return np.fromiter((node for node, _ in buf), np.int64, len(buf)), h, k


def common_shingles(node_texts: Iterator[tuple[int, str]], hosts: np.ndarray, in_host: np.ndarray,
                    in_glob: np.ndarray, cfg: DedupConfig, batch: int = 512) -> tuple[dict, dict, np.ndarray]:
    """({host: its common shingles}, {host: its template for the checks}, the corpus's common
    shingles) from the sampled nodes' texts (``common_docs`` / ``check_common_docs`` pages)."""
    by_host: dict[int, list] = {}
    glob: list = []
    for nodes, h, k in _shingled_batches(node_texts, cfg.ngram, batch):
        for node, arr in zip(nodes.tolist(), np.split(h, np.cumsum(k)[:-1])):
            if in_host[node]:
                by_host.setdefault(int(hosts[node]), []).append(arr)
            if in_glob[node]:
                glob.append(arr)
    common, check = {}, {}
    for host in list(by_host):
        c, t = host_commons(by_host.pop(host), cfg)
        if len(c):
            common[host] = c
        if len(t):
            check[host] = t
    return common, check, global_common(glob, cfg)


def _near_pairs(dt: _Table, rt: _Table, nodes: _Nodes, cfg: DedupConfig, scope: str, counters: Counters,
                texts_of: TextsOf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`find_pairs` over the nodes: (pairs (P, 2) of node indices, Jaccard, containment).

    Reads the input for the sampled pages (common shingles), then, if any
    shingle is common, for every node (content signatures), then for the pages
    of the exact containment checks. The signatures are moved out of the
    tables' stores here and dropped on return, before clustering.
    """
    refs, leaders, n_refs, is_ref, src = nodes.refs, nodes.leaders, nodes.n_refs, nodes.is_ref, nodes.src
    sigs = np.empty((len(nodes), cfg.num_perm), np.uint32)
    rt.take_signatures(rt.row_np[refs], sigs, np.arange(n_refs))
    dt.take_signatures(dt.row_np[leaders], sigs, n_refs + np.arange(len(leaders)))

    ids = nodes.ids(dt, rt)
    keys = np.fromiter(map(sample_key, ids), np.uint64, len(ids))
    del ids
    host_rows, glob_rows = sample_rows(keys, nodes.hosts, cfg)
    in_host, in_glob = np.zeros(len(nodes), bool), np.zeros(len(nodes), bool)
    in_host[host_rows], in_glob[glob_rows] = True, True
    sampled = np.flatnonzero(in_host | in_glob)
    common, check, glob = common_shingles(_node_texts(nodes, dt, rt, sampled, texts_of), nodes.hosts, in_host, in_glob, cfg)
    if common:
        counters.inc("dedup:common_hosts", len(common))
    if len(glob):
        counters.inc("dedup:global_common_shingles", len(glob))
    if common or len(glob):
        content = content_signatures(_node_texts(nodes, dt, rt, np.arange(len(nodes)), texts_of), len(nodes),
                                     nodes.hosts, common, glob, cfg)
    else:  # nothing is common: the content signatures are the full ones
        content = (sigs, nodes.sizes)
    del glob, common

    def allowed(i, j):
        ok = ~(is_ref[i] & is_ref[j])  # reference-reference pairs change nothing
        if scope == "source":
            ok &= is_ref[i] | is_ref[j] | (src[i] == src[j])
        return ok

    def shingles(ks: np.ndarray) -> dict:
        return {node: shingle_positions(text, cfg.ngram) for node, text in _node_texts(nodes, dt, rt, ks, texts_of)}

    return find_pairs(sigs, nodes.sizes, cfg, allowed, counters, shingles, nodes.hosts, content, check)


def _node_representatives(nodes: _Nodes, pairs: np.ndarray, jaccard: np.ndarray, cfg: DedupConfig) -> np.ndarray:
    """Per node, the node it is kept as: itself, or the kept node it is a
    verified copy of (see :func:`curate.dedup.cluster.representatives`: near
    pairs by Jaccard, the rest by containment). References are never removed."""
    sizes, n_refs = nodes.sizes, nodes.n_refs
    near = (jaccard >= cfg.threshold).tolist()
    parent = representatives(
        ((i, j, is_near, int(sizes[i]), int(sizes[j])) for (i, j), is_near in zip(pairs.tolist(), near)),
        fixed=lambda x: x < n_refs)
    rep = np.arange(len(nodes), dtype=np.int64)
    if parent:
        rep[np.fromiter(parent.keys(), np.int64)] = np.fromiter(parent.values(), np.int64)
    return rep


def _count_decisions(counters: Counters, counts: np.ndarray, n: int) -> None:
    """``dropped:<reason>_duplicate``, ``kept`` and ``docs`` from per-reason counts."""
    for k in (1, 2, 3, 4):
        if counts[k]:
            counters.inc(f"dropped:{_REASONS[k]}_duplicate", int(counts[k]))
    if counts[0]:
        counters.inc("kept", int(counts[0]))
    if n:
        counters.inc("docs", n)


def _stats(dt: _Table, n_refs: int, cfg: DedupConfig, scope: str, counters: Counters, counts: np.ndarray,
           doc_root: np.ndarray, removed: np.ndarray, verified: int) -> dict:
    """The run's stats: ``counts`` per reason, clusters from ``doc_root``, ``removed`` per source."""
    n = dt.n
    names = sorted(dt.sources, key=dt.sources.get)
    by_src_total = np.bincount(dt.src, minlength=len(names)) if n else np.zeros(len(names), np.int64)
    by_src_removed = np.bincount(dt.src[removed], minlength=len(names)) if n else np.zeros(len(names), np.int64)
    _, members = np.unique(doc_root, return_counts=True) if n else (None, [])
    return {
        "config": cfg.to_dict(),
        "scope": scope,
        "documents": n,
        "references": n_refs,
        "kept": int(counts[0]),
        "removed": int(counts[1:].sum()),
        "removed_by_reason": {_REASONS[k]: int(counts[k]) for k in sorted((1, 2, 3, 4), key=lambda k: _REASONS[k])
                              if counts[k]},
        "pairs": {"candidates": counters["dedup:candidate_pairs"], "verified": verified},
        "cluster_size_histogram": size_histogram(np.asarray(members).tolist()),
        "removed_share_by_source": {s: round(int(by_src_removed[c]) / int(by_src_total[c]), 6)
                                    for s, c in sorted(dt.sources.items()) if c < len(by_src_total)
                                    and by_src_total[c]},
    }


def _solve(dt: _Table, rt: _Table, cfg: DedupConfig, scope: str, counters: Counters,
           texts_of: TextsOf) -> _Solution:
    """URL, exact and near stages on compact tables (see the module docstring).

    ``texts_of(doc_mask, ref_mask)`` -> (is_ref, index, text) of the wanted documents.
    """
    n = dt.n
    id_rank = _id_ranks(dt.ids, "input", check=True)
    url_winner = _url_winners(dt, id_rank)
    exact_leader, leaders = _exact_leaders(dt, url_winner, id_rank, scope)
    nodes = _near_nodes(dt, rt, leaders)
    pairs, jaccard, containment = _near_pairs(dt, rt, nodes, cfg, scope, counters, texts_of)
    node_rep = _node_representatives(nodes, pairs, jaccard, cfg)

    # per document: doc -> URL winner -> exact leader -> its node -> the node's representative
    node_of_leader = np.full(n, -1, np.int64)
    node_of_leader[leaders] = nodes.n_refs + np.arange(len(leaders))
    group_leader = exact_leader[url_winner]
    doc_root = node_rep[node_of_leader[group_leader]] if n else np.empty(0, np.int64)
    node_doc = np.r_[np.full(nodes.n_refs, -1, np.int64), leaders]
    of_reference = doc_root < nodes.n_refs
    me = np.arange(n)
    removed = of_reference | (node_doc[doc_root] != me)
    reason = reason_codes(removed, url_winner != me, group_leader != me, of_reference)
    counts = np.bincount(reason, minlength=len(_REASONS))
    _count_decisions(counters, counts, n)

    node_id = nodes.ids(dt, rt)
    verified = [(node_id[i], node_id[j], float(a), float(b))
                for (i, j), a, b in zip(pairs.tolist(), jaccard, containment)]
    stats = _stats(dt, rt.n, cfg, scope, counters, counts, doc_root, removed, len(verified))
    return _Solution(node_id, nodes.is_ref, doc_root, reason, verified, stats)


def _annotate(d: Document, k: int, sol: _Solution) -> Document:
    root = int(sol.doc_root[k])
    return annotate_duplicate(d, sol.root_id[root], _REASONS[sol.reason[k]], bool(sol.root_ref[root]))


# --------------------------------------------------------------------------- entry points

def dedup_documents(docs: Sequence[Document], config: DedupConfig | None = None,
                    against: Sequence[Document] = (), scope: str = "all",
                    counters: Counters | None = None) -> DedupResult:
    """Annotate every document of ``docs`` with ``cluster`` and ``duplicate``.

    ``against``: reference documents (not returned): an input document that
    near-duplicates one is a duplicate. ``scope="source"`` only pairs
    documents of the same ``source`` (reference documents pair with all).
    For inputs that do not fit in memory use :func:`dedup_files`.
    """
    cfg = config or DedupConfig()
    counters = counters if counters is not None else Counters()
    t0 = time.perf_counter()
    sources: dict[str, int] = {}
    dt, rt = _Table(cfg, sources), _Table(cfg, sources)
    for d in docs:
        dt.add(d)
    for r in against:
        rt.add(r)
    dt.finish(), rt.finish()

    def texts_of(want_d, want_r):
        for k in np.flatnonzero(want_d).tolist():
            yield False, k, docs[k].text
        for k in np.flatnonzero(want_r).tolist():
            yield True, k, against[k].text

    sol = _solve(dt, rt, cfg, scope, counters, texts_of)
    out = [_annotate(d, k, sol) for k, d in enumerate(docs)]
    sol.stats["seconds"] = {"total": round(time.perf_counter() - t0, 3),
                            "signatures": round(dt.seconds_signatures + rt.seconds_signatures, 3)}
    return DedupResult(out, counters, sol.pairs, sol.stats)


def _stream(paths: Sequence, errors: list | None) -> Iterator[Document]:
    for p in paths:
        yield from read_documents(p, errors=errors if errors is not None else [])


def dedup_files(inputs: Sequence, output, config: DedupConfig | None = None, against: Sequence = (),
                scope: str = "all", kept=None, counters: Counters | None = None,
                errors: list | None = None, progress: Callable[[str], None] | None = None) -> DedupResult:
    """Dedup document files without holding their text: the streaming path of ``curate dedup``.

    Reads ``inputs`` (and ``against``) once to build the compact state, once
    more only if some pairs need the exact containment check (keeping the
    shingles of just those documents), and once to write every document,
    annotated, to ``output`` (and the non-duplicates to ``kept``). Bad lines go
    to ``errors`` (first read only). The returned result has ``docs=[]``;
    clusters, pairs and stats are those :func:`dedup_documents` gives for the
    same documents. Raises :class:`DedupError` if a file changes between reads.

    >>> import tempfile, os
    >>> from curate.core.document import write_documents
    >>> tmp = tempfile.mkdtemp(); src = os.path.join(tmp, "in.jsonl")
    >>> _ = write_documents(src, [Document(id="a", text="one two three four five six"),
    ...                           Document(id="b", text="One two three four five six!")])
    >>> dedup_files([src], os.path.join(tmp, "out.jsonl")).stats["removed_by_reason"]
    {'exact': 1}
    """
    cfg = config or DedupConfig()
    counters = counters if counters is not None else Counters()
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    sources: dict[str, int] = {}
    dt, rt = _Table(cfg, sources), _Table(cfg, sources)
    for k, d in enumerate(_stream(inputs, errors), 1):
        dt.add(d)
        if k % 100_000 == 0:
            say(f"dedup: read {k:,} documents ({k / (time.perf_counter() - t0):,.0f}/s)")
    for r in _stream(against, errors):
        rt.add(r)
    dt.finish(), rt.finish()
    say(f"dedup: {dt.n:,} documents, {rt.n:,} references read; clustering")

    def texts_of(want_d, want_r):
        say(f"dedup: re-reading {int(want_d.sum()) + int(want_r.sum()):,} documents")
        for is_ref, paths, want in ((False, inputs, want_d), (True, against, want_r)):
            if not want.any():
                continue
            for k, d in enumerate(_stream(paths, None)):
                if k < len(want) and want[k]:
                    yield is_ref, k, d.text

    sol = _solve(dt, rt, cfg, scope, counters, texts_of)
    say("dedup: writing")
    ids = dt.ids
    written = 0
    with DocumentWriter(output) as w, (DocumentWriter(kept) if kept else _NoWriter()) as kw:
        for k, d in enumerate(_stream(inputs, None)):
            if k >= len(ids) or d.id != ids[k]:
                raise DedupError(f"{', '.join(map(str, inputs))}: changed while dedup was reading it "
                                 f"(document {k} is {d.id!r}, was {ids[k] if k < len(ids) else 'absent'!r})")
            a = _annotate(d, k, sol)
            w.write(a)
            if not a.metadata["duplicate"]:
                kw.write(a)
            written += 1
        if written != len(ids):
            raise DedupError(f"{', '.join(map(str, inputs))}: changed while dedup was reading it "
                             f"({written} documents on the last read, {len(ids)} on the first)")
    sol.stats["seconds"] = {"total": round(time.perf_counter() - t0, 3),
                            "signatures": round(dt.seconds_signatures + rt.seconds_signatures, 3)}
    return DedupResult([], counters, sol.pairs, sol.stats)


class _NoWriter:
    def write(self, doc: Document) -> None:
        pass

    def __enter__(self) -> "_NoWriter":
        return self

    def __exit__(self, *exc) -> None:
        pass
