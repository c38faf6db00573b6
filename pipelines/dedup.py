"""The dedup job on Beam: same stages and same clusters as ``curate dedup``, at scale.

    python -m pipelines.dedup --input 'out/sample/filter/docs/*.parquet' --out out/sample/dedup
    python -m pipelines.dedup --input docs.parquet --against webtext.parquet --runner DataflowRunner ...

Stages (each a thin DoFn over a ``curate.dedup`` function)::

    read -> URL: CombinePerKey(newest capture) -> join -> URL winners
         -> exact: CombinePerKey(best rank key per normalised-text hash) -> join -> leaders
         -> signatures (curate.dedup.minhash.signatures, batched per bundle) -> band keys -> GroupByKey
         -> pairs per bucket (bucket_pairs, estimate) -> [exact containment check: join shingles and
            where each first occurs, site templates over both hosts, the opening (copy_containment)]
         -> verified edges -> R x (large-star, small-star) rounds, each a GroupByKey
         -> edges grouped by component -> representatives (curate.dedup.cluster, as on one machine)
         -> node -> representative -> joined back: leader -> URL winner -> document
         -> write docs (every document, metadata.cluster / metadata.duplicate), kept docs, stats

No step holds the graph: buckets, star neighbourhoods and joins are per key;
the largest unit is one component's edge list (a component is a set of pages
that copy each other, typically a handful; a template shared by a whole site
makes a large one, which is still edges, 5 numbers each, on one worker).
The one-machine path (``curate.dedup.dedup_documents``) runs the same rules
with numpy and the same representatives function; ``tests/test_dedup.py``
checks both give the same clusters. Star rounds are unrolled (``--rounds``, default 8: each round at
least halves the longest path in practice); a final check counts nodes that
are still not attached to their component's root and the job exits 1 if any,
asking for more rounds, rather than writing wrong clusters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import zlib
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from curate.core.document import (
    Document,
    DocumentFormatError,
    DocumentWriter,
    read_documents,
)
from curate.core.words import shingle_positions
from curate.dedup.cluster import large_star, rank_key, representatives, small_star
from curate.dedup.config import DedupConfig
from curate.dedup.core import newer, size_bin, sorted_bins, text_key
from curate.dedup.minhash import band_keys, bucket_pairs, estimate, signatures
from curate.dedup.rules import copy_containment, is_duplicate, needs_exact
from curate.dedup.templates import host_key, set_key, shingle_counts, site_counts
from curate.ingest.sources import SourceError
from pipelines.fileio import expand, get, join, local_copy, put
from pipelines.runner import add_runner_args, pipeline_options

NAMESPACE = "curate"


def _count(name: str, n: int = 1) -> None:
    Metrics.counter(NAMESPACE, name).inc(n)


# --------------------------------------------------------------------------- DoFns

class ReadDocsFn(beam.DoFn):
    """A documents file -> Documents (bad lines counted and skipped)."""

    def process(self, path: str):
        errors: list = []
        try:
            with local_copy(path) as local:
                for d in read_documents(local, errors=errors):
                    yield d
        except (DocumentFormatError, OSError) as exc:
            # an unreadable file is counted and named; its readable part is kept
            _count("dedup:files_failed")
            print(f"pipelines.dedup: error: {exc}", file=sys.stderr)
        _count("dedup:input_errors", len(errors))


class NewestFn(beam.CombineFn):
    """URL stage combiner: the newest capture (then smallest id), as (created, id)."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, doc):
        return self._pick(acc, (doc.created, doc.id))

    def merge_accumulators(self, accs):
        best = None
        for a in accs:
            best = self._pick(best, a)
        return best

    def extract_output(self, acc):
        return acc[1]

    @staticmethod
    def _pick(a, b):
        if a is None:
            return b
        if b is None:
            return a
        da, db = Document(id=a[1], text="", created=a[0]), Document(id=b[1], text="", created=b[0])
        return a if newer(da, db) is da else b


def _url_key(d: Document) -> str:
    return "url:" + d.url if d.url else "id:" + d.id


def _node(d: Document, ref: bool) -> tuple:
    return rank_key(d.id, d.metadata.get("quality"), ref)


