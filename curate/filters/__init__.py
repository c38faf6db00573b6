"""Language id and heuristic filters, and the stage that applies them to a Document.

``langid`` (fastText lid.176), the heuristic rules (``c4``, ``gopher``,
``fineweb``, composed in ``heuristics``) and ``stage.FilterStage``, which
annotates a document with their signals and decides keep or drop with a reason.
"""
