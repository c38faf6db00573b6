"""Quality classifier: features, keep rule, LR / fastText training, safe artifacts, scorer, CLI."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest

from classifiers.data import load_labelled, sample_weights, split_of
from classifiers.features import PRESETS, FeatureConfig, Featurizer, tokenize
from classifiers.keep import keep_probability, pareto_draw, pareto_keep
from classifiers.models import (
    FastTextModel,
    LRModel,
    ModelError,
    load_model,
    save_model,
)
from classifiers.report import evaluate, write_report
from classifiers.scoring import QualityScorer, make_scorer
from classifiers.train import ClassifierConfig, train_and_report
from cli import main as cli_main
from curate.core.document import Document, write_documents
from tests.common import shared

GOOD = ("the river flowed slowly past the old mill while the miller told his daughter a long story "
        "about the war and the winter and the people who had lived in the valley before them").split()
BAD = ("click here to login cookie policy accept all subscribe now free shipping add to cart "
       "sign up newsletter privacy terms menu home contact share tweet").split()


def _docs(words, n, prefix, seed):
    rng = np.random.default_rng(seed)
    return [Document(id=f"{prefix}{i}", text=" ".join(rng.choice(words, 80)), source=prefix) for i in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    pos, neg = d / "pos.jsonl", d / "neg.parquet"
    write_documents(pos, _docs(GOOD, 120, "ref", 1))
    write_documents(neg, _docs(BAD, 120, "cc", 2))
    return pos, neg


@pytest.fixture(scope="module")
def lr_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "lr"
    train_and_report(ClassifierConfig(n_features=2 ** 12, min_chars=10), [str(corpus[0])], [str(corpus[1])], out,
                     log=lambda *_: None)
    return out


# --------------------------------------------------------------------------- features and keep rule

def test_spark_tokenizer_is_lowercase_whitespace_split():
    text = "The  Cat,\tsat\u00a0on THE mat.\n2012 café"
    assert tokenize(text) == text.lower().split()
    assert tokenize("It's 2012, ok?", "words") == ["it", "'", "s", "0000", ",", "ok", "?"]


def test_hashing_is_consistent_and_bounded():
    f = Featurizer(FeatureConfig(n_features=1000, ngrams=2))
    h = f.token_hashes("a b a b")
    assert h[0] == h[2] and h[1] == h[3] and h[0] != h[1]
    b = f.buckets("a b a b")
    assert len(b) == 4 + 3 and b.min() >= 0 and b.max() < 1000
    assert b[4] == b[6] and b[4] != b[5]  # "a b" twice, "b a" elsewhere: bigrams keep order
    # the same token hashes the same whatever the rest of the text (ASCII and non-ASCII paths)
    assert Featurizer().token_hashes("hello world")[0] == Featurizer().token_hashes("hello wörld ’")[0]
    idx, val = Featurizer(FeatureConfig(tf="log", norm="l2")).vector("x x y")
    assert np.isclose(np.linalg.norm(val), 1.0) and len(idx) == 2


_MIXED = "The Cat, in 2012 \u2014 caf\u00e9 na\u00efve \u65e5\u672c \U0001F600 end."
_TEXTS = ["", " ", "!!!", "a", "x x y", _MIXED, "Tab\tand\u00a0nbsp\u2028line " * 40,
          " ".join(GOOD) * 5, "\u0130stanbul ALL CAPS " * 3, "\U0001F600" * 7]


@pytest.mark.parametrize("cfg", [FeatureConfig(), PRESETS["best"], FeatureConfig(hashing=1),
                                 FeatureConfig(**{**PRESETS["best"].to_json(), "hashing": 1}),
                                 FeatureConfig(tokenizer="words", n_features=1000, ngrams=3, tf="log")],
                         ids=["gpt3", "best", "gpt3-v1", "best-v1", "odd-n-trigrams"])
def test_scoring_features_equal_training_features(cfg):
    """The scoring hot path (``dot``) and training (``transform``) see the same features."""
    f = Featurizer(cfg)
    coef = np.random.default_rng(0).normal(size=cfg.n_features).astype(np.float32)
    X = f.transform(_TEXTS)
    assert X.shape == (len(_TEXTS), cfg.n_features)
    expected = X.astype(np.float64) @ coef.astype(np.float64)
    got = np.array([f.dot(t, coef) for t in _TEXTS])
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)
    for t in _TEXTS:
        b = f.buckets(t)
        idx, counts = f.counts(t)
        assert b.dtype == np.int64 and (len(b) == 0 or (b.min() >= 0 and b.max() < cfg.n_features))
        u, c = np.unique(b, return_counts=True)
        assert np.array_equal(idx, u) and np.array_equal(counts, c)
        # every token and n-gram occurrence has a bucket
        n_tok = len(tokenize(t, cfg.tokenizer))
        assert len(b) == sum(max(0, n_tok - k + 1) for k in range(1, cfg.ngrams + 1))


def test_hashing_1_buckets_are_unchanged():
    """Models trained before hashing 2 keep scoring exactly as when they were trained."""
    best_v1 = FeatureConfig(**{**PRESETS["best"].to_json(), "hashing": 1})
    assert Featurizer(best_v1).buckets(_MIXED).tolist() == [
        448482, 245991, 243779, 944319, 136772, 1041247, 62445, 743297, 756004, 394658, 586471, 788391,
        213207, 362241, 294109, 395137, 541978, 138146, 101892, 140740, 545281, 727648, 9624]
    assert Featurizer(FeatureConfig(hashing=1)).buckets(_MIXED).tolist() == [
        186338, 146256, 157887, 238326, 254815, 62445, 219009, 231716, 132514, 132241]
    # a card written before the field existed means hashing 1
    assert FeatureConfig.from_json({"tokenizer": "spark", "n_features": 16}).hashing == 1
    assert FeatureConfig.from_json(PRESETS["best"].to_json()).hashing == 2


def test_pareto_rule_matches_the_distribution_and_is_seeded():
    ids = [f"doc{i}" for i in range(20000)]
    draws = np.array([pareto_draw(i, 9.0) for i in ids])
    ref = np.random.default_rng(0).pareto(9.0, 200000)
    assert np.allclose(np.quantile(draws, [0.1, 0.5, 0.9, 0.99]), np.quantile(ref, [0.1, 0.5, 0.9, 0.99]), rtol=0.05)
    for s in (0.2, 0.6, 0.9):
        realised = np.mean([pareto_keep(s, i) for i in ids])
        assert abs(realised - keep_probability(s)) < 0.01
    assert [pareto_keep(0.7, i) for i in ids[:200]] == [pareto_keep(0.7, i) for i in ids[:200]]
    assert keep_probability(1.0) == 1.0 and pareto_keep(1.0, "x") is True


def test_split_and_weights():
    frac = np.mean([split_of(f"d{i}", 0.2) == "test" for i in range(5000)])
    assert 0.18 < frac < 0.22
    w = sample_weights(np.array([1, 1, 1, 0]), ["a", "a", "b", "c"], "class")
    assert np.isclose(w[:3].sum(), w[3:].sum())


# --------------------------------------------------------------------------- models and artifacts

def test_lr_trains_saves_card_and_report(lr_dir):
    card = json.loads((lr_dir / "card.json").read_text())
    assert card["kind"] == "lr" and card["alpha"] == 9.0
    assert card["features"] == {"tokenizer": "spark", "n_features": 4096, "ngrams": 1, "tf": "raw", "norm": "none",
                                "hashing": 2}
    assert {f["label"] for f in card["training_data"]} == {"positive", "negative"}
    assert all(len(f["sha256"]) == 64 for f in card["training_data"])
    assert "scikit-learn" in card["library_versions"] and card["metrics"]["heldout"]["auc"] > 0.99
    report = lr_dir / "report"
    assert (report / "report.md").exists() and (report / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert (report / "hist_heldout.png").exists()
    rep = json.loads((report / "report.json").read_text())
    top = [w for names, _ in rep["top_features"]["positive"] for w in names]
    assert set(top[:5]) <= set(GOOD)
    # weights are plain arrays: loadable with pickle disabled
    with np.load(lr_dir / "weights.npz", allow_pickle=False) as z:
        assert z["coef"].shape == (4096,)


def test_loaded_model_scores_like_trained_and_separates(lr_dir):
    m = load_model(lr_dir)
    good, bad = " ".join(GOOD), " ".join(BAD)
    s = m.score([good, bad])
    assert s[0] > 0.9 and s[1] < 0.1
    assert np.array_equal(load_model(lr_dir).score([good, bad]), s)


def test_tampered_or_missing_model_is_refused(lr_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(lr_dir, bad)
    np.savez(bad / "weights.npz", coef=np.ones(4096, np.float32), intercept=np.zeros(1))
    with pytest.raises(ModelError, match="sha256"):
        load_model(bad)
    with pytest.raises(ModelError, match="no card.json"):
        load_model(tmp_path / "empty")


def test_model_of_another_feature_hashing(lr_dir, tmp_path):
    """An old card (no ``hashing``) loads as hashing 1; an unknown hashing is refused, not misread."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(lr_dir, old)
    card = json.loads((old / "card.json").read_text())
    del card["features"]["hashing"]
    (old / "card.json").write_text(json.dumps(card))
    m = load_model(old)
    assert m.config.hashing == 1 and m.featurizer.buckets("a b").tolist() != load_model(lr_dir).featurizer.buckets("a b").tolist()
    card["features"]["hashing"] = 99
    (old / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="hashing 99"):
        load_model(old)
    assert cli_main(["quality", "score", "--model", str(old)]) == 2


