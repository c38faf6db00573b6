"""The dedup job on Beam: same stages and same clusters as ``curate dedup``, at scale.

    python -m pipelines.dedup --input 'out/sample/filter/docs/*.parquet' --out out/sample/dedup
    python -m pipelines.dedup --input docs.parquet --against webtext.parquet --runner DataflowRunner ...

Stages (named PTransforms of thin steps over ``curate.dedup`` functions)::

    Read -> a Ref per document: its place (input file, row), id, URL, host, text key; no text
         -> UrlStage:        refs by URL -> the newest capture (curate.dedup.core.newer)
         -> ExactStage:      URL winners by text key -> the leader, best by rank key
         -> NearPairs:       Candidates (curate.dedup.candidates): common shingles per host and
                             globally, from samples picked by bounded combiners (Top per host /
                             globally) and shingled from their files -> side inputs; per input
                             file: signatures, full and content, kept in a row store, and the
                             band keys of the Jaccard and the containment index written out per
                             partition -> per partition: the buckets with two or more pages ->
                             pairs per bucket (bucket_pairs) -> scores from the row stores ->
                             each page's max_candidates best (a bounded combiner per page);
                             Verification of the pairs only containment could join: per file,
                             the checked pages' shingles in a row store, the hosts' template
                             counts in row stores, the exact check (copy_containment)
         -> Components:      R x StarRound (large-star, then small-star), each a GroupByKey
         -> Representatives: edges by component -> curate.dedup.cluster.representatives
         -> Routes:          document -> URL winner -> exact leader -> representative node
         -> Write:           per input file: its documents read again, annotated
                             (curate.dedup.core.duplicate_reason, annotate_duplicate), written to
                             OUT/docs/part-N.parquet (all) and OUT/kept/part-N.parquet
    ClusterSizes and the files' summaries -> the driver -> stats.json

No document text goes through a shuffle. A step that needs text reads its
input file again (a file's documents are numbered in the order it yields
them; a re-read checks each id it finds against the first read's), and the
large tables (signatures, checked pages' shingles, site template counts, band
keys: 73 per page) are files under OUT/_work (pipelines.spill), written by the
step that makes them and read by key; the shuffles carry refs, pairs, edges
and file names. That is what bounds memory on a runner that holds its
shuffles in memory, as the DirectRunner does: 100 bytes a page, not the
1.3 KB of its signatures and 8 KB of its band keys.

Memory per worker is bounded by the settings and by the size of one input
file (a file's pages are signed, shingled and written in one group), never by
the largest host: a host's template comes from a sample of ``common_pages``
pages (kept by a combiner), a page has at most ``max_candidates`` of its own
candidates, the joins of the URL and exact stages are split
(:func:`SplitLookup`, ``--group-chunk``) so that no group holds all captures
of a URL or all copies of a text, and a band partition holds 1/``--band-parts``
of the band keys. A component's edge list is still gathered on one worker
(edges, 5 numbers each; with the cap, a site's template no longer makes one
large component). Not yet split: one band bucket's members (bounded in
practice by the content index, not by a setting).

The one-machine path (``curate.dedup.dedup_documents``) runs the same rules
with numpy and the same representatives function; ``tests/dedup/test_dedup.py``
checks both give the same clusters. Star rounds are unrolled (``--rounds``, default 8: each round at
least halves the longest path in practice); a final check counts nodes that
are still not attached to their component's root and the job exits 1 if any,
asking for more rounds, so that nothing takes its clusters as good.

Every join counts its items in and out, and the documents read are counted
against those written; the driver exits 1 when they differ (:func:`_lost`), as
Beam 2.77's DirectRunner with several processes was seen to drop elements of
large shuffles without an error (a race now guarded: pipelines.direct_fix).

Nodes are rank keys (``curate.dedup.cluster.rank_key``: reference flag,
-quality, id), so ordering nodes orders documents as on one machine.
"""

from __future__ import annotations

import itertools
import functools
import json
import operator
import os
import sys
import tempfile
from typing import Any, Callable, Iterator, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from curate.core.document import Document, DocumentFormatError, DocumentWriter, read_documents
from curate.core.words import shingle_hashes, shingle_positions
from curate.dedup.candidates import (band_keys64, global_common, host_commons, pair_scores, sample_key,
                                     sample_min_pages)
from curate.dedup.cluster import large_star, rank_key, representatives, small_star
from curate.dedup.config import RULE_OPTIONS, DedupConfig, add_dedup_arguments, config_from_args
from curate.dedup.core import (annotate_duplicate, content_signatures, duplicate_reason, newer, size_bin,
                               sorted_bins, text_key)
from curate.dedup.minhash import bucket_pairs, estimate, signatures
from curate.dedup.rules import copy_containment, is_duplicate, needs_exact
from curate.dedup.templates import host_key, set_key, shingle_counts, site_counts, with_common
from pipelines import spill
from pipelines.common import (add_runner_args, counter_totals, job_lock, job_parser, make_pipeline, metric,
                              read_counted, run_main, say_error, say_lost, shard_name)
from pipelines.fileio import expand, get, join, local_copy, put, put_json

# --------------------------------------------------------------------------- elements

ROW_BITS = 32
ROW_MASK = (1 << ROW_BITS) - 1


def file_of(loc: int) -> int:
    return loc >> ROW_BITS


def row_of(loc: int) -> int:
    return loc & ROW_MASK


