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
from dataclasses import replace
from pathlib import Path

from cli.common import eprint, finish, report_input_errors
from curate.core.counters import Counters
from curate.dedup.config import add_dedup_arguments


def cmd_dedup(args: argparse.Namespace) -> int:
    from curate.core.document import DocumentFormatError
    from curate.dedup.config import config_from_args
    from curate.dedup.core import DedupError, dedup_files
    from curate.dedup.minhash import s_curve_table

    try:
        cfg = config_from_args(args)
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
    report_input_errors("dedup", errors)
    if args.pairs:
        with open(args.pairs, "w", encoding="utf-8") as fh:
            for a, b, j, c in res.pairs:
                fh.write(json.dumps({"a": a, "b": b, "jaccard": round(j, 4), "containment": round(c, 4)}) + "\n")
    counters.inc("dedup:input_errors", len(errors))
    jb, jr = cfg.jaccard_index()
    finish(args.output, counters, {**res.stats, "inputs": [str(p) for p in args.input],
                                   "against": [str(p) for p in args.against or []]},
           f"dedup: {res.stats['documents']} documents, {res.stats['kept']} kept -> {args.output} (stats: {{stats}})",
           args.quiet, [s_curve_table(cfg).replace("LSH s-curve", "containment index s-curve (content shingles)"),
                        s_curve_table(replace(cfg, bands=jb, rows=jr)).replace("LSH s-curve", "Jaccard index s-curve")])
    return 1 if errors else 0


def add_dedup_parser(sub) -> argparse.ArgumentParser:
    """Add ``dedup`` to an argparse subparsers object."""
    p = sub.add_parser("dedup", help="URL, exact and MinHash LSH near-duplicate removal")
    p.add_argument("-i", "--input", required=True, action="extend", nargs="+", help="documents files (.parquet/.jsonl/.jsonl.gz)")
    p.add_argument("-o", "--output", required=True,
                   help="every input document with metadata.cluster and metadata.duplicate")
    p.add_argument("--kept", help="also write the kept (non-duplicate) documents here")
    p.add_argument("--against", action="extend", nargs="+", help="reference documents: input near-duplicating them is removed")
    add_dedup_arguments(p)
    p.add_argument("--pairs", help="write the verified pairs (JSONL) here")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_dedup)
    return p
