"""Heuristic document filters: C4, Gopher and FineWeb rules with the papers'
thresholds, composed into one pass.

Every rule is a plain function returning ``(keep, reason)`` with a stable
reason name (``""`` when kept); see :data:`REASONS`. :func:`apply_filters`
runs, in this fixed order, stopping at the first failing rule:

1. C4 line cleaning (:func:`~curate.filters.c4.c4_clean_lines`) - modifies the
   text; every later rule sees the *cleaned* text, which is what is kept;
2. C4 page rules (lorem ipsum, "{", bad words, fewer than 3 sentences);
3. ``empty`` - nothing but whitespace left (only reachable with C4 off);
4. Gopher quality rules;
5. FineWeb rules;
6. Gopher repetition rules (the most expensive, hence last).

The order goes from cheap to expensive so that dropped documents cost little.
It decides which reason a document that fails several rules is counted
under, so it is part of the contract and must not change casually.

Interaction to be aware of: with C4's terminal-punctuation line rule on (the
default) every surviving line ends in punctuation, so FineWeb's
line-punctuation rule can never fire, and Gopher's ellipsis-line rule neither.
The ``"fineweb"`` preset reproduces the FineWeb pipeline, which applied C4
*without* that line rule.

>>> from curate.core.counters import Counters
>>> c = Counters()
>>> apply_filters("Buy now!", FilterConfig(), c)
(False, 'c4_too_few_sentences', '')
>>> c.as_dict()
{'dropped:c4_too_few_sentences': 1}
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from curate.core.counters import Counters
from curate.filters.c4 import (
    C4CleanResult,
    C4Config,
    c4_clean_lines,
    c4_filter,
    c4_page_filter,
)
from curate.filters.fineweb import FineWebConfig, fineweb_filter
from curate.filters.gopher import (
    GopherQualityConfig,
    GopherRepetitionConfig,
    TextView,
    gopher_quality,
    gopher_repetition,
)

__all__ = [
    "FilterConfig",
    "HeuristicFilter",
    "apply_filters",
    "PRESETS",
    "REASONS",
    "C4Config",
    "C4CleanResult",
    "c4_clean_lines",
    "c4_page_filter",
    "c4_filter",
    "GopherQualityConfig",
    "GopherRepetitionConfig",
    "gopher_quality",
    "gopher_repetition",
    "FineWebConfig",
    "fineweb_filter",
    "TextView",
]

#: Every reason :func:`apply_filters` can return, in evaluation order.
REASONS: tuple[str, ...] = (
    "c4_lorem_ipsum",
    "c4_curly_bracket",
    "c4_bad_words",
    "c4_too_few_sentences",
    "empty",
    "gopher_short_doc",
    "gopher_long_doc",
    "gopher_mean_word_length",
    "gopher_symbol_word_ratio",
    "gopher_bullet_lines",
    "gopher_ellipsis_lines",
    "gopher_alpha_words",
    "gopher_stop_words",
    "fineweb_line_punct_ratio",
    "fineweb_dup_line_char_ratio",
    "fineweb_short_line_ratio",
    "gopher_dup_line_frac",
    "gopher_dup_line_char_frac",
    "gopher_dup_para_frac",
    "gopher_dup_para_char_frac",
    "gopher_top_2gram",
    "gopher_top_3gram",
    "gopher_top_4gram",
    *(f"gopher_dup_{n}gram" for n in range(5, 11)),
)


@dataclass(frozen=True)
class FilterConfig:
    """Per-module configs; each module has ``enabled``.

    ``line_counters=True`` additionally counts C4 line decisions as
    ``c4_lines:kept`` and ``c4_lines:dropped:<reason>`` (off by default so
    that the counters are one entry per document).

    >>> FilterConfig().c4.min_sentences, FilterConfig().fineweb.dup_line_char_thr
    (3, 0.1)
    >>> FilterConfig.preset("gopher").c4.enabled
    False
    """

    c4: C4Config = field(default_factory=C4Config)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)
    line_counters: bool = False

    @staticmethod
    def preset(name: str) -> "FilterConfig":
        """A named preset from :data:`PRESETS` (``all``, ``c4``, ``gopher``,
        ``fineweb``, ``none``)."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown filter preset {name!r}; known: {sorted(PRESETS)}") from None

    def only(self, *modules: str) -> "FilterConfig":
        """Copy with only the named modules enabled.

        >>> FilterConfig().only("c4", "fineweb").gopher_quality.enabled
        False
        """
        names = ("c4", "gopher_quality", "gopher_repetition", "fineweb")
        unknown = set(modules) - set(names)
        if unknown:
            raise ValueError(f"unknown filter modules {sorted(unknown)}; known: {names}")
        return replace(
            self, **{m: replace(getattr(self, m), enabled=m in modules) for m in names}
        )


