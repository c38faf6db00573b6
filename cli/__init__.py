"""The ``curate`` command line.

Subcommands (forms other tools and tests rely on):

  curate read PATH... -o OUT [--errors ERRORS.jsonl] [--strict] [--source NAME]
  curate html2text            JSONL {"id","html"} on stdin -> {"id","text"} on stdout
  curate filter -i DOCS -o OUT [--languages en] [--lang-threshold 0.65] [--preset gpt3|filters:NAME]
  curate reference --kind wikipedia|wikitext|gutenberg|jsonl PATH... -o OUT
  curate quality train|score|evaluate ...   (see cli/quality.py)
  curate dedup -i DOCS -o OUT [--threshold 0.8] [--against REF_DOCS]
  curate decontaminate --benchmark FILE... -i DOCS -o OUT [--report REPORT.json]
  curate shards build|inspect ...           (see cli/shards.py)

Expected bad input never prints a traceback: one line naming the file and the
problem goes to stderr and the exit status says whether anything failed.
"""

from __future__ import annotations

import argparse
import sys

from cli.common import eprint
from curate.core.document import abort_open_writers
from curate.core.files import OutputError
from cli.decontaminate import add_decontaminate_parser
from cli.dedup import add_dedup_parser
from cli.filter import add_filter_parser
from cli.html2text import add_html2text_parser
from cli.quality import add_quality_parser
from cli.read import add_read_parser
from cli.reference import add_reference_parser
from cli.shards import add_shards_parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="curate", description="Web archives to a clean pretraining corpus.")
    sub = p.add_subparsers(dest="command", required=True)
    # One module a subcommand, in flow order; registering them is cheap because
    # each handler imports its heavy libraries itself.
    for add in (add_read_parser, add_html2text_parser, add_filter_parser, add_reference_parser,
                add_quality_parser, add_dedup_parser, add_decontaminate_parser, add_shards_parser):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OutputError as exc:
        # a full disk or an unwritable path: one line, and no partial output
        abort_open_writers()
        eprint(f"curate {args.command}: error: {exc}")
        return 1
    except KeyboardInterrupt:
        abort_open_writers()
        eprint("curate: interrupted")
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