class SignatureFn(beam.DoFn):
    """(node, doc) -> (node, (signature, size, source)), computed in batches per bundle.

    Elements are buffered (node, text, source) and signed ``batch`` at a time
    with ``curate.dedup.minhash.signatures`` (the batched path: the same
    signatures as one-by-one ``signature``, about twice as fast); the rest of
    the buffer is flushed in ``finish_bundle``. Every element is in the global
    window (the job is batch), so flushed outputs are re-windowed there.
    """

    def __init__(self, cfg: DedupConfig, batch: int = 256):
        self.cfg, self.batch = cfg, batch

    def start_bundle(self):
        self._buf: list[tuple] = []

    def process(self, element):
        node, doc = element
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
        sigs, sizes = signatures([t for _, t, _, _ in buf], self.cfg, batch=self.batch)
        _count("dedup:signatures", len(buf))
        for (node, _, source, host), sig, size in zip(buf, sigs, sizes.tolist()):
            yield node, (sig, int(size), source, host)


class BandKeysFn(beam.DoFn):
    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, element):
        node, (sig, size, source, host) = element
        if size == 0:
            return
        for b, key in enumerate(band_keys(sig, self.cfg).tolist()):
            yield (b, key), (node, sig, size, source, host)


class BucketPairsFn(beam.DoFn):
    """One band bucket -> duplicate edges, and pairs needing the exact containment check."""

    def __init__(self, cfg: DedupConfig, scope: str):
        self.cfg, self.scope = cfg, scope

    def process(self, element):
        _, members = element
        members = sorted(members, key=lambda m: m[0])  # node (rank-key) order, as on one machine
        if len(members) < 2:
            return
        if len(members) > self.cfg.max_bucket + 1:
            _count("dedup:buckets_capped")
        for a, b in bucket_pairs(members, self.cfg.max_bucket):
            ra, rb = a[0][0] == 0, b[0][0] == 0
            if ra and rb:
                continue  # reference-reference pairs change nothing
            if self.scope == "source" and not (ra or rb) and a[3] != b[3]:
                continue
            j, c = estimate(a[1], b[1], a[2], b[2])
            if j >= self.cfg.threshold:
                yield a[0], b[0], True, a[2], b[2]
            elif needs_exact(j, c, a[2], b[2], self.cfg):
                yield beam.pvalue.TaggedOutput("check", (a[0], b[0], a[2], b[2], a[4], b[4]))


class ExactCheckFn(beam.DoFn):
    """(pair, both pages' (shingle set, first positions), their site-template counts or None)
    -> an edge when the exact containment rule holds (curate.dedup.minhash.copy_containment)."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg

    def process(self, element):
        (a, b, sa, sb, ha, hb), (set_a, first_a), (set_b, first_b), counts = element
        c = copy_containment(set_a, first_a, set_b, first_b, counts, self.cfg, bool(ha) and ha == hb)
        _count("dedup:exact_containment_checks")
        if is_duplicate(0.0, c, sa, sb, self.cfg):
            yield a, b, False, sa, sb


def _large(element):
    node, nbrs = element
    return large_star(node, nbrs)


def _small(element):
    node, nbrs = element
    return small_star(node, nbrs)


def _both_ways(edge):
    u, v = edge
    return [(u, v), (v, u)]


def _to_larger(edge):
    u, v = edge
    return (u, v) if u > v else (v, u)


def _orient(edge):
    """(a, b, near, size_a, size_b) with a > b, as the component step expects."""
    a, b, near, sa, sb = edge
    return (a, b, near, sa, sb) if a > b else (b, a, near, sb, sa)


def _component_parents(element):
    """One component's edges -> (node, representative) for its removed nodes."""
    _, edges = element
    return list(representatives(edges, fixed=lambda node: node[0] == 0).items())


class AnnotateFn(beam.DoFn):
    """Document + (URL winner, exact leader, root node) -> annotated as on one machine."""

    def process(self, element):
        _, g = element
        for doc in g["doc"]:
            (winner, leader, root), = g["route"]
            rep_ref, rep_id = root[0] == 0, root[2]
            dup = rep_ref or rep_id != doc.id
            meta = dict(doc.metadata)
            meta["cluster"] = rep_id
            meta["duplicate"] = bool(dup)
            if dup:
                meta["duplicate_reason"] = ("url" if winner != doc.id else "exact" if leader != doc.id
                                            else "reference" if rep_ref else "near")
            if rep_ref:
                meta["duplicate_of_reference"] = True
            _count("docs")
            _count(f"dropped:{meta['duplicate_reason']}_duplicate" if dup else "kept")
            yield Document(doc.id, doc.text, doc.source, doc.url, doc.created, meta)