_ALL = FilterConfig()
PRESETS: dict[str, FilterConfig] = {
    "all": _ALL,
    "c4": _ALL.only("c4"),
    "gopher": _ALL.only("gopher_quality", "gopher_repetition"),
    # FineWeb (Penedo et al. 2024) = Gopher rules + C4 rules without the
    # terminal-punctuation line rule (the paper found it removed too much) +
    # its own three filters.
    "fineweb": replace(_ALL, c4=replace(_ALL.c4, terminal_punct_lines=False)),
    "none": _ALL.only(),
}


def apply_filters(
    text: str, config: FilterConfig = _ALL, counters: Counters | None = None
) -> tuple[bool, str, str]:
    """Run every enabled rule; return ``(keep, reason, text)``.

    ``text`` in the result is the C4-cleaned text (the input unchanged when
    C4 is off); use it when ``keep`` is true. ``reason`` is ``""`` when kept.
    ``counters`` (optional) gets ``kept`` or ``dropped:<reason>`` += 1.

    >>> doc = ("The river rose quickly after three days of rain, and the town council met on Monday.\\n"
    ...        "Residents said the water reached their doorsteps before dawn. Several roads were "
    ...        "closed, and schools stayed shut for the rest of the week.\\n"
    ...        "Engineers will inspect the old stone bridge tomorrow morning. The mayor promised "
    ...        "that repairs would begin soon, and that families who lost property will get help.\\n"
    ...        "Menu | Home | Contact")
    >>> keep, reason, cleaned = apply_filters(doc)
    >>> keep, reason, cleaned.endswith("get help.")
    (True, '', True)
    """
    keep, reason = True, ""
    c = config
    if c.c4.enabled:
        result = c4_clean_lines(text, c.c4)
        text = result.text
        if counters is not None and c.line_counters:
            if result.lines_kept:
                counters.inc("c4_lines:kept", result.lines_kept)
            for r, n in result.line_drops.items():
                counters.inc(f"c4_lines:dropped:{r}", n)
        keep, reason = c4_page_filter(result, c.c4)

    if keep and not text.strip():
        keep, reason = False, "empty"

    if keep:
        view = TextView(text)
        if c.gopher_quality.enabled:
            keep, reason = gopher_quality(view, c.gopher_quality)
        if keep and c.fineweb.enabled:
            keep, reason = fineweb_filter(view, c.fineweb)
        if keep and c.gopher_repetition.enabled:
            keep, reason = gopher_repetition(view, c.gopher_repetition)

    if counters is not None:
        counters.inc("kept" if keep else f"dropped:{reason}")
    return keep, reason, text


class HeuristicFilter:
    """Callable bound to a config and (optionally) counters.

    >>> f = HeuristicFilter(FilterConfig.preset("none"))
    >>> f("anything")
    (True, '', 'anything')
    """

    def __init__(self, config: FilterConfig = _ALL, counters: Counters | None = None):
        self.config = config
        self.counters = counters

    def __call__(self, text: str) -> tuple[bool, str, str]:
        return apply_filters(text, self.config, self.counters)
