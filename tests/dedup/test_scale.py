"""Dedup on pages that share a site template: bounded candidates, the cap, Beam equal to one machine."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from curate.core.document import Document, read_documents, write_documents
from curate.dedup.candidates import cap_pairs, sample_rows
from curate.dedup.config import DedupConfig
from curate.dedup.core import dedup_documents
from tests.common import shared

# the settings before issue 18: one 64 x 2 index on the full signatures, nothing common, no cap
OLD = dict(jaccard_bands=64, jaccard_rows=2, common_docs=10**9, global_docs=10**9, max_candidates=0)


def _moby_taker(skip: float):
    """``take(n)``: the next n words of Moby-Dick from ``skip`` of the way in; no two calls share a word."""
    words = gzip.open(shared("reference", "books", "pg2701_Moby-Dick--Or-The-Whale.txt.gz"), "rt").read().split()
    words = words[int(len(words) * skip):]
    at = 0

    def take(n):
        nonlocal at
        at += n
        return words[at - n:at]

    return take


def _site_pages(sites: int, pages: int) -> list[Document]:
    """The issue's input: each page its site's 80-word navigation, 250 words of its own
    (disjoint windows of Moby-Dick) and a footer repeating the navigation's start."""
    take = _moby_taker(0.1)
    docs = []
    for s in range(sites):
        nav = take(80)
        for p in range(pages):
            text = " ".join(nav + take(250) + nav[:20])
            docs.append(Document(id=f"s{s}-p{p:03d}", text=text, url=f"http://site{s}.example/p/{p}"))
    return docs


@pytest.mark.shared_data
def test_site_templates_do_not_make_candidates():
    docs = _site_pages(6, 40)
    new = dedup_documents(docs)
    old = dedup_documents(docs, DedupConfig(**OLD))
    # a correct dedup removes nothing: no two pages share anything but the template
    assert new.stats["removed"] == 0 and old.stats["removed"] == 0
    assert new.counters["dedup:common_hosts"] == 6                   # every site's template found
    # before: every pair of a site's pages was a candidate (Jaccard ~0.15-0.2 under 64 x 2)
    assert old.counters["dedup:candidate_pairs"] > 1000
    assert new.counters["dedup:candidate_pairs"] <= len(docs) // 10


@pytest.mark.shared_data
def test_copies_across_sites_are_still_found_through_the_template():
    docs = _site_pages(4, 12)
    # a copy of s0's page on s1 (s1's template around it), and a cut-down copy on s2
    own = docs[0].text.split()[80:330]
    nav1, nav2 = docs[12].text.split()[:80], docs[24].text.split()[:80]
    docs.append(Document(id="s1-copy", text=" ".join(nav1 + own + nav1[:20]), url="http://site1.example/copy"))
    docs.append(Document(id="s2-cut", text=" ".join(nav2 + own[:150] + nav2[:20]), url="http://site2.example/cut"))
    res = {d.id: d.metadata for d in dedup_documents(docs).docs}
    assert res["s1-copy"]["cluster"] == res["s0-p000"]["cluster"]
    assert res["s2-cut"]["duplicate"] and res["s2-cut"]["cluster"] in ("s0-p000", "s1-copy")
    assert sum(m["duplicate"] for m in res.values()) == 2


def test_the_cap_keeps_each_pages_best_candidates_and_counts_when_it_binds():
    from curate.core.counters import Counters

    rng = np.random.default_rng(0)
    p = 200
    pi = rng.integers(0, 30, p)
    pj = pi + 1 + rng.integers(0, 30, p)
    jc, jf = rng.random(p), rng.random(p)
    c = Counters()
    keep = cap_pairs(pi, pj, jc, jf, 3, c)
    for node in range(60):   # every page keeps (at least) its 3 best pairs
        mine = np.flatnonzero((pi == node) | (pj == node))
        best = mine[np.lexsort((np.where(pi[mine] == node, pj[mine], pi[mine]), -jf[mine], -jc[mine]))][:3]
        assert keep[best].all()
    assert keep.sum() <= 3 * 60
    assert c["dedup:candidate_cap_docs"] > 0 and c["dedup:candidates_capped"] == p - keep.sum()


