"""Heuristic filters: every rule on both sides of its paper threshold, the
combined pass and its counters, and real text."""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, replace

import pytest

from curate.core.counters import Counters
from curate.filters.c4 import count_sentences
from curate.filters.gopher import (
    dup_ngram_char_fracs,
    duplicate_stats,
    top_ngram_char_frac,
)
from curate.filters.heuristics import (
    PRESETS,
    REASONS,
    C4Config,
    FilterConfig,
    FineWebConfig,
    GopherQualityConfig,
    GopherRepetitionConfig,
    HeuristicFilter,
    TextView,
    apply_filters,
    c4_clean_lines,
    c4_filter,
    c4_page_filter,
    fineweb_filter,
    gopher_quality,
    gopher_repetition,
)
from tests.common import lines_executed, shared

# A short, ordinary news-like document that passes every rule with defaults.
GOOD = (
    "The river rose quickly after three days of heavy rain, and the town council met on Monday evening.\n"
    "Residents said the water reached their doorsteps before dawn. Several roads were closed, "
    "and the schools stayed shut for the rest of the week.\n"
    "Engineers will inspect the old stone bridge tomorrow morning. The mayor promised that repairs "
    "would begin soon, and that families who lost property will receive help from the county.\n"
    "Volunteers from nearby villages brought food, blankets and dry clothes to the shelter in the library."
)


def test_good_document_passes_everything():
    assert apply_filters(GOOD) == (True, "", GOOD)
    assert gopher_quality(GOOD) == (True, "")
    assert gopher_repetition(GOOD) == (True, "")
    assert fineweb_filter(GOOD) == (True, "")
    assert c4_filter(GOOD) == (True, "", GOOD)


# ============================================================ Gopher quality


def words_doc(words: list[str], per_line: int = 10) -> str:
    return "\n".join(" ".join(words[i : i + per_line]) for i in range(0, len(words), per_line))


