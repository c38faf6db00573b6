"""The dedup settings: one dataclass, the single place every default is written.

``curate dedup`` and ``python -m pipelines.dedup`` build their options from it
(:func:`add_dedup_arguments`), so the command line, the Beam job and the library
cannot disagree on a default.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import asdict, dataclass, fields

from curate.core.fields import SettingsError

# Everything that changes signature values; stored beside every signature /
# stats file so signatures from different settings are never mixed.
SIGNATURE_FIELDS = ("num_perm", "seed", "ngram", "scheme", "shingles")


# How a shingle becomes the 32-bit value MinHash sees (curate.core.words);
# part of the saved config because a change here changes every signature.
SHINGLE_HASH = ("words: NFKD-lowercased, digits->0, runs of [^\\W_]; w_i = xxh3_64(utf8(word)); "
                "n-gram = fmix64(((w_1*P + w_2)*P + ...)*P + w_n + n) mod 2**64, P = 0x9E3779B97F4A7C15; "
                "shingle = its top 32 bits; MinHash input = distinct shingles")


@dataclass
class DedupConfig:
    """Dedup settings. Defaults chosen by measurement (see benchmarks/dedup.py).

    - ``ngram=5``: word 5-grams. Clough-Stevenson independent ('non') answers
      share at most 4% of their 5-grams with any other answer (9.5% for
      3-grams), while copied ('cut') answers share 45-95%, so 5-grams give the
      widest gap between copying and writing about the same topic.
    - Candidates come from two LSH indexes (see :mod:`curate.dedup.candidates`):

      * the *Jaccard index*, on the full signatures, with ``jaccard_bands`` x
        ``jaccard_rows`` matched to ``threshold`` (0: datasketch's optimal
        parameters for it, 9 x 13 at 0.8): a pair of one site's pages that
        share only the template (Jaccard 0.2-0.5) is a candidate with
        probability below 0.002, where 64 x 2 made it one with 0.93-1.0
        (quadratic work per site: 2.7M candidates on 20k pages of 50 sites);
      * the *containment index*, ``bands=64, rows=2``, a low-threshold s-curve
        (50% at Jaccard 0.10, 90% at 0.19), on signatures of the *content*
        shingles only: a shingle that ``common_share`` of a host's sampled
        pages hold (at least ``common_docs`` of them; ``common_pages`` pages
        sampled per host) or that ``global_share`` of a global sample of
        ``global_pages`` pages hold (at least ``global_docs``) is left out.
        Containment needs the low threshold (a 200-word copy inside a
        300-word page has Jaccard 0.3 even when fully contained), and without
        the template two pages of one site share nothing.

      ``common_docs=8``: with 4, two of CopyCat's verified pairs (one site's
      versions of one page, whose text other pages of the site share) were no
      longer candidates; with 8 every one of them is.
      ``check_common_docs=4``: in the exact containment check, a shingle
      that 4 (and ``common_share``) of a host's sampled pages hold is its
      template too, beside what its checked pages show (``template_docs``):
      one site's pages are rarely checked against each other now, so their
      checks no longer show the template; the sample does. (3 lost two of
      CopyCat's verified pairs; 4, 6 and 8 none.)
      ``small_host_pages=3``: a host with at least this many pages but
      fewer than ``check_common_docs`` has a template for the checks too:
      the shingles *all* its pages hold. The pages of a small site
      otherwise share nothing the checks can call template, and two of
      them whose own text is short were "copies" through their navigation
      and footer: on the 1M scale corpus 303 of the 857 wrong removals were
      pairs of 3-page hosts, and with this rule 537 remain (precision
      0.985 -> 0.991; CopyCat, Gutenberg, Clough-Stevenson unchanged). A
      copy on such a host is on two of its pages, not three. Two pages are
      never enough: their shared ends could as well be a copy's. 0 turns
      it off.

      ``max_candidates=16``: after both indexes, a page keeps its 16 best
      candidates (by estimated Jaccard of the content signatures, then of the
      full ones, then rank); a pair stays when either end keeps it. The
      counters ``dedup:candidate_cap_docs`` / ``dedup:candidates_capped`` say
      when this binds. Precision comes from verification, not from the bands.
    - ``threshold=0.8``: estimated Jaccard at which two documents are
      near-duplicates (the symmetric rule).
    - ``containment=0.4``: estimated share of the smaller document's shingles
      found in the larger one (the containment rule). Copied Clough-Stevenson
      answers sit at 0.45-0.95, independent ones at <= 0.04; CopyCat pairs
      with S3 >= 0.8 all have containment >= 0.85.
    - ``min_shingles=20`` and ``max_ratio=4``: the containment rule is skipped
      for tiny documents (a 5-word "page not found" is contained in anything)
      and for size ratios above 4, where the estimate from 128 permutations is
      too noisy (its standard deviation grows with the ratio) to act on.
    - ``containment_slack=0.2``: containment estimates within 0.2 below the
      threshold are checked on the exact shingle sets (see :func:`needs_exact`).
    - ``max_bucket=256``: a band bucket larger than this (shared boilerplate)
      pairs each member with its 256 first members only, bounding the work
      per bucket; identical in the one-machine and Beam paths.
    - ``template_docs=4``: in a containment check between two pages with
      URLs, shingles found in at least this many checked pages of their host
      (of both hosts together when they differ) are the site's template
      (navigation, footers) and do not count towards containment (see
      :func:`template_containment`). Without it, different articles of one
      news site or wiki whose text is mostly navigation were "contained" in
      each other (34 of the 48 CopyCat removals outside a canonical-link
      pair); counting both hosts catches the template a network of sites
      shares (11 more CopyCat removals across hosts); 0 turns it off.
    - ``template_pages=64``: at most this many checked pages of a host count
      towards its template (those whose shingle sets hash lowest, the same on
      both paths): a navigation is on nearly every page, so a sample finds
      it, and one host's template never needs all its pages on one worker
      (a wiki can have a million); 0 counts every checked page.
    - ``opening=50, opening_share=0.1, opening_below=0.5``: a containment
      join of a page less than half contained in the other, or of two pages
      of one host, also needs at least 10% of the smaller page's opening (its
      first 50 shingles in text order, the site template left out) in the
      larger page (see :func:`copy_containment`): a copy begins with its
      source's text. Every Clough-Stevenson copy has at least 18% there; 9 of
      the 10 CopyCat containment pairs of different articles (pages of one
      site sharing a list of headlines) had 0%. Across hosts a page more than
      half contained needs no opening: a copy on another site gets another
      header (Gutenberg editions cut to 40k characters, whose licence headers
      differ, have 0-8% there). Two pages of one host less than half
      contained also need the smaller one's *middle* (what it holds between
      the prefix and suffix the pair shares: a small site's navigation and
      footer) in the larger at the ``containment`` bar; see
      :func:`curate.dedup.rules.copy_containment`. 0 turns both checks off.
    """

    num_perm: int = 128
    seed: int = 1
    ngram: int = 5
    bands: int = 64
    rows: int = 2
    threshold: float = 0.8
    containment: float = 0.4
    min_shingles: int = 20
    max_ratio: float = 4.0
    max_bucket: int = 256
    containment_slack: float = 0.2
    template_docs: int = 4
    template_pages: int = 64
    opening: int = 50
    opening_share: float = 0.1
    opening_below: float = 0.5
    scheme: str = "affine32"
    jaccard_bands: int = 0
    jaccard_rows: int = 0
    common_pages: int = 64
    common_share: float = 0.1
    common_docs: int = 8
    check_common_docs: int = 4
    small_host_pages: int = 3
    global_pages: int = 20000
    global_share: float = 0.002
    global_docs: int = 50
    max_candidates: int = 16

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise SettingsError(f"bands*rows={self.bands * self.rows} exceeds num_perm={self.num_perm}")
        if not 0.0 < self.threshold <= 1.0:
            raise SettingsError(f"threshold must be in (0, 1], not {self.threshold}")
        jb, jr = self.jaccard_index()
        if jb * jr > self.num_perm or jb < 1 or jr < 1:
            raise SettingsError(f"jaccard_bands*jaccard_rows={jb * jr} must be in 1..num_perm={self.num_perm}")

    def jaccard_index(self) -> tuple[int, int]:
        """(bands, rows) of the Jaccard index: the fields, or (both 0) datasketch's optimal
        setting for ``threshold`` (equal weight on false positives and negatives).

        >>> DedupConfig().jaccard_index()
        (9, 13)
        """
        if self.jaccard_bands and self.jaccard_rows:
            return self.jaccard_bands, self.jaccard_rows
        return _optimal(self.threshold, self.num_perm)

    def to_dict(self) -> dict:
        # imported here: datasketch takes most of a second to import, and every
        # ``curate`` command imports this module for its dedup options
        import datasketch

        d = asdict(self)
        d["shingles"] = SHINGLE_HASH
        d["datasketch"] = datasketch.__version__ if hasattr(datasketch, "__version__") else "2.0"
        return d


@functools.lru_cache(maxsize=None)
def _optimal(threshold: float, num_perm: int) -> tuple[int, int]:
    from datasketch.lsh import _optimal_param

    return tuple(int(x) for x in _optimal_param(threshold, num_perm, 0.5, 0.5))


# ---------------------------------------------------------------- command-line options

# The settings a run may change from the command line, and their help texts;
# each default is read from the DedupConfig field of the same name.
OPTION_HELP = {
    "threshold": "Jaccard for near-duplicates (%(default)s)",
    "containment": "share of the smaller document found in the larger (%(default)s; 1.1 turns the rule off)",
    "template_docs": "containment between pages with URLs ignores shingles held by this many checked pages "
                     "of their host (both hosts together when they differ): the site's navigation "
                     "(%(default)s; 0 turns it off)",
    "template_pages": "at most this many checked pages of a host count towards its template "
                      "(%(default)s; 0: all)",
    "opening": "a containment join of a page less than half contained, or of two pages of one host, "
               "needs 10%% of the smaller page's first N shingles in the larger, and two pages of one host "
               "less than half contained need what lies between their shared start and end found too "
               "(%(default)s; 0 turns both off)",
    "small_host_pages": "a host with at least this many pages but too few for a sample to show its template: "
                        "the shingles all its pages hold are its template in the checks (%(default)s; 0: off)",
    "ngram": "words per shingle (%(default)s)",
    "num_perm": "MinHash permutations (%(default)s)",
    "bands": "bands of the containment index (%(default)s; the Jaccard index is banded for --threshold)",
    "rows": "rows per band of the containment index (%(default)s)",
    "max_candidates": "a document keeps at most this many candidate pairs (the best; %(default)s)",
    "common_share": "the containment index leaves out shingles held by this share of a host's sampled pages "
                    "(%(default)s)",
    "global_share": "the containment index leaves out shingles held by this share of a global sample "
                    "of pages (%(default)s)",
}
RULE_OPTIONS = ("threshold", "containment", "template_docs", "template_pages", "small_host_pages", "opening",
                "max_candidates", "common_share", "global_share")
SIGNATURE_OPTIONS = ("ngram", "num_perm", "bands", "rows")
SCOPES = ("all", "source")


def add_dedup_arguments(parser: argparse.ArgumentParser,
                        options: tuple[str, ...] = RULE_OPTIONS + SIGNATURE_OPTIONS) -> None:
    """Add ``--scope`` and an option per DedupConfig field in ``options`` (``--template-docs``
    for ``template_docs``), its default the field's; :func:`config_from_args` reads them back.

    >>> ap = argparse.ArgumentParser(); add_dedup_arguments(ap, RULE_OPTIONS)
    >>> args = ap.parse_args(["--threshold", "0.9"])
    >>> config_from_args(args).threshold, config_from_args(args).template_docs, args.scope
    (0.9, 4, 'all')
    """
    defaults = {f.name: f.default for f in fields(DedupConfig)}
    for name in options:
        parser.add_argument("--" + name.replace("_", "-"), type=type(defaults[name]), default=defaults[name],
                            help=OPTION_HELP[name])
    parser.add_argument("--scope", choices=SCOPES, default=SCOPES[0],
                        help="pair documents across sources (all) or within each source only")


def config_from_args(args: argparse.Namespace) -> DedupConfig:
    """The :class:`DedupConfig` of :func:`add_dedup_arguments`' options (a field
    without an option keeps its default); raises ValueError for unusable settings."""
    return DedupConfig(**{name: getattr(args, name) for name in OPTION_HELP if hasattr(args, name)})
