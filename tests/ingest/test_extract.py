"""Tests for curate.ingest.extract.html_to_text and the extraction benchmark metric."""

from __future__ import annotations

import pytest

from benchmarks.extraction import (
    DEFAULT_DATA,
    decode_html,
    load_dataset,
    page_counts,
    page_precision_recall,
    score_pages,
    shingles,
    tokenize,
)
from curate.ingest.extract import html_to_text
from tests.common import SAMPLE, lines_executed

# --------------------------------------------------------------------------- metric


def test_tokenize_is_unicode_words():
    assert tokenize("Grüße, 世界! it's") == ["Grüße", "世界", "it", "s"]
    assert tokenize("") == []


def test_shingles_short_and_empty():
    assert shingles("") == {}
    assert shingles("hello world") == {("hello", "world"): 1}
    assert shingles("a b c d e") == {("a", "b", "c", "d"): 1, ("b", "c", "d", "e"): 1}


def test_page_counts_exact_match():
    assert page_counts("a b c d e", "a b c d e") == (1.0, 0.0, 0.0)
    assert page_precision_recall(1.0, 0.0, 0.0) == (1.0, 1.0)


def test_page_counts_one_wrong_word():
    # truth {abcd, bcde}, pred {abcd, bcdx}: tp=1, fp=1, fn=1 -> thirds
    tp, fp, fn = page_counts("a b c d e", "a b c d x")
    assert (tp, fp, fn) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert page_precision_recall(tp, fp, fn) == pytest.approx((0.5, 0.5))


def test_page_counts_multiset():
    # truth shingles: abcd x2, bcda, cdab, dabc (5); pred: abcd x1
    tp, fp, fn = page_counts("a b c d a b c d", "a b c d")
    assert (tp, fp, fn) == pytest.approx((0.2, 0.0, 0.8))
    assert page_precision_recall(tp, fp, fn) == pytest.approx((1.0, 0.2))


def test_page_edge_cases():
    assert page_counts("", "") == (0.0, 0.0, 0.0)
    assert page_precision_recall(0.0, 0.0, 0.0) == (1.0, 1.0)  # nothing to find, nothing found
    assert page_precision_recall(0.0, 0.0, 1.0) == (0.0, 0.0)  # predicted nothing
    assert page_precision_recall(0.0, 1.0, 0.0) == (0.0, 0.0)  # truth empty, predicted junk


def test_score_pages_corpus_means():
    truth = {"1": "a b c d e", "2": "a b c d e", "3": "a b c d e", "4": ""}
    pred = {"1": "a b c d e", "2": "a b c d x", "3": "", "4": ""}
    res = score_pages(truth, pred)
    # precision over pages with tp+fp>0: pages 1, 2 -> (1 + 0.5) / 2
    assert res["precision"] == pytest.approx(0.75)
    # recall over pages with tp+fn>0: pages 1, 2, 3 -> (1 + 0.5 + 0) / 3
    assert res["recall"] == pytest.approx(0.5)
    assert res["f1"] == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert res["pages"]["3"]["recall"] == 0.0
    assert res["n"] == 4


def test_score_pages_missing_prediction_counts_as_empty():
    res = score_pages({"1": "one two three four five"}, {})
    assert res["recall"] == 0.0 and res["precision"] == 0.0 and res["f1"] == 0.0


def test_decode_html_charset():
    assert decode_html("héllo".encode("utf-8")) == "héllo"
    latin = '<meta charset="iso-8859-1"><p>caf\xe9</p>'.encode("latin-1")
    assert "café" in decode_html(latin)
    assert decode_html(b"\xff\xfe\xfa") == "\ufffd\ufffd\ufffd"


# --------------------------------------------------------------------------- extractor

PARA1 = (
    "The city council voted on Tuesday to expand the bus network, adding three new routes "
    "that will connect the northern suburbs with the central station."
)
PARA2 = (
    "Officials said the first buses would run in March, and that fares would stay the same "
    "for at least another year while ridership is evaluated."
)
PARA3 = "Critics argued that the money would be better spent on repairing existing roads."

