"""The run report: ``out/<run>/report.html``, one self-contained page a user opens first.

:func:`curate.report.gather.gather` reads what the run's stages wrote;
:func:`curate.report.render.render` draws it (inline SVG, no script, no
network); :func:`write_report` puts it beside the stages' folders. Rebuilt by
``python -m pipelines.run --run RUN report`` (``make report``) and after
every stage.
"""

from __future__ import annotations

import os
from pathlib import Path

from curate.core.files import write_atomic
from curate.report.gather import gather
from curate.report.render import render


def write_report(run: str | os.PathLike) -> Path:
    """Build ``RUN/report.html`` from the run folder; returns its path."""
    path = Path(run) / "report.html"
    Path(run).mkdir(parents=True, exist_ok=True)
    write_atomic(path, render(gather(run)))
    return path