@pytest.mark.parametrize(
    "n, expected",
    [(49, (False, "gopher_short_doc")), (50, (True, "")), (100_000, (True, "")), (100_001, (False, "gopher_long_doc"))],
)
def test_gopher_word_count_bounds(n, expected):
    base = ["the", "house", "of", "cards"]
    text = " ".join((base * (n // 4 + 1))[:n])
    assert gopher_quality(text) == expected


@pytest.mark.parametrize(
    "words, expected",
    [
        (["to", "have"], (True, "")),  # mean 3.0: inclusive lower bound
        (["to", "the"], (False, "gopher_mean_word_length")),  # mean 2.5
        (["with", "that", "a" * 16, "b" * 16], (True, "")),  # mean 10.0: inclusive upper bound
        (["with", "that", "a" * 17, "b" * 17], (False, "gopher_mean_word_length")),  # mean 10.5
    ],
)
def test_gopher_mean_word_length(words, expected):
    assert gopher_quality(" ".join(words * 30)) == expected


def _plain(n: int) -> list[str]:
    return (["the", "house", "of", "cards", "fell"] * (n // 5 + 1))[:n]


@pytest.mark.parametrize("symbol", ["#", "...", "…"])
def test_gopher_symbol_word_ratio(symbol):
    words = _plain(100)
    ok = list(words)
    for i in range(10):  # 10 symbols / 100 words = 0.1 -> kept (rule is "greater than 0.1")
        ok[i * 10] = "tag" + symbol
    assert gopher_quality(" ".join(ok)) == (True, "")
    bad = list(ok)
    bad[5] = "one" + symbol  # 11 / 100
    assert gopher_quality(" ".join(bad)) == (False, "gopher_symbol_word_ratio")


def test_gopher_bullet_lines():
    lines = [" ".join(_plain(8)) for _ in range(10)]
    nine = ["• " + l for l in lines[:9]] + lines[9:]  # 90% -> kept ("more than 90%")
    assert gopher_quality("\n".join(nine)) == (True, "")
    ten = ["- " + l for l in lines]
    assert gopher_quality("\n".join(ten)) == (False, "gopher_bullet_lines")


def test_gopher_ellipsis_lines():
    lines = [" ".join(_plain(8)) for _ in range(10)]
    three = [l + "..." for l in lines[:3]] + lines[3:]  # 30% -> kept ("more than 30%")
    assert gopher_quality("\n".join(three)) == (True, "")
    four = [l + "…" for l in lines[:4]] + lines[4:]
    assert gopher_quality("\n".join(four)) == (False, "gopher_ellipsis_lines")


def test_gopher_alpha_words():
    words = _plain(100)
    ok = ["2021" if i < 20 else w for i, w in enumerate(words)]  # 80% with a letter -> kept
    assert gopher_quality(" ".join(ok)) == (True, "")
    bad = ["1984" if i < 21 else w for i, w in enumerate(words)]  # 79%
    assert gopher_quality(" ".join(bad)) == (False, "gopher_alpha_words")
    # a letter anywhere counts, in any script; digits/punctuation attached are fine
    mixed = ["3rd", "(café)", "東京", "x2"] * 20
    assert gopher_quality(" ".join(mixed), GopherQualityConfig(min_stop_words=None)) == (True, "")


def test_gopher_stop_words():
    one = " ".join(["the", "house", "cards", "fell", "down"] * 12)
    assert gopher_quality(one) == (False, "gopher_stop_words")
    two = " ".join(["the", "house", "of", "cards", "fell"] * 12)
    assert gopher_quality(two) == (True, "")
    # case and attached punctuation do not hide a stop word; repeats of one do not count twice
    cased = " ".join(["The", "house", "cards", "fell", "OF,"] * 12)
    assert gopher_quality(cased) == (True, "")
    assert gopher_quality(" ".join(["the", "The", "the.", "house", "fell"] * 12)) == (False, "gopher_stop_words")


def test_gopher_quality_rules_can_be_disabled():
    cfg = GopherQualityConfig(min_words=None)
    assert gopher_quality("the cat of the house", cfg) == (True, "")
    assert gopher_quality("anything", GopherQualityConfig(min_words=None, min_stop_words=None)) == (True, "")


# ========================================================= Gopher repetition

ONLY_REP = GopherRepetitionConfig(
    max_dup_line_frac=None,
    max_dup_line_char_frac=None,
    max_dup_para_frac=None,
    max_dup_para_char_frac=None,
    top_ngram_max_char_frac=(),
    dup_ngram_max_char_frac=(),
)


def unique_words(total_chars: int, prefix: str = "z") -> list[str]:
    """Distinct words whose lengths sum to exactly ``total_chars``."""
    out = [f"{prefix}{i:03d}" for i in range(total_chars // 4)]
    rest = total_chars % 4
    if rest:
        out.append("y" * rest)
    assert sum(map(len, out)) == total_chars
    return out


def unique_lines(n: int, length: int) -> list[str]:
    return [f"L{i:03d}".ljust(length, "q") for i in range(n)]


def test_duplicate_stats_counts_repeats_not_originals():
    assert duplicate_stats(["a", "b", "a", "a"]) == (2, 2)
    assert duplicate_stats([]) == (0, 0)


@pytest.mark.parametrize("sep, frac_field, char_field, prefix", [("\n", "max_dup_line_frac", "max_dup_line_char_frac", "gopher_dup_line"), ("\n\n", "max_dup_para_frac", "max_dup_para_char_frac", "gopher_dup_para")])
def test_gopher_duplicate_line_and_paragraph_fraction(sep, frac_field, char_field, prefix):
    cfg = replace(ONLY_REP, **{frac_field: 0.30})
    # 10 units, 3 of them repeats of an earlier one -> 0.3 -> kept ("above the cutoff" drops)
    keep = unique_lines(6, 20) + ["dup"] * 4
    assert gopher_repetition(sep.join(keep), cfg) == (True, "")
    drop = unique_lines(5, 20) + ["dup"] * 5  # 4 repeats / 10
    assert gopher_repetition(sep.join(drop), cfg) == (False, f"{prefix}_frac")

    cfg = replace(ONLY_REP, **{char_field: 0.20})
    # 10-char unit three times: 20 repeated chars; all chars 30 + 70 = 100 -> 0.2 -> kept
    keep = ["d" * 10] * 3 + unique_lines(7, 10)
    assert gopher_repetition(sep.join(keep), cfg) == (True, "")
    drop = ["d" * 10] * 3 + unique_lines(6, 10) + ["x" * 9]  # 20 / 99
    assert gopher_repetition(sep.join(drop), cfg) == (False, f"{prefix}_char_frac")


@pytest.mark.parametrize("n, limit", [(2, 0.20), (3, 0.18), (4, 0.16)])
def test_gopher_top_ngram_char_fraction(n, limit):
    assert dict(GopherRepetitionConfig().top_ngram_max_char_frac)[n] == limit
    cfg = replace(ONLY_REP, top_ngram_max_char_frac=((n, limit),))
    # an n-gram of two-letter words repeated k times (separated by unique
    # filler) covers exactly limit x 100 characters: 20 = 5 x 4, 18 = 3 x 6, 16 = 2 x 8
    covered = round(limit * 100)
    k, rem = divmod(covered, 2 * n)
    assert rem == 0 and k >= 2
    gram = [chr(ord("a") + i) * 2 for i in range(n)]

    def build(filler_chars: int) -> str:
        fill = unique_words(filler_chars)
        out: list[str] = []
        for i in range(k):
            out += gram + [fill[i]]
        out += fill[k:]
        return " ".join(out)

    assert gopher_repetition(build(100 - covered), cfg) == (True, "")  # exactly at the limit
    assert gopher_repetition(build(99 - covered), cfg) == (False, f"gopher_top_{n}gram")


def test_top_ngram_overlaps_count_once():
    assert top_ngram_char_frac("a a a a".split(), 2, 4) == 1.0
    assert top_ngram_char_frac("a b c d".split(), 2, 4) == 0.0  # nothing repeats


# words of the repeated n-gram, chosen so that its characters = limit x 100
_GRAMS = {
    5: ["abc", "bcd", "cde", "def", "efg"],  # 15 chars
    6: ["abc", "bcd", "cd", "de", "ef", "fg"],  # 14
    7: ["ab", "bc", "cd", "de", "ef", "fg", "g"],  # 13
    8: ["ab", "bc", "cd", "de", "e", "f", "g", "h"],  # 12
    9: ["ab", "bc", "c", "d", "e", "f", "g", "h", "i"],  # 11
    10: list("abcdefghij"),  # 10
}


@pytest.mark.parametrize("n, limit", [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)])
def test_gopher_duplicate_ngram_char_fraction(n, limit):
    assert dict(GopherRepetitionConfig().dup_ngram_max_char_frac)[n] == limit
    gram = _GRAMS[n]
    assert sum(map(len, gram)) * 2 == round(limit * 200)

    def build(total: int) -> str:  # the n-gram twice, apart, in `total` word characters
        fill = unique_words(total - 2 * sum(map(len, gram)))
        return " ".join(gram + fill[:10] + gram + fill[10:])

    # default config: all other repetition rules are active and must pass
    assert gopher_repetition(build(200)) == (True, "")  # exactly at the limit
    assert gopher_repetition(build(199)) == (False, f"gopher_dup_{n}gram")


def test_dup_ngram_fraction_counts_overlapping_words_once():
    words = ["x"] * 6  # the 5-gram at 0 and at 1 overlap: 6 words covered, not 10
    assert dup_ngram_char_fracs(words, [5, 6], 6) == {5: 1.0, 6: 0.0}
    # all occurrences count (first one included)
    words = "p q r s t u a b c d e v a b c d e w".split()
    fr = dup_ngram_char_fracs(words, [5, 6, 7], len(words))
    assert fr == {5: 10 / 18, 6: 0.0, 7: 0.0}


def test_dup_ngram_pruned_equals_brute_force():
    import random
    from collections import Counter

    rng = random.Random(7)
    for _ in range(30):
        words = [rng.choice("abcdef") for _ in range(rng.randint(5, 120))]
        total = len(words)
        fast = dup_ngram_char_fracs(words, list(range(5, 11)), total)
        for n in range(5, 11):
            grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
            cnt = Counter(grams)
            covered = set()
            for i, g in enumerate(grams):
                if cnt[g] > 1:
                    covered.update(range(i, i + n))
            assert fast[n] == pytest.approx(len(covered) / total), n


def test_repetition_is_linear_on_pathological_input():
    """One phrase repeated: every n-gram repeats, the worst case for the pruning. The work is
    counted, not timed (the time is in `python -m benchmarks.filters`)."""
    phrase = "alpha beta gamma delta epsilon zeta eta theta iota kappa "
    words = (phrase * 5000).split()
    fr = dup_ngram_char_fracs(words, list(range(5, 11)), sum(map(len, words)))
    assert fr[10] == 1.0
    # twice the input, twice the work (quadratic work would be four times)
    work = [lines_executed(dup_ngram_char_fracs, w, list(range(5, 11)), sum(map(len, w)))
            for w in ((phrase * 500).split(), (phrase * 1000).split())]
    assert work[1] < 2.2 * work[0], work


# ====================================================================== C4


def test_c4_terminal_punctuation_lines():
    lines = [
        "This line ends with a period.",
        "Does this line end with a question?",
        "This line ends with an exclamation mark!",
        'He said that this line ends "with a quote"',
        "She said that this one ends “with curly quotes”",
        "This line has no terminal punctuation at all",
        "This line trails off into an ellipsis...",
        "This line ends with a unicode ellipsis…",
    ]
    r = c4_clean_lines("\n".join(lines))
    assert r.text.split("\n") == lines[:5]
    assert r.line_drops == {"no_terminal_punct": 3}


def test_c4_five_words_per_line_and_three_sentences():
    """The paper: lines with >= 5 words, pages with >= 3 sentences (not 3/5)."""
    assert C4Config().min_words_per_line == 5 and C4Config().min_sentences == 3
    four = "Only four words here."
    five = "Exactly five words are here."
    r = c4_clean_lines(f"{four}\n{five}")
    assert (r.text, r.line_drops) == (five, {"too_few_words": 1})

    two = "The first sentence has words.\nThe second sentence has words."
    assert c4_filter(two)[:2] == (False, "c4_too_few_sentences")
    three = two + "\nThe third sentence has words."
    assert c4_filter(three)[:2] == (True, "")
    # sentences are counted inside lines too
    assert c4_filter("One sentence is here. Two sentences are here. Three are here now.")[:2] == (True, "")
    assert count_sentences("One sentence is here. Two are here, e.g. this one.") == 2


def test_c4_javascript_policy_citations():
    text = "\n".join(
        [
            "Please enable JavaScript to view the comments.",
            "By using this site you agree to our Terms of Use.",
            "This website uses cookies to improve your experience.",
            "The bridge was built in 1890 by local masons.[1]",
            "It was restored twice[citation needed] over the last century.",
            "Today it carries about two thousand cars a day.[edit]",
        ]
    )
    r = c4_clean_lines(text)
    assert r.text.split("\n") == [
        "The bridge was built in 1890 by local masons.",
        "It was restored twice over the last century.",
        "Today it carries about two thousand cars a day.",
    ]
    assert r.line_drops == {"javascript": 1, "policy": 2}
    assert c4_page_filter(r) == (True, "")


def test_c4_lorem_ipsum_and_curly_bracket_pages():
    good = GOOD
    assert c4_filter(good + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.")[:2] == (False, "c4_lorem_ipsum")
    assert c4_filter(good + "\nThe function returns {a: 1} when it is called.")[:2] == (False, "c4_curly_bracket")
    # a "{" on a line C4 drops anyway does not cost the page (as the released C4 code) ...
    assert c4_filter(good + "\nvar x = {a: 1}")[:2] == (True, "")
    # ... unless page checks are asked to look at the raw text
    raw = C4Config(page_checks_on_raw_text=True)
    assert c4_filter(good + "\nvar x = {a: 1}", raw)[:2] == (False, "c4_curly_bracket")
    assert c4_filter(good, raw)[:2] == (True, "")
    assert c4_filter(good, C4Config(filter_curly_bracket=False))[:2] == (True, "")


def test_c4_bad_words_off_by_default():
    text = GOOD + "\nThe county clerk said the floodwater was a badword nuisance today."
    assert C4Config().bad_words == ()
    assert c4_filter(text)[:2] == (True, "")
    assert c4_filter(text, C4Config(bad_words=("badword",)))[:2] == (False, "c4_bad_words")
    assert c4_filter(text, C4Config(bad_words=("bad", "floodwater was a")))[:2] == (False, "c4_bad_words")
    assert c4_filter(text, C4Config(bad_words=("bad",)))[:2] == (True, "")  # whole words only


def test_c4_counts_and_crlf():
    r = c4_clean_lines("Title\r\n\r\n" + GOOD.replace("\n", "\r\n"))
    assert (r.lines_in, r.lines_kept, r.line_drops) == (5, 4, {"no_terminal_punct": 1})
    assert r.sentences >= 4


# ================================================================== FineWeb


def test_fineweb_thresholds_are_the_papers():
    cfg = FineWebConfig()
    assert (cfg.line_punct_thr, cfg.dup_line_char_thr, cfg.short_line_thr, cfg.short_line_length) == (0.12, 0.1, 0.67, 30)


def test_fineweb_line_punct_ratio():
    plain = unique_lines(25, 40)
    three = [l + "." for l in plain[:3]] + plain[3:]  # 3/25 = 0.12 -> dropped ("<= 0.12")
    assert fineweb_filter("\n".join(three)) == (False, "fineweb_line_punct_ratio")
    four = [l + "!" for l in plain[:4]] + plain[4:]  # 0.16 -> kept
    assert fineweb_filter("\n".join(four)) == (True, "")
    # closing quotes/brackets after the terminator still count as a sentence end
    quoted = [l + '."' for l in plain[:4]] + plain[4:]
    assert fineweb_filter("\n".join(quoted)) == (True, "")


def test_fineweb_duplicate_line_char_ratio_is_0_1_not_0_01():
    lines = [l + "." for l in unique_lines(9, 10)]  # 9 x 11 chars
    # one 11-char repeat of 110 chars = 0.1 -> dropped (">= 0.1")
    assert fineweb_filter("\n".join(lines + [lines[0]])) == (False, "fineweb_dup_line_char_ratio")
    # 5% of characters duplicated: kept with the paper's 0.1 (a 0.01 cut-off would drop it)
    lines = [l + "." for l in unique_lines(19, 40)]  # 19 x 41 chars
    doc = "\n".join(lines + [lines[0]])  # 41 / 820 = 0.05
    assert fineweb_filter(doc) == (True, "")
    assert fineweb_filter(doc, FineWebConfig(dup_line_char_thr=0.01)) == (False, "fineweb_dup_line_char_ratio")


def test_fineweb_short_line_ratio():
    long = [f"Line {i:03d} is long enough to pass the rule." for i in range(100)]
    short = [f"Line {i:03d} is short." for i in range(100)]  # 21 chars
    assert len(long[0]) >= 30 and len(short[0]) < 30
    assert fineweb_filter("\n".join(short[:67] + long[67:])) == (False, "fineweb_short_line_ratio")  # 0.67
    assert fineweb_filter("\n".join(short[:66] + long[66:])) == (True, "")  # 0.66
    # exactly 30 characters is not "shorter than 30"
    thirty = [f"Line {i:03d} has exactly thirty.".ljust(30, ".") for i in range(10)]
    assert all(len(x) == 30 for x in thirty)
    assert fineweb_filter("\n".join(thirty)) == (True, "")


# ========================================================= combined + counters


def test_apply_filters_counters_exact():
    docs = [
        GOOD,
        GOOD.replace("river", "canal"),
        "Buy now!",  # nothing survives C4 line cleaning
        GOOD + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
        # three sentences but only 15 words
        "The cat sat down. The dog ran away fast. The bird flew off too.\nA second line is here now.\nAnd a third line is here.",
        # long enough but no stop words at all
        "\n".join(f"Cats chase mice {i} in barns during cold winter nights, farmers report." for i in range(8)),
    ]
    c = Counters()
    results = [apply_filters(d, FilterConfig(), c) for d in docs]
    assert [r[:2] for r in results] == [
        (True, ""),
        (True, ""),
        (False, "c4_too_few_sentences"),
        (False, "c4_lorem_ipsum"),
        (False, "gopher_short_doc"),
        (False, "gopher_stop_words"),
    ]
    assert c.as_dict() == {
        "dropped:c4_lorem_ipsum": 1,
        "dropped:c4_too_few_sentences": 1,
        "dropped:gopher_short_doc": 1,
        "dropped:gopher_stop_words": 1,
        "kept": 2,
    }
    assert all(r[1] in REASONS for r in results if not r[0])


def test_apply_filters_line_counters_and_cleaned_text():
    c = Counters()
    keep, reason, text = apply_filters("Menu\nHome | About\n" + GOOD, replace(FilterConfig(), line_counters=True), c)
    assert (keep, reason, text) == (True, "", GOOD)
    assert c.as_dict() == {"c4_lines:dropped:no_terminal_punct": 2, "c4_lines:kept": 4, "kept": 1}


def test_apply_filters_order_and_empty():
    # C4 off: empty text has its own reason; all off: everything is kept unchanged
    assert apply_filters("  \n ", FilterConfig().only("gopher_quality")) == (False, "empty", "  \n ")
    assert HeuristicFilter(FilterConfig.preset("none"))("x") == (True, "", "x")
    # a document failing both a Gopher quality rule and FineWeb is counted under Gopher (runs first)
    doc = "\n".join(["short line"] * 30)
    assert apply_filters(doc, FilterConfig().only("gopher_quality", "fineweb"))[1] == "gopher_stop_words"
    assert apply_filters(doc, FilterConfig().only("fineweb"))[1] == "fineweb_line_punct_ratio"


def test_presets_and_config_serialisable():
    assert set(PRESETS) == {"all", "c4", "gopher", "fineweb", "none"}
    assert FilterConfig.preset("fineweb").c4.terminal_punct_lines is False
    assert FilterConfig.preset("c4").gopher_quality.enabled is False
    with pytest.raises(ValueError):
        FilterConfig.preset("nope")
    with pytest.raises(ValueError):
        FilterConfig().only("gopher")
    json.dumps(asdict(FilterConfig()))  # stats files embed the config


def test_stage_presets(tmp_path, capsys):
    from cli.filter import add_filter_parser
    from curate.filters.stage import StageConfig
    from tests.common import run_cli

    assert StageConfig.preset("gpt3") == StageConfig.preset("default") == StageConfig()
    assert StageConfig.preset("filters:c4").filters == FilterConfig.preset("c4")
    # the filter's "tiny" preset was gpt3 under another name and is gone (the
    # tokenizer's, the shard builder's and the trainer's "tiny" are other things)
    with pytest.raises(ValueError, match="known: gpt3, filters:"):
        StageConfig.preset("tiny")
    # on the command line an unknown preset is one line and exit status 2, before any input is read
    assert run_cli(add_filter_parser, ["filter", "-i", str(tmp_path / "absent.jsonl"), "-o",
                                       str(tmp_path / "out.jsonl"), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "curate filter: error: unknown preset 'tiny'" in err


def test_text_view_shared_splits():
    v = TextView("a b\r\n\r\n  c  \n\n\nd e")
    assert v.words == ["a", "b", "c", "d", "e"]
    assert v.lines == ["a b", "c", "d e"]
    assert v.paragraphs == ["a b", "c", "d e"]


# ================================================================= real data


def _dragnet(n: int) -> list[str]:
    path = shared("reference", "webtext_like", "dragnet-2012-articles.train.jsonl.gz")
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["article"])
            if len(out) == n:
                break
    return out


@pytest.mark.shared_data
def test_real_news_articles_mostly_pass():
    arts = _dragnet(300)
    assert len(arts) == 300
    quality = sum(gopher_quality(a)[0] for a in arts) / len(arts)
    repetition = sum(gopher_repetition(a)[0] for a in arts) / len(arts)
    assert quality >= 0.9, quality
    assert repetition >= 0.9, repetition
    c = Counters()
    kept = [t for keep, _, t in (apply_filters(a, FilterConfig(), c) for a in arts) if keep]
    assert len(kept) / len(arts) >= 0.8, c.as_dict()
    assert sum(c.as_dict().values()) == len(arts)
    # cleaned text only ever loses lines
    assert all(len(t) > 0 for t in kept)


@pytest.mark.shared_data
def test_real_book_prose_passes_gopher():
    path = shared("reference", "books", "pg1342_Pride-and-Prejudice.txt.gz")
    text = gzip.open(path, "rt", encoding="utf-8").read()
    body = text[len(text) // 10 : len(text) // 10 + 200_000]
    chunks = [body[i : i + 5000] for i in range(0, len(body), 5000)]
    assert sum(gopher_quality(ch)[0] for ch in chunks) / len(chunks) >= 0.95
    assert sum(gopher_repetition(ch)[0] for ch in chunks) / len(chunks) >= 0.95


@pytest.mark.shared_data
def test_all_filters_cost_per_5kb_document():
    """Loose guard against accidental quadratic work, counted rather than timed: on a real
    5 kB article the filters run 0.1-0.6 Python lines per character (a loop over pairs of
    words or lines would run hundreds). The time, ~0.2-0.7 ms a document, is in
    `python -m benchmarks.filters`."""
    docs = [a for a in _dragnet(400) if 4000 <= len(a) <= 6000][:40]
    assert docs

    def all_filters(d):
        v = TextView(d)
        gopher_quality(v), fineweb_filter(v), gopher_repetition(v), c4_clean_lines(d)

    per_char = max(lines_executed(all_filters, d) / len(d) for d in docs)
    assert per_char < 2, per_char