class WriteShardFn(beam.DoFn):
    """One output shard -> OUT/docs/part-N.parquet and OUT/kept/part-N.parquet.

    Parquet is built in the worker's own temp dir, then written through Beam's
    FileSystems with a temp name and rename, so OUT may be local or gs://.
    """

    def __init__(self, out: str):
        self.out = out

    def process(self, element):
        shard, docs = element
        docs = sorted(docs, key=lambda d: d.id)
        name = f"part-{shard:05d}.parquet"
        with tempfile.TemporaryDirectory() as tmp:
            for sub, keep in (("docs", lambda d: True), ("kept", lambda d: not d.metadata["duplicate"])):
                local = os.path.join(tmp, f"{sub}.parquet")
                with DocumentWriter(local) as w:
                    for d in docs:
                        if keep(d):
                            w.write(d)
                put(join(self.out, sub, name), Path(local).read_bytes())
        # a few numbers per shard, never per document: the driver reads every shard's summary
        by_source: dict[str, list[int]] = {}
        for d in docs:
            counts = by_source.setdefault(d.source, [0, 0])
            counts[0] += 1
            counts[1] += bool(d.metadata["duplicate"])
        yield {"docs": len(docs), "kept": sum(not d.metadata["duplicate"] for d in docs),
               "by_source": by_source}


# --------------------------------------------------------------------------- graph

