"""The ``curate`` command line.

Subcommands (forms other tools and tests rely on):

  curate read PATH... -o OUT [--errors ERRORS.jsonl] [--strict] [--source NAME]
  curate html2text            JSONL {"id","url","html"} on stdin -> {"id","text"} on stdout
  curate filter -i DOCS -o OUT [--languages en] [--lang-threshold 0.65] [--preset gpt3|tiny]
  curate reference --kind wikipedia|wikitext|gutenberg|jsonl PATH... -o OUT
  curate quality train|score|evaluate ...   (see classifiers/cli.py)
  curate dedup -i DOCS -o OUT [--threshold 0.8] [--against REF_DOCS]
  curate decontaminate --benchmark FILE... -i DOCS -o OUT [--report REPORT.json]
  curate shards build|inspect ...           (see curate/shards_cli.py)

Expected bad input never prints a traceback: one line naming the file and the
problem goes to stderr and the exit status says whether anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from curate.stats import Counters, summary_table, write_stats


def _eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- read

def cmd_read(args: argparse.Namespace) -> int:
    from curate.archive import NotAnArchiveError
    from curate.document import DocumentFormatError, DocumentWriter
    from curate.ingest import default_source, read_archive
    from curate.progress import Progress

    counters = Counters()
    errors_fh = open(args.errors, "w", encoding="utf-8") if args.errors else None
    failed_files = 0
    progress = Progress("read", enabled=not args.quiet, show_kept=False)
    try:
        writer = DocumentWriter(args.output)
    except DocumentFormatError as exc:
        _eprint(f"curate read: error: {exc}")
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
                for doc in read_archive(path, report, counters, source=source):
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
                _eprint(f"curate read: error: {msg}")
                failed_files += 1
                if args.strict:
                    raise Stop(msg)
                continue
            if file_errors:
                failed_files += 1
                first = file_errors[0]
                more = f" (+{len(file_errors) - 1} more)" if len(file_errors) > 1 else ""
                _eprint(f"curate read: error: {path}: offset {first.offset}: {first.reason}{more}")
    except Stop as exc:
        _eprint(f"curate read: error: {exc} (--strict: stopping, no output written)")
        writer.abort()
        if errors_fh:
            errors_fh.close()
        return 1
    writer.close()
    if errors_fh is not None:
        errors_fh.close()
    stats_path = Path(str(args.output) + ".stats.json")
    write_stats(stats_path, counters, {"inputs": [str(p) for p in args.paths], "output": str(args.output)})
    if not args.quiet:
        _eprint(progress.done_line())
        _eprint(summary_table(f"read: {writer.count} documents -> {args.output}", counters))
    return 1 if failed_files else 0


# --------------------------------------------------------------------------- html2text

def cmd_html2text(args: argparse.Namespace) -> int:
    from curate.extract import html_to_text

    status = 0
    out = sys.stdout
    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or "html" not in obj:
                raise ValueError("expected an object with an 'html' field")
        except ValueError as exc:
            _eprint(f"curate html2text: error: stdin:{lineno}: {exc}")
            status = 1
            continue
        html = obj.get("html") or ""
        failures: list[Exception] = []
        text = html_to_text(html if isinstance(html, str) else str(html), obj.get("url"), on_error=failures.append)
        if failures:
            # the line is still written (empty text) so the output stays aligned with the input
            _eprint(f"curate html2text: error: stdin:{lineno}: extraction failed ({failures[0]})")
            status = 1
        out.write(json.dumps({"id": obj.get("id"), "text": text}, ensure_ascii=False) + "\n")
    out.flush()
    return status


# --------------------------------------------------------------------------- filter

def cmd_filter(args: argparse.Namespace) -> int:
    from curate.annotate import FilterStage, StageConfig
    from curate.document import DocumentFormatError, DocumentWriter, read_documents
    from curate.progress import Progress

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
        _eprint(f"curate filter: error: {exc}")
        return 1
    for err in input_errors:
        _eprint(f"curate filter: error: {err['file']}:{err['line']}: {err['reason']}")
    counters.inc("filter:input_errors", len(input_errors))
    stats_path = Path(str(args.output) + ".stats.json")
    write_stats(stats_path, counters, {"config": config.to_dict(), "inputs": [str(p) for p in args.input]})
    if not args.quiet:
        _eprint(progress.done_line())
        _eprint(summary_table(f"filter: {writer.count} kept -> {args.output} (stats: {stats_path})", counters))
    return 1 if input_errors else 0


# --------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="curate", description="Web archives to a clean pretraining corpus.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("read", help="WARC/ARC/WET files -> documents (main-content text)")
    r.add_argument("paths", nargs="+", help="archive files (.warc, .warc.gz, .arc, .arc.gz, .wet.gz)")
    r.add_argument("-o", "--output", required=True, help="documents file: .parquet, .jsonl or .jsonl.gz")
    r.add_argument("--errors", help="write every problem (file, offset, reason) to this JSONL file")
    r.add_argument("--strict", action="store_true", help="stop at the first error")
    r.add_argument("--source", default="", help="source name for the documents (default: from file name)")
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_read)

    h = sub.add_parser("html2text", help='JSONL {"id","url","html"} on stdin -> {"id","text"} on stdout')
    h.set_defaults(func=cmd_html2text)

    f = sub.add_parser("filter", help="language id + heuristic filters")
    f.add_argument("-i", "--input", required=True, nargs="+", help="documents files")
    f.add_argument("-o", "--output", required=True, help="kept documents (.parquet/.jsonl/.jsonl.gz)")
    f.add_argument("--preset", default="gpt3", help="filter preset: gpt3 (default) or tiny")
    f.add_argument("--languages", help="comma-separated languages to keep (default: en)")
    f.add_argument("--lang-threshold", type=float, help="minimum language score (default 0.65)")
    f.add_argument("-q", "--quiet", action="store_true")
    f.set_defaults(func=cmd_filter)

    # Later stages keep their handlers beside their code; registering them is
    # cheap (their heavy imports happen inside the handlers).
    from classifiers.cli import add_quality_parser, add_reference_parser
    from curate.dedup.cli import add_decontaminate_parser, add_dedup_parser
    from curate.shards_cli import add_shards_parser

    add_reference_parser(sub)
    add_quality_parser(sub)
    add_dedup_parser(sub)
    add_decontaminate_parser(sub)
    add_shards_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _eprint("curate: interrupted")
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
