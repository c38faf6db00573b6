"""GPT-3's keep rule: keep a document when ``pareto(alpha) > 1 - score``.

The paper draws ``np.random.pareto(alpha)`` (a Lomax / Pareto II variable) per
document and keeps the document when the draw exceeds ``1 - score``: documents
the classifier likes are nearly always kept, and a few it dislikes still get in,
which keeps the corpus from collapsing onto the reference corpora's style.
alpha = 9 is the paper's value.

The draw here is the inverse CDF of that distribution at ``id_fraction(doc_id,
"pareto")``, so it is seeded by the document id: every rerun, retried bundle
and runner keeps exactly the same documents.

P(draw > x) = (1 + x) ** -alpha, so a document with score s is kept with
probability ``(2 - s) ** -alpha``: 1 at s = 1, 0.026 at s = 0.5, 0.002 at s = 0.

>>> keep_probability(1.0), round(keep_probability(0.5), 4), round(keep_probability(0.0), 4)
(1.0, 0.026, 0.002)
>>> pareto_keep(0.999, "doc-1"), pareto_keep(0.999, "doc-1") == pareto_keep(0.999, "doc-1")
(True, True)
"""

from __future__ import annotations

import numpy as np

from curate.core.ids import id_fraction

DEFAULT_ALPHA = 9.0
SALT = "pareto"


def pareto_draw(doc_id: str, alpha: float = DEFAULT_ALPHA, salt: str = SALT) -> float:
    """The document's Pareto (Lomax) draw, as ``np.random.pareto(alpha)`` would give.

    >>> round(pareto_draw("x", 9.0), 6) == round(pareto_draw("x", 9.0), 6)
    True
    """
    u = id_fraction(doc_id, salt)
    return (1.0 - u) ** (-1.0 / alpha) - 1.0


def pareto_keep(score: float, doc_id: str, alpha: float = DEFAULT_ALPHA, salt: str = SALT) -> bool:
    """Whether a document with quality ``score`` is kept (seeded by ``doc_id``)."""
    return pareto_draw(doc_id, alpha, salt) > 1.0 - float(score)


def keep_probability(score, alpha: float = DEFAULT_ALPHA):
    """Probability that the rule keeps a document of ``score`` (array or float)."""
    p = (2.0 - np.asarray(score, dtype=np.float64)) ** (-alpha)
    return float(p) if np.ndim(p) == 0 else p