PAGE = f"""<!doctype html>
<html><head><title>Council expands bus network | Example News</title>
<style>p {{ color: red }}</style><script>var x = "not text";</script></head>
<body>
<header class="site-header"><a href="/">Example News</a>
  <nav><ul><li><a href="/world">World</a></li><li><a href="/politics">Politics</a></li>
  <li><a href="/sport">Sport</a></li><li><a href="/culture">Culture</a></li></ul></nav></header>
<div class="layout">
  <main>
    <article>
      <h1>Council expands bus network</h1>
      <div class="byline">By Jane Doe, 12 March 2024</div>
      <div class="share-tools"><a href="#">Share on Facebook</a> <a href="#">Tweet</a></div>
      <p>{PARA1}</p>
      <h2>When it starts</h2>
      <p>{PARA2}</p>
      <div class="ad-slot">Advertisement</div>
      <ul><li>Route 12: North Park to Central</li><li>Route 14: Hillside to Central</li></ul>
      <p>{PARA3}</p>
    </article>
    <section class="comments"><h3>Comments</h3>
      <p>I think this is a great idea and long overdue for our neighbourhood, honestly.</p></section>
  </main>
  <aside><h3>Most read</h3><ul><li><a href="/a">Another story that everyone is reading</a></li>
    <li><a href="/b">Yet another popular story about something else</a></li></ul></aside>
</div>
<footer><p>Copyright 2024 Example News. All rights reserved.</p>
  <a href="/privacy">Privacy policy</a> <a href="/terms">Terms of use</a></footer>
</body></html>"""


def test_keeps_article_and_drops_boilerplate():
    text = html_to_text(PAGE)
    for para in (PARA1, PARA2, PARA3):
        assert para in text
    assert "When it starts" in text
    assert "Route 12: North Park to Central" in text
    for junk in ("Politics", "Share on Facebook", "Advertisement", "great idea", "Most read",
                 "Copyright", "Privacy policy", "not text", "color: red", "Jane Doe"):
        assert junk not in text, junk
    # title is metadata, not body
    assert "Council expands bus network" not in text


def test_layout_of_output():
    text = html_to_text(PAGE)
    assert f"{PARA1}\n\nWhen it starts\n\n{PARA2}" in text
    # list items on their own lines
    assert "Route 12: North Park to Central\nRoute 14: Hillside to Central" in text
    assert text == text.strip()


def test_deterministic():
    assert html_to_text(PAGE) == html_to_text(PAGE)


def test_link_lists_are_not_content():
    links = "".join(f'<li><a href="/{i}">Section number {i}</a></li>' for i in range(40))
    html = f"<body><ul>{links}</ul><div><p>{PARA1}</p><p>{PARA2}</p></div></body>"
    text = html_to_text(html)
    assert PARA1 in text and PARA2 in text
    assert "Section number" not in text


def test_hidden_elements_are_skipped():
    html = f'<body><div><p>{PARA1}</p><p style="display: none">secret words</p><p hidden>more secret</p></div></body>'
    text = html_to_text(html)
    assert PARA1 in text and "secret" not in text


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "\x00\x00\x00",
        "<",
        "<<<>>>&&&;",
        "</p></div></body>",
        "<html><body></body></html>",
        "<script>only(code);</script>",
        "<p>" * 20000,
        "<div>" * 3000 + "deep text",  # (Lexbor parse time grows quadratically with depth)
        "\ufffd" * 1000,
        "<table><tr><td>" * 2000,
        '<a href="x">' * 5000 + "link soup",
    ],
)
def test_never_raises_on_junk(junk):
    out = html_to_text(junk)
    assert isinstance(out, str)


def test_non_str_input():
    assert html_to_text(None) == ""  # type: ignore[arg-type]
    assert html_to_text(12345) == ""  # type: ignore[arg-type]
    assert isinstance(html_to_text(b"\xff\xfe<p>bytes \x80\x81 junk</p>"), str)  # type: ignore[arg-type]
    assert html_to_text("<p>Hello there, plain text.</p>".encode()) == "Hello there, plain text."  # type: ignore[arg-type]


def test_empty_page_gives_empty_string():
    assert html_to_text("") == ""
    assert html_to_text("<html><head><title>t</title></head><body><nav><a href='/'>Home</a></nav></body></html>") == ""


def test_plain_text_passes_through():
    assert html_to_text("just some words") == "just some words"


def test_large_page_extracts_in_linear_work():
    """All 5,000 paragraphs come out, and twice the page is twice the work: counted, not
    timed (the time is in `python -m benchmarks.extraction`)."""

    from benchmarks.extraction import LARGE_PARAGRAPH, large_page   # the page the benchmark times

    text = html_to_text(large_page(100))
    assert text.count(LARGE_PARAGRAPH) == 5000
    work = [lines_executed(html_to_text, large_page(divs)) for divs in (20, 40)]
    assert work[1] < 2.2 * work[0], work  # quadratic work would be four times


# --------------------------------------------------------------------------- benchmark

# Measured: 0.970 on the 120-page set (tuning part 0.977, checking part 0.956;
# trafilatura 2.3.1: 0.958 / 0.954). The bar is issue 15's target for this set:
# the keep threshold is chosen for all WCXB page types, not for news articles
# alone, so this figure moves by a few thousandths when the model is retrained,
# while a real regression falls well below.
MIN_F1 = 0.96


