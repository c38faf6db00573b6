"""Text -> hashed term-frequency features, the same code for training and scoring.

GPT-3's classifier used Spark's standard ``Tokenizer`` (lowercase, split on
whitespace) and ``HashingTF`` (term counts hashed into 2^18 buckets). That is the
default here (``FeatureConfig()``). The knobs that measurably help on unseen
documents (see ``benchmarks/quality.py``) are one ``FeatureConfig`` away:

* ``tokenizer="words"``: words and punctuation apart, digits folded to 0, so
  ``"2012,"`` and ``"1999."`` are the same feature, not two rare ones;
* ``ngrams=2``: word bigrams in the same hash space (as Spark's ``NGram`` ->
  ``HashingTF`` would);
* ``tf="log"`` and ``norm="l2"``: sublinear counts, unit-length rows, so a long
  document does not get an extreme score only by being long.

Hashing: a 64-bit polynomial hash of each token's code points, computed for all
tokens of a document at once from prefix sums, mixed (splitmix64) and taken mod
``n_features``; n-gram buckets are mixed from the token hashes. Everything is a
handful of numpy operations per document, no per-token Python, which is what
makes scoring fast without a compiled extension. The buckets are therefore not
Spark's (Spark uses MurmurHash3): same recipe, not bit-compatible weights.

>>> f = Featurizer(FeatureConfig(n_features=16))
>>> idx, val = f.vector("the cat the")
>>> len(idx), sorted(val.tolist())
(2, [1.0, 2.0])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Iterable

import numpy as np
import scipy.sparse as sp

TOKENIZERS = ("spark", "words")
_DIGITS = str.maketrans("123456789", "000000000")

# Character classes of the tokenizers: 0 separator, 1 word character, 2 punctuation.
# Whitespace is exactly what ``str.split()`` splits on; punctuation is ASCII
# punctuation plus the Latin-1, General Punctuation and CJK punctuation blocks;
# every other character (letters, digits, ideographs) is a word character.
_SPACE_CPS = [*range(9, 14), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
              0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
_CLASS_LEN = 0x3041  # code points at or above the last entry are word characters
_CLASS = np.ones(_CLASS_LEN, dtype=np.uint8)
for _lo, _hi in ((0, 0x30), (0x3A, 0x41), (0x5B, 0x5F), (0x60, 0x61), (0x7B, 0x80), (0xA1, 0xC0),
                 (0x2010, 0x2070), (0x3000, 0x3040)):
    _CLASS[_lo:_hi] = 2
_CLASS[[0xAA, 0xB2, 0xB3, 0xB5, 0xB9, 0xBA, 0xBC, 0xBD, 0xBE]] = 1  # letters/digits in Latin-1's range
_CLASS[0:9] = 0  # control characters separate, like spaces
_CLASS[_SPACE_CPS] = 0
_CLASS[_CLASS_LEN - 1] = 1

# Token hashing is a polynomial rolling hash over code points, mod 2^64, computed
# for all tokens at once from prefix sums (numpy, no per-token Python), then
# mixed with splitmix64's finaliser before taking buckets.
_P = 0x100000001B3  # FNV-64 prime (odd, so invertible mod 2^64)
_P_INV = pow(_P, -1, 2 ** 64)
_MIX_A = np.uint64(0x9E3779B97F4A7C15)
_MIX_B = np.uint64(0xBF58476D1CE4E5B9)
_MIX_C = np.uint64(0x94D049BB133111EB)


class _Powers:
    """P^i and P^-i mod 2^64 for i < n, grown on demand (shared by all featurizers)."""

    def __init__(self):
        self.pos = np.ones(1, dtype=np.uint64)
        self.neg = np.ones(1, dtype=np.uint64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore"):
            while len(self.pos) < n:
                k = len(self.pos)
                self.pos = np.concatenate([self.pos, self.pos * np.uint64(pow(_P, k, 2 ** 64))])
                self.neg = np.concatenate([self.neg, self.neg * np.uint64(pow(_P_INV, k, 2 ** 64))])
        return self.pos, self.neg


_POWERS = _Powers()


def _mix(x: np.ndarray) -> np.ndarray:
    """Scramble all 64 bits (a polynomial hash mod 2^64 has weak low bits)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(29))
        x = x * _MIX_C
        return x ^ (x >> np.uint64(32))


