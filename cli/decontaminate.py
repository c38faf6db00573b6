"""``curate decontaminate``: remove benchmark 13-gram overlaps (GPT-3 Appendix C).

    curate decontaminate --benchmark FILE... -i DOCS... -o OUT [--report REPORT.json]

Bad input is one line on stderr naming the file, exit status 1, no traceback;
a stats JSON is written beside OUT (``OUT.stats.json``) and a summary printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import eprint, finish, report_input_errors
from curate.core.files import write_json


def cmd_decontaminate(args: argparse.Namespace) -> int:
    from curate.core.document import DocumentFormatError, DocumentWriter, read_documents
    from curate.decontam.overlap import BenchmarkError, DecontamConfig, Decontaminator, load_benchmarks

    try:
        bench = load_benchmarks(args.benchmark)
    except BenchmarkError as exc:
        eprint(f"curate decontaminate: error: {exc}")
        return 1
    dec = Decontaminator.build(bench, DecontamConfig())
    errors: list = []
    try:
        for path in args.input:
            if not Path(path).exists():
                raise FileNotFoundError(f"{path}: no such documents file")
        # pass 1 (n-gram document frequencies), then pass 2 (cleaning): two
        # streaming reads rather than holding the corpus
        dec.count(d for path in args.input for d in read_documents(path, errors=[]))
        with DocumentWriter(args.output) as w:
            for path in args.input:
                for d in dec.clean(read_documents(path, errors=errors)):
                    w.write(d)
    except (DocumentFormatError, OSError) as exc:
        eprint(f"curate decontaminate: error: {exc}")
        return 1
    report_input_errors("decontaminate", errors)
    report = dec.report()
    if args.report:
        write_json(args.report, report)
    dec.counters.inc("decontam:input_errors", len(errors))
    finish(args.output, dec.counters,
           {"config": dec.config.to_dict(), "index_ngrams": dec.size,
            "benchmarks": {k: {kk: vv for kk, vv in v.items() if kk != "ngrams"} for k, v in report.items()}},
           f"decontaminate: {w.count} documents -> {args.output} (stats: {{stats}})", args.quiet)
    if not args.quiet:
        for name, r in report.items():
            eprint(f"  {name}: {r['docs_touched']} documents touched, {r['docs_dropped']} dropped, "
                   f"{r['chars_removed']:,} characters removed, {r['distinct_ngrams']} colliding 13-grams")
    return 1 if errors else 0


def add_decontaminate_parser(sub) -> argparse.ArgumentParser:
    """Add ``decontaminate`` to an argparse subparsers object."""
    p = sub.add_parser("decontaminate", help="remove benchmark 13-gram overlaps (GPT-3 Appendix C)")
    p.add_argument("--benchmark", required=True, action="extend", nargs="+", help="benchmark JSONL files (every string field is used)")
    p.add_argument("-i", "--input", required=True, action="extend", nargs="+", help="documents files")
    p.add_argument("-o", "--output", required=True, help="cleaned documents (dropped ones omitted)")
    p.add_argument("--report", help="per-benchmark report JSON (documents touched, characters, n-grams)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_decontaminate)
    return p