@pytest.mark.shared_data("eval/article-extraction-benchmark/ground-truth.json")  # DEFAULT_DATA
def test_benchmark_f1():
    truth, html, _urls = load_dataset(DEFAULT_DATA)
    assert len(truth) >= 100
    pred = {pid: html_to_text(doc) for pid, doc in html.items()}
    res = score_pages(truth, pred)
    assert res["f1"] >= MIN_F1, f"F1 {res['f1']:.4f} (P {res['precision']:.4f}, R {res['recall']:.4f})"


def test_real_page_with_nameless_nodes_extracts():
    """A 2008 Common Crawl page whose DOM holds nodes Lexbor gives no tag name
    (this once raised inside the extractor and lost the page)."""
    from curate.ingest.archive import iter_records
    from curate.ingest.charset import decode_html
    from curate.ingest.http import parse_response

    sample = SAMPLE / "CC-2008-excerpt.arc.gz"
    rec = next(r for r in iter_records(sample) if r.offset == 952543)
    resp = parse_response(rec.block)
    html, _, _ = decode_html(resp.body, resp.charset)
    errors = []
    text = html_to_text(html, on_error=errors.append)
    assert errors == [] and len(text) > 100


def _depth(html: str) -> int:
    """How deep the parser nests the elements of ``html`` (its work grows with the square of this)."""
    from selectolax.lexbor import LexborHTMLParser

    node, depth = LexborHTMLParser(html).body, 0
    while True:  # these pages nest along their last child element
        kids = list(node.iter())
        if not kids:
            return depth
        node, depth = kids[-1], depth + 1


@pytest.mark.parametrize("name,html", [
    ("opening tags only", "<div>" * 5000 + "x"),
    ("text between the tags", "<div>a" * 5000),
    # (over _TAGS_CHECK tags: the estimate that trusts closing tags is not used)
    ("closing tags of nothing open", "<div></x>" * 12000),
    ("with attributes and mixed case", '<DIV class="c">' * 3000 + '<section id="s">b' * 3000),
])
def test_deep_nesting_is_cut_before_parsing_and_keeps_the_text(name, html):
    from curate.ingest.extract import _MAX_DEPTH, _cut_deep_nesting

    page = "<html><body>" + html
    assert _depth(page) > 2500  # the parser would nest it (quadratic work)
    cut = _cut_deep_nesting(page)
    assert _depth(cut) <= _MAX_DEPTH + 2
    # only tags go: every character of text is still there, in order
    strip = __import__("re").compile(r"<[^>]*>")
    assert strip.sub("", cut) == strip.sub("", page)


def test_ordinary_pages_are_not_touched_by_the_depth_cut():
    from curate.ingest.extract import _cut_deep_nesting

    flat = "<html><body>" + "<div><p>para <b>bold</b></p><ul><li>one<li>two</ul></div>" * 2000
    unclosed = "<html><body>" + "<p>para" * 3000 + "<br><img src=x>" * 1000
    for page in (flat, unclosed):
        assert _cut_deep_nesting(page) is page


@pytest.mark.parametrize(
    "hint, has, lacks",
    [
        # "|ad|": "ad" between word boundaries; "_" and letters are word characters
        ("top-ad", "H_NEG2", ""),
        ("ad-slot", "H_NEG2", ""),
        ("ads", "H_NEG2", ""),
        ("header", "", "H_NEG2"),
        ("ad_slot", "", "H_NEG2"),
        ("adverb", "", "H_NEG2"),
        # "|meta|", "-meta|", "|meta-": the weak boilerplate word only as a word of its own
        ("post-meta", "H_NEG1 H_META H_POST", ""),
        ("meta-info", "H_NEG1 H_META", ""),
        ("metadata", "H_META", "H_NEG1"),
        # "|nav" needs a boundary before only; "|date" / "|date|" for the two vocabularies
        ("navbar", "H_NEG1", ""),
        ("subnav", "", "H_NEG1"),
        ("date-posted", "H_META H_NEG1 H_POST", ""),
        ("dates", "H_META", "H_NEG1"),
        ("update", "", "H_META H_NEG1"),
        # strong boilerplate hides the weak bit; article markup and embeds clear both
        ("comment-sidebar", "H_NEG2 H_COMMENT", "H_NEG1"),
        ("social-media-embed", "", "H_NEG2 H_NEG1"),
        ("entry-content sidebar", "H_POS H_ITEM", "H_NEG1"),
        # words are found across the tokens of one class string, in any case
        ("col-md-6 Product-Card", "H_ITEM", ""),
        ("x", "", "H_POS H_NEG2 H_NEG1 H_COMMENT H_POST H_ITEM H_DESC H_META"),
    ],
)
def test_class_vocabularies_respect_word_boundaries(hint, has, lacks):
    from curate.ingest import extract as X

    bits = X._classify_hint(hint)
    for name in has.split():
        assert bits & getattr(X, name), (hint, name)
    for name in lacks.split():
        assert not bits & getattr(X, name), (hint, name)
