"""The extractor beyond news articles: forum threads, listings, layout; the
WCXB metric, the by-domain tuning/checking split and the block model's file."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks.extraction import (
    DEFAULT_WCXB, _limit_pages, load_wcxb, registered_domain, score_wcxb, snippet_found, split_of, word_prf, words,
)
from curate.ingest import extract as X
from curate.ingest.extract import html_to_text

# --------------------------------------------------------------------------- split and metric


def test_registered_domain():
    assert registered_domain("https://forum.example.co.uk/t/1") == "example.co.uk"
    assert registered_domain("http://www.Example.com:8080/x") == "example.com"
    assert registered_domain("https://a.b.c.example.org") == "example.org"
    assert registered_domain("") == ""


def test_split_is_by_domain_and_seeded():
    urls = [f"https://site{i}.com/page" for i in range(300)]
    parts = [split_of(u) for u in urls]
    assert parts == [split_of(u) for u in urls]  # reproducible
    # every page of a domain lands on the same side
    assert {split_of(f"https://www.site7.com/{k}") for k in range(20)} == {split_of("https://blog.site7.com/")}
    share = parts.count("check") / len(parts)
    assert 0.25 < share < 0.42, share
    # another seed is another split
    assert [split_of(u, seed="other") for u in urls] != parts


def test_word_prf():
    assert word_prf("The cat sat", "the CAT sat") == (1.0, 1.0, 1.0)
    assert word_prf("", "") == (1.0, 1.0, 1.0)  # empty reference: only an empty prediction is right
    assert word_prf("", "menu") == (0.0, 0.0, 0.0)
    assert word_prf("a b", "") == (0.0, 0.0, 0.0)
    p, r, f = word_prf("a a b c", "a b b")  # overlap: a x1, b x1
    assert (p, r) == pytest.approx((2 / 3, 2 / 4))
    assert f == pytest.approx(2 * p * r / (p + r))


def test_snippet_found_matches_word_runs():
    pred = f" {' '.join(words('Hello, World! This is   the text.'))} "
    assert snippet_found("world this is", pred)
    assert snippet_found("World. This IS", pred)
    assert not snippet_found("is world", pred)
    assert not snippet_found("   ", pred)


def test_score_wcxb_groups():
    pages = [{"id": "1", "type": "forum", "truth": "a b c", "with": ["a b"], "without": ["menu"]},
             {"id": "2", "type": "listing", "truth": "x y", "with": ["x"], "without": ["home"]}]
    res = score_wcxb(pages, {"1": "a b c menu", "2": ""})
    g = res["groups"]
    assert g["forum"]["recall"] == 1.0 and g["forum"]["precision"] == 0.75
    assert g["listing"]["f1"] == 0.0
    assert g["all"]["with"] == 0.5 and g["all"]["without"] == 0.5
    assert g["all"]["n"] == 2


# --------------------------------------------------------------------------- extractor on page types

NAV = "<header><nav>" + "".join(f'<a href="/{w}">{w}</a> ' for w in ("Home", "Forums", "Members", "Help")) + \
      "</nav></header>"
FOOT = '<footer><p>Copyright 2025 Example Forums</p><a href="/terms">Terms</a></footer>'
POSTS = [
    "I replaced the thermostat last week but the heater still cycles every ten minutes, any ideas what to check next?",
    "Check the flame sensor first. A dirty sensor makes the burner shut off early; clean it with fine steel wool.",
    "Thanks, cleaning the sensor helped a lot, it now runs for twenty minutes before it stops again.",
    "If it still short-cycles, the filter may be clogged and the limit switch trips. Replace the filter too.",
    "New filter installed this morning and the cycling is gone. Marking this thread as solved, thank you all.",
]


def forum_page() -> str:
    posts = "".join(
        f'<article class="post" id="post-{i}"><header class="post-header"><a class="username" href="/u/{i}">'
        f"user{i}</a> <time>March {i + 1}, 2025</time></header><div class=\"post-body\"><p>{text}</p></div>"
        f'<div class="post-actions"><a href="#">Reply</a> <a href="#">Quote</a></div></article>'
        for i, text in enumerate(POSTS))
    side = '<aside class="sidebar"><h3>Popular threads</h3><ul>' + "".join(
        f'<li><a href="/t/{i}">Another popular thread title number {i}</a></li>' for i in range(8)) + "</ul></aside>"
    return (f"<html><body>{NAV}<main><h1>Furnace short cycling after thermostat swap</h1>"
            f'<div class="thread">{posts}</div></main>{side}{FOOT}</body></html>')


def test_forum_thread_keeps_every_post():
    text = html_to_text(forum_page())
    for post in POSTS:
        assert post in text, post
    for junk in ("Popular threads", "Another popular thread", "Copyright", "Members"):
        assert junk not in text, junk


ITEMS = [(f"Walnut desk model {i}", f"Solid walnut top, {100 + i} cm wide, steel legs, ships flat in two boxes.",
          f"${300 + 10 * i}") for i in range(12)]


def listing_page() -> str:
    cards = "".join(
        f'<li class="product-card"><a href="/p/{i}"><h2 class="card-title">{name}</h2></a>'
        f'<p class="card-desc">{desc}</p><span class="price">{price}</span></li>'
        for i, (name, desc, price) in enumerate(ITEMS))
    filters = '<div class="filters"><h3>Filter</h3><ul>' + "".join(
        f'<li><a href="?c={c}">{c}</a></li>' for c in ("Oak", "Walnut", "Pine", "Steel", "Glass")) + "</ul></div>"
    return (f"<html><body>{NAV}<div class=\"page\">{filters}<main><h1>Desks</h1>"
            f'<ul class="product-grid">{cards}</ul></main></div>{FOOT}</body></html>')


def test_listing_keeps_its_items_not_one_card():
    text = html_to_text(listing_page())
    kept = sum(desc in text for _, desc, _ in ITEMS)
    assert kept >= 10, (kept, text[:500])
    assert "Copyright" not in text


@pytest.mark.parametrize("page", [forum_page, listing_page])
def test_layout_has_no_doubled_whitespace(page):
    text = html_to_text(page())
    assert text == text.strip()
    assert "\n\n\n" not in text
    assert not re.search(r"[ \t]{2,}|[ \t]\n|\n[ \t]", text)


# --------------------------------------------------------------------------- the block model's file


def test_weights_are_plain_json_trees():
    spec = json.loads(X.WEIGHTS.read_text(encoding="utf-8"))
    assert spec["stage1"]["features"] == X.FEATURE_NAMES
    assert spec["stage2"] is None or spec["stage2"]["features"] == X.STAGE2_NAMES
    for stage in (spec["stage1"], spec["stage2"]):
        if stage is None:
            continue
        for tree in stage["trees"]:
            n = len(tree["feature"])
            assert all(len(tree[k]) == n for k in ("threshold", "left", "right", "value"))
            for j, f in enumerate(tree["feature"]):
                if f >= 0:  # an inner node points at two later nodes of the same tree
                    assert j < tree["left"][j] < n and j < tree["right"][j] < n
    assert X._model() is not None


# --------------------------------------------------------------------------- WCXB checking part

# The whole checking part is measured by `python -m benchmarks.extraction --part check`
# (see the issue-15 note). This test takes a fixed, type-balanced 10 pages per type
# from the checking part, which the model never trained on (measured: 0.768; the
# natural mix, mostly articles, scores higher), and keeps a bar a little under it
# so that deliberate small trade-offs pass while a real regression fails.
MIN_CHECK_F1 = 0.75


@pytest.mark.shared_data("eval/wcxb-dev/ground-truth.jsonl.gz")  # DEFAULT_WCXB
def test_wcxb_checking_sample_f1():
    pages = [p for p in load_wcxb(DEFAULT_WCXB) if p["part"] == "check"]
    pages = _limit_pages(pages, 10, key=lambda p: p["type"])
    assert len(pages) == 70
    res = score_wcxb(pages, {p["id"]: html_to_text(p["html"]) for p in pages})
    f1 = res["groups"]["all"]["f1"]
    assert f1 >= MIN_CHECK_F1, {k: round(v["f1"], 3) for k, v in res["groups"].items()}