def test_samples_are_bounded_per_host_and_globally():
    keys = np.arange(1000, dtype=np.uint64)[::-1].copy()
    hosts = np.repeat(np.array([1, 2, 0], np.uint64), [700, 290, 10])
    h, g = sample_rows(keys, hosts, DedupConfig(common_pages=16, global_pages=50))
    assert len(h) == 32 and len(g) == 50
    assert set(h.tolist()) == set(range(684, 700)) | set(range(974, 990))  # the lowest keys of each host


@pytest.mark.shared_data
@pytest.mark.beam
@pytest.mark.slow
def test_beam_equals_one_machine_on_template_sharing_pages_with_the_cap_and_split_groups(tmp_path):
    """Crawl-shaped input (benchmarks.dedup_scale: Zipf hosts with templates, a network banner,
    planted copies); the cap binds and the joins are split into groups of 4."""
    from benchmarks.dedup_scale import crawl_corpus
    from pipelines.dedup import run

    files, truth = crawl_corpus(tmp_path / "in", 500, shard=250)
    docs = [d for f in files for d in read_documents(f)]
    cfg = DedupConfig(max_candidates=2)
    mem = dedup_documents(docs, cfg)
    assert mem.counters["dedup:candidate_cap_docs"] > 0           # the cap binds
    assert mem.counters["dedup:common_hosts"] > 0
    local = {d.id: (d.metadata["cluster"], d.metadata["duplicate"], d.metadata.get("duplicate_reason"))
             for d in mem.docs}
    write_documents(tmp_path / "ref.jsonl", [Document(id="ref-0", text=docs[7].text + " an added line")])
    stats = run(["--input", *map(str, files), "--out", str(tmp_path / "beam"), "--band-parts", "2",
                 "--max-candidates", "2", "--group-chunk", "4", "--workers", "1", "-q"])
    beam = {d.id: (d.metadata["cluster"], d.metadata["duplicate"], d.metadata.get("duplicate_reason"))
            for part in sorted((tmp_path / "beam" / "docs").glob("*.parquet")) for d in read_documents(part)}
    assert beam == local
    assert stats["pairs"]["candidates"] == mem.counters["dedup:candidate_pairs"]
    assert stats["counters"]["dedup:candidate_cap_docs"] == mem.counters["dedup:candidate_cap_docs"]
    # every item of every join and every document came out of the shuffles (see pipelines.dedup._lost)
    assert stats["lost_elements"] == {"join_items": 0, "documents": 0}
    assert stats["counters"]["dedup:join_items_in"] > len(docs) and stats["counters"]["dedup:documents_in"] == len(docs)
    assert sum(v[1] for v in local.values()) > 10


@pytest.mark.beam
def test_a_run_that_lost_elements_in_a_shuffle_fails(capsys):
    from pipelines.dedup import DOCS_IN, JOIN_IN, JOIN_OUT, _exit_status, _lost

    assert _lost(None, 10) is None                                      # no metrics: nothing to compare
    sound = _lost({JOIN_IN: 500, JOIN_OUT: 500, DOCS_IN: 10}, 10)
    assert sound == {"join_items": 0, "documents": 0}
    assert _exit_status({"unconverged_nodes": 0, "lost_elements": sound}) == 0
    lossy = _lost({JOIN_IN: 500, JOIN_OUT: 430, DOCS_IN: 10}, 10)
    assert lossy == {"join_items": 70, "documents": 0}
    assert _exit_status({"unconverged_nodes": 0, "lost_elements": lossy}) == 1
    assert "lost elements in a shuffle (70 join items" in capsys.readouterr().err


