"""Near-duplicate removal: URL, exact and MinHash LSH (Jaccard + containment).

One machine: :func:`curate.dedup.core.dedup_documents` on a list,
:func:`curate.dedup.core.dedup_files` streaming over files (what ``curate dedup``
runs; memory bounded by ~0.8 KB per document, not by the text), both numpy band
buckets, then :func:`curate.dedup.cluster.representatives`. At scale:
``pipelines/dedup.py`` (Beam), which calls the same functions and gives the same
clusters.

- ``config``: :class:`DedupConfig`, every default and why it was chosen;
- ``minhash``: signatures, LSH band keys, the s-curve, similarity estimates;
- ``templates``: hosts and the shingles a site repeats (its template);
- ``rules``: when a verified pair is a duplicate (Jaccard, containment, opening);
- ``cluster``: connected components and their representatives;
- ``core``: the one-machine run over a list or files.
"""
