"""Apache Beam wiring: named transforms and thin DoFns over ``curate`` functions, one job a module.

- ``filter``: Common Crawl (or any archives) -> filtered document shards (language id,
  heuristics, optional quality classifier), per input file, resumable;
- ``dedup``: URL, exact and MinHash LSH near-duplicates -> the same clusters as ``curate dedup``;
- ``decontam``: benchmark 13-gram decontamination -> the same documents and report as
  ``curate decontaminate``;
- ``shards``: a weighted mixture -> the same token shards as ``curate shards build``;
- ``common``: what every job shares (Beam-backed counters, reading and writing documents,
  runner options, the command's error handling); ``fileio``: atomic reads and writes on
  any Beam filesystem (local, gs://).

Each job runs as ``python -m pipelines.<job> --help`` and from Python as
``run(argv, test_pipeline=None)``.
"""
