"""The dedup job on Beam: same stages and same clusters as ``curate dedup``, at scale.

    python -m pipelines.dedup --input 'out/sample/filter/docs/*.parquet' --out out/sample/dedup
    python -m pipelines.dedup --input docs.parquet --against webtext.parquet --runner DataflowRunner ...

Stages (named PTransforms of thin steps over ``curate.dedup`` functions)::

    Read -> UrlStage:        documents by URL -> the newest capture (curate.dedup.core.newer)
         -> ExactStage:      URL winners by normalised text -> the leader, best by rank key
         -> NearPairs:       Candidates (curate.dedup.candidates): common shingles per host and
                             globally, from samples picked by bounded combiners (Top per host /
                             globally) -> side inputs; signatures, full and content (batched per
                             bundle) -> band buckets of the Jaccard index and the containment
                             index -> pairs per bucket (bucket_pairs) -> each page's
                             max_candidates best (a bounded combiner per page) -> estimate;
                             Verification of the pairs only containment could join: both pages'
                             shingles, their hosts' site templates, the opening (copy_containment)
         -> Components:      R x StarRound (large-star, then small-star), each a GroupByKey
         -> Representatives: edges by component -> curate.dedup.cluster.representatives
         -> Routes:          document -> URL winner -> exact leader -> representative node
         -> Annotate:        curate.dedup.core.duplicate_reason and annotate_duplicate
         -> ByShard, Write:  every document (metadata.cluster, metadata.duplicate), the kept ones
    ClusterSizes and the shards' summaries -> the driver -> stats.json

Every join is a :func:`Lookup`: ``(key, item)`` pairs against a table of one
value per key, one CoGroupByKey.

No step holds the graph: buckets, star neighbourhoods and joins are per key.
Memory is bounded by the settings, not by the largest host: no step groups a
host's pages (its template comes from a sample of ``common_pages`` pages, kept
by a combiner), a page has at most ``max_candidates`` of its own candidates,
and the joins of the checks with their pages and their hosts' template counts
are split (:func:`SplitLookup`, ``--group-chunk``) so that no group holds all
checks of a host or of a much-copied page. A component's edge list is still
gathered on one worker (edges, 5 numbers each; with the cap, a site's template
no longer makes one large component). A URL's newest capture and an exact
text's leader are picked by combiners, and the documents join them in split
groups, so no group holds all captures of a URL or all copies of a text. Not
yet split: one band bucket's members (bounded in practice by the content
index, not by a setting).
The one-machine path (``curate.dedup.dedup_documents``) runs the same rules
with numpy and the same representatives function; ``tests/dedup/test_dedup.py``
checks both give the same clusters. Star rounds are unrolled (``--rounds``, default 8: each round at
least halves the longest path in practice); a final check counts nodes that
are still not attached to their component's root and the job exits 1 if any,
asking for more rounds, so that nothing takes its clusters as good.

Every join counts its items in and out, and the documents read are counted
against those written; the driver exits 1 when they differ (:func:`_lost`), as
Beam 2.77's DirectRunner with several processes was seen to drop elements of
large shuffles without an error (README, known issue).

Nodes are rank keys (``curate.dedup.cluster.rank_key``: reference flag,
-quality, id), so ordering nodes orders documents as on one machine.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
import sys
from typing import Any, Callable, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from curate.core.document import Document
from curate.core.words import shingle_hashes, shingle_positions
from curate.dedup.candidates import global_common, host_common, pair_scores, sample_key
from curate.dedup.cluster import large_star, rank_key, representatives, small_star
from curate.dedup.config import RULE_OPTIONS, DedupConfig, add_dedup_arguments, config_from_args
from curate.dedup.core import (annotate_duplicate, content_signatures, duplicate_reason, newer, size_bin,
                               sorted_bins, text_key)
from curate.dedup.minhash import band_keys, bucket_pairs, estimate, signatures
from curate.dedup.rules import copy_containment, is_duplicate, needs_exact
from curate.dedup.templates import host_key, set_key, shingle_counts, site_counts, with_common
from pipelines.common import (ByShard, ReadDocsFn, add_runner_args, auto_shards, counter_totals, job_parser,
                              make_pipeline, metric, put_documents, run_main, say_error, say_lost, shard_name, job_lock)
from pipelines.fileio import expand, get, join, put, put_json

# --------------------------------------------------------------------------- elements

def is_reference(node: tuple) -> bool:
    reference_flag, _, _ = node
    return reference_flag == 0


def node_id(node: tuple) -> str:
    _, _, doc_id = node
    return doc_id


def document_node(doc: Document, reference: bool = False) -> tuple:
    return rank_key(doc.id, doc.metadata.get("quality"), reference)


def _reference_node(doc: Document) -> tuple[tuple, Document]:
    return document_node(doc, reference=True), doc


class Signed(NamedTuple):
    """A node's MinHash signatures and what its pairs are judged on."""

    sig: np.ndarray
    size: int           # distinct shingles
    source: str
    host: int           # host_key of its URL, 0 without one
    csig: np.ndarray    # signature of its content shingles (curate.dedup.candidates)
    csize: int


class Member(NamedTuple):
    """A node in a band bucket."""

    node: tuple
    sig: np.ndarray
    size: int
    source: str
    host: int
    csig: np.ndarray
    csize: int


class Edge(NamedTuple):
    """A verified pair, as curate.dedup.cluster.representatives takes it: ``near`` when
    its Jaccard passed the threshold, else the smaller page is contained in the larger."""

    a: tuple
    b: tuple
    near: bool
    size_a: int
    size_b: int


class Check(NamedTuple):
    """A candidate pair only the containment rule could join: decided on the exact shingles."""

    a: tuple
    b: tuple
    size_a: int
    size_b: int
    host_a: int
    host_b: int


