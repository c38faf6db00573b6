"""``curate filter``: language id and the heuristic filters over documents files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import eprint
from curate.core.counters import Counters, summary_table, write_stats


def cmd_filter(args: argparse.Namespace) -> int:
    from curate.core.document import DocumentFormatError, DocumentWriter, read_documents
    from curate.core.progress import Progress
    from curate.filters.stage import FilterStage, StageConfig

    config = StageConfig.preset(args.preset)
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
    for err in input_errors:
        eprint(f"curate filter: error: {err['file']}:{err['line']}: {err['reason']}")
    counters.inc("filter:input_errors", len(input_errors))
    stats_path = Path(str(args.output) + ".stats.json")
    write_stats(stats_path, counters, {"config": config.to_dict(), "inputs": [str(p) for p in args.input]})
    if not args.quiet:
        eprint(progress.done_line())
        eprint(summary_table(f"filter: {writer.count} kept -> {args.output} (stats: {stats_path})", counters))
    return 1 if input_errors else 0


def add_filter_parser(sub) -> argparse.ArgumentParser:
    """Add ``filter`` to an argparse subparsers object."""
    f = sub.add_parser("filter", help="language id + heuristic filters")
    f.add_argument("-i", "--input", required=True, nargs="+", help="documents files")
    f.add_argument("-o", "--output", required=True, help="kept documents (.parquet/.jsonl/.jsonl.gz)")
    f.add_argument("--preset", default="gpt3", help="filter preset: gpt3 (default) or tiny")
    f.add_argument("--languages", help="comma-separated languages to keep (default: en)")
    f.add_argument("--lang-threshold", type=float, help="minimum language score (default 0.65)")
    f.add_argument("-q", "--quiet", action="store_true")
    f.set_defaults(func=cmd_filter)
    return f
