"""Near-duplicate removal: URL, exact and MinHash LSH (Jaccard + containment).

One machine: :func:`dedup_documents` on a list, :func:`dedup_files` streaming
over files (what ``curate dedup`` runs; memory bounded by ~0.8 KB per
document, not by the text), both numpy band buckets, then
:func:`curate.dedup.cluster.representatives`. At scale: ``pipelines/dedup.py`` (Beam), which calls the same functions and gives
the same clusters. See :mod:`curate.dedup.core` for the stages and
:class:`DedupConfig` for the measured parameter choices.

>>> from curate.document import Document
>>> res = dedup_documents([Document(id="x", text="a b c d e f"), Document(id="y", text="A b c d e f.")])
>>> [d.metadata["duplicate"] for d in res.docs]
[False, True]
"""

from curate.dedup.core import DedupError, DedupResult, dedup_documents, dedup_files, text_key
from curate.dedup.minhash import DedupConfig, s_curve, s_curve_table, signature, signatures

__all__ = ["DedupConfig", "DedupError", "DedupResult", "dedup_documents", "dedup_files", "s_curve",
           "s_curve_table", "signature", "signatures", "text_key"]