@pytest.mark.shared_data
@pytest.mark.beam
@pytest.mark.slow
def test_beam_equals_one_machine_on_a_url_captured_many_times_and_a_text_copied_many_times(tmp_path):
    """A URL's newest capture and an exact text's leader are picked by combiners and the
    documents join them in groups of at most --group-chunk (4 here, against 25 captures
    and 30 copies): the same winners, leaders and clusters as one machine."""
    from collections import Counter

    from pipelines.dedup import run

    words = gzip.open(shared("reference", "books", "pg2701_Moby-Dick--Or-The-Whale.txt.gz"), "rt").read().split()

    def text(k):  # disjoint 150-word windows: no two are near-duplicates
        return " ".join(words[20_000 + 150 * k:20_000 + 150 * (k + 1)])

    # one URL captured 25 times, each capture a different text; three share the newest
    # date, so the smallest id among them wins
    docs = [Document(id=f"cap-{k:02d}", text=text(k), url="http://busy.example/",
                     created=f"2020-01-{min(k, 22) + 1:02d}") for k in range(25)]
    # one text on 30 URLs, a third in capitals (the same normalised text), with three
    # quality levels: ten tie at the best one, so the smallest id among them leads
    docs += [Document(id=f"copy-{29 - k:02d}", text=text(100).upper() if k % 3 == 0 else text(100),
                      url=f"http://c{k}.example/", metadata={"quality": (0.2, 0.5, 0.9)[k % 3]}) for k in range(30)]
    docs += [Document(id=f"page-{k:02d}", text=text(200 + k), url=f"http://s{k}.example/a") for k in range(40)]
    mem = dedup_documents(docs, DedupConfig())
    local = {d.id: (d.metadata["cluster"], d.metadata["duplicate"], d.metadata.get("duplicate_reason"))
             for d in mem.docs}
    removed = Counter(reason for _, dup, reason in local.values() if dup)
    assert sum(removed.values()) == 24 + 29 and len(removed) == 2, removed   # the test is not vacuous
    write_documents(tmp_path / "in.parquet", docs)
    stats = run(["--input", str(tmp_path / "in.parquet"), "--out", str(tmp_path / "beam"), "--group-chunk", "4",
                 "--workers", "1", "-q"])
    beam = {d.id: (d.metadata["cluster"], d.metadata["duplicate"], d.metadata.get("duplicate_reason"))
            for part in sorted((tmp_path / "beam" / "docs").glob("*.parquet")) for d in read_documents(part)}
    assert beam == local
    assert stats["lost_elements"] == {"join_items": 0, "documents": 0}


def _small_site_and_rewrapped_copy() -> list[Document]:
    """Three cases the checks once got wrong, built like the scale benchmark's pages:

    * a host of three pages, each its navigation (80 words), 100 words of its own and
      a footer (40): any two are more than half "contained" in each other through
      the navigation and footer alone, and no sample of four pages shows them as
      template;
    * a copy of a page's first 60 words re-wrapped on another site of 12 pages (its
      navigation and footer around it): the copy is less than 0.4 contained in its
      source, all of it the other site's wrapper;
    * a copy of another page's first 90 words on a site of one page: 0.42 contained,
      and its opening is its own site's navigation, which no sample shows."""
    take = _moby_taker(1 / 3)
    docs = []
    nav, foot = take(80), take(40)
    for p in range(3):
        docs.append(Document(id=f"tiny-{p}", text=" ".join(nav + take(100) + foot), url=f"http://tiny.example/{p}"))
    pages = {}
    for s in ("src", "big"):
        nav, foot = take(80), take(40)
        for p in range(12):
            own = take(250)
            pages[s, p] = (nav, own, foot)
            docs.append(Document(id=f"{s}-{p:02d}", text=" ".join(nav + own + foot), url=f"http://{s}.example/{p}"))
    _, own, _ = pages["src", 0]
    nav, _, foot = pages["big", 0]
    docs.append(Document(id="big-copy", text=" ".join(nav + own[:60] + foot), url="http://big.example/copy"))
    _, own, _ = pages["src", 1]
    docs.append(Document(id="lone-copy", text=" ".join(take(80) + own[:90] + take(40)), url="http://lone.example/"))
    return docs


@pytest.mark.shared_data
def test_a_three_page_site_has_a_template_and_a_rewrapped_short_copy_is_found():
    docs = _small_site_and_rewrapped_copy()

    def removed(**kw):
        return {d.id: d.metadata["cluster"] for d in dedup_documents(docs, DedupConfig(**kw)).docs
                if d.metadata["duplicate"]}

    assert removed() == {"big-copy": "src-00", "lone-copy": "src-01"}
    # each rule is what decides its case: without the small-site template two of the
    # tiny pages are joined through their ends; without leaving the wrapper out
    # the copy is 0.3 contained and stays; the lone site's copy needs its opening
    # without the exemption for a page whose template nothing shows
    assert {k for k in removed(small_host_pages=0) if k.startswith("tiny")}
    from curate.core.words import shingle_hashes
    from curate.dedup.rules import exact_containment
    text = {d.id: d.text for d in docs}
    assert 0.4 <= exact_containment(shingle_hashes(text["lone-copy"], 5), shingle_hashes(text["src-01"], 5)) < 0.5
    from curate.dedup import rules
    try:
        saved, rules.rewrapped_containment = rules.rewrapped_containment, lambda *a: 0.0
        assert "big-copy" not in removed()
    finally:
        rules.rewrapped_containment = saved


