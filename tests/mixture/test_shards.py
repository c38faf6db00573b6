"""Tokenizer, token shards and the mixture manifest, on real books and news text."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from cli import main as shards_main
from curate.core.document import Document, write_documents
from curate.mixture.build import (
    MixtureConfig,
    SourceConfig,
    build,
    epochs_table,
    format_table,
    load_manifest,
    parse_source,
    verify_manifest,
)
from curate.mixture.shards import (
    HEADER,
    ShardFormatError,
    ShardWriter,
    iter_documents,
    read_header,
    read_index,
    read_tokens,
    split_of,
    write_source_shards,
)
from curate.mixture.tokenizer import (
    EOT,
    Tokenizer,
    TokenizerConfig,
    token_dtype,
    train_tokenizer,
)
from tests.common import books_and_news

VAL = 0.1  # large enough that the small fixture has a few validation documents


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two real document files: book pages and news articles (~1 MB of text)."""
    books, news = books_and_news()
    d = tmp_path_factory.mktemp("corpus")
    # a document that contains the separator's spelling must still round-trip as text
    news.append(Document(id="web:eot-literal", text=f"before {EOT} after", source="web"))
    write_documents(d / "books.jsonl.gz", books)
    write_documents(d / "web.parquet", news)
    return {"dir": d, "books": books, "web": news}


def _config(corpus) -> MixtureConfig:
    base = MixtureConfig.preset("tiny")
    return MixtureConfig(
        sources=[SourceConfig("books", [str(corpus["dir"] / "books.jsonl.gz")], 0.08),
                 SourceConfig("web", [str(corpus["dir"] / "*.parquet")], 0.22)],
        tokenizer=base.tokenizer, val_fraction=VAL, budget_tokens=1_000_000, shard_tokens=50_000)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    manifest = build(_config(corpus), out, log=lambda m: None)
    return out, manifest


def _decoded(out: Path, manifest: dict, source: str, split: str) -> list[str]:
    tok = Tokenizer.load(out / manifest["tokenizer"]["path"])
    src = next(s for s in manifest["sources"] if s["name"] == source)
    return [tok.decode(ids) for f in src["files"][split]
            for ids in iter_documents(out / f["bin"], out / f["idx"])]


@pytest.mark.shared_data
def test_shards_decode_back_to_the_original_texts(corpus, built):
    out, manifest = built
    for name in ("books", "web"):
        docs = corpus[name]
        for split in ("train", "val"):
            want = [d.text for d in docs if d.text and split_of(d.id, VAL) == split]
            assert _decoded(out, manifest, name, split) == want
    assert any(EOT in t for t in _decoded(out, manifest, "web", split_of("web:eot-literal", VAL)))


@pytest.mark.shared_data
def test_counts_header_and_dtype(built):
    out, manifest = built
    assert manifest["tokenizer"]["vocab_size"] == 4096 and manifest["tokenizer"]["dtype"] == "uint16"
    eot = manifest["tokenizer"]["eot_id"]
    for src in manifest["sources"]:
        assert src["documents"]["val"] > 0 and src["documents"]["train"] > src["documents"]["val"]
        for split in ("train", "val"):
            files = src["files"][split]
            assert sum(f["tokens"] for f in files) == src["tokens"][split]
            assert sum(f["documents"] for f in files) == src["documents"][split]
            for f in files:
                magic, version, dtype, count = read_header(out / f["bin"])
                assert (magic, version, dtype, count) == (b"CURTOKS1", 1, np.dtype(np.uint16), f["tokens"])
                assert (out / f["bin"]).stat().st_size == HEADER.size + 2 * count
                tokens, starts = read_tokens(out / f["bin"]), read_index(out / f["idx"])
                assert read_header(out / f["idx"])[2] == np.dtype(np.uint64)
                assert len(starts) == f["documents"] and starts[0] == 0
                # every document ends with exactly one end-of-text, just before the next start
                ends = np.append(starts[1:].astype(np.int64), len(tokens)) - 1
                assert (tokens[ends] == eot).all() and (tokens == eot).sum() == len(starts)
    # more than one shard per split when a source outgrows shard_tokens
    assert len(next(s for s in manifest["sources"] if s["name"] == "books")["files"]["train"]) > 1