class Shingles(NamedTuple):
    """A page's distinct shingle hashes (sorted) and where each first occurs (shingle_positions)."""

    hashes: np.ndarray
    first: np.ndarray


class CheckedPage(NamedTuple):
    host: int
    shingles: Shingles


class CheckSets(NamedTuple):
    """A check with both pages' shingles and, where a site template applies, site_counts' counts."""

    check: Check
    a: Shingles
    b: Shingles
    counts: tuple | None = None


class Route(NamedTuple):
    """Where a document points: its URL's winner, that winner's exact leader, the leader's representative."""

    winner: str
    leader: str
    root: tuple


class Joined(NamedTuple):
    key: Any
    item: Any
    value: Any          # what the table holds for ``key``; None where it holds nothing


# Items counted into every join and out of it, and documents read and written:
# the driver checks that none went missing in a shuffle (see _lost).
JOIN_IN, JOIN_OUT, DOCS_IN = "dedup:join_items_in", "dedup:join_items_out", "dedup:documents_in"


def _entering(item):
    metric(JOIN_IN)
    return item


def _joined(grouped):
    key, groups = grouped
    value = next(iter(groups["value"]), None)
    n = 0
    for item in groups["item"]:
        n += 1
        yield Joined(key, item, value)
    metric(JOIN_OUT, n)  # once per group: a hub page's group holds thousands of items


@beam.ptransform_fn
def Lookup(items, table):
    """``(key, item)`` pairs -> a :class:`Joined` per item, with the value that ``table``
    (``(key, value)`` pairs, at most one per key) holds for its key."""
    return ({"item": items | "Enter" >> beam.Map(_entering), "value": table}
            | "Join" >> beam.CoGroupByKey()
            | "Pair" >> beam.FlatMap(_joined))


def _keyed(element, key: Callable) -> tuple:
    return key(element), element


def _keyed_again(joined: Joined, key: Callable) -> tuple:
    return key(joined.item), (joined.item, joined.value)


def _combined(joined: Joined, combine: Callable):
    element, first = joined.item
    return combine(element, first, joined.value)


_ROUND_ROBIN = itertools.count()


def _salted(element, parts: dict):
    # which of its key's groups an item joins: any spreads the load, the result is the same
    key, item = element
    return (key, next(_ROUND_ROBIN) % parts.get(key, 1)), item


def _fanned(element, parts: dict, default: int = 0):
    key, value = element
    for salt in range(parts.get(key, default)):
        yield (key, salt), value


def _unsalted(joined: Joined) -> Joined:
    (key, _), item, value = joined
    return Joined(key, item, value)