# Lowercasing by table, so a document is encoded once and never copied as a str:
# each code point below _CLASS_LEN maps to its one-character lowercase (the few
# whose lowercase is two characters, like "İ", and anything above the table, which
# is mostly caseless CJK, stay as they are).
_LOWER = np.arange(_CLASS_LEN, dtype=np.uint32)
for _i in range(_CLASS_LEN):
    _low = chr(_i).lower()
    if len(_low) == 1:
        _LOWER[_i] = ord(_low)
_LOWER_ASCII = _LOWER[:128].astype(np.uint8)


def _lower_code_points(text: str) -> np.ndarray:
    """Lowercased code points of ``text``; ASCII text takes a 1-byte fast path."""
    if text.isascii():
        return _LOWER_ASCII[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if len(cp) and cp.max() >= _CLASS_LEN:
        return np.where(cp >= _CLASS_LEN, cp, _LOWER[np.minimum(cp, _CLASS_LEN - 1)])
    return _LOWER[cp]


def _decode(cp: np.ndarray) -> str:
    if cp.dtype == np.uint8:
        return cp.tobytes().decode("ascii")
    return cp.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


def token_spans(text: str, tokenizer: str = "spark") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code points, token starts, token ends) of the lowercased text.

    "spark": maximal runs of non-whitespace (Spark's Tokenizer, ``str.split``).
    Lowercasing is per character (see ``_LOWER``), equal to ``str.lower`` but
    for the rare characters whose lowercase is two characters.
    "words": runs of word characters, and every punctuation character alone.

    >>> cp, s, e = token_spans("Hi, you!", "words")
    >>> s.tolist(), e.tolist()
    ([0, 2, 4, 7], [2, 3, 7, 8])
    """
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, not {tokenizer!r}")
    cp = _lower_code_points(text)
    if not len(cp):
        empty = np.zeros(0, dtype=np.int64)
        return cp, empty, empty
    cls = _CLASS[cp] if cp.dtype == np.uint8 else _CLASS[np.minimum(cp, _CLASS_LEN - 1)]
    inside = np.zeros(len(cp) + 2, dtype=bool)
    if tokenizer == "spark":
        np.not_equal(cls, 0, out=inside[1:-1])
    else:
        np.equal(cls, 1, out=inside[1:-1])
    # run boundaries alternate: start, end, start, end, ...
    edges = np.flatnonzero(inside[1:] != inside[:-1])
    starts, ends = edges[0::2], edges[1::2]
    if tokenizer == "words":
        punct = np.flatnonzero(cls == 2)
        if len(punct):
            starts = np.concatenate([starts, punct])
            ends = np.concatenate([ends, punct + 1])
            order = np.argsort(starts, kind="stable")
            starts, ends = starts[order], ends[order]
    return cp, starts, ends


def tokenize(text: str, tokenizer: str = "spark") -> list[str]:
    """Tokens of ``text``, exactly those the features hash (digits folded to 0 by "words").

    >>> tokenize("The cat, in 2012.")
    ['the', 'cat,', 'in', '2012.']
    >>> tokenize("The cat, in 2012.", "words")
    ['the', 'cat', ',', 'in', '0000', '.']
    """
    cp, starts, ends = token_spans(text, tokenizer)
    low = _decode(cp)
    if tokenizer == "words":
        low = low.translate(_DIGITS)
    return [low[s:e] for s, e in zip(starts.tolist(), ends.tolist())]

@dataclass(frozen=True)
class FeatureConfig:
    """How text becomes a feature vector; saved in every model card.

    The default is GPT-3's (Spark) recipe: whitespace tokens, raw counts, 2^18
    buckets, unigrams only.
    """

    tokenizer: str = "spark"  # "spark" (lowercase + whitespace split) or "words"
    n_features: int = 2 ** 18
    ngrams: int = 1  # 1 = unigrams; 2 = unigrams + bigrams; ...
    tf: str = "raw"  # "raw" counts (HashingTF) or "log" (1 + ln count)
    norm: str = "none"  # "none" or "l2"

    def __post_init__(self):
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {TOKENIZERS}, not {self.tokenizer!r}")
        if self.tf not in ("raw", "log") or self.norm not in ("none", "l2"):
            raise ValueError("tf must be raw|log and norm none|l2")
        if self.ngrams < 1 or self.n_features < 2:
            raise ValueError("ngrams >= 1 and n_features >= 2 required")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "FeatureConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in known})


# Named presets: "gpt3" is the paper's recipe; "best" is what reached the highest
# AUC on unseen documents here (benchmarks/quality.py).
PRESETS = {
    "gpt3": FeatureConfig(),
    "best": FeatureConfig(tokenizer="words", n_features=2 ** 20, ngrams=2, tf="log", norm="l2"),
}


class Featurizer:
    """Hashed TF features for one ``FeatureConfig`` (stateless; cheap to create)."""

    def __init__(self, config: FeatureConfig | None = None):
        self.config = config or FeatureConfig()

    def token_hashes(self, text: str) -> np.ndarray:
        """64-bit hashes of the tokens, in order: the same token always gets the same hash."""
        cp, starts, ends = token_spans(text, self.config.tokenizer)
        if not len(starts):
            return np.zeros(0, dtype=np.uint64)
        c = cp
        if self.config.tokenizer == "words":
            c = cp.copy()
            c[(c > 48) & (c < 58)] = 48  # digits 1-9 -> 0
        pos, neg = _POWERS.get(len(c) + 1)
        with np.errstate(over="ignore"):
            # prefix[k] = sum_{i<k} c_i * P^-i, so a token [s, e) hashes to
            # (prefix[e] - prefix[s]) * P^s = sum_i c_i * P^-(i - s): position-free
            prefix = np.empty(len(c) + 1, dtype=np.uint64)
            prefix[0] = 0
            np.cumsum(np.multiply(c, neg[: len(c)], dtype=np.uint64), out=prefix[1:])
            h = (prefix[ends] - prefix[starts]) * pos[starts]
        return _mix(h)

    def buckets(self, text: str) -> np.ndarray:
        """The bucket of every token and n-gram occurrence (with repeats)."""
        h = self.token_hashes(text)
        n = np.uint64(self.config.n_features)
        parts = [h % n]
        with np.errstate(over="ignore"):
            for k in range(2, self.config.ngrams + 1):
                if len(h) < k:
                    break
                x = h[: len(h) - k + 1] * _MIX_A
                for j in range(1, k):
                    x = (x ^ h[j: len(h) - k + 1 + j]) * _MIX_B
                parts.append(_mix(x) % n)
        return np.concatenate(parts).astype(np.int64) if len(parts) > 1 else parts[0].astype(np.int64)

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted bucket indices, values) of one document."""
        idx, counts = np.unique(self.buckets(text), return_counts=True)
        val = counts.astype(np.float64)
        if self.config.tf == "log":
            val = 1.0 + np.log(val)
        if self.config.norm == "l2" and len(val):
            val /= np.sqrt(np.dot(val, val))
        return idx, val

    def transform(self, texts: Iterable[str]) -> sp.csr_matrix:
        """A CSR matrix, one row per text (float32 to halve memory on big sets)."""
        indptr, indices, data = [0], [], []
        for t in texts:
            i, v = self.vector(t)
            indices.append(i)
            data.append(v)
            indptr.append(indptr[-1] + len(i))
        n = self.config.n_features
        if not indices:
            return sp.csr_matrix((0, n), dtype=np.float32)
        return sp.csr_matrix(
            (np.concatenate(data).astype(np.float32), np.concatenate(indices), np.array(indptr)),
            shape=(len(indptr) - 1, n),
        )

    def feature_names(self, texts: Iterable[str], wanted: Iterable[int], per_bucket: int = 3) -> dict[int, list[str]]:
        """Which tokens / n-grams fall into the ``wanted`` buckets, most frequent first.

        Hashing forgets the words; the report recovers them by hashing the
        training texts again, for the few buckets it shows.
        """
        wanted = set(int(b) for b in wanted)
        seen: dict[int, dict[str, int]] = {b: {} for b in wanted}
        for text in texts:
            toks = tokenize(text, self.config.tokenizer)
            grams_all = []
            for k in range(1, self.config.ngrams + 1):
                grams_all.append([" ".join(toks[i:i + k]) for i in range(len(toks) - k + 1)])
            b_all = self.buckets(text)
            flat = [g for grams in grams_all for g in grams]
            for g, b in zip(flat, b_all.tolist()):
                if b in seen:
                    seen[b][g] = seen[b].get(g, 0) + 1
        return {b: [g for g, _ in sorted(d.items(), key=lambda kv: -kv[1])[:per_bucket]] for b, d in seen.items()}
