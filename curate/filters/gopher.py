"""Gopher heuristic filters (Rae et al. 2021, "Scaling Language Models: Methods,
Analysis & Insights from Training Gopher", arXiv:2112.11446, Appendix A.1.1).

Two rule families, each a function returning ``(keep, reason)``:

* :func:`gopher_quality` - the "quality filters" paragraph of A.1.1.
* :func:`gopher_repetition` - the "repetition removal" paragraph of A.1.1 with
  the cut-offs of Table A1 ("Thresholds for repetitious text").

Definitions the paper leaves open, and what we chose (documented once here):

* **Words** are whitespace-separated tokens (``str.split()``). It is the
  cheapest tokeniser there is (one C pass), it is language-agnostic, and
  punctuation stays attached ("end." is one word). Compared with a
  punctuation-splitting tokeniser this raises the mean word length by ~0.1-0.3
  characters for English prose, far from the 3 / 10 limits.
* **Lines** are ``str.splitlines()`` pieces, stripped, blank ones ignored, so
  ``\\r\\n`` text and indentation do not change any ratio.
* **Paragraphs** are runs of non-blank lines separated by at least one blank
  line.
* A **duplicate line / paragraph** is an occurrence of one that already
  appeared earlier in the document: a line present k times counts k-1 times.
  The character fractions divide by the characters of all (stripped) lines.
* **n-gram character fractions** divide by the characters of all words
  (whitespace excluded). For n in 2..4 the numerator is count x characters of
  the most frequent n-gram, and only when it occurs at least twice (an n-gram
  seen once is not repetition). For n in 5..10 the numerator is the characters
  of every word covered by *any* occurrence of an n-gram that occurs more than
  once, each word counted once even where occurrences overlap - the paper's
  "taking care not to count characters that occur in overlapping n-grams more
  than once".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate, filterfalse, repeat
from operator import mul
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "TextView",
    "GopherQualityConfig",
    "GopherRepetitionConfig",
    "gopher_quality",
    "gopher_repetition",
    "duplicate_stats",
    "STOP_WORDS",
    "BULLETS",
]

Decision = tuple[bool, str]

#: Gopher A.1.1: "at least two of the following English words".
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})

#: The paper says "starting with a bullet point" without a list. These are the
#: bullet glyphs HTML-to-text extractors emit for <li> items, plus the ASCII
#: markdown bullets "-" and "*".
BULLETS = ("•", "‣", "◦", "⁃", "▪", "▫", "●", "○", "■", "□", "➢", "►", "-", "*", "–", "—")

ELLIPSES = ("...", "…")

# A character that is a letter in any script: a word char that is neither a
# digit nor underscore. Used only on the (few) words that are not all-letters.
_HAS_LETTER = re.compile(r"[^\W\d_]")
_STRIP_PUNCT = "\"'“”‘’«»()[]{}<>.,;:!?-–—…*#/\\|"


class TextView:
    """Lazily split views of a document, shared by all rules of one pass.

    Each property is computed at most once, so running every filter on a
    document splits it into lines/words only once.

    >>> v = TextView("a b\\n\\n c \\n")
    >>> v.words, v.lines, v.paragraphs
    (['a', 'b', 'c'], ['a b', 'c'], ['a b', 'c'])
    """

    def __init__(self, text: str):
        self.text = text

    @cached_property
    def words(self) -> list[str]:
        return self.text.split()

    @cached_property
    def lines(self) -> list[str]:
        """Stripped, non-blank lines."""
        return [s for s in (line.strip() for line in self.text.splitlines()) if s]

    @cached_property
    def paragraphs(self) -> list[str]:
        """Runs of non-blank lines separated by blank lines, lines joined by "\\n"."""
        paras: list[str] = []
        cur: list[str] = []
        for line in self.text.splitlines():
            s = line.strip()
            if s:
                cur.append(s)
            elif cur:
                paras.append("\n".join(cur))
                cur = []
        if cur:
            paras.append("\n".join(cur))
        return paras

    @cached_property
    def line_chars(self) -> int:
        return sum(map(len, self.lines))

    @cached_property
    def word_chars(self) -> int:
        return sum(map(len, self.words))

    @cached_property
    def line_duplicates(self) -> tuple[int, int]:
        """:func:`duplicate_stats` of :attr:`lines` (shared by Gopher and FineWeb)."""
        return duplicate_stats(self.lines)


def _view(doc: "str | TextView") -> TextView:
    return doc if isinstance(doc, TextView) else TextView(doc)


def duplicate_stats(items: Iterable[str]) -> tuple[int, int]:
    """Return ``(n_duplicates, duplicate_chars)`` over ``items``.

    An item counts as a duplicate when an equal item appeared before it, so
    the first occurrence is the "original" and is never counted.

    >>> duplicate_stats(["a", "bb", "a", "bb", "a"])
    (3, 4)
    """
    seen: set[str] = set()
    add = seen.add
    n_dup = dup_chars = 0
    for item in items:
        if item in seen:
            n_dup += 1
            dup_chars += len(item)
        else:
            add(item)
    return n_dup, dup_chars


# --------------------------------------------------------------------------
# Quality rules
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class GopherQualityConfig:
    """Gopher A.1.1 quality-filter thresholds (paper defaults).

    Bounds are inclusive on the keep side, as the paper phrases them: keep
    50..100,000 words and mean word length 3..10; drop when the hash or
    ellipsis per word ratio is *greater than* 0.1, when *more than* 90% of
    lines start with a bullet or *more than* 30% end with an ellipsis, when
    *fewer than* 80% of words contain a letter, or when *fewer than* 2 of the
    stop words occur. Set a field to ``None`` to disable that single rule.
    """

    enabled: bool = True
    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words: tuple[str, ...] = tuple(sorted(STOP_WORDS))  # tuples keep asdict() JSON-able
    bullets: tuple[str, ...] = BULLETS


_DEFAULT_STOP = tuple(sorted(STOP_WORDS))


def _count_stop_words(words: Sequence[str], stop_words: frozenset[str], need: int) -> int:
    # Fast path: exact tokens (the common case in prose). Fallback lowercases
    # and strips attached punctuation ("The", "that," ...), on distinct
    # tokens only.
    found = stop_words.intersection(words)  # iterates words, builds no big set
    if len(found) >= need:
        return len(found)
    found = set(found)
    for w in set(words):
        w = w.lower().strip(_STRIP_PUNCT)
        if w in stop_words:
            found.add(w)
            if len(found) >= need:
                break
    return len(found)


def gopher_quality(doc: "str | TextView", config: GopherQualityConfig = GopherQualityConfig()) -> Decision:
    """Apply the Gopher quality rules; first failing rule wins.

    Reasons: ``gopher_short_doc``, ``gopher_long_doc``,
    ``gopher_mean_word_length``, ``gopher_symbol_word_ratio``,
    ``gopher_bullet_lines``, ``gopher_ellipsis_lines``, ``gopher_alpha_words``,
    ``gopher_stop_words``; ``(True, "")`` when kept.

    >>> gopher_quality("too short")
    (False, 'gopher_short_doc')
    >>> gopher_quality(" ".join(["the cat sat with a dog and other animals."] * 6))
    (True, '')
    """
    c = config
    v = _view(doc)
    words = v.words
    n = len(words)
    if c.min_words is not None and n < c.min_words:
        return False, "gopher_short_doc"
    if c.max_words is not None and n > c.max_words:
        return False, "gopher_long_doc"
    if n == 0:  # every length-based ratio below is undefined; nothing to judge
        return True, ""

    mean_len = v.word_chars / n
    if (c.min_mean_word_length is not None and mean_len < c.min_mean_word_length) or (
        c.max_mean_word_length is not None and mean_len > c.max_mean_word_length
    ):
        return False, "gopher_mean_word_length"

    text = v.text
    if c.max_symbol_word_ratio is not None:
        # "a symbol-to-word ratio greater than 0.1 for either the hash symbol
        # or the ellipsis": two separate ratios, each against the same limit.
        if text.count("#") / n > c.max_symbol_word_ratio:
            return False, "gopher_symbol_word_ratio"
        if (text.count("...") + text.count("…")) / n > c.max_symbol_word_ratio:
            return False, "gopher_symbol_word_ratio"

    lines = v.lines
    if lines:
        if c.max_bullet_lines_ratio is not None:
            bullets = c.bullets
            n_bullet = sum(map(str.startswith, lines, repeat(bullets)))
            if n_bullet / len(lines) > c.max_bullet_lines_ratio:
                return False, "gopher_bullet_lines"
        if c.max_ellipsis_lines_ratio is not None:
            n_ell = sum(map(str.endswith, lines, repeat(ELLIPSES)))
            if n_ell / len(lines) > c.max_ellipsis_lines_ratio:
                return False, "gopher_ellipsis_lines"

    if c.min_alpha_words_ratio is not None:
        # str.isalpha() (in C) settles the bulk; only words with a digit or
        # attached punctuation go through the regex. No Python-level loop.
        other = list(filterfalse(str.isalpha, words))
        n_alpha = n - len(other) + sum(map(bool, map(_HAS_LETTER.search, other)))
        if n_alpha / n < c.min_alpha_words_ratio:
            return False, "gopher_alpha_words"

    if c.min_stop_words is not None and c.min_stop_words > 0:
        stop = STOP_WORDS if c.stop_words == _DEFAULT_STOP else frozenset(c.stop_words)
        if _count_stop_words(words, stop, c.min_stop_words) < c.min_stop_words:
            return False, "gopher_stop_words"

    return True, ""


# --------------------------------------------------------------------------
# Repetition rules
# --------------------------------------------------------------------------

# Gopher Table A1 ("Thresholds for repetitious text. For each document, we
# compute these ratios and remove it if any are above the specified cutoff"):
#   duplicate line fraction                  0.30
#   duplicate paragraph fraction             0.30
#   duplicate line character fraction        0.20
#   duplicate paragraph character fraction   0.20
#   top 2-gram character fraction            0.20
#   top 3-gram character fraction            0.18
#   top 4-gram character fraction            0.16
#   duplicate 5-gram character fraction      0.15
#   duplicate 6-gram character fraction      0.14
#   duplicate 7-gram character fraction      0.13
#   duplicate 8-gram character fraction      0.12
#   duplicate 9-gram character fraction      0.11
#   duplicate 10-gram character fraction     0.10
_TOP_NGRAMS = ((2, 0.20), (3, 0.18), (4, 0.16))
_DUP_NGRAMS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """Gopher Table A1 cut-offs; a document is dropped when a ratio is *above*
    its cut-off. ``None`` disables a rule; drop pairs from the n-gram tuples
    to disable single n."""

    enabled: bool = True
    max_dup_line_frac: float | None = 0.30
    max_dup_line_char_frac: float | None = 0.20
    max_dup_para_frac: float | None = 0.30
    max_dup_para_char_frac: float | None = 0.20
    top_ngram_max_char_frac: tuple[tuple[int, float], ...] = field(default=_TOP_NGRAMS)
    dup_ngram_max_char_frac: tuple[tuple[int, float], ...] = field(default=_DUP_NGRAMS)


def _ngrams(words: Sequence, n: int):
    return zip(*(words[i:] for i in range(n)))


def _covered_chars(starts: Iterable[int], n: int, prefix: Sequence[int]) -> int:
    """Characters of the words covered by n-grams starting at ``starts``
    (ascending), each word once; ``prefix`` = cumulative word lengths."""
    total = 0
    run_start = run_end = -1
    for s in starts:
        if s > run_end:
            total += prefix[run_end] - prefix[run_start] if run_end > run_start else 0
            run_start = s
        run_end = s + n
    if run_end > run_start:
        total += prefix[run_end] - prefix[run_start]
    return total


def top_ngram_char_frac(words: Sequence[str], n: int, total_chars: int) -> float:
    """Characters covered by the most frequent n-gram / word characters.

    Overlapping occurrences ("a a" in "a a a") cover each character once, so
    the fraction never exceeds 1.

    >>> top_ngram_char_frac("a b a b x y".split(), 2, 6)
    0.6666666666666666
    >>> top_ngram_char_frac("a a a a".split(), 2, 4)
    1.0
    >>> top_ngram_char_frac("a b x cc dd y a b cc dd".split(), 2, 14)
    0.5714285714285714
    """
    if len(words) < n or total_chars == 0:
        return 0.0
    grams = list(_ngrams(words, n))
    counts = Counter(grams)
    count = max(counts.values())
    if count < 2:
        return 0.0
    # ties: the most frequent n-gram with the most characters (order-independent)
    top = max((g for g, k in counts.items() if k == count), key=lambda g: sum(map(len, g)))
    gram_chars = sum(map(len, top))
    covered = count * gram_chars
    prev_end = -1
    for i, g in enumerate(grams):
        if g == top:
            if i < prev_end:  # overlaps the previous occurrence: count shared words once
                covered -= sum(map(len, words[i:prev_end]))
            prev_end = i + n
    return covered / total_chars


def _repeated_runs(words: Sequence[str], counts: Counter, min_len: int) -> list[tuple[int, int]]:
    """``(start, end)`` spans of >= ``min_len`` consecutive words that each
    occur more than once in the document.

    Every word of a repeated n-gram occurs at least twice, so all occurrences
    of repeated n-grams (n >= min_len) lie inside these spans; searching only
    there is exact. Vectorised: one C-level lookup per word, then numpy.
    """
    n = len(words)
    flags = np.zeros(n + 2, dtype=np.int8)
    flags[1:-1] = np.fromiter(map(counts.__getitem__, words), dtype=np.int64, count=n) > 1
    edges = np.diff(flags)  # +1 where a run starts, -1 one past where it ends
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    long_enough = (ends - starts) >= min_len
    return list(zip(starts[long_enough].tolist(), ends[long_enough].tolist()))


def dup_ngram_char_fracs(
    words: Sequence[str],
    ns: Sequence[int],
    total_chars: int,
    counts: Counter | None = None,
    runs: list[tuple[int, int]] | None = None,
) -> dict[int, float]:
    """For each n in ``ns`` (ascending, contiguous), the fraction of word
    characters covered by n-grams that occur more than once (all their
    occurrences; a word covered by several counts once).

    Exact, with two prunings that keep ordinary prose cheap: n-grams are only
    built inside runs of words that repeat (see :func:`_repeated_runs`), and
    an (n+1)-gram can only repeat at a position i where the n-grams at i and
    i+1 both repeat. ``counts`` (``Counter(words)``) and ``runs``
    (``_repeated_runs(words, counts, ns[0])``) are reused when given.

    >>> dup_ngram_char_fracs("x a b c d e y a b c d e z".split(), [5, 6], 13)
    {5: 0.7692307692307693, 6: 0.0}
    """
    out = {n: 0.0 for n in ns}
    n_words = len(words)
    if not ns or total_chars == 0 or n_words < ns[0]:
        return out
    n0 = ns[0]
    if runs is None:
        runs = _repeated_runs(words, counts if counts is not None else Counter(words), n0)
    if not runs:
        return out
    starts = [i for a, b in runs for i in range(a, b - n0 + 1)]
    grams = {i: tuple(words[i : i + n0]) for i in starts}
    cnt = Counter(grams.values())
    cand = [i for i in starts if cnt[grams[i]] > 1]
    prefix = None
    n_prev = n0
    for n in ns:
        if n != n_prev:
            cand_set = set(cand)
            ext = [i for i in cand if i + 1 in cand_set and i + n <= n_words]
            grams = {i: tuple(words[i : i + n]) for i in ext}
            cnt = Counter(grams.values())
            cand = [i for i in ext if cnt[grams[i]] > 1]
            n_prev = n
        if not cand:
            break
        if prefix is None:
            prefix = [0, *accumulate(map(len, words))]
        out[n] = _covered_chars(cand, n, prefix) / total_chars
    return out


def gopher_repetition(doc: "str | TextView", config: GopherRepetitionConfig = GopherRepetitionConfig()) -> Decision:
    """Apply the Gopher repetition rules (Table A1); first failing rule wins.

    Reasons: ``gopher_dup_line_frac``, ``gopher_dup_line_char_frac``,
    ``gopher_dup_para_frac``, ``gopher_dup_para_char_frac``,
    ``gopher_top_{2,3,4}gram``, ``gopher_dup_{5..10}gram``.

    >>> gopher_repetition("same line\\n" * 4 + "another line")
    (False, 'gopher_dup_line_frac')
    """
    c = config
    v = _view(doc)

    lines = v.lines
    if lines and (c.max_dup_line_frac is not None or c.max_dup_line_char_frac is not None):
        n_dup, dup_chars = v.line_duplicates
        if c.max_dup_line_frac is not None and n_dup / len(lines) > c.max_dup_line_frac:
            return False, "gopher_dup_line_frac"
        if c.max_dup_line_char_frac is not None and dup_chars / v.line_chars > c.max_dup_line_char_frac:
            return False, "gopher_dup_line_char_frac"

    # A repeated paragraph repeats all its lines, so without duplicate lines
    # there are no duplicate paragraphs and the paragraph split can be skipped.
    if (c.max_dup_para_frac is not None or c.max_dup_para_char_frac is not None) and v.line_duplicates[0]:
        paras = v.paragraphs
        if paras:
            n_dup, dup_chars = duplicate_stats(paras)
            if c.max_dup_para_frac is not None and n_dup / len(paras) > c.max_dup_para_frac:
                return False, "gopher_dup_para_frac"
            # paragraph chars include the "\n" joining its lines; divide by the
            # same measure so a fully duplicated document scores <= 1.
            para_chars = sum(map(len, paras))
            if c.max_dup_para_char_frac is not None and dup_chars / para_chars > c.max_dup_para_char_frac:
                return False, "gopher_dup_para_char_frac"

    words = v.words
    total = v.word_chars
    if not words or total == 0:
        return True, ""
    counts = Counter(words)

    if c.top_ngram_max_char_frac:
        # Bound: the top n-gram only covers occurrences of its <= n distinct
        # words, so it covers at most the n largest per-word character masses
        # (count x length). Prose almost never gets near the limits; skip the
        # n-gram count then.
        masses = sorted(map(mul, counts.values(), map(len, counts)), reverse=True)
        for n, limit in c.top_ngram_max_char_frac:
            if sum(masses[:n]) / total <= limit:
                continue
            if top_ngram_char_frac(words, n, total) > limit:
                return False, f"gopher_top_{n}gram"

    if c.dup_ngram_max_char_frac:
        limits = dict(c.dup_ngram_max_char_frac)
        ns = sorted(limits)
        runs = _repeated_runs(words, counts, ns[0])
        # Bound: n-gram repeats lie inside runs of length >= n, so those runs'
        # characters bound the covered characters. Skip counting if no n can
        # exceed its limit (the common case for prose).
        run_chars = [(b - a, sum(map(len, words[a:b]))) for a, b in runs]
        if any(sum(m for k, m in run_chars if k >= n) / total > limits[n] for n in ns):
            if ns != list(range(ns[0], ns[-1] + 1)):
                # the (n -> n+1) pruning needs contiguous n; one pass per n instead
                fracs = {n: dup_ngram_char_fracs(words, [n], total, counts)[n] for n in ns}
            else:
                fracs = dup_ngram_char_fracs(words, ns, total, counts, runs)
            for n in ns:
                if fracs[n] > limits[n]:
                    return False, f"gopher_dup_{n}gram"

    return True, ""