def _parts(element, chunk: int) -> tuple:
    key, n = element
    return key, -(-n // chunk)


@beam.ptransform_fn
def SplitLookup(items, table, chunk: int, dense: bool = False):
    """:func:`Lookup` whose groups hold at most about ``chunk`` items: a key with n items
    is split into ceil(n / chunk) groups, each joined with its own copy of the key's
    value. A site template or a much-copied page then never gathers all its pairs on
    one worker; the memory of a group is bounded by ``chunk``, not by the data.

    ``dense``: every key of ``table`` has items (a URL's winner, a text's leader).
    The side input then names only the keys split in several groups, the few hot
    ones, instead of every key; without it, keys the items do not use are left
    out of the join (a table of every page's shingles, items for a few pages)."""
    counts = items | "Keys" >> beam.Keys() | "PerKey" >> beam.combiners.Count.PerElement()
    if dense:
        counts = counts | "Hot" >> beam.Filter(lambda kv: kv[1] > chunk)
    parts = counts | "Parts" >> beam.Map(_parts, chunk)
    parts_side = beam.pvalue.AsDict(parts)
    # the table is materialised first: fused into the stage that produces it, the fan-out
    # would wait on a side input computed downstream of that same stage (a deadlock)
    return ({"item": items | "Enter" >> beam.Map(_entering) | "Salt" >> beam.Map(_salted, parts_side),
             "value": (table | "Materialise" >> beam.Reshuffle()
                       | "FanOut" >> beam.FlatMap(_fanned, parts_side, 1 if dense else 0))}
            | "Join" >> beam.CoGroupByKey()
            | "Pair" >> beam.FlatMap(_joined)
            | "Unsalt" >> beam.Map(_unsalted))


@beam.ptransform_fn
def LookupBoth(elements, table, first: Callable, second: Callable, combine: Callable, chunk: int = 0):
    """Elements -> ``combine(element, value of first(element), value of second(element))``,
    both values from ``table`` as :func:`Lookup` finds them (one join per end of a pair);
    with ``chunk``, each join a :func:`SplitLookup`."""
    def lookup():
        return SplitLookup(table, chunk) if chunk else Lookup(table)

    return (elements
            | "KeyFirst" >> beam.Map(_keyed, first)
            | "First" >> lookup()
            | "KeySecond" >> beam.Map(_keyed_again, second)
            | "Second" >> lookup()
            | "Combine" >> beam.Map(_combined, combine))


# --------------------------------------------------------------------------- URL and exact stages

WINNERS, LEADERS, EDGES, CHECKS = "winners", "leaders", "edges", "checks"


def _by_url(doc: Document) -> tuple[str, Document]:
    return ("url:" + doc.url if doc.url else "id:" + doc.id), doc


class _Capture(NamedTuple):
    """What curate.dedup.core.newer reads of a capture, without its text."""
    created: str
    id: str


def _capture(doc: Document) -> tuple[str, _Capture]:
    key, _ = _by_url(doc)
    return key, _Capture(doc.created, doc.id)


class _BestOf(beam.CombineFn):
    """The best of a key's values by ``better(a, b)``, a total order: a bounded
    combiner, so no worker gathers a key's values (or its documents) to pick one."""

    def __init__(self, better: Callable):
        self.better = better

    def create_accumulator(self):
        return None

    def add_input(self, acc, value):
        return value if acc is None else self.better(acc, value)

    def merge_accumulators(self, accs):
        accs = [a for a in accs if a is not None]
        return functools.reduce(self.better, accs) if accs else None

    def extract_output(self, acc):
        return acc


def _url_routes(joined: Joined):
    """A document joined with its URL's winner -> (id, winner id), and the winner on ``WINNERS``."""
    doc, winner = joined.item, joined.value.id
    yield doc.id, winner
    if doc.id == winner:
        yield beam.pvalue.TaggedOutput(WINNERS, doc)


@beam.ptransform_fn
def UrlStage(docs, chunk: int):
    """Documents -> (id, URL winner id) for every document, and the winners on ``WINNERS``:
    the newest capture of a URL (then the smallest id); a document without URL wins alone.

    A combiner picks the winner over (created, id) with curate.dedup.core.newer,
    and each capture then joins it in groups of at most ``chunk``
    (:func:`SplitLookup`): a URL captured in every crawl never puts all its
    documents on one worker."""
    newest = docs | "Captures" >> beam.Map(_capture) | "Newest" >> beam.CombinePerKey(_BestOf(newer))
    return (docs
            | "ByUrl" >> beam.Map(_by_url)
            | "WithNewest" >> SplitLookup(newest, chunk, dense=True)
            | "Routes" >> beam.FlatMap(_url_routes).with_outputs(WINNERS, main="routes"))


def _by_text(doc: Document, scope: str) -> tuple[tuple[str, str], Document]:
    return (doc.source if scope == "source" else "", text_key(doc.text)), doc


def _text_node(doc: Document, scope: str) -> tuple[tuple[str, str], tuple]:
    key, _ = _by_text(doc, scope)
    return key, document_node(doc)


def _exact_routes(joined: Joined):
    """A document joined with its text's best node -> (id, leader id), and (node, leader) on ``LEADERS``."""
    doc, leader = joined.item, joined.value
    node = document_node(doc)
    leader_id = leader[-1]  # a rank key ends with the document id
    yield doc.id, leader_id
    if node == leader:
        yield beam.pvalue.TaggedOutput(LEADERS, (node, doc))


@beam.ptransform_fn
def ExactStage(winners, scope: str, chunk: int):
    """URL winners -> (id, exact leader id) for each, and ``(node, leader)`` on ``LEADERS``:
    per normalised text (and source, with scope "source"), the best by rank key.

    As in :func:`UrlStage`, a combiner picks the leader and the copies join it in
    groups of at most ``chunk``: a boilerplate page copied across a crawl
    ("Access denied") never gathers all its copies on one worker."""
    best = (winners
            | "Nodes" >> beam.Map(_text_node, scope)
            | "Best" >> beam.CombinePerKey(_BestOf(min)))
    return (winners
            | "ByText" >> beam.Map(_by_text, scope)
            | "WithBest" >> SplitLookup(best, chunk, dense=True)
            | "Routes" >> beam.FlatMap(_exact_routes).with_outputs(LEADERS, main="routes"))


# --------------------------------------------------------------------------- near pairs: candidates

class SignatureFn(beam.DoFn):
    """(node, doc) -> (node, :class:`Signed`), computed in batches per bundle.

    Elements are buffered and signed ``batch`` at a time with
    ``curate.dedup.minhash.signatures`` (the batched path: the same signatures
    as one-by-one ``signature``, about twice as fast); the rest of the buffer is
    flushed in ``finish_bundle``. Every element is in the global window (the
    job is batch), so flushed outputs are re-windowed there. The content
    signatures leave out the common shingles (side inputs: {host: its common
    shingles}, the corpus's), as ``curate.dedup.core.content_signatures`` does.
    """

    def __init__(self, cfg: DedupConfig, batch: int = 256):
        self.cfg, self.batch = cfg, batch

    def start_bundle(self):
        self._buf: list[tuple] = []

    def process(self, element, common=None, glob=None):
        node, doc = element
        self._common = common or {}
        self._glob = glob if glob is not None else np.empty(0, np.uint32)
        self._buf.append((node, doc.text, doc.source, host_key(doc.url)))
        if len(self._buf) >= self.batch:
            yield from self._flush()

    def finish_bundle(self):
        for out in self._flush():
            yield GlobalWindows.windowed_value(out)

    def _flush(self):
        buf, self._buf = self._buf, []
        if not buf:
            return
        sigs, sizes = signatures([text for _, text, _, _ in buf], self.cfg, batch=self.batch)
        csigs, csizes = content_signatures(((k, text) for k, (_, text, _, _) in enumerate(buf)), len(buf),
                                           np.array([host for _, _, _, host in buf], np.uint64),
                                           self._common, self._glob, self.cfg, batch=self.batch)
        metric("dedup:signatures", len(buf))
        for (node, _, source, host), sig, size, csig, csize in zip(buf, sigs, sizes.tolist(), csigs, csizes.tolist()):
            yield node, Signed(sig, int(size), source, host, csig, int(csize))


class Light(NamedTuple):
    """A node in a band bucket: what the scope rules and the live test need, no signatures
    (a node is in 73 buckets; its signatures join the few pairs it ends up in)."""

    node: tuple
    size: int
    csize: int
    source: str


class BandKeysFn(beam.DoFn):
    """(node, Signed) -> ((index, band, key), Light) per LSH band of the Jaccard index
    (full signature) and of the containment index (content signature); empty sets have none."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, element):
        node, signed = element
        member = Light(node, signed.size, signed.csize, signed.source)
        if signed.size:
            jb, jr = self.cfg.jaccard_index()
            for band, key in enumerate(band_keys(signed.sig, self.cfg, jb, jr).tolist()):
                yield ("j", band, key), member
        if signed.csize:
            for band, key in enumerate(band_keys(signed.csig, self.cfg).tolist()):
                yield ("c", band, key), member


class BucketPairsFn(beam.DoFn):
    """One band bucket -> its candidate pairs, ``((a, b), (Light a, Light b))`` with a < b
    in rank order, as ``curate.dedup.minhash.bucket_pairs`` pairs them (scope rules applied)."""

    def __init__(self, cfg: DedupConfig, scope: str):
        self.cfg, self.scope = cfg, scope

    def process(self, element):
        (index, _, _), members = element
        live = operator.attrgetter("size" if index == "j" else "csize")
        members = sorted((m for m in members if live(m)), key=operator.attrgetter("node"))  # rank order
        if len(members) < 2:
            return
        if len(members) > self.cfg.max_bucket + 1:
            metric("dedup:buckets_capped")
        for a, b in bucket_pairs(members, self.cfg.max_bucket):
            ref_a, ref_b = is_reference(a.node), is_reference(b.node)
            if ref_a and ref_b:
                continue  # reference-reference pairs change nothing
            if self.scope == "source" and not (ref_a or ref_b) and a.source != b.source:
                continue
            yield (a.node, b.node), (a, b)


def _any(values):
    # one pair found in several buckets: every copy carries the same members
    return next(iter(values))


def _pair_a(element) -> tuple:
    (a, _), _ = element
    return a


def _pair_b(element) -> tuple:
    (_, b), _ = element
    return b


def _pair_members(element, signed_a: Signed, signed_b: Signed):
    (a, b), _ = element
    return (a, b), (Member(a, *signed_a), Member(b, *signed_b))


def _ends(pair, members):
    """A candidate -> (end, (rank of the other end for it, the pair)) for both ends (cap_pairs' order)."""
    a, b = members
    jc, jf = pair_scores(a.sig, b.sig, a.csig, b.csig, a.csize, b.csize)
    jc, jf = float(jc), float(jf)
    return [(pair[0], (-jc, -jf, pair[1], pair)), (pair[1], (-jc, -jf, pair[0], pair))]


class KeepBest(beam.CombineFn):
    """Per page: how many candidates it has and its ``cap`` best (smallest rank keys), bounded."""

    def __init__(self, cap: int):
        self.cap = cap

    def create_accumulator(self):
        return 0, []

    def add_input(self, acc, item):
        n, best = acc
        best = sorted(best + [item])[:self.cap]
        return n + 1, best

    def merge_accumulators(self, accs):
        n, best = 0, []
        for k, b in accs:
            n += k
            best = sorted(best + b)[:self.cap]
        return n, best

    def extract_output(self, acc):
        return acc


def _cap_binds(element) -> bool:
    _, (n, best) = element
    return n > len(best)


def _kept_pairs(end, counted):
    n, best = counted
    if n > len(best):
        metric("dedup:candidate_cap_docs")
    for *_, pair in best:
        yield pair, True


def _with_members(grouped):
    pair, groups = grouped
    if groups["kept"] and groups["pair"]:
        yield pair, groups["pair"][0]


class VerifyFn(beam.DoFn):
    """A kept candidate -> an :class:`Edge` when its estimated Jaccard passes, or a
    :class:`Check` on ``CHECKS`` when only the containment rule could join it."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, element):
        _, (a, b) = element
        metric("dedup:candidate_pairs")
        j, c = estimate(a.sig, b.sig, a.size, b.size)
        if j >= self.cfg.threshold:
            yield Edge(a.node, b.node, True, a.size, b.size)
        elif needs_exact(j, c, a.size, b.size, self.cfg):
            yield beam.pvalue.TaggedOutput(CHECKS, Check(a.node, b.node, a.size, b.size, a.host, b.host))


def _sample_page(element: tuple, n: int) -> tuple[int, tuple]:
    node, doc = element
    return host_key(doc.url), (sample_key(node_id(node)), node_id(node), shingle_hashes(doc.text, n))


def _has_host_key(element) -> bool:
    host, _ = element
    return host != 0


def _sample_order(page: tuple) -> tuple:
    key, doc_id, _ = page
    return key, doc_id


def _host_common(element, cfg: DedupConfig):
    host, pages = element
    arrs = [hashes for _, _, hashes in pages]
    c = host_common(arrs, cfg)
    if len(c):
        yield host, c
    c = host_common(arrs, cfg, cfg.check_common_docs, cfg.small_host_pages)
    if len(c):
        yield beam.pvalue.TaggedOutput("check", (host, c))


def _global_common(pages, cfg: DedupConfig):
    return global_common([hashes for _, _, hashes in pages], cfg)


def _unkeyed(element):
    _, page = element
    return page


@beam.ptransform_fn
def CommonShingles(nodes, cfg: DedupConfig):
    """Nodes -> (``{host: common shingles}`` pairs, the same for the checks (``check_common_docs``),
    the corpus's common shingles as one element):
    per host its ``common_pages`` pages whose id hashes lowest, globally the ``global_pages``
    lowest, each picked by a bounded combiner (the same pages as curate.dedup.candidates.sample_rows)."""
    pages = nodes | "SamplePage" >> beam.Map(_sample_page, cfg.ngram)
    per_host = (pages
                | "WithHost" >> beam.Filter(_has_host_key)
                | "HostSample" >> beam.combiners.Top.SmallestPerKey(max(cfg.common_pages, 1) if cfg.common_pages > 0
                                                                     else 1 << 30, key=_sample_order)
                | "HostCommon" >> beam.FlatMap(_host_common, cfg).with_outputs("check", main="index"))
    glob = (pages
            | "Unkeyed" >> beam.Map(_unkeyed)
            | "GlobalSample" >> beam.combiners.Top.Smallest(max(cfg.global_pages, 0), key=_sample_order)
            | "GlobalCommon" >> beam.Map(_global_common, cfg))
    return per_host.index, per_host.check, glob


@beam.ptransform_fn
def Candidates(nodes, cfg: DedupConfig, scope: str, chunk: int = 2000):
    """Nodes -> ``EDGES`` (kept candidates whose estimated Jaccard passes) and ``CHECKS``
    (distinct kept candidates only the containment rule could join), and the hosts' common
    shingles (``common``, for the checks): the two LSH indexes of curate.dedup.candidates,
    then each page's ``max_candidates`` best (a combiner per page, so bounded)."""
    common, check, glob = nodes | "Common" >> CommonShingles(cfg)
    common_side = beam.pvalue.AsDict(common)
    signed = nodes | "Signatures" >> beam.ParDo(SignatureFn(cfg), common=common_side,
                                                glob=beam.pvalue.AsSingleton(glob))
    pairs = (signed
             | "BandKeys" >> beam.ParDo(BandKeysFn(cfg))
             | "Buckets" >> beam.GroupByKey()
             | "Pairs" >> beam.ParDo(BucketPairsFn(cfg, scope))
             | "DistinctPairs" >> beam.CombinePerKey(_any)    # a pair that shares several bands: once
             | "PairSignatures" >> LookupBoth(signed, _pair_a, _pair_b, _pair_members, chunk))
    capped = pairs | "NoCap" >> beam.Filter(lambda _: False)
    if cfg.max_candidates > 0:
        best = (pairs
                | "Ends" >> beam.FlatMapTuple(_ends)
                | "KeepBest" >> beam.CombinePerKey(KeepBest(cfg.max_candidates)))
        capped = best | "Capped" >> beam.Filter(_cap_binds)
        kept = (best
                | "KeptPairs" >> beam.FlatMapTuple(_kept_pairs)
                | "DistinctKept" >> beam.CombinePerKey(_any))
        pairs = ({"kept": kept, "pair": pairs}
                 | "JoinKept" >> beam.CoGroupByKey()
                 | "WithMembers" >> beam.FlatMap(_with_members))
    out = pairs | "Verify" >> beam.ParDo(VerifyFn(cfg)).with_outputs(CHECKS, main=EDGES)
    counts = {"candidates": pairs | "CountCandidates" >> beam.combiners.Count.Globally(),
              "cap_docs": capped | "CountCapped" >> beam.combiners.Count.Globally()}
    return {EDGES: out[EDGES], CHECKS: out[CHECKS], "common": check, "counts": counts}


# --------------------------------------------------------------------------- near pairs: verification

def _check_ends(check: Check):
    return [(check.a, check.host_a), (check.b, check.host_b)]


def _node_text(node: tuple, doc: Document) -> tuple[tuple, str]:
    return node, doc.text


def _shingled(joined: Joined, n: int) -> tuple[tuple, CheckedPage]:
    node, host, text = joined
    return node, CheckedPage(host, Shingles(*shingle_positions(text, n)))


def _page_shingles(node: tuple, page: CheckedPage) -> tuple[tuple, Shingles]:
    return node, page.shingles


def _has_host(element: tuple[tuple, CheckedPage]) -> bool:
    _, page = element
    return page.host != 0


def _template_page(node: tuple, page: CheckedPage) -> tuple[int, tuple[int, np.ndarray]]:
    # with its content key: a host's sample is its pages that hash lowest, the same pages as on one machine
    return page.host, (set_key(page.shingles.hashes), page.shingles.hashes)


def _content_key(page: tuple[int, np.ndarray]) -> int:
    key, _ = page
    return key


def _host_counts(host: int, pages) -> tuple[int, tuple]:
    return host, shingle_counts([hashes for _, hashes in pages])


def _template_applies(sets: CheckSets, partitions: int, template_docs: int) -> int:
    """Partition 0: both pages have a host and the template rule is on; 1: no template."""
    return 0 if (template_docs and sets.check.host_a and sets.check.host_b) else 1


def _with_site_counts(sets: CheckSets, counts_a, counts_b) -> CheckSets:
    check = sets.check
    counts = site_counts(sets.a.hashes, sets.b.hashes, check.host_a, check.host_b,
                         {check.host_a: counts_a, check.host_b: counts_b})
    return sets._replace(counts=counts)


class ExactCheckFn(beam.DoFn):
    """:class:`CheckSets` -> an :class:`Edge` when the exact containment rule holds
    (curate.dedup.rules.copy_containment: site template left out, the opening checked)."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, sets: CheckSets, common=None):
        check, a, b = sets.check, sets.a, sets.b
        same_host = bool(check.host_a) and check.host_a == check.host_b
        counts = sets.counts
        if common and self.cfg.template_docs:   # the sampled common shingles count as template too
            counts = with_common(a.hashes, b.hashes, check.host_a, check.host_b, counts, common,
                                 self.cfg.template_docs)
        c = copy_containment(a.hashes, a.first, b.hashes, b.first, counts, self.cfg, same_host)
        metric("dedup:exact_containment_checks")
        if is_duplicate(0.0, c, check.size_a, check.size_b, self.cfg):
            yield Edge(check.a, check.b, False, check.size_a, check.size_b)


@beam.ptransform_fn
def Verification(checks, cfg: DedupConfig, nodes, common, chunk: int = 2000):
    """Checks -> the :class:`Edge`s the exact containment rule confirms.

    Each checked page is shingled once (with where each shingle first occurs,
    for its opening); its shingles serve its host's template and every check
    it is in. Site templates: per host, how many of its checked pages hold each
    shingle (curate.dedup.templates.host_counts, the same pages as on one
    machine), at most ``template_pages`` of them, picked by a combiner, so no
    worker holds a whole host; each check picks up the counts of its first
    host, then of its second, for its own two pages only, so no element
    carries a whole host's counts.
    """
    texts = nodes | "NodeText" >> beam.MapTuple(_node_text)
    pages = (checks
             | "CheckedNodes" >> beam.FlatMap(_check_ends)
             | "DistinctNodes" >> beam.Distinct()
             | "Texts" >> Lookup(texts)
             | "Shingle" >> beam.Map(_shingled, cfg.ngram))
    shingles = pages | "PageShingles" >> beam.MapTuple(_page_shingles)
    with_sets = checks | "PairShingles" >> LookupBoth(shingles, operator.attrgetter("a"),
                                                      operator.attrgetter("b"), CheckSets, chunk)

    host_pages = (pages
                  | "WithHost" >> beam.Filter(_has_host)
                  | "TemplatePage" >> beam.MapTuple(_template_page))
    if cfg.template_pages > 0:
        host_pages = host_pages | "TemplatePages" >> beam.combiners.Top.SmallestPerKey(
            cfg.template_pages, key=_content_key)
    else:
        host_pages = host_pages | "ByHost" >> beam.GroupByKey()
    host_counts = host_pages | "HostCounts" >> beam.MapTuple(_host_counts)

    templated, plain = with_sets | "Templated" >> beam.Partition(_template_applies, 2, cfg.template_docs)
    with_counts = templated | "SiteCounts" >> LookupBoth(host_counts, operator.attrgetter("check.host_a"),
                                                         operator.attrgetter("check.host_b"), _with_site_counts,
                                                         chunk)
    return ((with_counts, plain)
            | "AllChecks" >> beam.Flatten()
            | "ExactCheck" >> beam.ParDo(ExactCheckFn(cfg), common=beam.pvalue.AsDict(common)))


def _larger_first(edge: Edge) -> Edge:
    """The edge with ``a > b``, as the component steps expect."""
    if edge.a > edge.b:
        return edge
    return Edge(edge.b, edge.a, edge.near, edge.size_b, edge.size_a)


@beam.ptransform_fn
def NearPairs(nodes, cfg: DedupConfig, scope: str, chunk: int = 2000):
    """Nodes ``(rank key, Document)`` -> (distinct verified :class:`Edge`s, larger node first;
    {"candidates", "cap_docs"}: one-element counts)."""
    found = nodes | "Candidates" >> Candidates(cfg, scope, chunk)
    confirmed = found[CHECKS] | "Verification" >> Verification(cfg, nodes, found["common"], chunk)
    edges = ((found[EDGES], confirmed)
             | "AllEdges" >> beam.Flatten()
             | "LargerFirst" >> beam.Map(_larger_first)
             | "DistinctEdges" >> beam.Distinct())
    return edges, found["counts"]


# --------------------------------------------------------------------------- components and representatives

def _link(edge: Edge) -> tuple[tuple, tuple]:
    return edge.a, edge.b


def _both_ways(u, v):
    return [(u, v), (v, u)]


def _to_larger(u, v):
    return (u, v) if u > v else (v, u)


@beam.ptransform_fn
def StarRound(links):
    """One large-star and one small-star step (curate.dedup.cluster), each one GroupByKey."""
    return (links
            | "BothWays" >> beam.FlatMapTuple(_both_ways)
            | "LargeGroup" >> beam.GroupByKey()
            | "LargeStar" >> beam.FlatMapTuple(large_star)
            | "ToLarger" >> beam.MapTuple(_to_larger)
            | "SmallGroup" >> beam.GroupByKey()
            | "SmallStar" >> beam.FlatMapTuple(small_star)
            | "Oriented" >> beam.MapTuple(_to_larger)
            | "Distinct" >> beam.Distinct())


def _root_of(node: tuple, root: tuple) -> tuple[tuple, int]:
    return root, 1


def _labelled_root(grouped) -> bool:
    _, groups = grouped
    return bool(groups["labelled"]) and bool(groups["root"])


@beam.ptransform_fn
def Components(edges, rounds: int):
    """Edges -> ``labels``: (node, the smallest node of its component) for every node
    that is not a root, by unrolled star rounds; and ``unconverged``: how many
    nodes are both somebody's root and labelled (0 when the rounds sufficed)."""
    links = edges | "Links" >> beam.Map(_link)
    for r in range(rounds):
        links = links | f"Round{r}" >> StarRound()
    labels = links | "Labels" >> beam.CombinePerKey(min)
    unconverged = ({"labelled": labels, "root": links | "Roots" >> beam.MapTuple(_root_of)}
                   | "CheckJoin" >> beam.CoGroupByKey()
                   | "Unconverged" >> beam.Filter(_labelled_root)
                   | "CountUnconverged" >> beam.combiners.Count.Globally())
    return {"labels": labels, "unconverged": unconverged}


def _keyed_by_larger(edge: Edge) -> tuple[tuple, Edge]:
    return edge.a, edge


def _keyed_by_component(joined: Joined) -> tuple[tuple, Edge]:
    return joined.value, joined.item


def _component_parents(root: tuple, edges):
    """One component's edges -> (node, representative) for its removed nodes."""
    return list(representatives(edges, fixed=is_reference).items())


@beam.ptransform_fn
def Representatives(edges, labels):
    """Edges -> (node, representative node) for every removed node: a component's edges
    are gathered on one worker (keyed by its root) and given to the same function
    as on one machine."""
    return (edges
            | "ByLarger" >> beam.Map(_keyed_by_larger)
            | "Component" >> Lookup(labels)
            | "ByComponent" >> beam.Map(_keyed_by_component)
            | "Gather" >> beam.GroupByKey()
            | "Representatives" >> beam.FlatMapTuple(_component_parents))


# --------------------------------------------------------------------------- routing and annotation

def _leader_id(node: tuple, doc: Document) -> tuple[tuple, str]:
    return node, doc.id


def _leader_root(joined: Joined) -> tuple[str, tuple]:
    node, leader, parent = joined
    return leader, parent if parent is not None else node


def _by_target(doc_id: str, target: str) -> tuple[str, str]:
    return target, doc_id


def _winner_route(joined: Joined) -> tuple[str, tuple[str, tuple]]:
    leader, winner, root = joined
    return winner, (leader, root)


def _doc_route(joined: Joined) -> tuple[str, Route]:
    winner, doc_id, (leader, root) = joined
    return doc_id, Route(winner, leader, root)


@beam.ptransform_fn
def Routes(parents, url_routes, exact_routes, leaders):
    """Representatives -> (id, :class:`Route`) for every document: id -> URL winner ->
    exact leader -> representative node (the leader's own node when it is kept)."""
    leader_root = (leaders
                   | "LeaderIds" >> beam.MapTuple(_leader_id)
                   | "Parents" >> Lookup(parents)
                   | "LeaderRoot" >> beam.Map(_leader_root))
    winner_route = (exact_routes
                    | "ByLeader" >> beam.MapTuple(_by_target)
                    | "LeaderRoots" >> Lookup(leader_root)
                    | "WinnerRoute" >> beam.Map(_winner_route))
    return (url_routes
            | "ByWinner" >> beam.MapTuple(_by_target)
            | "WinnerRoutes" >> Lookup(winner_route)
            | "DocRoute" >> beam.Map(_doc_route))


def _by_id(doc: Document) -> tuple[str, Document]:
    metric(DOCS_IN)
    return doc.id, doc


class AnnotateFn(beam.DoFn):
    """Document + its :class:`Route` -> the document annotated as on one machine."""

    def process(self, joined: Joined):
        doc_id, doc, route = joined
        of_reference = is_reference(route.root)
        cluster = node_id(route.root)
        reason = duplicate_reason(of_reference or cluster != doc_id, url=route.winner != doc_id,
                                  exact=route.leader != doc_id, reference=of_reference)
        metric("docs")
        metric(f"dropped:{reason}_duplicate" if reason else "kept")
        yield annotate_duplicate(doc, cluster, reason, of_reference)


# --------------------------------------------------------------------------- outputs

def _is_kept(doc: Document) -> bool:
    return not doc.metadata["duplicate"]


class WriteShardFn(beam.DoFn):
    """(shard, documents sorted by id) -> OUT/docs/part-N.parquet (all) and OUT/kept/part-N.parquet.

    Yields a few numbers per shard, never per document: the driver reads every shard's summary.
    """

    def __init__(self, out: str):
        self.out = out

    def process(self, element):
        shard, docs = element
        kept = [d for d in docs if _is_kept(d)]
        put_documents(join(self.out, "docs", shard_name(shard)), docs)
        put_documents(join(self.out, "kept", shard_name(shard)), kept)
        by_source: dict[str, list[int]] = {}
        for d in docs:
            counts = by_source.setdefault(d.source, [0, 0])
            counts[0] += 1
            counts[1] += not _is_kept(d)
        yield {"docs": len(docs), "kept": len(kept), "by_source": by_source}


def _cluster_member(doc: Document) -> tuple[str, int]:
    return doc.metadata["cluster"], 1


def _size_bin(cluster: str, size: int) -> str:
    return size_bin(size)


@beam.ptransform_fn
def ClusterSizes(annotated):
    """Annotated documents -> (size bin, clusters): counted per cluster, then per bin, so no
    step sees every document."""
    return (annotated
            | "ClusterMember" >> beam.Map(_cluster_member)
            | "ClusterSize" >> beam.CombinePerKey(sum)
            | "SizeBin" >> beam.MapTuple(_size_bin)
            | "BinCount" >> beam.combiners.Count.PerElement())


def _put_lines(lines: list[str], path: str) -> None:
    put(path, "\n".join(sorted(lines)).encode())


@beam.ptransform_fn
def PutSmall(pcoll, path: str):
    """A small PCollection -> ``path``, one JSON element a line (sorted), for the driver
    to read back (:func:`_read_small`) after the run: a worker writes it through
    Beam's FileSystems, so OUT may be gs:// on Dataflow."""
    return (pcoll
            | "Json" >> beam.Map(json.dumps)
            | "One" >> beam.combiners.ToList()
            | "Put" >> beam.Map(_put_lines, path))


def _read_small(path: str) -> list:
    return [json.loads(line) for line in get(path).decode().splitlines() if line.strip()]


# --------------------------------------------------------------------------- graph

def build(p, inputs: list[str], against: list[str], out: str, cfg: DedupConfig, scope: str = "all",
          rounds: int = 8, shards: int = 1, chunk: int = 2000):
    """Add the dedup job to ``p``; returns the PCollections of per-shard summaries, of
    (cluster size bin, clusters), the count of unconverged nodes, and {name: one count}
    (candidate pairs, pages whose candidate cap bound)."""
    docs = p | "Inputs" >> beam.Create(sorted(inputs)) | "Read" >> beam.ParDo(ReadDocsFn("dedup"))
    refs = p | "RefInputs" >> beam.Create(sorted(against)) | "ReadRefs" >> beam.ParDo(ReadDocsFn("dedup"))

    url = docs | "UrlStage" >> UrlStage(chunk)
    exact = url[WINNERS] | "ExactStage" >> ExactStage(scope, chunk)
    nodes = ((exact[LEADERS], refs | "RefNodes" >> beam.Map(_reference_node))
             | "AllNodes" >> beam.Flatten())
    edges, counts = nodes | "NearPairs" >> NearPairs(cfg, scope, chunk)
    components = edges | "Components" >> Components(rounds)
    parents = edges | "Representatives" >> Representatives(components["labels"])
    routes = parents | "Routes" >> Routes(url.routes, exact.routes, exact[LEADERS])
    annotated = (docs
                 | "DocById" >> beam.Map(_by_id)
                 | "WithRoute" >> Lookup(routes)
                 | "Annotate" >> beam.ParDo(AnnotateFn()))
    summaries = annotated | "ByShard" >> ByShard(shards) | "Write" >> beam.ParDo(WriteShardFn(out))
    histogram = annotated | "ClusterSizes" >> ClusterSizes()
    return summaries, histogram, components["unconverged"], counts


# --------------------------------------------------------------------------- driver

def _parser():
    ap = job_parser("pipelines.dedup", __doc__)
    ap.add_argument("--input", action="extend", nargs="+", required=True, help="documents files or globs")
    ap.add_argument("--against", action="extend", nargs="*", default=[], help="reference documents files or globs")
    ap.add_argument("--out", required=True, help="output directory")
    add_dedup_arguments(ap, RULE_OPTIONS)
    ap.add_argument("--rounds", type=int, default=8, help="large-star/small-star rounds")
    ap.add_argument("--group-chunk", type=int, default=2000,
                    help="a join group holds at most about this many items (a key with more is split)")
    ap.add_argument("--shards", type=int, default=0,
                    help="output Parquet shards (default: one per 256 MB of input, so a shard fits a worker)")
    ap.add_argument("-q", "--quiet", action="store_true")
    add_runner_args(ap, workers=1)
    return ap


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Run the dedup job; returns the stats written to OUT/stats.json."""
    args, beam_args = _parser().parse_known_args(argv)
    cfg = config_from_args(args)
    inputs, against = expand(args.input), expand(args.against) if args.against else []
    out = args.out
    with job_lock(out, "pipelines.dedup"):
        p = make_pipeline(args, beam_args, test_pipeline)
        shards = args.shards or auto_shards(inputs + against)
        summaries, histogram, unconverged, counts = build(p, inputs, against, out, cfg, args.scope, args.rounds, shards,
                                                          args.group_chunk)
        small = {name: join(out, f"_{name}.jsonl") for name in ("summaries", "histogram", "unconverged",
                                                                 "candidates", "cap_docs")}
        summaries | "PutSummaries" >> PutSmall(small["summaries"])
        histogram | "PutHistogram" >> PutSmall(small["histogram"])
        unconverged | "PutUnconverged" >> PutSmall(small["unconverged"])
        counts["candidates"] | "PutCandidates" >> PutSmall(small["candidates"])
        counts["cap_docs"] | "PutCapDocs" >> PutSmall(small["cap_docs"])
        result = p.run()
        result.wait_until_finish()

        parts = _read_small(small["summaries"])
        total, removed = {}, {}
        for s in parts:
            for src, (n, dup) in s["by_source"].items():
                total[src] = total.get(src, 0) + n
                removed[src] = removed.get(src, 0) + dup
        stats = {"config": cfg.to_dict(), "scope": args.scope, "rounds": args.rounds,
                 "documents": sum(total.values()), "kept": sum(s["kept"] for s in parts),
                 "cluster_size_histogram": sorted_bins(dict(_read_small(small["histogram"]))),
                 "output_shards": shards,
                 "removed_share_by_source": {k: round(removed[k] / n, 6) for k, n in sorted(total.items())},
                 "unconverged_nodes": sum(_read_small(small["unconverged"])),
                 "pairs": {"candidates": sum(_read_small(small["candidates"]))},
                 "counters": {"dedup:candidate_cap_docs": sum(_read_small(small["cap_docs"]))}}
        counters = counter_totals(result)
        stats["lost_elements"] = _lost(counters, stats["documents"])
        if counters is not None:
            stats["counters"].update({name: counters.get(name, 0) for name in (JOIN_IN, JOIN_OUT, DOCS_IN)})
        put_json(join(out, "stats.json"), stats)
        FileSystems.delete([path for path in small.values() if FileSystems.exists(path)])
    if not args.quiet:
        print(f"dedup: {stats['documents']} documents, {stats['kept']} kept -> {out}", file=sys.stderr)
    return stats


def _lost(counters: dict | None, written: int) -> dict | None:
    """How many join items and documents went missing between the counts taken before
    and after the shuffles (0 and 0 on a sound run); None when the runner reports no
    counters. Beam 2.77's DirectRunner in multi_processing mode dropped a share of the
    elements of shuffles of several hundred MB, with no error, in about half the runs
    (``benchmarks/beam_shuffle_loss.py``); at 100k crawl-shaped pages this job's
    verification joins are that large. Counting costs one counter increment per item."""
    if counters is None:
        return None
    return {"join_items": counters.get(JOIN_IN, 0) - counters.get(JOIN_OUT, 0),
            "documents": counters.get(DOCS_IN, 0) - written}


def _exit_status(stats: dict) -> int:
    # an unconverged run's clusters may be wrong: a failed exit, so no later step takes them as done
    if stats["unconverged_nodes"]:
        say_error("pipelines.dedup", f"components not converged after the given rounds "
                  f"({stats['unconverged_nodes']} nodes); rerun with more --rounds")
        return 1
    return 1 if say_lost("pipelines.dedup", stats.get("lost_elements"), "the clusters are not to be trusted") else 0


def main(argv=None) -> int:
    return run_main("pipelines.dedup", run, argv, status=_exit_status)


if __name__ == "__main__":
    # the importable module's main, not this __main__'s: elements of its classes
    # (Signed, Edge, ...) are pickled by reference, which a worker process can
    # resolve to pipelines.dedup but not to the driver's __main__
    from pipelines.dedup import main as module_main

    sys.exit(module_main())
