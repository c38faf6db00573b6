"""The sources of a run's training mixture, declared once in a small TOML file.

Each ``[[source]]`` names a corpus, where it is, its weight (GPT-3 Table 2.2's
"weight in training mix": the share of training examples drawn from it) and
its ``kind``, which says how the run prepares it before it becomes token shards:

- ``crawl``: the run's own curated crawl (``out/<run>/decontam/<name>/``); no
  path, the filter, dedup and decontamination stages make it. Exactly one.
- ``gutenberg``, ``wikipedia``, ``wikitext``, ``jsonl``: a reference corpus in
  that format (what ``curate reference --kind`` reads), converted to documents.
- ``documents``: Parquet/JSONL documents already (``curate read`` output, say).

Every source that is not the crawl is deduplicated against the crawl (the
dedup job's ``--against``: a reference document that copies a kept crawl page
is dropped, so no text enters the mixture twice) and decontaminated against the
benchmarks exactly as the crawl is.

>>> m = parse_mixture('''
... [[source]]
... name = "cc"
... kind = "crawl"
... weight = 0.6
... [[source]]
... name = "books"
... kind = "gutenberg"
... path = "sample/reference/*.txt.gz"
... weight = 0.4
... ''', "mixture.toml")
>>> [(s.name, s.kind, s.weight) for s in m.sources]
[('cc', 'crawl', 0.6), ('books', 'gutenberg', 0.4)]
>>> m.crawl.name, [s.name for s in m.references]
('cc', ['books'])
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from curate.core.fields import SettingsError
from curate.ingest.reference import KINDS as REFERENCE_KINDS

KINDS = ("crawl", "documents", *REFERENCE_KINDS)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FIELDS = {"name", "kind", "path", "weight", "text_field"}


@dataclass(frozen=True)
class MixtureSource:
    """One declared source. ``paths`` are files or globs (empty for the crawl)."""

    name: str
    kind: str
    weight: float
    paths: tuple[str, ...] = ()
    text_field: str = "text"

    @property
    def is_crawl(self) -> bool:
        return self.kind == "crawl"

    def files(self, root: str | os.PathLike = ".") -> list[str]:
        """The input files (globs expanded, sorted), relative paths taken from ``root``."""
        out: list[str] = []
        for p in self.paths:
            full = p if os.path.isabs(p) else os.path.join(root, p)
            matches = sorted(glob.glob(full)) if glob.has_magic(full) else ([full] if os.path.isfile(full) else [])
            if not matches:
                raise SettingsError(f"source {self.name}: no file matches {p!r}")
            out.extend(matches)
        return out


@dataclass(frozen=True)
class Mixture:
    """The declared sources, in file order, and the file they came from."""

    sources: tuple[MixtureSource, ...]
    path: str = ""
    text: str = field(default="", repr=False)

    @property
    def crawl(self) -> MixtureSource:
        return next(s for s in self.sources if s.is_crawl)

    @property
    def references(self) -> list[MixtureSource]:
        return [s for s in self.sources if not s.is_crawl]

    def weights(self) -> dict[str, float]:
        return {s.name: s.weight for s in self.sources}


def parse_mixture(text: str, path: str = "<mixture>") -> Mixture:
    """A :class:`Mixture` from TOML text; a mistake is a SettingsError naming the file and source."""
    try:
        obj = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from exc
    unknown = set(obj) - {"source"}
    if unknown:
        raise SettingsError(f"{path}: unknown top-level keys {sorted(unknown)} (expected [[source]] tables)")
    rows = obj.get("source")
    if not isinstance(rows, list) or not rows:
        raise SettingsError(f"{path}: no [[source]] declared")
    sources, seen = [], set()
    for i, row in enumerate(rows, 1):
        where = f"{path}: source {i}"
        if not isinstance(row, dict):
            raise SettingsError(f"{where}: expected a table")
        bad = set(row) - _FIELDS
        if bad:
            raise SettingsError(f"{where}: unknown keys {sorted(bad)} (known: {', '.join(sorted(_FIELDS))})")
        name = row.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise SettingsError(f"{where}: name {name!r} must be letters, digits, '.', '_' or '-'")
        if name in seen:
            raise SettingsError(f"{where}: name {name!r} declared twice")
        seen.add(name)
        kind = row.get("kind")
        if kind not in KINDS:
            raise SettingsError(f"{where} ({name}): kind {kind!r} is not one of {', '.join(KINDS)}")
        weight = row.get("weight")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
            raise SettingsError(f"{where} ({name}): weight must be a number above 0, not {weight!r}")
        paths = row.get("path", [])
        paths = [paths] if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise SettingsError(f"{where} ({name}): path must be a string or a list of strings")
        if kind == "crawl" and paths:
            raise SettingsError(f"{where} ({name}): the crawl has no path (the run's decontam/ output is used)")
        if kind != "crawl" and not paths:
            raise SettingsError(f"{where} ({name}): kind {kind} needs a path (a file or glob)")
        sources.append(MixtureSource(name, kind, float(weight), tuple(paths), str(row.get("text_field", "text"))))
    crawls = [s.name for s in sources if s.is_crawl]
    if len(crawls) != 1:
        raise SettingsError(f"{path}: exactly one source must be kind = \"crawl\" (found {len(crawls)})")
    return Mixture(tuple(sources), path, text)


def load_mixture(path: str | os.PathLike) -> Mixture:
    """Read and check a mixture file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the mixture file ({exc.strerror or exc})") from exc
    return parse_mixture(text, str(path))
