"""Labelled training data: documents files (or archives) -> texts, labels, groups, weights.

Positives are reference documents (``curate reference``), negatives raw crawl
text (``curate read`` output, the filter job's extracted documents, or WARC/ARC
files read directly). A path may be given as ``NAME=PATH`` to name its source
in the report; otherwise the document's own ``source`` (or the file name) is used.

The held-out split is by hashed document id (``id_fraction(id, "quality-split")``),
so it is the same on every run and machine.

>>> split_of("some-doc-id", 0.2) in ("train", "test")
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from curate.core.document import Document, DocumentFormatError, read_documents
from curate.core.files import sha256_file
from curate.core.ids import id_fraction

SPLIT_SALT = "quality-split"
_DOC_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")


def split_of(doc_id: str, test_fraction: float = 0.2) -> str:
    """"test" for a seeded ``test_fraction`` of ids, else "train"."""
    return "test" if id_fraction(doc_id, SPLIT_SALT) < test_fraction else "train"


def parse_named(spec: str) -> tuple[str, str]:
    """``"NAME=PATH"`` -> (NAME, PATH); a plain path -> ("", path).

    >>> parse_named("books=data/b.jsonl"), parse_named("data/x=y.jsonl")
    (('books', 'data/b.jsonl'), ('', 'data/x=y.jsonl'))
    """
    name, sep, path = spec.partition("=")
    if sep and name and "/" not in name and os.sep not in name:
        return name, path
    return "", spec


def iter_path_documents(path: str, errors: list | None = None) -> Iterator[Document]:
    """Documents of a documents file, or of a WARC/ARC/WET archive (extracted, unfiltered)."""
    if str(path).lower().endswith(_DOC_SUFFIXES):
        yield from read_documents(path, errors=errors)
        return
    from curate.ingest.records import default_source, read_archive

    yield from read_archive(path, errors, source=default_source(path))


@dataclass
class LabelledSet:
    """Parallel lists: one entry per document."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # source name, for the report
    files: list[dict] = field(default_factory=list)  # provenance for the model card

    def add(self, doc: Document, label: int, group: str) -> None:
        self.ids.append(doc.id)
        self.texts.append(doc.text)
        self.labels.append(label)
        self.groups.append(group)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: Iterable[bool]) -> "LabelledSet":
        m = list(mask)
        pick = lambda xs: [x for x, k in zip(xs, m) if k]  # noqa: E731
        return LabelledSet(pick(self.ids), pick(self.texts), pick(self.labels), pick(self.groups), self.files)

    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int64)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.groups:
            out[g] = out.get(g, 0) + 1
        return dict(sorted(out.items()))


def load_labelled(positive: Iterable[str], negative: Iterable[str], min_chars: int = 200,
                  errors: list | None = None) -> LabelledSet:
    """Read every path; keep documents of at least ``min_chars`` characters.

    Very short documents (menus, error pages) never reach the quality stage in
    the pipeline (the heuristic filters drop them first), so they are left out
    of training and evaluation rather than inflating the figures.
    """
    data = LabelledSet()
    seen: set[str] = set()
    for label, specs in ((1, positive), (0, negative)):
        for spec in specs:
            name, path = parse_named(spec)
            if not Path(path).exists():
                raise DocumentFormatError(f"{path}: no such file")
            n = 0
            for doc in iter_path_documents(path, errors):
                # the same id twice (a file passed twice, a revisit) would leak
                # between the train and test splits and count twice
                if len(doc.text) < min_chars or doc.id in seen:
                    continue
                seen.add(doc.id)
                data.add(doc, label, name or doc.source or Path(path).name.split(".")[0])
                n += 1
            data.files.append({"path": str(path), "label": "positive" if label else "negative",
                               "source": name, "documents": n, "sha256": sha256_file(path)})
    return data


def sample_weights(labels: np.ndarray, groups: list[str], balance: str = "class") -> np.ndarray:
    """Weights that balance the classes ("class") or every source within its class ("source").

    "class" is GPT-3's balanced classes. "source" also stops one large source
    (a few thousand book pages, say) from defining what "reference-like" means.
    Weights are scaled to average 1.

    >>> sample_weights(np.array([1, 1, 1, 0]), ["a", "a", "b", "c"], "source").round(2).tolist()
    [0.5, 0.5, 1.0, 2.0]
    """
    labels = np.asarray(labels)
    w = np.ones(len(labels), dtype=np.float64)
    for cls in (0, 1):
        in_cls = labels == cls
        if not in_cls.any():
            continue
        if balance == "source":
            names = sorted({g for g, c in zip(groups, in_cls) if c})
            for g in names:
                m = in_cls & np.array([x == g for x in groups])
                w[m] = 1.0 / (len(names) * m.sum())
        else:
            w[in_cls] = 1.0 / in_cls.sum()
    return w * len(w) / w.sum()
