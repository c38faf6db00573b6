"""Decontamination: GPT-3 Appendix C rules on real benchmarks and real clean text."""

from __future__ import annotations

import gzip
import json

import pytest

from cli.decontaminate import add_decontaminate_parser
from curate.core.document import Document, read_documents, write_documents
from curate.decontam.overlap import (
    DecontamConfig,
    Decontaminator,
    load_benchmarks,
    ngram_hashes,
    tokens,
)
from tests.common import run_cli, shared


def _clean_articles(n_chars: int = 400_000) -> list[Document]:
    text = gzip.open(shared("reference", "wikipedia", "wikitext-2_valid.txt.gz"), "rt", encoding="utf-8").read()
    arts = [a for a in text[:n_chars].split("\n = ") if len(a) > 2000]
    return [Document(id=f"wiki{k}", text=a, source="wikipedia") for k, a in enumerate(arts)]


@pytest.fixture(scope="module")
def benches():
    return load_benchmarks([shared("eval", "lambada_openai_test.part1.jsonl"),
                            shared("eval", "gsm8k_test.part1.jsonl")])


def _survivors(dec: Decontaminator, text: str) -> int:
    pos, _ = dec._lookup(ngram_hashes(tokens(text)[0], 13))
    return len(pos)


@pytest.mark.shared_data
def test_every_string_field_is_benchmark_text(benches):
    assert set(benches) == {"lambada_openai_test.part1", "gsm8k_test.part1"}
    assert len(benches["lambada_openai_test.part1"]) == 2576
    assert len(benches["gsm8k_test.part1"]) == 2 * 659       # question and answer