def test_dtype_choice_and_bad_header(tmp_path):
    assert token_dtype(50257) == np.uint16 and token_dtype(65535) == np.uint16
    assert token_dtype(100277) == np.uint32
    with ShardWriter(tmp_path / "w", np.uint32, eot_id=70000) as w:
        w.add(np.array([69999, 1], np.uint32))
    assert read_header(tmp_path / "w.bin")[2:] == (np.dtype(np.uint32), 3)
    assert read_tokens(tmp_path / "w.bin").tolist() == [69999, 1, 70000]
    (tmp_path / "bad.bin").write_bytes(b"NOTOURS!" + bytes(24))
    with pytest.raises(ShardFormatError, match="bad magic"):
        read_tokens(tmp_path / "bad.bin")
    raw = (tmp_path / "w.bin").read_bytes()
    (tmp_path / "short.bin").write_bytes(raw[:-2])
    with pytest.raises(ShardFormatError, match="header says"):
        read_tokens(tmp_path / "short.bin")


@pytest.mark.shared_data
def test_split_is_stable_and_independent_of_input_order(corpus, built, tmp_path):
    out, manifest = built
    tok = Tokenizer.load(out / "tokenizer.json")
    docs = corpus["web"]
    res = write_source_shards(list(reversed(docs)), tok, tmp_path / "rev", val_fraction=VAL)
    val = sorted(tok.decode(ids) for f in res.files["val"]
                 for ids in iter_documents(tmp_path / "rev" / f.bin, tmp_path / "rev" / f.idx))
    assert val == sorted(_decoded(out, manifest, "web", "val"))
    assert res.tokens == next(s for s in manifest["sources"] if s["name"] == "web")["tokens"]


