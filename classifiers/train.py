"""Train a quality model, evaluate it, and write the model directory with its card and report.

>>> cfg = ClassifierConfig(kind="lr")
>>> cfg.features().n_features == 2 ** 18 and cfg.balance
'class'
>>> best = ClassifierConfig(preset="best")
>>> best.C, best.balance, best.features().ngrams
(10.0, 'source', 2)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence


from classifiers.data import LabelledSet, load_labelled, sample_weights, split_of
from classifiers.features import PRESETS, FeatureConfig
from classifiers.keep import DEFAULT_ALPHA
from classifiers.models import FastTextModel, LRModel, save_model
from classifiers.report import evaluate, top_features, write_report


# What a preset sets besides the features (None in ClassifierConfig = the preset's):
# "best" is the recipe of the highest AUC on unseen documents (benchmarks/quality.py).
RECIPES = {
    "gpt3": {"C": 1.0, "balance": "class"},
    "best": {"C": 10.0, "balance": "source"},
}


@dataclass
class ClassifierConfig:
    """Everything that decides a model; saved in its card.

    Defaults are GPT-3's recipe (``preset="gpt3"``: Spark tokens, raw counts,
    2^18 buckets, unigrams; LR with C=1 and balanced classes; alpha 9).
    ``preset="best"``: words + bigrams, log tf, l2, 2^20 buckets; C=10, every
    source equal within its class. Any field given explicitly wins over the preset.
    """

    kind: str = "lr"  # "lr" or "fasttext"
    preset: str = "gpt3"  # feature preset (classifiers.features.PRESETS) and recipe (RECIPES)
    n_features: int | None = None  # overrides of the preset
    ngrams: int | None = None
    tokenizer: str | None = None
    C: float | None = None  # inverse L2 strength of the LR (None: the preset's)
    balance: str | None = None  # "class" (GPT-3) or "source" (every source equal within its class); None: the preset's
    alpha: float = DEFAULT_ALPHA
    test_fraction: float = 0.2  # held-out share, by hashed id
    min_chars: int = 200
    fasttext: dict = field(default_factory=dict)  # fastText parameter overrides

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (one of {', '.join(sorted(PRESETS))})")
        recipe = RECIPES.get(self.preset, RECIPES["gpt3"])
        if self.C is None:
            self.C = recipe["C"]
        if self.balance is None:
            self.balance = recipe["balance"]

    def features(self) -> FeatureConfig:
        base = PRESETS[self.preset].to_json()
        for k in ("n_features", "ngrams", "tokenizer"):
            if getattr(self, k) is not None:
                base[k] = getattr(self, k)
        return FeatureConfig.from_json(base)


def fit(cfg: ClassifierConfig, data: LabelledSet):
    """Train a model of ``cfg.kind`` on all of ``data``."""
    w = sample_weights(data.y(), data.groups, cfg.balance)
    if cfg.kind == "lr":
        return LRModel.fit(data.texts, data.y(), w, cfg.features(), C=cfg.C, alpha=cfg.alpha)
    if cfg.kind == "fasttext":
        return FastTextModel.fit(data.texts, data.y(), w, cfg.fasttext, alpha=cfg.alpha)
    raise ValueError(f"unknown model kind {cfg.kind!r} (lr or fasttext)")


def train_and_report(cfg: ClassifierConfig, positive: Sequence[str], negative: Sequence[str], out: str | Path,
                     eval_positive: Sequence[str] = (), eval_negative: Sequence[str] = (),
                     log=print) -> dict:
    """Read the data, train on the train split, evaluate, save model + card + report.

    Two evaluations: ``heldout`` (documents of the training files whose hashed id
    falls in the test split) and, when eval files are given, ``unseen_files``
    (documents from files not used in training at all: other books, the other
    WikiText split, other crawls), the stricter test of generalisation.
    """
    out = Path(out)
    t0 = time.perf_counter()
    data = load_labelled(positive, negative, cfg.min_chars)
    if not any(data.labels) or all(data.labels):
        raise ValueError("training needs both positive and negative documents "
                         f"(got {sum(data.labels)} positive, {len(data) - sum(data.labels)} negative)")
    is_test = [split_of(i, cfg.test_fraction) == "test" for i in data.ids]
    train = data.subset([not t for t in is_test])
    test = data.subset(is_test)
    log(f"data: {len(train)} train, {len(test)} held-out documents; sources {data.counts()}")
    t1 = time.perf_counter()
    model = fit(cfg, train)
    train_s = time.perf_counter() - t1
    log(f"trained {cfg.kind} in {train_s:.1f} s")

    evaluations, plots = {}, {}
    sets = {"heldout": test}
    if eval_positive or eval_negative:
        unseen = load_labelled(eval_positive, eval_negative, cfg.min_chars)
        sets["unseen_files"] = unseen
    for name, ds in sets.items():
        if not len(ds):
            continue
        s = model.score(ds.texts)
        evaluations[name] = evaluate(s, ds.y(), ds.groups, ds.ids, cfg.alpha, ds.texts)
        plots[name] = (s, ds.y(), ds.groups)
        log(f"{name}: AUC {evaluations[name]['auc']}, F1 {evaluations[name]['f1']} "
            f"({evaluations[name]['n_positive']} ref / {evaluations[name]['n_negative']} crawl)")
    top = top_features(model, train.texts[:3000])
    training = {"config": asdict(cfg), "features_resolved": cfg.features().to_json() if cfg.kind == "lr" else None,
                "documents": {"train": len(train), "heldout": len(test)}, "sources": data.counts(),
                "train_seconds": round(train_s, 2), "total_seconds": round(time.perf_counter() - t0, 2)}
    card = save_model(model, out, {
        "training": training, "training_data": data.files,
        "eval_data": sets["unseen_files"].files if "unseen_files" in sets else [],
        "metrics": {k: {m: v.get(m) for m in ("auc", "precision", "recall", "f1", "n_positive", "n_negative")}
                    for k, v in evaluations.items()},
        "keep_rule": "keep when pareto(alpha) > 1 - score; draw = (1-u)^(-1/alpha) - 1, u = id_fraction(id, 'pareto')",
    })
    write_report(out / "report", cfg.kind, evaluations, plots, top, {"training": training})
    return card