@pytest.mark.shared_data
def test_pasted_benchmark_text_is_removed_and_clean_text_kept(benches):
    dec = Decontaminator.build(benches)
    clean = _clean_articles()
    lam, gsm = benches["lambada_openai_test.part1"][5], benches["gsm8k_test.part1"][1]
    docs = list(clean)
    # paste a LAMBADA passage into one article and a GSM8K answer into another, mid-text
    for k, pasted in ((0, lam), (1, gsm)):
        t = docs[k].text
        docs[k] = Document(id=docs[k].id, text=t[: len(t) // 2] + " " + pasted + " " + t[len(t) // 2:])
    out = {d.id: d for d in dec.clean(docs)}
    for k in (0, 1):
        assert docs[k].id in out                                  # a long article loses a window, not itself
        assert _survivors(dec, out[docs[k].id].text) == 0
    removed = sum(len(d.text) for d in docs[2:]) - sum(len(out[d.id].text) for d in docs[2:] if d.id in out)
    assert removed / sum(len(d.text) for d in docs[2:]) <= 0.01
    rep = dec.report()
    assert rep["lambada_openai_test.part1"]["docs_touched"] >= 1
    assert rep["gsm8k_test.part1"]["docs_touched"] >= 1
    assert rep["gsm8k_test.part1"]["distinct_ngrams"] > 0 and rep["gsm8k_test.part1"]["chars_removed"] > 0


def test_short_page_cut_into_many_pieces_is_dropped_but_a_book_is_not():
    grams = [f"alpha{i} beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu" for i in range(12)]
    dec = Decontaminator.build({"b": grams})
    filler = " " + "x " * 350                                    # 700 chars: pieces of ~300 survive the windows
    page = Document(id="page", text=filler.join(grams) + filler)
    assert list(dec.clean([page])) == []
    assert dec.counters["dropped:contaminated"] == 1
    # the same 12 collisions spread through a 200k-character book: windows cut, book kept
    dec2 = Decontaminator.build({"b": grams})
    prose = "some ordinary sentence of a novel that goes on and on. " * 300
    book = Document(id="book", text=prose.join([""] + grams + [""]))
    out = list(dec2.clean([book]))
    assert len(out) == 1 and _survivors(dec2, out[0].text) == 0
    assert len(out[0].text) > 0.9 * len(book.text)


def test_ngrams_frequent_in_training_docs_are_ignored():
    gram = "one two three four five six seven eight nine ten eleven twelve thirteen"
    dec = Decontaminator.build({"b": [gram]}, DecontamConfig(max_doc_freq=10))
    pad = "filler words here and there. " * 20
    docs = [Document(id=str(i), text=pad + gram + " " + pad) for i in range(11)]
    out = list(dec.clean(docs))
    assert len(out) == 11 and all(d.text == docs[0].text for d in out)
    assert dec.counters["decontam:ngrams_ignored_frequent"] == 1


def _cli(argv):
    return run_cli(add_decontaminate_parser, argv)


def test_cli_writes_cleaned_docs_and_report(tmp_path, capsys):
    bench = tmp_path / "b.jsonl"
    gram = "the cat sat on the mat and looked at the dog who sat on the rug"
    bench.write_text(json.dumps({"id": 1, "nested": {"q": gram}}) + "\n")
    pad = "a perfectly ordinary sentence about nothing at all. " * 10
    inp = tmp_path / "in.jsonl"
    write_documents(inp, [Document(id="dirty", text=pad + gram + " " + pad), Document(id="ok", text=pad)])
    out, rep = tmp_path / "out.jsonl", tmp_path / "rep.json"
    assert _cli(["decontaminate", "--benchmark", str(bench), "-i", str(inp), "-o", str(out),
                 "--report", str(rep), "-q"]) == 0
    got = {d.id: d for d in read_documents(out)}
    assert set(got) == {"dirty", "ok"} and "cat sat" not in got["dirty"].text
    assert got["dirty"].metadata["decontam"]["benchmarks"] == ["b"]
    r = json.loads(rep.read_text())["b"]
    w = gram.split()
    assert r["docs_touched"] == 1 and set(r["ngrams"]) == {" ".join(w[i:i + 13]) for i in range(4)}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert _cli(["decontaminate", "--benchmark", str(bad), "-i", str(inp), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.jsonl:1" in err[0]


@pytest.mark.shared_data
@pytest.mark.beam
@pytest.mark.slow
def test_beam_job_gives_the_one_machine_documents_and_report(benches, tmp_path):
    """Pasted passages, a document dropped for too many pieces, and a 13-gram in more than
    ten documents (ignored) — the Beam job's two passes must agree with the local ones."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.decontam import run as beam_run

    lam = benches["lambada_openai_test.part1"]
    docs = _clean_articles(200_000)
    common = " ".join(lam[7].split()[:13])              # in 12 documents: > max_doc_freq, ignored
    for k in range(12):
        d = docs[k % len(docs)]
        docs[k % len(docs)] = Document(id=d.id, text=d.text + " " + common + " and more words follow here.")
    docs[0] = Document(id=docs[0].id, text=docs[0].text[:3000] + " " + lam[3] + " " + docs[0].text[3000:])
    chopped = " filler text of a modest size here. ".join(" ".join(lam[i].split()[:14]) for i in range(20, 40))
    docs.append(Document(id="chopped", text=chopped))  # > 10 pieces: dropped
    write_documents(tmp_path / "a.parquet", docs[::2])
    write_documents(tmp_path / "b.jsonl", docs[1::2])
    bench_files = [str(shared("eval", "lambada_openai_test.part1.jsonl")), str(shared("eval", "gsm8k_test.part1.jsonl"))]

    dec = Decontaminator.build(load_benchmarks(bench_files))
    local = {d.id: d for d in dec.clean(docs)}
    report = dec.report()
    result = beam_run(["--benchmark", *bench_files, "--input", str(tmp_path / "a.parquet"), str(tmp_path / "b.jsonl"),
                       "--out", str(tmp_path / "beam"), "--shards", "2", "-q"],
                      test_pipeline=beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])))
    got = {d.id: d for p in sorted((tmp_path / "beam" / "docs").glob("*.parquet")) for d in read_documents(p)}
    assert "chopped" not in local and docs[0].id in local and local[docs[0].id].text != docs[0].text
    assert dec.counters.as_dict().get("decontam:ngrams_ignored_frequent", 0) >= 1
    assert {k: (v.text, v.metadata) for k, v in got.items()} == {k: (v.text, v.metadata) for k, v in local.items()}
    assert result["benchmarks"] == report
    assert result["counters"]["decontam:touched"] == dec.counters.as_dict()["decontam:touched"]
    # both sides of each shuffle were counted, and nothing went missing (see pipelines.decontam._lost)
    from pipelines.decontam import HITS_IN, HITS_OUT, WRITTEN
    c = result["counters"]
    assert c[HITS_OUT] == c[HITS_IN] >= 12 and c[WRITTEN] == len(local) == c["kept"]
    assert result["lost_elements"] == {"ngram_hits": 0, "documents": 0, "report_documents": 0}


@pytest.mark.beam
def test_a_decontam_run_that_lost_elements_in_a_shuffle_fails(capsys):
    from pipelines.decontam import HITS_IN, HITS_OUT, WRITTEN, _exit_status, _lost

    assert _lost(None, {"docs": 5}) is None                              # no metrics: nothing to compare
    sound = _lost({HITS_OUT: 40, HITS_IN: 40, "docs": 5, "kept": 4, WRITTEN: 4}, {"docs": 5})
    assert sound == {"ngram_hits": 0, "documents": 0, "report_documents": 0}
    assert _exit_status({"lost_elements": sound}) == 0 and _exit_status({"lost_elements": None}) == 0
    lossy = _lost({HITS_OUT: 40, HITS_IN: 31, "docs": 5, "kept": 4, WRITTEN: 3}, {"docs": 5})
    assert lossy == {"ngram_hits": 9, "documents": 1, "report_documents": 0}
    assert _exit_status({"lost_elements": lossy}) == 1
    assert "lost elements in a shuffle (9 ngram hits, 1 documents, 0 report documents)" in capsys.readouterr().err
