"""curate: GPT-3's data recipe at Common Crawl scale.

The library is importable without Apache Beam or torch: every stage is a plain
function over Documents, so it can be tested on a Python list and wrapped by a
thin Beam DoFn in ``pipelines/``.
"""

__version__ = "0.1.0"