def test_fasttext_variant_roundtrip(tmp_path):
    docs = _docs(GOOD, 60, "r", 3) + _docs(BAD, 60, "c", 4)
    y = np.array([1] * 60 + [0] * 60)
    m = FastTextModel.fit([d.text for d in docs], y, params={"epoch": 5, "dim": 16, "minCount": 1})
    card = save_model(m, tmp_path / "ft")
    assert card["kind"] == "fasttext" and card["fasttext_params"]["wordNgrams"] == 2
    loaded = load_model(tmp_path / "ft")
    s = loaded.score([" ".join(GOOD), " ".join(BAD)])
    assert s[0] > 0.5 > s[1]


# --------------------------------------------------------------------------- scorer (pipeline stage)

def test_scorer_annotates_counts_and_is_deterministic():
    model = LRModel(FeatureConfig(n_features=64), np.zeros(64), 0.0)  # every score 0.5
    docs = [Document(id=f"d{i}", text="some text", metadata={"language": "en"}) for i in range(2000)]
    a, b = QualityScorer(model), QualityScorer(model)
    kept_a = [d.id for d in docs if a(d) is not None]
    kept_b = [d.id for d in b.score_documents(docs)]
    assert kept_a == kept_b  # one document at a time or batched: the same documents
    c = a.counters.as_dict()
    assert c["quality:scored"] == 2000 and c["quality:kept"] + c["dropped:quality"] == 2000
    assert abs(c["quality:kept"] / 2000 - keep_probability(0.5)) < 0.015
    out = QualityScorer(model, apply_rule=False)(docs[0])
    assert out.metadata == {"language": "en", "quality": 0.5} and docs[0].metadata == {"language": "en"}


