"""The quality models and their safe on-disk form (no pickle anywhere).

A model directory holds::

    card.json       model card: kind, feature config, alpha, library versions,
                    training data digests, metrics, weights file + its sha256
    weights.npz     LR: ``coef`` (n_features,) float32 and ``intercept`` (1,)
    model.bin       fastText: fastText's own binary format (no pickle)
    report/         evaluation report (report.md, report.json, PNG plots)

Loading reads only arrays (``np.load(..., allow_pickle=False)``) and JSON, and
checks the weights' sha256 against the card, so a downloaded model cannot run
code and a corrupt one is refused.

>>> m = LRModel(FeatureConfig(n_features=8), np.zeros(8, np.float32), 0.0)
>>> m.score(["any text"]).tolist()
[0.5]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from classifiers.features import FeatureConfig, Featurizer, tokenize
from classifiers.keep import DEFAULT_ALPHA
from curate.core.files import atomic_path, sha256_file, write_atomic
from curate.ingest.sources import is_remote, open_input

CARD = "card.json"
FORMAT = "curate-quality-model/1"
KINDS = ("lr", "fasttext")


class ModelError(ValueError):
    """A model directory that cannot be used (missing, corrupt, unknown kind)."""


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "scikit-learn", "fasttext-community"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------- logistic regression

class LRModel:
    """Logistic regression over hashed TF features (GPT-3's classifier)."""

    kind = "lr"
    weights_file = "weights.npz"

    def __init__(self, config: FeatureConfig, coef: np.ndarray, intercept: float, alpha: float = DEFAULT_ALPHA):
        self.config = config
        self.featurizer = Featurizer(config)
        self.coef = np.asarray(coef, dtype=np.float32).reshape(-1)  # (n_features,)
        if self.coef.shape[0] != config.n_features:
            raise ModelError(f"weights have {self.coef.shape[0]} features, the card says {config.n_features}")
        self.intercept = float(intercept)
        self.alpha = alpha

    @classmethod
    def fit(cls, texts: Sequence[str], labels: np.ndarray, sample_weight: np.ndarray | None = None,
            config: FeatureConfig | None = None, C: float = 1.0, max_iter: int = 1000,
            alpha: float = DEFAULT_ALPHA) -> "LRModel":
        """Train on texts with labels 1 (reference) / 0 (raw crawl).

        lbfgs rather than liblinear: it is deterministic (no shuffling) and
        handles 2^20 sparse columns comfortably.
        """
        from sklearn.linear_model import LogisticRegression

        config = config or FeatureConfig()
        X = Featurizer(config).transform(texts)
        clf = LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter)
        clf.fit(X, np.asarray(labels), sample_weight=sample_weight)
        return cls(config, clf.coef_[0], clf.intercept_[0], alpha)

    def decision_one(self, text: str) -> float:
        """The logit of one text, without building a sparse matrix (the hot path)."""
        return self.intercept + self.featurizer.dot(text, self.coef)

    def score_one(self, text: str) -> float:
        """P(reference-like) of one text: ``score([text])[0]`` without the arrays around it."""
        z = min(max(self.decision_one(text), -500.0), 500.0)
        return 1.0 / (1.0 + math.exp(-z))

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """P(reference-like) per text, in [0, 1] (bit-identical to ``score_one`` of each)."""
        return np.fromiter((self.score_one(t) for t in texts), dtype=np.float64, count=len(texts))

    def top_features(self, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """(bucket ids of the k most positive weights, of the k most negative)."""
        order = np.argsort(self.coef)
        return order[::-1][:k], order[:k]

    def save(self, directory: Path) -> dict:
        path = directory / self.weights_file
        # np.savez writes plain arrays; np.load(allow_pickle=False) reads them back. Given a
        # name, np.savez would add ".npz" to the temporary one: hand it an open file instead.
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, coef=self.coef, intercept=np.array([self.intercept], np.float64))
        return {"weights": self.weights_file, "weights_sha256": sha256_file(path)}

    @classmethod
    def load(cls, directory: Path, card: dict) -> "LRModel":
        try:
            config = FeatureConfig.from_json(card["features"])
        except (TypeError, ValueError) as exc:  # e.g. a hashing version this code does not know
            raise ModelError(f"{directory}: {exc}") from exc
        with np.load(directory / card["weights"], allow_pickle=False) as z:
            coef, intercept = z["coef"], float(z["intercept"][0])
        return cls(config, coef, intercept, card.get("alpha", DEFAULT_ALPHA))


# --------------------------------------------------------------------------- fastText

_NEWLINES = re.compile(r"\s+")


def fasttext_text(text: str) -> str:
    """One line of lowercase tokens, punctuation apart (fastText's input form).

    >>> fasttext_text("Hello,\\nWorld 42!")
    'hello , world 00 !'
    """
    return " ".join(tokenize(text, "words"))