class Ref(NamedTuple):
    """A document without its text: where to read it again and what the URL and exact stages judge."""

    loc: int            # its input file's index << 32 | its row: the how-many-th document the file yields
    id: str
    url: str | None
    created: str | None
    source: str
    quality: Any
    text_key: str       # curate.dedup.core.text_key of its text
    host: int           # host_key of its URL, 0 without one


def is_reference(node: tuple) -> bool:
    reference_flag, _, _ = node
    return reference_flag == 0


def node_id(node: tuple) -> str:
    _, _, doc_id = node
    return doc_id


def document_node(ref: Ref, reference: bool = False) -> tuple:
    return rank_key(ref.id, ref.quality, reference)


def _reference_node(ref: Ref) -> tuple[tuple, Ref]:
    return document_node(ref, reference=True), ref


class Light(NamedTuple):
    """A node in a band bucket: what the scope rules, the cap and the checks need; its
    signatures stay in its file's row store."""

    node: tuple
    size: int           # distinct shingles
    csize: int          # distinct content shingles (curate.dedup.candidates)
    source: str
    host: int
    loc: int


class Scored(NamedTuple):
    """A candidate pair with what its signatures say: the cap's scores (pair_scores) and
    the estimate (Jaccard, containment of the smaller page)."""

    a: Light
    b: Light
    jc: float
    jf: float
    j: float
    c: float


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
    loc_a: int
    loc_b: int


class Route(NamedTuple):
    """Where a document points: its URL's winner, that winner's exact leader, the leader's representative."""

    id: str
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
    value. A URL captured in every crawl or a much-copied text then never gathers all
    its items on one worker; the memory of a group is bounded by ``chunk``, not by the data.

    ``dense``: every key of ``table`` has items (a URL's winner, a text's leader).
    The side input then names only the keys split in several groups, the few hot
    ones, instead of every key; without it, keys the items do not use are left
    out of the join."""
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


# --------------------------------------------------------------------------- reading documents

class ReadRefsFn(beam.DoFn):
    """(file index, path) -> a :class:`Ref` per document of the file. As ReadDocsFn: bad
    lines counted and skipped, an unreadable file counted and named on stderr while its
    readable part is kept. ``count``: count the documents (an input, not a reference file)."""

    def __init__(self, count: bool):
        self.count = count

    def process(self, element):
        index, path = element
        for row, doc in enumerate(read_counted(path, "dedup")):
            if row > ROW_MASK:   # a place must fit its 32 bits: the rest of the file is not read
                metric("dedup:files_failed")
                say_error("pipelines.dedup", f"{path}: more than {ROW_MASK} documents; split the file")
                return
            if self.count:
                metric(DOCS_IN)
            yield Ref(index << ROW_BITS | row, doc.id, doc.url, doc.created, doc.source,
                      doc.metadata.get("quality"), text_key(doc.text), host_key(doc.url))


def reread(path: str, rows: dict[int, str]) -> Iterator[tuple[int, Document]]:
    """(row, document) for each of ``rows`` (row -> the id the first read found there), read
    again from ``path``. A file that stops being readable after the last row asked for
    stops as it did the first time, where its error was counted and named; one that
    yields fewer of the rows, or another document at one, raises (the input changed
    while the job ran, or a read failed): the runner retries, nothing is dropped."""
    if not rows:
        return
    last, found = max(rows), 0
    errors: list = []
    try:
        with local_copy(path) as local:
            for row, doc in enumerate(read_documents(local, errors=errors)):
                want = rows.get(row)
                if want is not None:
                    if doc.id != want:
                        raise RuntimeError(f"{path}: document {row} is {doc.id!r}, was {want!r} when the job "
                                           f"started; the input changed while the job ran")
                    found += 1
                    yield row, doc
                if row >= last:
                    break
    except (DocumentFormatError, OSError):
        if found < len(rows):
            raise
        metric("dedup:rereads_stopped")  # past every row asked for: the first read's error, counted then
    if found < len(rows):
        raise RuntimeError(f"{path}: {len(rows) - found} of its documents not found when read again; "
                           f"the input changed while the job ran")


def _by_file(loc: int, item) -> tuple[int, tuple[int, Any]]:
    return file_of(loc), (row_of(loc), item)


# --------------------------------------------------------------------------- URL and exact stages

WINNERS, LEADERS, EDGES, CHECKS, STORES, BANDS, GLOBAL = (
    "winners", "leaders", "edges", "checks", "stores", "bands", "global")


def _by_url(ref: Ref) -> tuple[str, Ref]:
    return ("url:" + ref.url if ref.url else "id:" + ref.id), ref


class _Capture(NamedTuple):
    """What curate.dedup.core.newer reads of a capture."""
    created: str
    id: str


def _capture(ref: Ref) -> tuple[str, _Capture]:
    key, _ = _by_url(ref)
    return key, _Capture(ref.created, ref.id)


class _BestOf(beam.CombineFn):
    """The best of a key's values by ``better(a, b)``, a total order: a bounded
    combiner, so no worker gathers a key's values to pick one."""

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


def _value(joined: Joined, what: str):
    """The table's value for a join that always has one; a missing one was lost in a shuffle."""
    if joined.value is None:
        raise RuntimeError(f"{what} of {joined.key!r} missing from its join: the runner lost shuffle elements "
                           f"(see pipelines.direct_fix); with the DirectRunner, run --workers 1")
    return joined.value


