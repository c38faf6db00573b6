"""Dedup: normalisation, signatures, the clustering rules, quality on real ground truth, CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from datasketch import MinHash

from cli.dedup import add_dedup_parser
from curate.core.document import Document, read_documents, write_documents
from curate.core.words import (
    _COMBINING,
    _DIGIT,
    _WORD,
    shingle_batch,
    shingle_hashes,
    word_tokens,
    words,
)
from curate.dedup.cluster import star_components
from curate.dedup.config import DedupConfig
from curate.dedup.core import dedup_documents
from curate.dedup.minhash import signature, signatures
from curate.dedup.templates import host_key
from tests.common import run_cli, shared

PROSE = ("It was the best of times it was the worst of times it was the age of wisdom it was the age "
         "of foolishness it was the epoch of belief it was the epoch of incredulity it was the season "
         "of light it was the season of darkness it was the spring of hope it was the winter of despair")
OTHER = ("Call me Ishmael some years ago never mind how long precisely having little or no money in my "
         "purse and nothing particular to interest me on shore I thought I would sail about a little and "
         "see the watery part of the world it is a way I have of driving off the spleen")


def _annot(res):
    return {d.id: (d.metadata["cluster"], d.metadata["duplicate"]) for d in res.docs}


# --------------------------------------------------------------------------- normalisation / signatures

def test_normalisation_folds_case_punctuation_accents_digits():
    assert words("Café “Déjà-vu” 1999!") == words("cafe \"deja vu\" 2024")
    assert len(shingle_hashes("a b c", 5)) == 1          # short text: one shingle
    assert len(shingle_hashes("", 5)) == 0


def test_signature_is_datasketch_minhash_of_the_shingles():
    cfg = DedupConfig()
    sig, n = signature(PROSE, cfg)
    ref = MinHash(num_perm=128, seed=1, hashfunc=int, scheme="affine32")
    ref.update_batch(shingle_hashes(PROSE, 5).tolist())
    assert n == len(shingle_hashes(PROSE, 5))
    assert np.array_equal(sig, ref.hashvalues)


def test_fast_tokens_equal_the_regex_rule_on_any_unicode():
    def regex_words(t):  # the documented rule, the slow way
        t = t.lower()
        if not t.isascii():
            import unicodedata
            t = _COMBINING.sub("", unicodedata.normalize("NFKD", t))
        return _WORD.findall(_DIGIT.sub("0", t))

    rng = random.Random(3)
    texts = ["Café “Déjà-vu” 1999!", "ΣΟΦΟΣ σοφός", "x\u0301y \u00b2 \u2460 \ufb01 \U0001d4ab",
             "KELVIN\u212a", "日本語のテキスト、です。١٢٣", "a_b __ c\u00a0d", "\ud800lone surrogate", PROSE]
    def char():
        return chr(rng.choice([rng.randrange(128), rng.randrange(128, 0x3000), rng.randrange(0x2FFFF)]))

    texts += ["".join(char() for _ in range(rng.randrange(40))) for _ in range(3000)]
    for t in texts:
        assert words(t) == regex_words(t), t
        assert word_tokens(t) == [w.encode("utf-8", "surrogatepass") for w in regex_words(t)]


def test_batched_shingles_and_signatures_equal_one_document_and_datasketch():
    rng = random.Random(5)
    vocab = PROSE.split() + ["Déjà", "vu", "“quoted”", "2024"]
    texts = ["", "one", "a b c d", PROSE, OTHER, PROSE.upper()]
    texts += [" ".join(rng.choice(vocab) for _ in range(rng.randrange(60))) for _ in range(200)]
    h, sizes = shingle_batch([word_tokens(t) for t in texts], 5)
    ends = np.cumsum(sizes)
    for t, e, n in zip(texts, ends, sizes):
        assert np.array_equal(h[e - n:e], shingle_hashes(t, 5))
    for num_perm, seed in ((128, 1), (64, 7)):
        cfg = DedupConfig(num_perm=num_perm, seed=seed, bands=16, rows=2)
        sigs, n = signatures(texts, cfg, batch=37)     # batches that cut the list unevenly
        for t, sig, k in zip(texts, sigs, n):
            ref = MinHash(num_perm=num_perm, seed=seed, hashfunc=int, scheme="affine32")
            ref.update_batch(shingle_hashes(t, 5).tolist())
            assert k == len(shingle_hashes(t, 5)) and np.array_equal(sig, ref.hashvalues), t
    assert "xxh3_64" in DedupConfig().to_dict()["shingles"]   # the shingle hashing is saved with the config


# --------------------------------------------------------------------------- rules

def test_url_keeps_newest_capture_and_exact_keeps_highest_quality():
    docs = [Document(id="old", text=PROSE, url="http://x/", created="2019-01-01"),
            Document(id="new", text=PROSE + " and more", url="http://x/", created="2020-01-01"),
            Document(id="a-low", text=OTHER, metadata={"quality": 0.1}),
            Document(id="z-high", text=OTHER.upper(), metadata={"quality": 0.9}),
            Document(id="alone", text="completely different text about the weather in spring and rain")]
    res = dedup_documents(docs)
    got = _annot(res)
    assert got["new"] == ("new", False) and got["old"] == ("new", True)
    assert got["z-high"] == ("z-high", False) and got["a-low"] == ("z-high", True)
    assert got["alone"] == ("alone", False)
    assert res.counters.as_dict() == {"docs": 5, "kept": 3, "dropped:exact_duplicate": 1,
                                      "dropped:url_duplicate": 1}


def test_near_duplicate_and_containment_and_ties_by_smallest_id():
    edited = PROSE.replace("wisdom", "wit")                      # one word changed
    inside = OTHER + " " + PROSE                                  # PROSE copied into a longer page
    docs = [Document(id="b", text=PROSE), Document(id="a", text=edited),
            Document(id="page", text=inside), Document(id="solo", text=" ".join(reversed(OTHER.split())))]
    res = dedup_documents(docs)
    got = _annot(res)
    # the page holds more than the copy: it is kept, and the copies (contained in
    # it) point to it, the near copy "b" through "a"
    assert got["page"] == ("page", False)
    assert got["a"] == ("page", True) and got["b"] == ("page", True)
    assert got["solo"] == ("solo", False)
    # containment off: the near pair alone; equal quality, so the smallest id stays
    got2 = _annot(dedup_documents(docs, DedupConfig(containment=1.1)))
    assert got2["page"] == ("page", False) and got2["a"] == ("a", False) and got2["b"] == ("a", True)


def _windows(n: int, words: int) -> list[str]:
    """``n`` disjoint windows of ``words`` words of a real book (Moby-Dick, chapter text)."""
    import gzip

    text = gzip.open(shared("reference", "books", "pg2701_Moby-Dick--Or-The-Whale.txt.gz"), "rt").read().split()
    start = len(text) // 3
    return [" ".join(text[start + k * words:start + (k + 1) * words]) for k in range(n)]


@pytest.mark.shared_data
def test_containment_asks_for_the_opening_of_same_site_and_partial_copies():
    art_x, art_y, block, own = _windows(4, 60)
    block = block + " " + " ".join(_windows(6, 60)[4:])         # a 180-word shared block
    x, y = art_x + " " + block, art_y + " " + block              # two articles, one list of headlines

    def joined(docs, **kw):
        return any(d.metadata["duplicate"] for d in dedup_documents(docs, DedupConfig(**kw)).docs)

    # one site: three quarters of x is in y, but x begins with its own article
    one_site = [Document(id="x", text=x, url="http://news.example/x"),
                Document(id="y", text=y, url="http://news.example/y")]
    assert not joined(one_site)
    assert joined(one_site, opening=0)                           # the check is what keeps them apart
    # a cut-down copy on the same site begins like its page: joined
    cut = " ".join(y.split()[:200])
    assert joined([Document(id="y", text=y, url="http://news.example/y"),
                   Document(id="cut", text=cut, url="http://news.example/y?page=1")])
    # across sites, a page mostly contained in another is a copy whatever its header
    assert joined([Document(id="x", text=x, url="http://a.example/x"),
                   Document(id="y", text=y, url="http://b.example/y")])
    # less than half contained: a copy only if what it shares is where it begins
    # (the source is the larger page, so the smaller one's opening is asked)
    shared_part = " ".join(block.split()[:100])
    partial = own + " " + art_x + " " + shared_part                     # 100 of 220 words shared
    source = shared_part + " " + art_y + " " + " ".join(_windows(9, 60)[7:])
    assert not joined([Document(id="p", text=partial), Document(id="s", text=source)])
    assert joined([Document(id="p", text=partial), Document(id="s", text=source)], opening=0)
    lead = shared_part + " " + own + " " + art_x                        # the shared part first
    assert joined([Document(id="p", text=lead), Document(id="s", text=source)])


@pytest.mark.shared_data
def test_two_pages_of_a_small_site_sharing_only_navigation_and_footer_are_not_joined():
    """A host of two pages: no sample shows its navigation and footer as template, and
    both pages begin with the navigation, so only where the shared text sits tells a
    copy (shares the text between) from a sibling page (shares the ends)."""
    w = _windows(20, 20)
    nav, foot = " ".join(w[0:4]), " ".join(w[4:6])              # 80 and 40 words
    a_own, b_own = " ".join(w[6:13]), " ".join(w[13:20])        # 140 words each
    page_a = f"{nav} {a_own} {foot}"
    page_b = f"{nav} {b_own} {foot}"      # 120 of 260 words shared, at the ends: containment 0.4-0.5

    def joined(docs, **kw):
        return any(d.metadata["duplicate"] for d in dedup_documents(docs, DedupConfig(**kw)).docs)

    site = "http://tiny.example/"
    assert not joined([Document(id="a", text=page_a, url=site + "a"), Document(id="b", text=page_b, url=site + "b")])
    assert joined([Document(id="a", text=page_a, url=site + "a"), Document(id="b", text=page_b, url=site + "b")],
                  opening=0)                                     # the checks are what keeps them apart
    # a cut-down copy on the same site (its page's start, then the footer): joined
    cut = f"{nav} {' '.join(a_own.split()[:30])} {foot}"
    assert joined([Document(id="a", text=page_a, url=site + "a"), Document(id="c", text=cut, url=site + "a?p=1")])
    # an edited copy (a few words changed between the shared ends): joined
    edited = page_a.replace(a_own.split()[20], "xyzzy").replace(a_own.split()[40], "plugh")
    assert joined([Document(id="a", text=page_a, url=site + "a"), Document(id="e", text=edited, url=site + "e")])


def test_against_reference_and_scope():
    docs = [Document(id="cc1", text=PROSE, source="cc"), Document(id="wiki1", text=PROSE + " the end", source="wiki"),
            Document(id="cc2", text=OTHER, source="cc")]
    ref = [Document(id="webtext:7", text=OTHER.replace("money", "cash"))]
    res = dedup_documents(docs, against=ref)
    got = {d.id: d.metadata for d in res.docs}
    assert got["cc2"]["cluster"] == "webtext:7" and got["cc2"]["duplicate_of_reference"] is True
    assert got["wiki1"]["duplicate"] is True and got["cc1"]["duplicate"] is False
    assert res.stats["removed_share_by_source"] == {"cc": 0.5, "wiki": 1.0}
    per_source = _annot(dedup_documents(docs, scope="source"))
    assert per_source["wiki1"] == ("wiki1", False)


def test_duplicate_ids_are_an_error():
    from curate.dedup.core import DedupError

    with pytest.raises(DedupError, match="'x' occurs twice"):
        dedup_documents([Document(id="x", text="a"), Document(id="x", text="b")])


def test_star_rounds_equal_union_find_on_random_graphs():
    def find(parent: list[int], x: int) -> int:  # union-find oracle; the root is the smallest node
        while parent[x] != x:
            x = parent[x]
        return x

    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(2, 60)
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(1, 2 * n))]
        parent = list(range(n))
        for a, b in edges:
            ra, rb = find(parent, a), find(parent, b)
            parent[max(ra, rb)] = min(ra, rb)
        star = star_components(edges)
        for node, label in star.items():
            assert label == find(parent, node)


# --------------------------------------------------------------------------- quality on real ground truth

@pytest.mark.shared_data
def test_clough_stevenson_cut_answers_found_no_independent_answer_flagged():
    shared("dedup", "clough-stevenson-plagiarism_tasks-abc.jsonl")
    from benchmarks.dedup import eval_clough

    r = eval_clough(DedupConfig())
    assert r["cut_recall"] >= 0.9, r
    assert r["non_flagged"] == 0, r
    assert r["precision"] >= 0.99 and r["pair_precision_vs_exact"] >= 0.99, r


@pytest.mark.shared_data
@pytest.mark.slow
def test_copycat_s3_pairs_recall():
    shared("dedup", "copycat-canonical-link-pairs.shared.jsonl.gz")
    from benchmarks.dedup import eval_copycat

    r = eval_copycat(DedupConfig())
    assert r["recall"] >= 0.95, r
    assert r["pair_precision_vs_exact"] >= 0.99, r
    # the benchmark's S3 is the dataset's own: it reproduces every labelled score
    assert r["s3_reproduced_max_error"] < 1e-9, r
    # measured: every removed page has a copy kept and names one as its representative;
    # 0.9955 of same-cluster and verified pairs are copies (0.939 / 0.892 / 0.884 with
    # one host's template and no opening check)
    for key in ("removed_with_a_copy_kept", "representative_precision", "cluster_pair_precision",
                "verified_pair_precision"):
        assert r[key] >= 0.99, (key, r)


@pytest.mark.shared_data
def test_gutenberg_editions_cluster_exactly():
    shared("dedup", "gutenberg-edition-clusters.shared.jsonl.gz")
    from benchmarks.dedup import eval_gutenberg

    # three books, first 40k characters of each file: keeps the test fast; the
    # full set is in `python -m benchmarks.dedup`
    r = eval_gutenberg(DedupConfig(), max_chars=40_000, clusters={"pg11", "pg35", "pg2701"})
    assert (r["precision"], r["recall"]) == (1.0, 1.0), r


# --------------------------------------------------------------------------- CLI handler

def _cli(argv):
    return run_cli(add_dedup_parser, argv)


def test_cli_writes_every_document_with_cluster_and_stats(tmp_path, capsys):
    inp = tmp_path / "docs.jsonl"
    write_documents(inp, [Document(id="1", text=PROSE), Document(id="2", text=PROSE + "!"),
                          Document(id="3", text=OTHER)])
    out, kept = tmp_path / "out.parquet", tmp_path / "kept.jsonl"
    assert _cli(["dedup", "-i", str(inp), "-o", str(out), "--kept", str(kept), "-q"]) == 0
    got = {d.id: (d.metadata["cluster"], d.metadata["duplicate"]) for d in read_documents(out)}
    assert got == {"1": ("1", False), "2": ("1", True), "3": ("3", False)}
    assert [d.id for d in read_documents(kept)] == ["1", "3"]
    stats = json.loads((tmp_path / "out.parquet.stats.json").read_text())
    assert stats["counters"]["dropped:exact_duplicate"] == 1
    assert stats["cluster_size_histogram"] == {"1": 1, "2": 1}


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    assert _cli(["dedup", "-i", str(bad), "-o", str(tmp_path / "o.jsonl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "Traceback" not in err[0]
    assert _cli(["dedup", "-i", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o.jsonl")]) == 1
    assert "missing.jsonl" in capsys.readouterr().err


def _mixed_docs(n=300, seed=11):
    rng = random.Random(seed)
    base = [PROSE, OTHER, PROSE + " " + OTHER, " ".join(reversed(OTHER.split())), "tiny page"]
    docs = []
    for i in range(n):
        t = rng.choice(base)
        if rng.random() < 0.5:
            w = t.split()
            w[rng.randrange(len(w))] = f"w{rng.randrange(1000)}"
            t = " ".join(w) + f" tail{rng.randrange(30)} " * rng.randrange(3)
        docs.append(Document(id=f"d{rng.randrange(10**6)}-{i}", text=t, source=rng.choice("abc"),
                             url=rng.choice(["", "", "http://x/1", f"http://y/{rng.randrange(40)}"]),
                             created=rng.choice(["", "2019", "2021"]),
                             metadata={"quality": rng.choice([0.1, 0.5, None])}))
    return docs


@pytest.mark.parametrize("scope", ["all", "source"])
def test_streaming_files_give_the_same_result_as_the_list(tmp_path, scope):
    from curate.core.counters import Counters
    from curate.dedup.core import dedup_files

    docs = _mixed_docs()
    refs = [Document(id="ref-1", text=OTHER.replace("money", "cash")), Document(id="ref-2", text="short")]
    write_documents(tmp_path / "a.parquet", docs[:170])
    write_documents(tmp_path / "b.jsonl", docs[170:])
    write_documents(tmp_path / "ref.jsonl", refs)
    c1, c2 = Counters(), Counters()
    mem = dedup_documents(docs, against=refs, scope=scope, counters=c1)
    res = dedup_files([tmp_path / "a.parquet", tmp_path / "b.jsonl"], tmp_path / "out.parquet",
                      against=[tmp_path / "ref.jsonl"], scope=scope, kept=tmp_path / "kept.jsonl", counters=c2)
    out = [(d.id, d.metadata) for d in read_documents(tmp_path / "out.parquet")]
    assert out == [(d.id, d.metadata) for d in mem.docs]
    assert [d.id for d in read_documents(tmp_path / "kept.jsonl")] == [d.id for d in mem.docs
                                                                       if not d.metadata["duplicate"]]
    assert res.pairs == mem.pairs and c2.as_dict() == c1.as_dict()
    assert {k: v for k, v in res.stats.items() if k != "seconds"} == {k: v for k, v in mem.stats.items()
                                                                      if k != "seconds"}
    assert c1["dedup:exact_containment_checks"] > 0 and len({v for v in mem.stats["removed_by_reason"]}) >= 3


def test_streaming_refuses_input_that_changes_between_reads(tmp_path, monkeypatch):
    from curate.dedup import core
    from curate.dedup.core import DedupError, dedup_files

    write_documents(tmp_path / "in.jsonl", [Document(id="1", text=PROSE), Document(id="2", text=OTHER)])
    real, reads = core._stream, []

    def stream(paths, errors):
        reads.append(1)
        for d in real(paths, errors):
            yield Document("other" if len(reads) > 1 else d.id, d.text)

    monkeypatch.setattr(core, "_stream", stream)
    with pytest.raises(DedupError, match="changed while dedup was reading"):
        dedup_files([tmp_path / "in.jsonl"], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()   # no partial output under the final name


# --------------------------------------------------------------------------- Beam gives the same clusters

@pytest.mark.shared_data
@pytest.mark.beam
@pytest.mark.slow
def test_beam_pipeline_gives_the_same_clusters_as_one_machine(tmp_path):
    shared("dedup", "clough-stevenson-plagiarism_tasks-abc.jsonl")
    from collections import Counter
    from urllib.parse import urlsplit

    from benchmarks.dedup import clough_docs, copycat_docs
    from pipelines.dedup import run

    cc = copycat_docs()[0]
    # the pages of CopyCat's busiest news site share their navigation: site templates matter there
    site = Counter(urlsplit(d.url).hostname for d in cc).most_common(2)[1][0]
    # and sites of one network share theirs across hosts (one Q&A network, one
    # forum provider, one owner's news sites): templates counted over both hosts
    network = ("stackexchange.com", "forumotion.", "cheezburger.com", "pal-item.com", "thedailyjournal.com")
    host = {d.id: urlsplit(d.url).hostname for d in cc}
    net = [d for d in cc[40:] if any(n in host[d.id] for n in network)]
    docs = (clough_docs() + cc[:40] + [d for d in cc[40:] if host[d.id] == site] + net)
    for k, d in enumerate(docs):                      # quality scores, so the representative rule matters
        d.metadata["quality"] = round((k * 37 % 11) / 10, 1)
    docs += [Document(id="url-old", text=PROSE, url="http://p/", created="2019"),
             Document(id="url-new", text=OTHER, url="http://p/", created="2021"),
             Document(id="copy-of-orig", text=docs[0].text.upper())]
    refs = [Document(id="ref-1", text=PROSE + " " + OTHER)]
    half = len(docs) // 2   # two input files, two formats: each is read again where its text is needed
    write_documents(tmp_path / "in-0.parquet", docs[:half])
    write_documents(tmp_path / "in-1.jsonl", docs[half:])
    write_documents(tmp_path / "ref.jsonl", refs)
    # a host's template from at most 8 of its checked pages: the busiest sites have more
    mem = dedup_documents(docs, DedupConfig(template_pages=8), against=refs)
    no_templates = dedup_documents(docs, DedupConfig(template_docs=0), against=refs)
    assert mem.counters["dedup:template_hosts"] >= 1
    assert mem.counters["dedup:template_hosts_sampled"] >= 1     # the cap is exercised
    assert ({d.id: d.metadata["cluster"] for d in mem.docs} != {d.id: d.metadata["cluster"] for d in no_templates.docs})
    local = {d.id: (d.metadata["cluster"], d.metadata["duplicate"], d.metadata.get("duplicate_reason"))
             for d in mem.docs}
    # a network page is removed, if at all, for a page of its own host (its
    # canonical-link partner): before templates spanned hosts, four of them
    # pointed at another site's page that shares only the navigation
    removed_net = [d for d in mem.docs if d.id in host and any(n in host[d.id] for n in network)
                   and d.metadata["duplicate"]]
    assert len(removed_net) >= 5
    assert all(host[d.id] == host[d.metadata["cluster"]] for d in removed_net)
    stats = run(["--input", str(tmp_path / "in-0.parquet"), str(tmp_path / "in-1.jsonl"),
                 "--against", str(tmp_path / "ref.jsonl"), "--out", str(tmp_path / "beam"), "--rounds", "4",
                 "--template-pages", "8", "--band-parts", "3", "-q"])
    beam = {d.id: (d.metadata["cluster"], d.metadata["duplicate"], d.metadata.get("duplicate_reason"))
            for part in sorted((tmp_path / "beam" / "docs").glob("*.parquet")) for d in read_documents(part)}
    assert stats["unconverged_nodes"] == 0
    assert beam == local
    # the stats are combined in Beam (no step sees every document) and agree with one machine's
    for key in ("cluster_size_histogram", "removed_share_by_source", "kept", "documents"):
        assert stats[key] == mem.stats[key], key
    assert sum(1 for v in local.values() if v[1]) > 20   # the comparison is not vacuous
    # one output part per input file, in its order
    assert [d.id for d in read_documents(tmp_path / "beam" / "docs" / "part-00001.parquet")] == [
        d.id for d in docs[half:]]
    # every output went through FileSystems with temp+rename: final names only, no leftovers
    # (the work folder of signatures, shingles and band keys is gone)
    out = tmp_path / "beam"
    assert sorted(p.name for p in out.iterdir()) == ["docs", "kept", "stats.json"]
    assert sorted(p.name for p in (out / "docs").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert sorted(p.name for p in (out / "kept").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert json.loads((out / "stats.json").read_text()) == stats


@pytest.mark.beam
def test_beam_signatures_read_again_from_the_file_equal_one_by_one_and_their_band_keys(tmp_path):
    """The job signs a file's pages from the file read again, in batches, into a row store,
    and writes their band keys by partition; the signatures equal ``signature``'s one by one."""
    from apache_beam.pvalue import TaggedOutput

    from pipelines import spill
    from pipelines.dedup import BANDS, STORES, ROW_BITS, BucketsFn, SignFileFn

    cfg = DedupConfig()
    texts = [PROSE, OTHER, "", "a b", PROSE.upper()] + [f"{PROSE} {k} {OTHER[:k * 7]}" for k in range(20)]
    docs = [Document(id=f"d{k}", text=t, source=f"s{k % 2}", url=f"http://site{k % 3}.example/{k}" if k % 4 else None)
            for k, t in enumerate(texts)]
    write_documents(tmp_path / "in.jsonl", docs)
    # every other page is a node (the rest lost to the URL or exact stage); file index 3
    members = [(k, (d.id, (1, 0.5, d.id), d.source, host_key(d.url))) for k, d in enumerate(docs) if k % 2 == 0]
    files = ["x", "y", "z", str(tmp_path / "in.jsonl")]
    out = list(SignFileFn(cfg, files, str(tmp_path / "work"), parts=4, batch=7).process((3, members)))
    stores = [o.value for o in out if isinstance(o, TaggedOutput) and o.tag == STORES]
    bands = [o.value for o in out if isinstance(o, TaggedOutput) and o.tag == BANDS]
    lights = [o for o in out if not isinstance(o, TaggedOutput)]
    assert [index for index, _ in stores] == [3] and {p for p, _ in bands} <= {0, 1, 2, 3}
    assert [light.node for _, light in lights] == [m[1][1] for m in members]
    for loc, light in lights:
        k = loc & ((1 << ROW_BITS) - 1)
        assert loc >> ROW_BITS == 3 and light.loc == loc
        sig, size = signature(docs[k].text, cfg)
        row = spill.get_row(stores[0][1], loc)
        assert (int(row[0]), row[2:2 + cfg.num_perm].tolist()) == (size, sig.tolist()) and light.size == size
    assert spill.get_row(stores[0][1], 3 << ROW_BITS | 1) is None   # not a node: not signed
    # the partitions' buckets of two or more pages hold only this file's pages, and every
    # banded page has its 9 Jaccard and 64 containment keys (d2, empty, has none)
    shared = list(BucketsFn(cfg.jaccard_index()[0]).process((0, [path for _, path in bands])))
    assert all(loc >> ROW_BITS == 3 for loc, _ in shared)
    keys = sum(len(spill.get_block(path)["key"]) for _, path in bands)
    jb, _ = cfg.jaccard_index()
    assert keys == sum((jb if light.size else 0) + (cfg.bands if light.csize else 0) for _, light in lights)


