"""Quality classifiers: GPT-3's logistic regression and a fastText variant.

GPT-3 kept the Common Crawl documents that look like its reference corpora. Here:

* ``features``: Spark-style tokens -> hashed term frequencies (presets ``gpt3``, ``best``)
* ``models``: ``LRModel`` (weights.npz), ``FastTextModel`` (model.bin), ``load_model``
  (local dir or URL; digests checked; no pickle), model card (``card.json``)
* ``keep``: the Pareto keep rule, seeded by document id
* ``data`` / ``train`` / ``report``: labelled data, training, evaluation report with PNGs
* ``scoring``: ``make_scorer(model_dir)`` -> the pipeline's quality stage
* ``cli``: ``curate reference`` and ``curate quality train|score|evaluate``

>>> from classifiers.keep import keep_probability
>>> keep_probability(1.0)
1.0
"""