def _url_routes(joined: Joined):
    """A ref joined with its URL's winner -> (loc, (id, winner id)), and the winner on ``WINNERS``."""
    ref, winner = joined.item, _value(joined, "the newest capture").id
    yield ref.loc, (ref.id, winner)
    if ref.id == winner:   # without what only this stage reads: a million of them wait in the next shuffle
        yield beam.pvalue.TaggedOutput(WINNERS, ref._replace(url=None, created=None))


@beam.ptransform_fn
def UrlStage(refs, chunk: int):
    """Refs -> (loc, (id, URL winner id)) for every document, and the winners on ``WINNERS``:
    the newest capture of a URL (then the smallest id); a document without URL wins alone.

    A combiner picks the winner over (created, id) with curate.dedup.core.newer,
    and each capture then joins it in groups of at most ``chunk``
    (:func:`SplitLookup`): a URL captured in every crawl never puts all its
    captures on one worker."""
    newest = refs | "Captures" >> beam.Map(_capture) | "Newest" >> beam.CombinePerKey(_BestOf(newer))
    return (refs
            | "ByUrl" >> beam.Map(_by_url)
            | "WithNewest" >> SplitLookup(newest, chunk, dense=True)
            | "Routes" >> beam.FlatMap(_url_routes).with_outputs(WINNERS, main="routes"))


def _by_text(ref: Ref, scope: str) -> tuple[tuple[str, str], Ref]:
    return (ref.source if scope == "source" else "", ref.text_key), ref


def _text_node(ref: Ref, scope: str) -> tuple[tuple[str, str], tuple]:
    key, _ = _by_text(ref, scope)
    return key, document_node(ref)


def _exact_routes(joined: Joined):
    """A ref joined with its text's best node -> (id, leader id), and (node, ref) on ``LEADERS``."""
    ref, leader = joined.item, _value(joined, "the exact leader")
    node = document_node(ref)
    leader_id = leader[-1]  # a rank key ends with the document id
    yield ref.id, leader_id
    if node == leader:
        yield beam.pvalue.TaggedOutput(LEADERS, (node, ref))


@beam.ptransform_fn
def ExactStage(winners, scope: str, chunk: int):
    """URL winners -> (id, exact leader id) for each, and ``(node, ref)`` on ``LEADERS``:
    per text key (and source, with scope "source"), the best by rank key.

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


# --------------------------------------------------------------------------- near pairs: common shingles

def _sample_entry(node: tuple, ref: Ref) -> tuple[int, tuple]:
    return ref.host, (sample_key(ref.id), ref.id, ref.loc)


def _has_host_key(element) -> bool:
    host, _ = element
    return host != 0


def _sample_order(page: tuple) -> tuple:
    key, doc_id, _ = page
    return key, doc_id


def _unkeyed(element):
    _, page = element
    return page


def _host_requests(host: int, pages: list, smallest: int = 1):
    if len(pages) < smallest:
        return   # too few pages for common shingles (curate.dedup.candidates.sample_rows): no sample
    for key, doc_id, loc in pages:
        yield _by_file(loc, (doc_id, host, key))


def _global_requests(pages: list):
    for key, doc_id, loc in pages:
        yield _by_file(loc, (doc_id, 0, key))   # host 0: for the corpus's sample


@beam.typehints.with_output_types(Any)  # tagged outputs beside the main one: no inferred type
class SampleShinglesFn(beam.DoFn):
    """(file, [(row, (id, host, sample key))]) -> the sampled pages' shingles, read from the
    file: (key, id, shingles) on ``GLOBAL`` for the corpus's sample; for a host's sample
    (host, (key, id, loc)), the shingles kept in the file's row store (on ``STORES``), so
    that no group holds the shingles of every host's sample."""

    def __init__(self, files: list[str], work: str, n: int):
        self.files, self.work, self.n = files, work, n

    def process(self, element):
        index, asked = element
        asked = list(asked)
        texts = {row: doc.text for row, doc in reread(self.files[index], {row: i for row, (i, _, _) in asked})}
        hashed: dict[int, np.ndarray] = {}
        kept: dict[int, np.ndarray] = {}
        for row, (doc_id, host, key) in asked:
            if row not in hashed:
                hashed[row] = shingle_hashes(texts[row], self.n)
            if host:
                kept[row] = hashed[row]
                yield host, (key, doc_id, index << ROW_BITS | row)
            else:
                yield beam.pvalue.TaggedOutput(GLOBAL, (key, doc_id, hashed[row]))
        if kept:
            store = spill.unique_path(join(self.work, "samples"), f"f{index:05d}", "rows")
            spill.put_rows(store, [index << ROW_BITS | row for row in kept], list(kept.values()))
            yield beam.pvalue.TaggedOutput(STORES, (index, store))


def _in_sample_order(pages) -> list:
    return [hashes for *_, hashes in sorted(pages, key=lambda p: (p[0], p[1]))]