@pytest.mark.beam
def test_beam_row_store_reads_each_row_by_key(tmp_path):
    from pipelines import spill

    rng = np.random.default_rng(5)
    keys = rng.choice(1 << 40, 300, replace=False).astype(np.uint64)
    rows = [rng.integers(0, 1 << 32, int(rng.integers(0, 40)), dtype=np.uint32) for _ in keys]
    path = spill.unique_path(str(tmp_path / "w"), "t", "rows")
    spill.put_rows(path, keys, rows)
    assert all(spill.get_row(path, int(k)).tolist() == r.tolist() for k, r in zip(keys, rows))
    assert spill.get_row(path, 1 << 41) is None
    spill.remove(str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


@pytest.mark.beam
def test_beam_job_reads_a_file_again_row_by_row_and_refuses_a_changed_one(tmp_path):
    from pipelines.dedup import reread

    path = tmp_path / "in.jsonl"
    write_documents(path, [Document(id=f"d{k}", text=f"text {k}") for k in range(5)])
    # a bad line is skipped on every read alike: rows are counted over the documents read
    path.write_text(path.read_text().replace('{"id": "d2"', 'not json\n{"id": "d2"', 1))
    assert [(row, d.id) for row, d in reread(str(path), {1: "d1", 3: "d3"})] == [(1, "d1"), (3, "d3")]
    with pytest.raises(RuntimeError, match="changed while the job ran"):
        list(reread(str(path), {1: "d1", 2: "x"}))
    with pytest.raises(RuntimeError, match="not found when read again"):
        list(reread(str(path), {9: "d9"}))


@pytest.mark.beam
def test_beam_join_that_lost_its_value_in_a_shuffle_stops_the_job_saying_so():
    # two DirectRunner processes lost the leader side of this join at 1M pages, before
    # pipelines.direct_fix guarded the race; the check stays for any other loss
    from pipelines.dedup import Joined, Ref, _exact_routes, _url_routes

    ref = Ref(0, "d0", "http://a/", "2020", "cc", None, "k", 1)
    for step in (_url_routes, _exact_routes):
        with pytest.raises(RuntimeError, match="missing from its join: the runner lost shuffle elements"):
            list(step(Joined("k", ref, None)))


@pytest.mark.beam
def test_beam_put_is_atomic_and_overwrites(tmp_path):
    from pipelines.fileio import get, put

    dest = str(tmp_path / "a" / "b.txt")
    put(dest, b"one")
    put(dest, b"two")
    assert get(dest) == b"two"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.txt"]


@pytest.mark.shared_data
def test_every_removed_page_is_a_copy_of_its_representative():
    """No chaining: on CopyCat's real pages, each removed page has at least the
    containment threshold of its own shingles in the kept page it points to (joining
    whole components removed pages that shared < 0.1 with their representative)."""
    shared("dedup", "copycat-canonical-link-pairs.shared.jsonl.gz")
    from benchmarks.dedup import copycat_docs

    docs, _ = copycat_docs()
    cfg = DedupConfig()
    sets = {d.id: set(shingle_hashes(d.text, cfg.ngram).tolist()) for d in docs}
    res = dedup_documents(docs, cfg)
    removed = [d for d in res.docs if d.metadata["duplicate"]]
    assert len(removed) > 200
    kept = {d.id for d in res.docs if not d.metadata["duplicate"]}
    for d in removed:
        rep = d.metadata["cluster"]
        assert rep in kept
        assert len(sets[d.id] & sets[rep]) / len(sets[d.id]) >= cfg.containment, (d.id, rep)