def build(p, inputs: list[str], against: list[str], out: str, cfg: DedupConfig, scope: str = "all",
          rounds: int = 8, shards: int = 1):
    """Add the dedup job to ``p``; returns the PCollection of per-shard summaries."""
    docs = p | "Inputs" >> beam.Create(sorted(inputs)) | "Read" >> beam.ParDo(ReadDocsFn())
    refs = (p | "RefInputs" >> beam.Create(sorted(against)) | "ReadRefs" >> beam.ParDo(ReadDocsFn()))

    # URL: newest capture per URL (a combiner), joined back to the documents
    by_url = docs | "ByUrl" >> beam.Map(lambda d: (_url_key(d), d))
    url_win = by_url | "Newest" >> beam.CombinePerKey(NewestFn())
    url_map = ({"d": by_url, "w": url_win} | "UrlJoin" >> beam.CoGroupByKey()
               | "UrlMap" >> beam.FlatMap(lambda kv: [(d.id, kv[1]["w"][0]) for d in kv[1]["d"]]))
    winners = (({"d": docs | "DocById" >> beam.Map(lambda d: (d.id, d)), "m": url_map})
               | "WinJoin" >> beam.CoGroupByKey()
               | "Winners" >> beam.FlatMap(lambda kv: [d for d in kv[1]["d"] if kv[1]["m"][0] == d.id]))

    # exact: best rank key per (scope, normalised text), a combiner
    by_text = winners | "ByText" >> beam.Map(
        lambda d: ((d.source if scope == "source" else "", text_key(d.text)), d))
    lead = (by_text | "Ranks" >> beam.Map(lambda kv: (kv[0], (_node(kv[1], False), kv[1].id)))
            | "MinRank" >> beam.CombinePerKey(min))
    exact_map = ({"d": by_text, "l": lead} | "ExactJoin" >> beam.CoGroupByKey()
                 | "ExactMap" >> beam.FlatMap(lambda kv: [(d.id, kv[1]["l"][0]) for d in kv[1]["d"]]))
    leaders = (({"d": winners | "WinById" >> beam.Map(lambda d: (d.id, d)), "m": exact_map})
               | "LeadJoin" >> beam.CoGroupByKey()
               | "Leaders" >> beam.FlatMap(lambda kv: [(_node(d, False), d) for d in kv[1]["d"]
                                                       if kv[1]["m"][0][1] == d.id]))
    nodes = ((leaders, refs | "RefNodes" >> beam.Map(lambda d: (_node(d, True), d)))
             | "AllNodes" >> beam.Flatten())

    # near: signatures -> band buckets -> verified edges
    sigs = nodes | "Signatures" >> beam.ParDo(SignatureFn(cfg))
    buckets = sigs | "BandKeys" >> beam.ParDo(BandKeysFn(cfg)) | "Buckets" >> beam.GroupByKey()
    found = buckets | "Pairs" >> beam.ParDo(BucketPairsFn(cfg, scope)).with_outputs("check", main="edges")
    texts = nodes | "NodeText" >> beam.Map(lambda kv: (kv[0], kv[1].text))
    checks = found.check | "DistinctChecks" >> beam.Distinct()
    # each checked page is shingled once (with where each shingle first occurs,
    # for its opening); its shingles serve the site template and every
    # containment check it is in
    node_sets = (({"h": checks | "CheckedNodes" >> beam.FlatMap(lambda c: [(c[0], c[4]), (c[1], c[5])])
                   | "DistinctNodes" >> beam.Distinct(), "t": texts})
                 | "NodeJoin" >> beam.CoGroupByKey()
                 | "NodeShingles" >> beam.FlatMap(lambda kv, n=cfg.ngram: [
                     (kv[0], (kv[1]["h"][0], shingle_positions(kv[1]["t"][0], n)))] if kv[1]["h"] else []))
    shingles = node_sets | "Shingles" >> beam.Map(lambda kv: (kv[0], kv[1][1]))
    with_a = ({"p": checks | "KeyA" >> beam.Map(lambda c: (c[0], c)), "s": shingles} | "JoinA" >> beam.CoGroupByKey()
              | "SetsA" >> beam.FlatMap(lambda kv: [(c[1], (c, kv[1]["s"][0])) for c in kv[1]["p"]]))
    with_sets = ({"p": with_a, "s": shingles} | "JoinB" >> beam.CoGroupByKey()
                 | "SetsB" >> beam.FlatMap(lambda kv: [(c, sa, kv[1]["s"][0]) for c, sa in kv[1]["p"]]))
    # site templates: per host, how many of its checked pages hold each shingle
    # (curate.dedup.minhash.host_counts, the same pages as on one machine), at
    # most template_pages of them, picked by a combiner (no worker holds a whole
    # host); each check picks up the counts of its first host, then of its
    # second, looked up for its own two pages only, so no element carries a
    # whole host's counts
    host_pages = (node_sets
                  | "WithHost" >> beam.Filter(lambda kv: kv[1][0] != 0)
                  | "HostShingles" >> beam.Map(lambda kv: (kv[1][0], (set_key(kv[1][1][0]), kv[1][1][0]))))
    if cfg.template_pages > 0:
        host_pages = host_pages | "TemplatePages" >> beam.combiners.Top.SmallestPerKey(
            cfg.template_pages, key=lambda t: t[0])
    else:
        host_pages = host_pages | "ByHost" >> beam.GroupByKey()
    host_counts = host_pages | "HostCounts" >> beam.Map(
        lambda kv: (kv[0], shingle_counts([arr for _, arr in kv[1]])))
    templated = with_sets | "Templated" >> beam.Partition(
        lambda e, _: 0 if (cfg.template_docs and e[0][4] and e[0][5]) else 1, 2)
    with_host_a = ({"p": templated[0] | "KeyHostA" >> beam.Map(lambda e: (e[0][4], e)), "c": host_counts}
             | "CountsJoinA" >> beam.CoGroupByKey()
             | "CountsA" >> beam.FlatMap(lambda kv: [(e[0][5], (e, (kv[1]["c"] or [None])[0])) for e in kv[1]["p"]]))
    checked = (((({"p": with_host_a, "c": host_counts})
                 | "CountsJoinB" >> beam.CoGroupByKey()
                 | "CountsB" >> beam.FlatMap(lambda kv: [
                     e + (site_counts(e[1][0], e[2][0], e[0][4], e[0][5], {e[0][4]: ca, kv[0]: (kv[1]["c"] or [None])[0]}),)
                     for e, ca in kv[1]["p"]])),
                templated[1] | "NoTemplate" >> beam.Map(lambda e: e + (None,)))
               | "AllChecks" >> beam.Flatten()
               | "ExactCheck" >> beam.ParDo(ExactCheckFn(cfg)))
    verified = ((found.edges, checked) | "AllEdges" >> beam.Flatten()
                | "Orient" >> beam.Map(_orient) | "DistinctEdges" >> beam.Distinct())
    edges = verified | "Pairs2" >> beam.Map(lambda e: (e[0], e[1]))

    # connected components: unrolled large-star / small-star rounds
    for r in range(rounds):
        edges = (edges
                 | f"L{r}Both" >> beam.FlatMap(_both_ways) | f"L{r}Group" >> beam.GroupByKey()
                 | f"L{r}Star" >> beam.FlatMap(_large)
                 | f"S{r}Orient" >> beam.Map(_to_larger) | f"S{r}Group" >> beam.GroupByKey()
                 | f"S{r}Star" >> beam.FlatMap(_small)
                 | f"R{r}Orient" >> beam.Map(_to_larger) | f"R{r}Distinct" >> beam.Distinct())
    labels = edges | "Labels" >> beam.CombinePerKey(min)  # (node, root) for every non-root node
    # converged means every root is a root: no node is both somebody's root and labelled
    not_converged = (({"hi": labels, "lo": edges | "Roots" >> beam.Map(lambda e: (e[1], 1))})
                     | "CheckJoin" >> beam.CoGroupByKey()
                     | "Unconverged" >> beam.Filter(lambda kv: bool(kv[1]["hi"]) and bool(kv[1]["lo"]))
                     | "CountUnconverged" >> beam.combiners.Count.Globally())

    # representatives inside each component: its edges gathered on one worker
    # (keyed by the component's root), the same function as on one machine
    parents = (({"e": verified | "ByLarger" >> beam.Map(lambda e: (e[0], e)), "l": labels})
               | "EdgeRootJoin" >> beam.CoGroupByKey()
               | "EdgeRoot" >> beam.FlatMap(lambda kv: [(kv[1]["l"][0], e) for e in kv[1]["e"]])
               | "ByComponent" >> beam.GroupByKey()
               | "Representatives" >> beam.FlatMap(_component_parents))

    # route every document: id -> URL winner -> exact leader -> representative node
    leader_root = ({"n": leaders | "LeaderNode" >> beam.Map(lambda kv: (kv[0], kv[1].id)), "l": parents}
                   | "RootJoin" >> beam.CoGroupByKey()
                   | "LeaderRoot" >> beam.FlatMap(lambda kv: [(i, (kv[1]["l"] or [kv[0]])[0]) for i in kv[1]["n"]]))
    winner_route = ({"m": exact_map | "ByLeader" >> beam.Map(lambda kv: (kv[1][1], kv[0])), "r": leader_root}
                    | "WinnerJoin" >> beam.CoGroupByKey()
                    | "WinnerRoot" >> beam.FlatMap(lambda kv: [(w, (kv[0], kv[1]["r"][0])) for w in kv[1]["m"]]))
    route = ({"m": url_map | "ByWinner" >> beam.Map(lambda kv: (kv[1], kv[0])), "r": winner_route}
             | "RouteJoin" >> beam.CoGroupByKey()
             | "Route" >> beam.FlatMap(lambda kv: [(d, (kv[0],) + kv[1]["r"][0]) for d in kv[1]["m"]]))
    annotated = ({"doc": docs | "DocById2" >> beam.Map(lambda d: (d.id, d)), "route": route}
                 | "Assemble" >> beam.CoGroupByKey() | "Annotate" >> beam.ParDo(AnnotateFn()))
    summaries = (annotated
                 | "Shard" >> beam.Map(lambda d: (zlib.crc32(d.id.encode()) % shards, d))
                 | "ByShard" >> beam.GroupByKey() | "Write" >> beam.ParDo(WriteShardFn(out)))
    # cluster sizes are counted per cluster, then per size bin: no step sees every document
    histogram = (annotated
                 | "ClusterOne" >> beam.Map(lambda d: (d.metadata["cluster"], 1))
                 | "ClusterSize" >> beam.CombinePerKey(sum)
                 | "SizeBin" >> beam.Map(lambda kv: size_bin(kv[1]))
                 | "BinCount" >> beam.combiners.Count.PerElement())
    return summaries, histogram, not_converged