@beam.typehints.with_output_types(Any)  # tagged outputs beside the main one: no inferred type
class HostCommonFn(beam.DoFn):
    """(host, its sample pages (key, id, loc)) -> (host, its common shingles), and on "check"
    those for the checks (``check_common_docs``); the pages' shingles read from the row stores."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, element, stores):
        host, pages = element
        c, t = host_commons([spill.get_row(stores[file_of(loc)], loc) for *_, loc in sorted(pages)], self.cfg)
        if len(c):
            yield host, c
        if len(t):
            yield beam.pvalue.TaggedOutput("check", (host, t))


def _global_common(pages, cfg: DedupConfig):
    return global_common(_in_sample_order(pages), cfg)


@beam.ptransform_fn
def CommonShingles(nodes, cfg: DedupConfig, files: list[str], work: str):
    """Nodes -> (``{host: common shingles}`` pairs, the same for the checks (``check_common_docs``),
    the corpus's common shingles as one element):
    per host its ``common_pages`` pages whose id hashes lowest, globally the ``global_pages``
    lowest, each picked by a bounded combiner (the same pages as curate.dedup.candidates.sample_rows),
    then shingled from their files."""
    entries = nodes | "SampleEntry" >> beam.MapTuple(_sample_entry)
    per_host = (entries
                | "WithHost" >> beam.Filter(_has_host_key)
                | "HostSample" >> beam.combiners.Top.SmallestPerKey(max(cfg.common_pages, 1) if cfg.common_pages > 0
                                                                     else 1 << 30, key=_sample_order))
    glob = (entries
            | "Unkeyed" >> beam.Map(_unkeyed)
            | "GlobalSample" >> beam.combiners.Top.Smallest(max(cfg.global_pages, 0), key=_sample_order))
    shingled = (((per_host | "HostAsks" >> beam.FlatMapTuple(_host_requests, sample_min_pages(cfg))),
                 (glob | "GlobalAsks" >> beam.FlatMap(_global_requests)))
                | "Asks" >> beam.Flatten()
                | "AsksByFile" >> beam.GroupByKey()
                | "SampleShingles" >> beam.ParDo(SampleShinglesFn(files, work, cfg.ngram)).with_outputs(
                    GLOBAL, STORES, main="host"))
    host = (shingled.host
            | "ByHost" >> beam.GroupByKey()
            | "HostCommon" >> beam.ParDo(HostCommonFn(cfg), stores=beam.pvalue.AsDict(shingled[STORES]))
            .with_outputs("check", main="index"))
    glob_common = (shingled[GLOBAL]
                   | "GlobalPages" >> beam.combiners.ToList()
                   | "GlobalCommon" >> beam.Map(_global_common, cfg))
    return host.index, host.check, glob_common


# --------------------------------------------------------------------------- near pairs: candidates

def _sign_entry(node: tuple, ref: Ref):
    return _by_file(ref.loc, (ref.id, node, ref.source, ref.host))


def _sig_parts(row: np.ndarray, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """A signature store row -> (signature, content signature)."""
    return row[2:2 + num_perm], row[2 + num_perm:2 + 2 * num_perm]


@beam.typehints.with_output_types(Any)  # tagged outputs beside the main one: no inferred type
class SignFileFn(beam.DoFn):
    """(file, its nodes) -> (loc, :class:`Light`) per node; on ``STORES`` (file, its row store of
    [size, content size, signature, content signature] per page), on ``BANDS`` (partition, a
    block of band keys) for each of the ``parts`` partitions it has keys for.

    The texts are read again from the file and signed ``batch`` at a time with
    curate.dedup.minhash.signatures and curate.dedup.core.content_signatures,
    which leaves out the common shingles (side inputs: {host: its common
    shingles}, the corpus's). A band key is (slot, curate.dedup.candidates.band_keys64):
    slots below the Jaccard index's band count are its bands, the rest the
    containment index's; its partition is the key modulo ``parts``."""

    def __init__(self, cfg: DedupConfig, files: list[str], work: str, parts: int, batch: int = 256):
        self.cfg, self.files, self.work, self.parts, self.batch = cfg, files, work, parts, batch

    def process(self, element, common=None, glob=None):
        cfg = self.cfg
        index, members = element
        members = sorted(members)
        rows = [row for row, _ in members]
        texts = {row: doc.text for row, doc in reread(self.files[index], {row: m[0] for row, m in members})}
        n = len(rows)
        hosts = np.array([host for _, (_, _, _, host) in members], np.uint64)
        sigs, sizes = signatures([texts[row] for row in rows], cfg, batch=self.batch)
        csigs, csizes = content_signatures(((k, texts[row]) for k, row in enumerate(rows)), n, hosts,
                                           common or {}, glob if glob is not None else np.empty(0, np.uint32),
                                           cfg, batch=self.batch)
        del texts
        metric("dedup:signatures", n)
        locs = np.array([index << ROW_BITS | row for row in rows], np.uint64)
        table = np.empty((n, 2 + 2 * cfg.num_perm), np.uint32)
        table[:, 0], table[:, 1] = sizes, csizes
        table[:, 2:2 + cfg.num_perm], table[:, 2 + cfg.num_perm:] = sigs, csigs
        store = spill.unique_path(join(self.work, "signatures"), f"f{index:05d}", "rows")
        spill.put_rows(store, locs, list(table))
        yield beam.pvalue.TaggedOutput(STORES, (index, store))

        jb, jr = cfg.jaccard_index()
        slots, keys, where = [], [], []
        for index_sigs, live, bands, r, first in ((sigs, sizes > 0, jb, jr, 0),
                                                  (csigs, csizes > 0, cfg.bands, cfg.rows, jb)):
            for b in range(bands):
                keys.append(band_keys64(index_sigs[live], b, r))
                slots.append(np.full(int(live.sum()), first + b, np.uint16))
                where.append(locs[live])
        if keys:
            keys_, slots_, where_ = np.concatenate(keys), np.concatenate(slots), np.concatenate(where)
            part = keys_ % np.uint64(self.parts)
            for p in np.unique(part).tolist():
                sel = part == p
                block = spill.unique_path(join(self.work, "bands"), f"p{p:04d}-f{index:05d}", "npz")
                spill.put_block(block, slot=slots_[sel], key=keys_[sel], loc=where_[sel])
                yield beam.pvalue.TaggedOutput(BANDS, (p, block))
        for (row, (_, node, source, host)), size, csize, loc in zip(members, sizes.tolist(), csizes.tolist(),
                                                                      locs.tolist()):
            yield loc, Light(node, int(size), int(csize), source, host, loc)


class BucketsFn(beam.DoFn):
    """(partition, its band blocks) -> (loc, bucket) for each page of a bucket that holds two or
    more: a bucket is ``(index, band, key)``, index "j" (Jaccard) or "c" (containment)."""

    def __init__(self, jaccard_bands: int):
        self.jb = jaccard_bands

    def process(self, element):
        _, paths = element
        blocks = [spill.get_block(path) for path in sorted(paths)]
        slot = np.concatenate([b["slot"] for b in blocks])
        key = np.concatenate([b["key"] for b in blocks])
        loc = np.concatenate([b["loc"] for b in blocks])
        del blocks
        order = np.lexsort((loc, key, slot))
        slot, key, loc = slot[order], key[order], loc[order]
        same = (slot[1:] == slot[:-1]) & (key[1:] == key[:-1])
        shared = np.zeros(len(key), bool)
        shared[1:] |= same
        shared[:-1] |= same
        metric("dedup:band_keys", len(key))
        for s, k, at in zip(slot[shared].tolist(), key[shared].tolist(), loc[shared].tolist()):
            yield at, (("j", s, k) if s < self.jb else ("c", s - self.jb, k))


def _member(joined: Joined):
    if joined.value is None:
        metric("dedup:bucket_members_unknown")   # every banded page has a Light: a lost shuffle item
        return
    yield joined.item, joined.value


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


class ScoreFn(beam.DoFn):
    """A candidate -> (pair, :class:`Scored`): both pages' signatures read from their files'
    row stores (side input {file: store}), scored as on one machine."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, element, stores):
        pair, (a, b) = element
        sig_a, csig_a = _sig_parts(spill.get_row(stores[file_of(a.loc)], a.loc), self.cfg.num_perm)
        sig_b, csig_b = _sig_parts(spill.get_row(stores[file_of(b.loc)], b.loc), self.cfg.num_perm)
        jc, jf = pair_scores(sig_a, sig_b, csig_a, csig_b, a.csize, b.csize)
        j, c = estimate(sig_a, sig_b, a.size, b.size)
        yield pair, Scored(a, b, float(jc), float(jf), float(j), float(c))


def _ends(pair, scored: Scored):
    """A candidate -> (end, (rank of the other end for it, the pair)) for both ends (cap_pairs' order)."""
    return [(pair[0], (-scored.jc, -scored.jf, pair[1], pair)), (pair[1], (-scored.jc, -scored.jf, pair[0], pair))]


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


def _with_scores(grouped):
    pair, groups = grouped
    if groups["kept"] and groups["pair"]:
        yield pair, groups["pair"][0]


class VerifyFn(beam.DoFn):
    """A kept candidate -> an :class:`Edge` when its estimated Jaccard passes, or a
    :class:`Check` on ``CHECKS`` when only the containment rule could join it."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, element):
        _, s = element
        a, b = s.a, s.b
        metric("dedup:candidate_pairs")
        if s.j >= self.cfg.threshold:
            yield Edge(a.node, b.node, True, a.size, b.size)
        elif needs_exact(s.j, s.c, a.size, b.size, self.cfg):
            yield beam.pvalue.TaggedOutput(CHECKS, Check(a.node, b.node, a.size, b.size, a.host, b.host,
                                                         a.loc, b.loc))


@beam.ptransform_fn
def Candidates(nodes, cfg: DedupConfig, scope: str, files: list[str], work: str, parts: int):
    """Nodes -> ``EDGES`` (kept candidates whose estimated Jaccard passes) and ``CHECKS``
    (distinct kept candidates only the containment rule could join), and the hosts' common
    shingles (``common``, for the checks): the two LSH indexes of curate.dedup.candidates,
    then each page's ``max_candidates`` best (a combiner per page, so bounded)."""
    common, check, glob = nodes | "Common" >> CommonShingles(cfg, files, work)
    signed = (nodes
              | "SignEntry" >> beam.MapTuple(_sign_entry)
              | "ByFile" >> beam.GroupByKey()
              | "Sign" >> beam.ParDo(SignFileFn(cfg, files, work, parts), common=beam.pvalue.AsDict(common),
                                     glob=beam.pvalue.AsSingleton(glob)).with_outputs(STORES, BANDS, main="light"))
    jb, _ = cfg.jaccard_index()
    pairs = (signed[BANDS]
             | "ByPart" >> beam.GroupByKey()
             | "Buckets" >> beam.ParDo(BucketsFn(jb))
             | "Members" >> Lookup(signed.light)
             | "Member" >> beam.FlatMap(_member)
             | "Bucket" >> beam.GroupByKey()
             | "Pairs" >> beam.ParDo(BucketPairsFn(cfg, scope))
             | "DistinctPairs" >> beam.CombinePerKey(_any)    # a pair that shares several bands: once
             | "Score" >> beam.ParDo(ScoreFn(cfg), stores=beam.pvalue.AsDict(signed[STORES])))
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
                 | "WithScores" >> beam.FlatMap(_with_scores))
    out = pairs | "Verify" >> beam.ParDo(VerifyFn(cfg)).with_outputs(CHECKS, main=EDGES)
    counts = {"candidates": pairs | "CountCandidates" >> beam.combiners.Count.Globally(),
              "cap_docs": capped | "CountCapped" >> beam.combiners.Count.Globally()}
    return {EDGES: out[EDGES], CHECKS: out[CHECKS], "common": check, "counts": counts}


# --------------------------------------------------------------------------- near pairs: verification

def _check_ends(check: Check):
    return [(check.loc_a, (node_id(check.a), check.host_a)), (check.loc_b, (node_id(check.b), check.host_b))]


@beam.typehints.with_output_types(Any)  # tagged outputs beside the main one: no inferred type
class ShingleFileFn(beam.DoFn):
    """(file, its checked pages) -> on ``STORES`` (file, its row store of [shingles, where each
    first occurs] per page: shingle_positions), and (host, (set_key, loc)) for each page with a host."""

    def __init__(self, files: list[str], work: str, n: int):
        self.files, self.work, self.n = files, work, n

    def process(self, element):
        index, pages = element
        asked = dict(pages)
        locs, rows = [], []
        for row, doc in reread(self.files[index], {row: doc_id for row, (doc_id, _) in asked.items()}):
            host = asked[row][1]
            hashes, first = shingle_positions(doc.text, self.n)
            loc = index << ROW_BITS | row
            locs.append(loc)
            rows.append(np.concatenate((hashes, first.astype(np.uint32))))
            if host:
                yield host, (set_key(hashes), loc)
        store = spill.unique_path(join(self.work, "shingles"), f"f{index:05d}", "rows")
        spill.put_rows(store, locs, rows)
        yield beam.pvalue.TaggedOutput(STORES, (index, store))


def _page_shingles(stores: dict, loc: int) -> tuple[np.ndarray, np.ndarray]:
    """A checked page's (shingles, where each first occurs) from its file's row store."""
    row = spill.get_row(stores[file_of(loc)], loc)
    n = len(row) // 2
    return row[:n], row[n:].astype(np.int32)


def _content_key(page: tuple) -> int:
    key, _ = page
    return key


class HostCountsFn(beam.DoFn):
    """(host, its template pages) -> (host, the row store holding its shingle_counts as
    [shingles, counts]). A bundle's hosts go to one store, a new one every ``flush``
    numbers, so that the counts of every site never sit in one group or one shuffle."""

    def __init__(self, work: str, flush: int = 1 << 24):
        self.work, self.flush = work, flush

    def start_bundle(self):
        self._hosts: list[int] = []
        self._rows: list[np.ndarray] = []
        self._size = 0

    def process(self, element, stores):
        host, pages = element
        vals, counts = shingle_counts([_page_shingles(stores, loc)[0] for _, loc in pages])
        self._hosts.append(host)
        self._rows.append(np.concatenate((vals, counts.astype(np.uint32))))
        self._size += 2 * len(vals)
        if self._size >= self.flush:
            yield from self._put()

    def finish_bundle(self):
        for out in self._put():
            yield GlobalWindows.windowed_value(out)

    def _put(self):
        hosts, rows = self._hosts, self._rows
        self._hosts, self._rows, self._size = [], [], 0
        if not hosts:
            return
        store = spill.unique_path(join(self.work, "templates"), f"h{hosts[0] % 100000:05d}", "rows")
        spill.put_rows(store, hosts, rows)
        for host in hosts:
            yield host, store


def _host_counts(stores: dict, host: int) -> tuple[np.ndarray, np.ndarray] | None:
    path = stores.get(host)
    row = spill.get_row(path, host) if path else None
    if row is None:
        return None
    n = len(row) // 2
    return row[:n], row[n:].astype(np.int64)


class ExactCheckFn(beam.DoFn):
    """A :class:`Check` -> an :class:`Edge` when the exact containment rule holds
    (curate.dedup.rules.copy_containment: site template left out, the opening checked);
    the pages' shingles and their hosts' template counts read from the row stores."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, check: Check, shingles, templates, common=None):
        cfg = self.cfg
        a, a_first = _page_shingles(shingles, check.loc_a)
        b, b_first = _page_shingles(shingles, check.loc_b)
        same_host = bool(check.host_a) and check.host_a == check.host_b
        counts = None
        if cfg.template_docs and check.host_a and check.host_b:
            counts = site_counts(a, b, check.host_a, check.host_b,
                                 {check.host_a: _host_counts(templates, check.host_a),
                                  check.host_b: _host_counts(templates, check.host_b)})
        if common and cfg.template_docs:   # the sampled common shingles count as template too
            counts = with_common(a, b, check.host_a, check.host_b, counts, common, cfg.template_docs)
        c = copy_containment(a, a_first, b, b_first, counts, cfg, same_host)
        metric("dedup:exact_containment_checks")
        if is_duplicate(0.0, c, check.size_a, check.size_b, cfg):
            yield Edge(check.a, check.b, False, check.size_a, check.size_b)


@beam.ptransform_fn
def Verification(checks, cfg: DedupConfig, common, files: list[str], work: str):
    """Checks -> the :class:`Edge`s the exact containment rule confirms.

    Each checked page is shingled once, from its file (with where each shingle
    first occurs, for its opening), into its file's row store; its shingles serve
    its host's template and every check it is in. Site templates: per host, how
    many of its checked pages hold each shingle (curate.dedup.templates.host_counts,
    the same pages as on one machine), at most ``template_pages`` of them, picked
    by a combiner, so no worker holds a whole host; the counts go to row stores
    too, and each check reads its two pages and its hosts' counts by key.
    """
    shingled = (checks
                | "CheckedPages" >> beam.FlatMap(_check_ends)
                | "DistinctPages" >> beam.Distinct()
                | "PagesByFile" >> beam.MapTuple(_by_file)
                | "ByFile" >> beam.GroupByKey()
                | "Shingle" >> beam.ParDo(ShingleFileFn(files, work, cfg.ngram)).with_outputs(STORES, main="hosts"))
    stores = beam.pvalue.AsDict(shingled[STORES])
    host_pages = shingled.hosts
    if cfg.template_pages > 0:
        host_pages = host_pages | "TemplatePages" >> beam.combiners.Top.SmallestPerKey(
            cfg.template_pages, key=_content_key)
    else:
        host_pages = host_pages | "ByHost" >> beam.GroupByKey()
    templates = host_pages | "HostCounts" >> beam.ParDo(HostCountsFn(work), stores=stores)
    # materialised first: fused into the step that makes the checks, the check would wait
    # on side inputs computed downstream of that same step
    return (checks
            | "Materialise" >> beam.Reshuffle()
            | "ExactCheck" >> beam.ParDo(ExactCheckFn(cfg), shingles=stores,
                                         templates=beam.pvalue.AsDict(templates),
                                         common=beam.pvalue.AsDict(common)))


def _larger_first(edge: Edge) -> Edge:
    """The edge with ``a > b``, as the component steps expect."""
    if edge.a > edge.b:
        return edge
    return Edge(edge.b, edge.a, edge.near, edge.size_b, edge.size_a)


@beam.ptransform_fn
def NearPairs(nodes, cfg: DedupConfig, scope: str, files: list[str], work: str, parts: int):
    """Nodes ``(rank key, Ref)`` -> (distinct verified :class:`Edge`s, larger node first;
    {"candidates", "cap_docs"}: one-element counts)."""
    found = nodes | "Candidates" >> Candidates(cfg, scope, files, work, parts)
    confirmed = found[CHECKS] | "Verification" >> Verification(cfg, found["common"], files, work)
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

def _leader_id(node: tuple, ref: Ref) -> tuple[tuple, str]:
    return node, ref.id


def _leader_root(joined: Joined) -> tuple[str, tuple]:
    node, leader, parent = joined
    return leader, parent if parent is not None else node


def _by_target(doc_id: str, target: str) -> tuple[str, str]:
    return target, doc_id


def _by_winner(loc: int, routed: tuple[str, str]) -> tuple[str, tuple[int, str]]:
    doc_id, winner = routed
    return winner, (loc, doc_id)


def _winner_route(joined: Joined) -> tuple[str, tuple[str, tuple]]:
    leader, winner, root = joined
    return winner, (leader, root)


def _doc_route(joined: Joined) -> tuple[int, Route]:
    winner, (loc, doc_id), (leader, root) = joined
    return loc, Route(doc_id, winner, leader, root)


@beam.ptransform_fn
def Routes(parents, url_routes, exact_routes, leaders):
    """Representatives -> (loc, :class:`Route`) for every document: id -> URL winner ->
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
            | "ByWinner" >> beam.MapTuple(_by_winner)
            | "WinnerRoutes" >> Lookup(winner_route)
            | "DocRoute" >> beam.Map(_doc_route))


def annotated(doc: Document, route: Route) -> Document:
    """A document and its :class:`Route` -> the document annotated as on one machine."""
    of_reference = is_reference(route.root)
    cluster = node_id(route.root)
    reason = duplicate_reason(of_reference or cluster != doc.id, url=route.winner != doc.id,
                              exact=route.leader != doc.id, reference=of_reference)
    metric("docs")
    metric(f"dropped:{reason}_duplicate" if reason else "kept")
    return annotate_duplicate(doc, cluster, reason, of_reference)


# --------------------------------------------------------------------------- outputs

def _is_kept(doc: Document) -> bool:
    return not doc.metadata["duplicate"]


class WriteFileFn(beam.DoFn):
    """(input file, its documents' routes) -> OUT/docs/part-N.parquet (all its documents, in
    its order, annotated) and OUT/kept/part-N.parquet, N the file's index among the inputs.

    The documents are read again and streamed to the two files, so a worker holds
    a file's routes, not its texts. Yields a few numbers per file, never per
    document: the driver reads every file's summary."""

    def __init__(self, files: list[str], out: str):
        self.files, self.out = files, out

    def process(self, element):
        index, routed = element
        routes = dict(routed)
        by_source: dict[str, list[int]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            local = {part: os.path.join(tmp, f"{part}.parquet") for part in ("docs", "kept")}
            with DocumentWriter(local["docs"]) as docs, DocumentWriter(local["kept"]) as kept:
                for row, doc in reread(self.files[index], {row: route.id for row, route in routes.items()}):
                    doc = annotated(doc, routes[row])
                    docs.write(doc)
                    counts = by_source.setdefault(doc.source, [0, 0])
                    counts[0] += 1
                    if _is_kept(doc):
                        kept.write(doc)
                    else:
                        counts[1] += 1
            n_docs, n_kept = docs.count, kept.count
            for part, path in local.items():
                with open(path, "rb") as f:
                    put(join(self.out, part, shard_name(index)), f.read())
        yield {"docs": n_docs, "kept": n_kept, "by_source": by_source}


def _cluster_member(loc: int, route: Route) -> tuple[str, int]:
    return node_id(route.root), 1


def _size_bin(cluster: str, size: int) -> str:
    return size_bin(size)


@beam.ptransform_fn
def ClusterSizes(routes):
    """Routes -> (size bin, clusters): counted per cluster, then per bin, so no step sees
    every document."""
    return (routes
            | "ClusterMember" >> beam.MapTuple(_cluster_member)
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
          rounds: int = 8, chunk: int = 2000, parts: int = 64):
    """Add the dedup job to ``p``; returns the PCollections of per-file summaries, of
    (cluster size bin, clusters), the count of unconverged nodes, and {name: one count}
    (candidate pairs, pages whose candidate cap bound). Files are numbered inputs
    first, then references; intermediate files go to OUT/_work."""
    files = list(inputs) + list(against)
    work = join(out, "_work")
    docs = (p | "Inputs" >> beam.Create(list(enumerate(inputs)))
            | "Read" >> beam.ParDo(ReadRefsFn(count=True)))
    refs = (p | "RefInputs" >> beam.Create([(len(inputs) + k, path) for k, path in enumerate(against)])
            | "ReadRefs" >> beam.ParDo(ReadRefsFn(count=False)))

    url = docs | "UrlStage" >> UrlStage(chunk)
    exact = url[WINNERS] | "ExactStage" >> ExactStage(scope, chunk)
    nodes = ((exact[LEADERS], refs | "RefNodes" >> beam.Map(_reference_node))
             | "AllNodes" >> beam.Flatten())
    edges, counts = nodes | "NearPairs" >> NearPairs(cfg, scope, files, work, parts)
    components = edges | "Components" >> Components(rounds)
    parents = edges | "Representatives" >> Representatives(components["labels"])
    routes = parents | "Routes" >> Routes(url.routes, exact.routes, exact[LEADERS])
    summaries = (routes
                 | "RoutesByFile" >> beam.MapTuple(_by_file)
                 | "ByFile" >> beam.GroupByKey()
                 | "Write" >> beam.ParDo(WriteFileFn(files, out)))
    histogram = routes | "ClusterSizes" >> ClusterSizes()
    return summaries, histogram, components["unconverged"], counts


# --------------------------------------------------------------------------- driver

def _parser():
    ap = job_parser("pipelines.dedup", __doc__)
    ap.add_argument("--input", action="extend", nargs="+", required=True, help="documents files or globs")
    ap.add_argument("--against", action="extend", nargs="*", default=[], help="reference documents files or globs")
    ap.add_argument("--out", required=True, help="output directory (one docs/ and kept/ part per input file)")
    add_dedup_arguments(ap, RULE_OPTIONS)
    ap.add_argument("--rounds", type=int, default=8, help="large-star/small-star rounds")
    ap.add_argument("--group-chunk", type=int, default=2000,
                    help="a join group holds at most about this many items (a key with more is split)")
    ap.add_argument("--band-parts", type=int, default=64,
                    help="partitions of the band keys (73 per page): a worker holds one at a time")
    ap.add_argument("-q", "--quiet", action="store_true")
    add_runner_args(ap, workers=1)
    return ap


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Run the dedup job; returns the stats written to OUT/stats.json."""
    args, beam_args = _parser().parse_known_args(argv)
    cfg = config_from_args(args)
    if args.band_parts < 1:
        raise SystemExit("pipelines.dedup: --band-parts must be at least 1")
    inputs, against = expand(args.input), expand(args.against) if args.against else []
    out = args.out
    with job_lock(out, "pipelines.dedup"):
        work = join(out, "_work")
        spill.remove(work)   # a killed run's leftovers
        p = make_pipeline(args, beam_args, test_pipeline)
        summaries, histogram, unconverged, counts = build(p, inputs, against, out, cfg, args.scope, args.rounds,
                                                          args.group_chunk, args.band_parts)
        small = {name: join(out, f"_{name}.jsonl") for name in ("summaries", "histogram", "unconverged",
                                                                 "candidates", "cap_docs")}
        summaries | "PutSummaries" >> PutSmall(small["summaries"])
        histogram | "PutHistogram" >> PutSmall(small["histogram"])
        unconverged | "PutUnconverged" >> PutSmall(small["unconverged"])
        counts["candidates"] | "PutCandidates" >> PutSmall(small["candidates"])
        counts["cap_docs"] | "PutCapDocs" >> PutSmall(small["cap_docs"])
        try:
            result = p.run()
            result.wait_until_finish()
        finally:
            spill.remove(work)

        parts = _read_small(small["summaries"])
        total, removed = {}, {}
        for s in parts:
            for src, (n, dup) in s["by_source"].items():
                total[src] = total.get(src, 0) + n
                removed[src] = removed.get(src, 0) + dup
        stats = {"config": cfg.to_dict(), "scope": args.scope, "rounds": args.rounds,
                 "documents": sum(total.values()), "kept": sum(s["kept"] for s in parts),
                 "cluster_size_histogram": sorted_bins(dict(_read_small(small["histogram"]))),
                 "output_shards": len(parts),
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
    counters. Beam 2.77's DirectRunner in multi_processing mode dropped chunks of a
    stage's input, with no error, in about half the runs of large joins
    (``pipelines.direct_fix`` guards that race; ``benchmarks/beam_shuffle_loss.py``).
    The counts stay as the net for any other loss: one counter increment per item."""
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
