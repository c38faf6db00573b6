"""``curate filter``: language id and the heuristic filters over documents files.
"""

from __future__ import annotations

import argparse

from cli.common import eprint, finish, report_input_errors
from curate.core.counters import Counters


def cmd_filter(args: argparse.Namespace) -> int:
    from curate.core.document import DocumentFormatError, DocumentWriter, read_documents
    from curate.core.progress import Progress
    from curate.filters.stage import FilterStage, StageConfig

    try:
        config = StageConfig.preset(args.preset)
    except ValueError as exc:
        eprint(f"curate filter: error: {exc}")
        return 2
    if args.languages:
        config.langid.languages = tuple(x.strip() for x in args.languages.split(",") if x.strip())
    if args.lang_threshold is not None:
        config.langid.threshold = args.lang_threshold
    counters = Counters()
    stage = FilterStage(config)
    progress = Progress("filter", enabled=not args.quiet)
    input_errors: list = []
    try:
        with DocumentWriter(args.output) as writer:
            for path in args.input:
                for doc in read_documents(path, errors=input_errors):
                    kept = stage(doc, counters)
                    progress.update(kept=kept is not None)
                    if kept is not None:
                        writer.write(kept)
    except (DocumentFormatError, OSError) as exc:
        eprint(f"curate filter: error: {exc}")
        return 1
    report_input_errors("filter", input_errors)
    counters.inc("filter:input_errors", len(input_errors))
    finish(args.output, counters, {"config": config.to_dict(), "inputs": [str(p) for p in args.input]},
           f"filter: {writer.count} kept -> {args.output} (stats: {{stats}})", args.quiet, [progress.done_line()])
    return 1 if input_errors else 0


def add_filter_parser(sub) -> argparse.ArgumentParser:
    """Add ``filter`` to an argparse subparsers object."""
    f = sub.add_parser("filter", help="language id + heuristic filters")
    f.add_argument("-i", "--input", required=True, action="extend", nargs="+", help="documents files")
    f.add_argument("-o", "--output", required=True, help="kept documents (.parquet/.jsonl/.jsonl.gz)")
    f.add_argument("--preset", default="gpt3",
                   help="filter preset: gpt3 (default) or filters:<all|c4|gopher|fineweb|none> (one heuristic set)")
    f.add_argument("--languages", help="comma-separated languages to keep (default: en)")
    f.add_argument("--lang-threshold", type=float, help="minimum language score (default 0.65)")
    f.add_argument("-q", "--quiet", action="store_true")
    f.set_defaults(func=cmd_filter)
    return f
