"""``curate dedup``: URL, exact and MinHash LSH near-duplicate removal.

    curate dedup -i DOCS... -o OUT [--threshold 0.8] [--containment 0.4] [--template-docs 4] [--template-pages 64]
                 [--opening 50] [--against REF_DOCS...]
                 [--scope all|source] [--kept KEPT] [--pairs PAIRS.jsonl]

Bad input is one line on stderr naming the
file, exit status 1 (2 for unusable settings), no traceback; a stats JSON is
written beside OUT (``OUT.stats.json``) and a summary table printed.

>>> import argparse
>>> ap = argparse.ArgumentParser(); sub = ap.add_subparsers(dest="command")
>>> _ = add_dedup_parser(sub)
>>> ap.parse_args(["dedup", "-i", "a.jsonl", "-o", "b.jsonl"]).threshold
0.8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import eprint
from curate.core.counters import Counters, summary_table, write_stats


def cmd_dedup(args: argparse.Namespace) -> int:
    from curate.core.document import DocumentFormatError
    from curate.dedup.config import DedupConfig
    from curate.dedup.core import DedupError, dedup_files
    from curate.dedup.minhash import s_curve_table

    try:
        cfg = DedupConfig(num_perm=args.num_perm, ngram=args.ngram, bands=args.bands, rows=args.rows,
                          threshold=args.threshold, containment=args.containment,
                          template_docs=args.template_docs, template_pages=args.template_pages,
                          opening=args.opening)
    except ValueError as exc:
        eprint(f"curate dedup: error: {exc}")
        return 2
    for what, paths in (("documents", args.input), ("reference documents", args.against or [])):
        for path in paths:
            if not Path(path).exists():
                eprint(f"curate dedup: error: {path}: no such {what} file")
                return 1
    counters = Counters()
    errors: list = []
    # streaming: the documents are read again rather than held (1M documents
    # in ~1 GB), see curate.dedup.core.dedup_files
    try:
        res = dedup_files(args.input, args.output, cfg, against=args.against or [], scope=args.scope,
                          kept=args.kept, counters=counters, errors=errors,
                          progress=None if args.quiet else eprint)
    except DedupError as exc:
        eprint(f"curate dedup: error: {', '.join(map(str, args.input))}: {exc}")
        return 1
    except (DocumentFormatError, OSError) as exc:
        eprint(f"curate dedup: error: {exc}")
        return 1
    for err in errors:
        eprint(f"curate dedup: error: {err['file']}:{err['line']}: {err['reason']}")
    if args.pairs:
        with open(args.pairs, "w", encoding="utf-8") as fh:
            for a, b, j, c in res.pairs:
                fh.write(json.dumps({"a": a, "b": b, "jaccard": round(j, 4), "containment": round(c, 4)}) + "\n")
    counters.inc("dedup:input_errors", len(errors))
    stats_path = Path(str(args.output) + ".stats.json")
    write_stats(stats_path, counters, {**res.stats, "inputs": [str(p) for p in args.input],
                                       "against": [str(p) for p in args.against or []]})
    if not args.quiet:
        eprint(s_curve_table(cfg))
        eprint(summary_table(f"dedup: {res.stats['documents']} documents, {res.stats['kept']} kept -> {args.output} "
                       f"(stats: {stats_path})", counters))
    return 1 if errors else 0


def add_dedup_parser(sub) -> argparse.ArgumentParser:
    """Add ``dedup`` to an argparse subparsers object."""
    p = sub.add_parser("dedup", help="URL, exact and MinHash LSH near-duplicate removal")
    p.add_argument("-i", "--input", required=True, nargs="+", help="documents files (.parquet/.jsonl/.jsonl.gz)")
    p.add_argument("-o", "--output", required=True,
                   help="every input document with metadata.cluster and metadata.duplicate")
    p.add_argument("--kept", help="also write the kept (non-duplicate) documents here")
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard for near-duplicates (0.8)")
    p.add_argument("--containment", type=float, default=0.4,
                   help="share of the smaller document found in the larger (0.4; 1.1 turns the rule off)")
    p.add_argument("--template-docs", type=int, default=4,
                   help="containment between pages with URLs ignores shingles held by this many checked pages "
                        "of their host (both hosts together when they differ): the site's navigation "
                        "(4; 0 turns it off)")
    p.add_argument("--template-pages", type=int, default=64,
                   help="at most this many checked pages of a host count towards its template (64; 0: all)")
    p.add_argument("--opening", type=int, default=50,
                   help="a containment join of a page less than half contained, or of two pages of one host, "
                        "needs 10%% of the smaller page's first N shingles in the larger (50; 0 turns it off)")
    p.add_argument("--against", nargs="+", help="reference documents: input near-duplicating them is removed")
    p.add_argument("--scope", choices=["all", "source"], default="all",
                   help="pair documents across sources (all) or within each source only")
    p.add_argument("--ngram", type=int, default=5, help="words per shingle (5)")
    p.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (128)")
    p.add_argument("--bands", type=int, default=64, help="LSH bands (64)")
    p.add_argument("--rows", type=int, default=2, help="LSH rows per band (2)")
    p.add_argument("--pairs", help="write the verified pairs (JSONL) here")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_dedup)
    return p