def test_make_scorer_from_dir(lr_dir):
    scorer = make_scorer(lr_dir)
    doc = scorer(Document(id="x", text=" ".join(GOOD)))
    assert doc is not None and doc.metadata["quality"] > 0.9


# --------------------------------------------------------------------------- CLI

def test_cli_score_stdin_to_stdout_in_order(lr_dir, monkeypatch, capsys):
    lines = [json.dumps({"id": "g", "text": " ".join(GOOD)}), json.dumps({"id": "b", "text": " ".join(BAD)}), "{oops"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert cli_main(["quality", "score", "--model", str(lr_dir)]) == 1  # the bad line is reported
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out] == ["g", "b", None]
    assert out[0]["score"] > 0.9 > 0.1 > out[1]["score"]


def test_cli_train_preset_best_is_the_whole_recipe(corpus, tmp_path):
    out = tmp_path / "best"
    assert cli_main(["quality", "train", "--positive", str(corpus[0]), "--negative", str(corpus[1]),
                     "--out", str(out), "--preset", "best", "--n-features", "4096", "--min-chars", "10", "-q"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["config"]["C"] == 10.0 and card["training"]["config"]["balance"] == "source"
    assert card["features"] == {"tokenizer": "words", "n_features": 4096, "ngrams": 2, "tf": "log", "norm": "l2",
                                "hashing": 2}
    assert card["metrics"]["heldout"]["auc"] > 0.99


def test_cli_train_missing_input_is_one_line(tmp_path, capsys):
    rc = cli_main(["quality", "train", "--positive", str(tmp_path / "no.jsonl"), "--negative", str(tmp_path / "n.jsonl"),
                   "--out", str(tmp_path / "m"), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "no.jsonl" in err and "Traceback" not in err
    assert cli_main(["quality", "score", "--model", str(tmp_path / "m")]) == 2


def test_evaluate_report_numbers(tmp_path):
    s = np.array([0.9, 0.7, 0.6, 0.2, 0.1, 0.8])
    y = np.array([1, 1, 1, 0, 0, 0])
    ev = evaluate(s, y, ["r", "r", "r", "c", "c", "c"], [str(i) for i in range(6)])
    assert ev["auc"] == round(7 / 9, 4) and ev["precision"] == 0.75 and ev["recall"] == 1.0
    assert ev["positive"]["keep_expected"] == round(float(keep_probability(s[:3]).mean()), 4)
    rep = write_report(tmp_path, "lr", {"t": ev}, {"t": (s, y, ["r"] * 3 + ["c"] * 3)})
    assert rep["plots"] == ["hist_t.png", "roc.png"] and (tmp_path / "hist_t.png").exists()


# --------------------------------------------------------------------------- real data

@pytest.mark.shared_data
def test_real_books_vs_crawl_generalises_to_an_unseen_book(tmp_path):
    from curate.ingest.reference import read_gutenberg, read_jsonl

    books = shared("reference", "books")
    cc = shared("warc", "cc-main-2019-30_dolma-extracted-text.part1.jsonl.gz")
    write_documents(tmp_path / "pos.jsonl", read_gutenberg(books / "pg84_Frankenstein.txt.gz"))
    write_documents(tmp_path / "neg.jsonl", read_jsonl(cc, source="cc"))
    write_documents(tmp_path / "unseen.jsonl", read_gutenberg(books / "pg35_The-Time-Machine.txt.gz"))
    cfg = ClassifierConfig(preset="best", n_features=2 ** 18)
    data = load_labelled([str(tmp_path / "pos.jsonl")], [str(tmp_path / "neg.jsonl")])
    from classifiers.train import fit

    model = fit(cfg, data)
    unseen = load_labelled([str(tmp_path / "unseen.jsonl")], [])
    assert np.mean(model.score(unseen.texts) > 0.5) > 0.9
