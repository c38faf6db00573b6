"""``curate read``: WARC/ARC/WET files -> documents (main-content text).
"""

from __future__ import annotations

import argparse
import json

from cli.common import eprint, finish, open_output
from curate.ingest.archive import add_max_record_argument, max_record_bytes
from curate.core.counters import Counters


def cmd_read(args: argparse.Namespace) -> int:
    from curate.core.progress import Progress
    from curate.ingest.archive import NotAnArchiveError
    from curate.ingest.records import default_source, read_archive

    counters = Counters()
    errors_fh = open(args.errors, "w", encoding="utf-8") if args.errors else None
    failed_files = 0
    progress = Progress("read", enabled=not args.quiet, show_kept=False)
    writer = open_output("read", args.output)
    if writer is None:
        return 2

    class Stop(Exception):
        pass

    try:
        for path in args.paths:
            file_errors: list = []

            def report(err, _file_errors=file_errors):
                _file_errors.append(err)
                if errors_fh is not None:
                    errors_fh.write(json.dumps(err.to_json()) + "\n")
                if args.strict:
                    raise Stop(str(err))

            source = args.source or default_source(path)
            try:
                for doc in read_archive(path, report, counters, source=source,
                                        max_record_bytes=max_record_bytes(args.max_record_mb)):
                    writer.write(doc)
                    progress.update(kept=True)
                counters.inc("read:files")
            except (NotAnArchiveError, OSError) as exc:
                counters.inc("read:files_failed")
                msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
                if isinstance(exc, OSError) and exc.strerror:
                    msg = f"{path}: {exc.strerror}"
                report_line = {"file": str(path), "offset": 0, "reason": msg}
                if errors_fh is not None:
                    errors_fh.write(json.dumps(report_line) + "\n")
                eprint(f"curate read: error: {msg}")
                failed_files += 1
                if args.strict:
                    raise Stop(msg)
                continue
            if file_errors:
                failed_files += 1
                first = file_errors[0]
                more = f" (+{len(file_errors) - 1} more)" if len(file_errors) > 1 else ""
                eprint(f"curate read: error: {path}: offset {first.offset}: {first.reason}{more}")
    except Stop as exc:
        eprint(f"curate read: error: {exc} (--strict: stopping, no output written)")
        writer.abort()
        if errors_fh:
            errors_fh.close()
        return 1
    if errors_fh is not None:
        errors_fh.close()
    if counters["read:files"] == 0 and writer.count == 0:
        # no input could be read: no output (an empty file would look like a result)
        writer.abort()
        return 1
    writer.close()
    finish(args.output, counters, {"inputs": [str(p) for p in args.paths], "output": str(args.output)},
           f"read: {writer.count} documents -> {args.output}", args.quiet, [progress.done_line()])
    return 1 if failed_files else 0


def add_read_parser(sub) -> argparse.ArgumentParser:
    """Add ``read`` to an argparse subparsers object."""
    r = sub.add_parser("read", help="WARC/ARC/WET files -> documents (main-content text)")
    r.add_argument("paths", nargs="+", help="archive files (.warc, .warc.gz, .arc, .arc.gz, .wet.gz)")
    r.add_argument("-o", "--output", required=True, help="documents file: .parquet, .jsonl or .jsonl.gz")
    r.add_argument("--errors", help="write every problem (file, offset, reason) to this JSONL file")
    r.add_argument("--strict", action="store_true", help="stop at the first error")
    r.add_argument("--source", default="", help="source name for the documents (default: from file name)")
    add_max_record_argument(r)
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_read)
    return r
