"""``curate html2text``: JSONL ``{"id","html"}`` on stdin -> ``{"id","text"}`` on stdout.

Other fields of an input line (a ``url``, say) are ignored: extraction does not
depend on where a page came from.
"""

from __future__ import annotations

import argparse
import json
import sys

from cli.common import eprint


def cmd_html2text(args: argparse.Namespace) -> int:
    from curate.ingest.extract import html_to_text

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
            eprint(f"curate html2text: error: stdin:{lineno}: {exc}")
            status = 1
            continue
        html = obj.get("html") or ""
        failures: list[Exception] = []
        text = html_to_text(html if isinstance(html, str) else str(html), on_error=failures.append)
        if failures:
            # the line is still written (empty text) so the output stays aligned with the input
            eprint(f"curate html2text: error: stdin:{lineno}: extraction failed ({failures[0]})")
            status = 1
        out.write(json.dumps({"id": obj.get("id"), "text": text}, ensure_ascii=False) + "\n")
    out.flush()
    return status


def add_html2text_parser(sub) -> argparse.ArgumentParser:
    """Add ``html2text`` to an argparse subparsers object."""
    h = sub.add_parser("html2text", help='JSONL {"id","html"} on stdin -> {"id","text"} on stdout')
    h.set_defaults(func=cmd_html2text)
    return h