class FastTextModel:
    """fastText supervised classifier with word bigrams (DCLM's recipe)."""

    kind = "fasttext"
    weights_file = "model.bin"
    LABEL_POS = "__label__hq"
    LABEL_NEG = "__label__cc"

    def __init__(self, ft, params: dict, alpha: float = DEFAULT_ALPHA):
        self.ft = ft
        self.params = params
        self.alpha = alpha
        self.config = None

    @classmethod
    def fit(cls, texts: Sequence[str], labels: np.ndarray, sample_weight: np.ndarray | None = None,
            params: dict | None = None, alpha: float = DEFAULT_ALPHA) -> "FastTextModel":
        """Train with fastText; class/source balance by repeating the lighter lines.

        fastText has no sample weights, so a weight w becomes round(w / min w)
        copies of the line (capped), which balances classes the same way.
        One thread and a fixed seed make training repeatable.
        """
        import fasttext

        p = {"wordNgrams": 2, "dim": 64, "epoch": 10, "lr": 0.2, "minCount": 2, "thread": 1,
             "seed": 1, "bucket": 2_000_000, "loss": "softmax", "verbose": 0}
        p.update(params or {})
        w = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        reps = np.clip(np.rint(w / w.min()), 1, 20).astype(int)
        with tempfile.TemporaryDirectory() as tmp:
            train = os.path.join(tmp, "train.txt")
            with open(train, "w", encoding="utf-8") as fh:
                for t, y, r in zip(texts, labels, reps):
                    line = f"{cls.LABEL_POS if y else cls.LABEL_NEG} {fasttext_text(t)}\n"
                    fh.write(line * int(r))
            ft = fasttext.train_supervised(input=train, **p)
        return cls(ft, p, alpha)

    def score_one(self, text: str) -> float:
        return float(self.score([text])[0])

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros(0)
        labels, probs = self.ft.predict([fasttext_text(t) for t in texts], k=2)
        out = np.empty(len(texts))
        for i, (ls, ps) in enumerate(zip(labels, probs)):
            d = dict(zip(ls, ps))
            out[i] = d.get(self.LABEL_POS, 1.0 - d.get(self.LABEL_NEG, 0.0))
        return np.clip(out, 0.0, 1.0)

    def save(self, directory: Path) -> dict:
        path = directory / self.weights_file
        with atomic_path(path) as tmp:
            self.ft.save_model(str(tmp))
        return {"weights": self.weights_file, "weights_sha256": sha256_file(path), "fasttext_params": self.params}

    @classmethod
    def load(cls, directory: Path, card: dict) -> "FastTextModel":
        import fasttext

        return cls(fasttext.load_model(str(directory / card["weights"])), card.get("fasttext_params", {}),
                   card.get("alpha", DEFAULT_ALPHA))


# --------------------------------------------------------------------------- save / load

def save_model(model, directory: str | os.PathLike, card_extra: dict | None = None) -> dict:
    """Write weights and ``card.json`` into ``directory`` (card written last)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    card = {"format": FORMAT, "kind": model.kind, "alpha": model.alpha,
            "features": model.config.to_json() if model.config else None,
            "library_versions": library_versions()}
    card.update(model.save(directory))
    card.update(card_extra or {})
    write_atomic(directory / CARD, json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def read_card(directory: str | os.PathLike) -> dict:
    path = Path(directory) / CARD
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"{directory}: not a model directory (no {CARD})") from exc
    except ValueError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from exc
    if card.get("format") != FORMAT or card.get("kind") not in KINDS:
        raise ModelError(f"{path}: unknown model format {card.get('format')!r} / kind {card.get('kind')!r}")
    return card


def _public_url(location: str) -> str:
    """``gs://bucket/path`` as its public HTTPS form (storage.googleapis.com), which
    ``open_input`` reads; any other location unchanged.

    >>> _public_url("gs://models/quality/lr"), _public_url("s3://models/lr")
    ('https://storage.googleapis.com/models/quality/lr', 's3://models/lr')
    """
    if location.startswith("gs://"):
        return "https://storage.googleapis.com/" + location[len("gs://"):]
    return location


def _fetch_remote(location: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Copy a remote model directory (card + weights) into a local cache.

    ``s3://`` and ``http(s)://`` (and ``gs://`` through :func:`_public_url`) are
    read with ``curate.ingest.sources.open_input`` (retries, resumption).
    """
    base = _public_url(location).rstrip("/")
    cache = Path(cache_dir or os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate")) / "models"
    local = cache / hashlib.sha1(base.encode()).hexdigest()[:16]
    local.mkdir(parents=True, exist_ok=True)
    with open_input(f"{base}/{CARD}") as fh:
        card_bytes = fh.read()
    card = json.loads(card_bytes)
    weights = local / card["weights"]
    if not weights.exists() or sha256_file(weights) != card.get("weights_sha256"):
        with atomic_path(weights) as tmp, open_input(f"{base}/{card['weights']}") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    with atomic_path(local / CARD) as tmp:  # whole or absent, like the weights
        tmp.write_bytes(card_bytes)
    return local


def load_model(location: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
    """Load a model directory (local path or http(s)/s3/gs URL); checks the weights digest."""
    location = str(location)
    directory = _fetch_remote(location, cache_dir) if is_remote(_public_url(location)) else Path(location)
    card = read_card(directory)
    weights = directory / card["weights"]
    if not weights.exists():
        raise ModelError(f"{directory}: weights file {card['weights']} is missing")
    if card.get("weights_sha256") and sha256_file(weights) != card["weights_sha256"]:
        raise ModelError(f"{weights}: sha256 does not match the model card (corrupt or replaced)")
    model = (LRModel if card["kind"] == "lr" else FastTextModel).load(directory, card)
    model.card = card
    return model