@pytest.mark.shared_data
def test_rerun_is_a_noop_and_a_fresh_build_is_byte_identical(corpus, built, tmp_path):
    out, manifest = built
    before = _hashes(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.bin")}
    logs: list[str] = []
    assert build(_config(corpus), out, log=logs.append) == manifest
    assert _hashes(out) == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.bin")} == mtimes  # nothing rewritten
    assert all("reusing" in m for m in logs)
    # training the tokenizer again from scratch gives the same file, hence the same shards
    build(_config(corpus), tmp_path, log=lambda m: None)
    assert _hashes(tmp_path) == before


@pytest.mark.shared_data
def test_manifest_checksums_verify(built, tmp_path):
    out, manifest = built
    assert verify_manifest(out / "manifest.json") == []
    m = load_manifest(out / "manifest.json")
    assert m["tokenizer"]["sha256"] == hashlib.sha256((out / "tokenizer.json").read_bytes()).hexdigest()
    assert m["config"]["val_fraction"] == VAL and m["config"]["tokenizer"]["vocab_size"] == 4096
    # a flipped byte in a copy is caught
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    f = copy / m["sources"][0]["files"]["train"][0]["bin"]
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF
    f.write_bytes(bytes(raw))
    problems = verify_manifest(copy / "manifest.json")
    assert len(problems) == 1 and "sha256 differs" in problems[0]


def test_epochs_table_hand_checked():
    # weights 0.6 : 0.22 : 0.03 normalise to 0.6/0.85, 0.22/0.85, 0.03/0.85
    rows = epochs_table({"cc": 1000, "webtext2": 100, "wiki": 10}, {"cc": 0.6, "webtext2": 0.22, "wiki": 0.03},
                        budget=850)
    got = {r["source"]: (r["tokens"], round(r["weight"], 6), round(r["epochs"], 6)) for r in rows}
    assert got == {"cc": (1000, round(0.6 / 0.85, 6), 0.6),
                   "webtext2": (100, round(0.22 / 0.85, 6), 2.2),
                   "wiki": (10, round(0.03 / 0.85, 6), 3.0)}
    text = format_table(rows, 850, max_epochs=2.5)
    assert "warning: wiki would be repeated 3.00 epochs" in text and "warning: webtext2" not in text
    # GPT-3 Table 2.2 weights, normalised (the paper's column sums to 101%)
    w = MixtureConfig.preset("gpt3").normalized_weights()
    assert abs(sum(w.values()) - 1) < 1e-12 and w["common_crawl"] == pytest.approx(0.60 / 1.01)


def test_config_parsing():
    assert parse_source("webtext2=a/*.parquet,b.jsonl") == SourceConfig("webtext2", ["a/*.parquet", "b.jsonl"], 0.22)
    assert parse_source("x=data/y.jsonl:2").weight == 2.0
    cfg = MixtureConfig.from_json({"preset": "tiny", "sources": [{"name": "books1", "paths": "b/*.jsonl"}],
                                   "tokenizer": {"vocab_size": 512}, "val_fraction": 0.01})
    assert cfg.sources[0].weight == 0.08 and cfg.tokenizer.vocab_size == 512 and cfg.val_fraction == 0.01
    with pytest.raises(ValueError, match="unknown mixture config"):
        MixtureConfig.from_json({"nope": 1})
    assert TokenizerConfig.preset("gpt3").vocab_size == 50257


def test_tokenizer_training_is_deterministic_and_round_trips(tmp_path):
    texts = ["naïve café — 東京 🙂 tabs\tand\nnewlines", "hello world " * 20] * 30
    a = train_tokenizer(texts, TokenizerConfig(vocab_size=300))
    b = train_tokenizer(texts, TokenizerConfig(vocab_size=300))
    assert a.save(tmp_path / "a.json") == b.save(tmp_path / "b.json")
    for t in texts[:2] + ["unseen ₿ bytes \x00"]:
        assert a.decode(a.encode_batch([t])[0]) == t


@pytest.mark.shared_data
def test_cli_build_and_inspect(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    rc = shards_main(["shards", "build", "--preset", "tiny", "--vocab-size", "1024",
                      "--source", f"web={corpus['dir']}/web.parquet:0.7", "--out", str(out),
                      "--budget", "1e6", "--max-epochs", "1", "-q"])
    captured = capsys.readouterr().out
    assert rc == 0 and "web" in captured and "warning: web would be repeated" in captured
    assert json.loads((out / "manifest.json").read_text())["tokenizer"]["vocab_size"] == 1024
    assert shards_main(["shards", "inspect", str(out / "manifest.json"), "--docs", "1", "--verify"]) == 0
    assert "verify: ok" in capsys.readouterr().out
    assert shards_main(["shards", "build", "--source", f"x={tmp_path}/none*.jsonl", "--out", str(out)]) == 2
    assert "no file matches" in capsys.readouterr().err


# --------------------------------------------------------------------------- encoders

@pytest.mark.shared_data
def test_tiktoken_fast_path_gives_the_hf_ids_on_real_text(corpus, built):
    out, manifest = built
    tok = Tokenizer.load(out / "tokenizer.json")
    assert tok.backend == "tiktoken"
    texts = [d.text for d in corpus["books"] + corpus["web"]]
    texts += ["", " ", "\n\n\n", "tab\tand  spaces  ", "emoji 🤖 and 日本語", f"{EOT}{EOT}", "x" * 5000]
    fast, ref = tok.encode_batch(texts), tok.encode_batch_hf(texts)
    assert sum(map(len, ref)) > 100_000
    mismatched = [i for i, (a, b) in enumerate(zip(fast, ref)) if not np.array_equal(a, b)]
    assert mismatched == []


@pytest.mark.shared_data
def test_shards_identical_with_either_encoder(corpus, built, tmp_path, monkeypatch):
    out, _ = built
    monkeypatch.setenv("CURATE_TOKENIZER_BACKEND", "hf")
    assert Tokenizer.load(out / "tokenizer.json").backend == "hf"
    again = tmp_path / "hf"
    build(_config(corpus), again, tokenizer_path=out / "tokenizer.json", log=lambda m: None)
    ours = {k: v for k, v in _hashes(out).items() if k.endswith((".bin", ".idx"))}
    theirs = {k: v for k, v in _hashes(again).items() if k.endswith((".bin", ".idx"))}
    assert ours and ours == theirs


def test_merges_out_of_rank_order_keep_the_hf_encoder():
    from tokenizers import Tokenizer as HFTokenizer

    tok = train_tokenizer(["the cat sat on the mat"] * 20, TokenizerConfig(vocab_size=300))
    spec = json.loads(tok.hf.to_str())
    merges = spec["model"]["merges"]
    assert len(merges) >= 2
    merges[0], merges[1] = merges[1], merges[0]  # rank order no longer follows merge order
    edited = Tokenizer(HFTokenizer.from_str(json.dumps(spec)))
    assert tok.backend == "tiktoken" and edited.backend == "hf"


@pytest.mark.shared_data
def test_gpt2_format_files_load_as_the_same_bpe(built, tmp_path):
    """GPT-2 ships its BPE as encoder.json + vocab.bpe; written in that format, ours loads back equal."""
    out, _ = built
    tok = Tokenizer.load(out / "tokenizer.json")
    spec = json.loads(tok.hf.to_str())
    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    (gpt2 / "encoder.json").write_text(json.dumps(spec["model"]["vocab"]), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    (gpt2 / "vocab.bpe").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    loaded = Tokenizer.load(gpt2)
    assert (loaded.vocab_size, loaded.eot_id, loaded.backend) == (tok.vocab_size, tok.eot_id, "tiktoken")
    texts = ["It was the best of times, it was the worst of times.", f"a {EOT} b", "naïve café 🤖"]
    assert [a.tolist() for a in loaded.encode_batch_hf(texts)] == [a.tolist() for a in tok.encode_batch(texts)]
    assert loaded.decode(loaded.encode_batch(texts)[2]) == texts[2]
    (gpt2 / "vocab.bpe").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.bpe"):
        Tokenizer.load(gpt2)


# --------------------------------------------------------------------------- Beam

@pytest.mark.shared_data
@pytest.mark.beam
@pytest.mark.slow
def test_beam_job_writes_the_same_shards_as_one_machine(corpus, tmp_path):
    """Several input files per source and shards small enough to roll over across them."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.shards import run as beam_run

    web = corpus["web"]
    parts = tmp_path / "web"
    parts.mkdir()
    for i in range(3):  # three files, so parts are assembled in file order
        write_documents(parts / f"web-{i}.parquet", web[i::3])
    cfg = {"preset": "tiny", "val_fraction": VAL, "shard_tokens": 40_000, "budget_tokens": 1_000_000,
           "sources": [{"name": "books", "paths": [str(corpus["dir"] / "books.jsonl.gz")], "weight": 0.08},
                       {"name": "web", "paths": [str(parts / "*.parquet")], "weight": 0.22}]}
    (tmp_path / "mix.json").write_text(json.dumps(cfg))
    local = tmp_path / "local"
    assert shards_main(["shards", "build", "--config", str(tmp_path / "mix.json"), "--out", str(local), "-q"]) == 0
    via_beam = tmp_path / "beam"
    manifest = beam_run(["--config", str(tmp_path / "mix.json"), "--out", str(via_beam), "-q"],
                        test_pipeline=beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])))
    ours, theirs = _hashes(local), _hashes(via_beam)
    assert len(manifest["sources"][1]["files"]["train"]) >= 3  # shards rolled over
    assert theirs == ours and "manifest.json" in ours and not (via_beam / "_parts").exists()
    # a rerun finds every source done and runs no pipeline
    again = beam_run(["--config", str(tmp_path / "mix.json"), "--out", str(via_beam), "-q"],
                     test_pipeline=object())  # would fail if the job tried to build a pipeline on it
    assert again == manifest and _hashes(via_beam) == ours
