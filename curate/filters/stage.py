"""The per-document filter stage: language id, then heuristic filters.

Annotation adds fields (``language``, ``language_score``) and never drops; the
filter decides keep/drop from them with a named reason. ``FilterStage`` does
both for one Document and counts every decision, so the same object serves the
CLI, the Beam DoFn and tests.

>>> from curate.core.document import Document
>>> from curate.core.counters import Counters
>>> stage, c = FilterStage(StageConfig.preset("gpt3")), Counters()
>>> stage(Document(id="x", text="Kurz."), c) is None
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from curate.core.counters import Counters
from curate.core.document import Document
from curate.core.fields import SettingsError
from curate.filters.heuristics import FilterConfig, apply_filters
from curate.filters.langid import LangIdConfig, LanguageIdentifier, language_filter


@dataclass
class StageConfig:
    """Language id and heuristic filter settings, with named presets."""

    langid: LangIdConfig = field(default_factory=LangIdConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)

    @staticmethod
    def preset(name: str) -> "StageConfig":
        """``gpt3`` (the default: English >= 0.65, C4 + Gopher + FineWeb rules
        as the papers set them), or ``filters:<name>``: the same language id
        with one of :meth:`FilterConfig.preset`'s heuristic sets.

        >>> StageConfig.preset("filters:c4").filters.gopher_quality.enabled
        False
        """
        if name in ("gpt3", "default"):
            return StageConfig()
        if name.startswith("filters:"):
            # e.g. filters:fineweb selects one of the heuristic filter presets
            return StageConfig(filters=FilterConfig.preset(name.split(":", 1)[1]))
        raise SettingsError(f"unknown preset {name!r}; known: gpt3, filters:<all|c4|gopher|fineweb|none>")

    def to_dict(self) -> dict:
        return {"langid": asdict(self.langid), "filters": asdict(self.filters)}


class FilterStage:
    """Annotate a Document with its language and apply language + heuristic filters.

    Calling it returns the kept Document (text C4-cleaned when that rule is
    on) or None; ``decide`` also gives the reason.
    Counters: ``kept`` or ``dropped:<reason>`` once per document (reason
    ``language`` for the language rule).
    """

    def __init__(self, config: StageConfig | None = None):
        self.config = config or StageConfig()
        self._lid: LanguageIdentifier | None = None  # loaded on first use (once per worker)

    @property
    def lid(self) -> LanguageIdentifier:
        if self._lid is None:
            self._lid = LanguageIdentifier()
        return self._lid

    def __call__(self, doc: Document, counters: Counters) -> Document | None:
        doc, reason = self.decide(doc, counters)
        return None if reason else doc

    def decide(self, doc: Document, counters: Counters) -> tuple[Document, str]:
        """(annotated document, drop reason); the reason is "" when kept.

        The document comes back annotated either way, so a rejected sample can
        show its language; when kept, its text is the C4-cleaned text.
        """
        lang, score = self.lid.predict(doc.text)
        meta = dict(doc.metadata)
        meta["language"] = lang
        meta["language_score"] = round(float(score), 4)
        doc = replace(doc, metadata=meta)
        keep, reason = language_filter(lang, score, self.config.langid)
        if not keep:
            counters.inc(f"dropped:{reason}")
            return doc, reason
        keep, reason, text = apply_filters(doc.text, self.config.filters, counters)
        if not keep:
            return doc, reason
        return replace(doc, text=text), ""
