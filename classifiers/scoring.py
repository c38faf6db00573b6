"""The pipeline's quality stage: score, annotate ``quality``, apply the Pareto keep rule.

``make_scorer(location)`` loads a model once (a worker calls it in ``setup``)
and returns a ``QualityScorer``: called on a Document it returns the Document
with ``metadata["quality"]`` added, or None when the Pareto rule drops it, and
counts ``quality:kept`` / ``dropped:quality`` in its ``counters``.

For Beam, pass a picklable factory, e.g.
``functools.partial(make_scorer, "models/quality")``.

>>> from classifiers.models import LRModel
>>> from classifiers.features import FeatureConfig
>>> import numpy as np
>>> s = QualityScorer(LRModel(FeatureConfig(n_features=8), np.zeros(8), 10.0))
>>> s(Document(id="a", text="t")).metadata["quality"], s.counters.as_dict()
(0.999955, {'quality:kept': 1, 'quality:scored': 1})
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from classifiers.keep import SALT, pareto_keep
from classifiers.models import load_model
from curate.core.document import Document
from curate.core.counters import Counters

FIELD = "quality"


class QualityScorer:
    """Callable ``Document -> Document | None`` (None = dropped by the Pareto rule)."""

    def __init__(self, model, alpha: float | None = None, counters: Counters | None = None,
                 apply_rule: bool = True, salt: str = SALT):
        self.model = model
        self.alpha = float(alpha if alpha is not None else getattr(model, "alpha", 9.0))
        self.counters = counters if counters is not None else Counters()
        self.apply_rule = apply_rule
        self.salt = salt

    def annotate(self, doc: Document, score: float, counters: Counters | None = None) -> Document | None:
        """``doc`` with its score, or None when the rule drops it; counted in ``counters``
        (default: the scorer's own), so a caller counting per input passes its own."""
        counters = self.counters if counters is None else counters
        meta = dict(doc.metadata)
        meta[FIELD] = round(float(score), 6)
        # a new Document, not a mutated one: Beam may hand the same input to a retry
        doc = Document(doc.id, doc.text, doc.source, doc.url, doc.created, meta)
        counters.inc("quality:scored")
        if self.apply_rule and not pareto_keep(score, doc.id, self.alpha, self.salt):
            counters.inc("dropped:quality")
            return None
        counters.inc("quality:kept")
        return doc

    def __call__(self, doc: Document, counters: Counters | None = None) -> Document | None:
        return self.annotate(doc, self.model.score_one(doc.text), counters)

    def score_documents(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Kept documents (annotated), in input order; scores in batches of 256."""
        batch: list[Document] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) == 256:
                yield from self._flush(batch)
                batch = []
        yield from self._flush(batch)

    def _flush(self, batch: list[Document]) -> Iterator[Document]:
        if not batch:
            return
        for doc, s in zip(batch, self.model.score([d.text for d in batch])):
            kept = self.annotate(doc, float(s))
            if kept is not None:
                yield kept


def make_scorer(location: str | os.PathLike, alpha: float | None = None, counters: Counters | None = None,
                apply_rule: bool = True) -> QualityScorer:
    """Load the model at ``location`` (local dir or http(s)/s3/gs URL) into a scorer.

    ``alpha`` overrides the model card's; ``apply_rule=False`` annotates only.
    """
    return QualityScorer(load_model(location), alpha=alpha, counters=counters, apply_rule=apply_rule)