# --------------------------------------------------------------------------- driver

SHARD_INPUT_BYTES = 256 << 20


def auto_shards(paths: list[str]) -> int:
    """Output shards for these inputs: one per 256 MB, since one worker holds a shard's documents."""
    total = sum(m.size_in_bytes for r in FileSystems.match(paths) for m in r.metadata_list) if paths else 0
    return max(1, -(-total // SHARD_INPUT_BYTES))

def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pipelines.dedup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", nargs="+", required=True, help="documents files or globs")
    ap.add_argument("--against", nargs="*", default=[], help="reference documents files or globs")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--containment", type=float, default=0.4)
    ap.add_argument("--template-docs", type=int, default=4, help="site-template rule (0: off)")
    ap.add_argument("--template-pages", type=int, default=64,
                    help="at most this many checked pages of a host count towards its template (0: all)")
    ap.add_argument("--opening", type=int, default=50,
                    help="shingles of the smaller page's opening a partial or same-host containment join needs "
                         "10%% of (0: off)")
    ap.add_argument("--scope", choices=["all", "source"], default="all")
    ap.add_argument("--rounds", type=int, default=8, help="large-star/small-star rounds")
    ap.add_argument("--shards", type=int, default=0,
                    help="output Parquet shards (default: one per 256 MB of input, so a shard fits a worker)")
    ap.add_argument("-q", "--quiet", action="store_true")
    add_runner_args(ap, workers=1)
    return ap


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Run the dedup job; returns the stats written to OUT/stats.json."""
    args, beam_args = _parser().parse_known_args(argv)
    cfg = DedupConfig(threshold=args.threshold, containment=args.containment, template_docs=args.template_docs,
                      template_pages=args.template_pages, opening=args.opening)
    inputs, against = expand(args.input), expand(args.against) if args.against else []
    out = args.out
    p = test_pipeline or beam.Pipeline(options=pipeline_options(args, beam_args))
    shards = args.shards or auto_shards(inputs + against)
    summaries, histogram, unconverged = build(p, inputs, against, out, cfg, args.scope, args.rounds, shards)
    # the job's small results go to OUT through Beam's FileSystems (a worker
    # writes them; the driver reads them back), so OUT may be gs:// on Dataflow
    summary_path = join(out, "_summaries.jsonl")
    (summaries | "SummaryJson" >> beam.Map(json.dumps)
     | "SummaryOne" >> beam.combiners.ToList()
     | "SummaryWrite" >> beam.Map(
         lambda xs, path=summary_path: put(path, "\n".join(sorted(xs)).encode())))
    hist_path = join(out, "_histogram.json")
    (histogram | "HistOne" >> beam.combiners.ToList()
     | "HistWrite" >> beam.Map(lambda xs, path=hist_path: put(path, json.dumps(sorted(xs)).encode())))
    conv_path = join(out, "_unconverged.txt")
    unconverged | "ConvWrite" >> beam.Map(lambda n, path=conv_path: put(path, str(n).encode()))
    p.run().wait_until_finish()
    parts = [json.loads(x) for x in get(summary_path).decode().splitlines() if x.strip()]
    total, removed = {}, {}
    for s in parts:
        for src, (n, dup) in s["by_source"].items():
            total[src] = total.get(src, 0) + n
            removed[src] = removed.get(src, 0) + dup
    histogram = sorted_bins(dict(json.loads(get(hist_path).decode()))) if FileSystems.exists(hist_path) else {}
    unconv = int(get(conv_path).decode() or 0)
    stats = {"config": cfg.to_dict(), "scope": args.scope, "rounds": args.rounds,
             "documents": sum(total.values()), "kept": sum(s["kept"] for s in parts),
             "cluster_size_histogram": histogram, "output_shards": shards,
             "removed_share_by_source": {k: round(removed[k] / n, 6) for k, n in sorted(total.items())},
             "unconverged_nodes": unconv}
    put(join(out, "stats.json"), (json.dumps(stats, indent=1, sort_keys=True) + "\n").encode())
    FileSystems.delete([p for p in (summary_path, hist_path, conv_path) if FileSystems.exists(p)])
    if not args.quiet:
        print(f"dedup: {stats['documents']} documents, {stats['kept']} kept -> {out}", file=sys.stderr)
    return stats


def main(argv=None) -> int:
    import logging

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    try:
        stats = run(argv)
    except SourceError as exc:
        print(f"pipelines.dedup: error: {exc}", file=sys.stderr)
        return 2
    if stats["unconverged_nodes"]:
        print(f"pipelines.dedup: error: components not converged after the given rounds "
              f"({stats['unconverged_nodes']} nodes); rerun with more --rounds", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