def test_a_wrapper_is_left_out_only_where_the_two_sites_templates_are_disjoint():
    from curate.dedup.rules import copy_containment, rewrapped_containment

    cfg = DedupConfig()
    own, nav_a, nav_b = np.arange(1000, 1060, dtype=np.uint32), np.arange(0, 100, dtype=np.uint32), \
        np.arange(2000, 2100, dtype=np.uint32)
    a = np.r_[nav_a, own[:40]]                          # a copy of own's first 40 inside a's site wrapper
    b = np.r_[own, nav_b]
    tmpl = lambda arr, t: np.where(np.isin(arr, t), 9, 0)
    counts = (tmpl(a, nav_a), tmpl(b, nav_b))
    first_a, first_b = np.arange(len(a)), np.arange(len(b))
    assert rewrapped_containment(a, b, counts, cfg) == 1.0
    assert copy_containment(a, first_a, b, first_b, counts, cfg) == 1.0
    # one network's sites: b carries a's navigation too, so leaving it out would raise
    # the share of two different pages found in each other; the template only vetoes
    net = np.r_[own, nav_a[:60], nav_b]
    net_counts = (tmpl(a, nav_a), tmpl(net, np.r_[nav_a, nav_b]))
    assert rewrapped_containment(a, net, net_counts, cfg) == 0.0
    # too little left once the wrapper is out: min_shingles
    assert rewrapped_containment(np.r_[nav_a, own[:10]], b, (tmpl(np.r_[nav_a, own[:10]], nav_a), counts[1]),
                                 cfg) == 0.0
    # one host: the rule is for copies on another site
    assert copy_containment(a, first_a, b, first_b, counts, cfg, same_host=True) < cfg.containment
    # less than half contained, the opening is asked for: a's opening (its navigation)
    # is not in b; where a's template is known it is left out of the opening (and own
    # is found), where nothing shows a's template the opening cannot be told, and
    # across sites it is not asked
    own2 = np.arange(3000, 3100, dtype=np.uint32)
    lone, b2 = np.r_[nav_a, own2[:45]], np.r_[own2, nav_b]
    first_l, first_b2 = np.arange(len(lone)), np.arange(len(b2))
    no_template = (np.zeros(len(lone), int), tmpl(b2, nav_b))
    assert rewrapped_containment(lone, b2, no_template, cfg) == 0.45        # b2 without its wrapper
    assert copy_containment(lone, first_l, b2, first_b2, no_template, cfg) == 0.45
    assert copy_containment(lone, first_l, b2, first_b2, (tmpl(lone, nav_a), no_template[1]), cfg) == 1.0
    assert copy_containment(lone, first_l, b2, first_b2, no_template, cfg, same_host=True) < cfg.containment
    known_not_found = (np.r_[np.full(10, 9), np.zeros(135, int)], no_template[1])   # opening: nav_a[10:]
    assert copy_containment(lone, first_l, b2, first_b2, known_not_found, cfg) == 0.0


@pytest.mark.shared_data
@pytest.mark.beam
@pytest.mark.slow
def test_beam_equals_one_machine_on_a_three_page_site_and_a_rewrapped_copy(tmp_path):
    from pipelines.dedup import run

    docs = _small_site_and_rewrapped_copy()
    local = {d.id: (d.metadata["cluster"], d.metadata["duplicate"]) for d in dedup_documents(docs).docs}
    write_documents(tmp_path / "in.parquet", docs)
    stats = run(["--input", str(tmp_path / "in.parquet"), "--out", str(tmp_path / "beam"), "--workers", "1", "-q"])
    beam = {d.id: (d.metadata["cluster"], d.metadata["duplicate"])
            for part in sorted((tmp_path / "beam" / "docs").glob("*.parquet")) for d in read_documents(part)}
    assert beam == local and local["big-copy"] == ("src-00", True) and local["lone-copy"] == ("src-01", True)
    assert stats["lost_elements"] == {"join_items": 0, "documents": 0}
