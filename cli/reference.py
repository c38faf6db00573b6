"""``curate reference``: reference corpora (Wikipedia, WikiText, Gutenberg, JSONL) -> documents.

    curate reference --kind wikitext|wikipedia|gutenberg|jsonl PATH... -o OUT [--text-field F] [--source NAME]
"""

from __future__ import annotations

import argparse

from cli.common import eprint, open_output, report_input_errors
from curate.core.document import DocumentFormatError


def cmd_reference(args: argparse.Namespace) -> int:
    from curate.ingest.reference import read_reference

    writer = open_output("reference", args.output)
    if writer is None:
        return 2
    failed, errors = 0, []
    try:
        for path in args.paths:
            try:
                n = 0
                for doc in read_reference(args.kind, path, source=args.source, text_field=args.text_field,
                                          page_chars=args.page_chars, errors=errors):
                    if len(doc.text) >= args.min_chars:
                        writer.write(doc)
                        n += 1
                if not args.quiet:
                    eprint(f"{path}: {n} documents")
            except (OSError, EOFError, DocumentFormatError) as exc:
                failed += 1
                eprint(f"curate reference: error: {path}: {getattr(exc, 'strerror', None) or exc}")
    except BaseException:
        writer.abort()
        raise
    if failed == len(args.paths):
        # nothing could be read: no output at all rather than an empty one that looks like a result
        writer.abort()
        report_input_errors("reference", errors)
        return 1
    writer.close()
    report_input_errors("reference", errors)
    if not args.quiet:
        eprint(f"wrote {writer.count} documents to {args.output}")
    return 1 if failed or errors else 0


def add_reference_parser(sub) -> argparse.ArgumentParser:
    from curate.ingest.reference import KINDS

    r = sub.add_parser("reference", help="reference corpora (Wikipedia, WikiText, Gutenberg, JSONL) -> documents")
    r.add_argument("--kind", required=True, choices=KINDS, help="corpus format")
    r.add_argument("paths", nargs="+", help="input files")
    r.add_argument("-o", "--output", required=True, help="documents file: .parquet, .jsonl or .jsonl.gz")
    r.add_argument("--source", default="", help="source name (default: wikipedia, books, or the record's/file's)")
    r.add_argument("--text-field", default="text", help="text field of --kind jsonl records (default text)")
    r.add_argument("--page-chars", type=int, default=3000, help="Gutenberg page size in characters (default 3000)")
    r.add_argument("--min-chars", type=int, default=1, help="skip documents shorter than this")
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_reference)
    return r
