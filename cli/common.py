"""What every subcommand shares: one-line errors on stderr, the stats file beside
the output, and the end-of-run summary.

Expected bad input never ends in a traceback: each problem is one line naming
the command, the file and the place (``curate filter: error: a.jsonl:3: not
JSON``), and the exit status says whether anything failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Mapping

from curate.core.counters import Counters, summary_table, write_stats


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def report_input_errors(command: str, errors: Iterable[Mapping]) -> None:
    """One line per bad input record, as ``read_documents(errors=...)`` collects them."""
    for err in errors:
        eprint(f"curate {command}: error: {err['file']}:{err['line']}: {err['reason']}")


def open_output(command: str, output):
    """A ``DocumentWriter`` for ``output``, or ``None`` after one error line when the
    format is not one we write (the caller exits with status 2)."""
    from curate.core.document import DocumentFormatError, DocumentWriter

    try:
        return DocumentWriter(output)
    except DocumentFormatError as exc:
        eprint(f"curate {command}: error: {exc}")
        return None


def stats_path_of(output) -> Path:
    """Where a command's stats JSON goes: beside its output, ``OUT.stats.json``."""
    return Path(str(output) + ".stats.json")


def finish(output, counters: Counters, extra: Mapping, title: str, quiet: bool, lines: Iterable[str] = ()) -> Path:
    """Write ``OUT.stats.json`` (counters + ``extra``) and, unless ``quiet``, print
    ``lines`` then the summary table headed ``title`` (``{stats}`` in it names the
    stats file). Returns the stats file's path."""
    path = stats_path_of(output)
    write_stats(path, counters, extra)
    if not quiet:
        for line in lines:
            eprint(line)
        eprint(summary_table(title.format(stats=path), counters))
    return path
