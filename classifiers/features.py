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

Hashing (``FeatureConfig.hashing``, saved in the card): a 64-bit polynomial
hash of each token's code points, computed for all tokens of a document at once
from prefix sums; an n-gram's key is combined arithmetically from its tokens'
hashes (no strings joined); every key goes to a bucket by multiplicative
hashing (the top bits of key * odd constant). Everything is about forty numpy
operations per document, no per-token Python, which is what makes scoring fast
(~10,000 3 KB documents/s a core for ``best``) without a compiled extension.
Training (``transform``) and scoring (``dot``) share every step up to the
bucket counts. The buckets are not Spark's (Spark uses MurmurHash3): same
recipe, not bit-compatible weights. Hashing 1 (splitmix64-mixed keys mod n) is
kept so that models trained with it still load and score exactly as before.

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
# Feature hashing versions: 1 = splitmix64-mixed keys mod n (the first models);
# 2 = multiplicative hashing of the keys, ten fewer array operations a
# document (the default). Scoring refuses a model of a version it does not know.
HASHING = 2
HASHINGS = (1, 2)

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


# P^i and P^-i mod 2^64, enough for any document up to _POW_LEN code points
# (longer ones extend them, once); 2 x 512 KB.
_POW_LEN = 1 << 16


def _powers(base: int, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.uint64)
    x = 1
    for i in range(n):
        out[i] = x
        x = (x * base) & 0xFFFFFFFFFFFFFFFF
    return out


_POS = _powers(_P, _POW_LEN)
_NEG = _powers(_P_INV, _POW_LEN)


def _get_powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(P^i, P^-i) mod 2^64 for i < n at least."""
    global _POS, _NEG
    if n > len(_POS):  # a very long document: grow both tables to a power of two
        size = 1 << (n - 1).bit_length()
        _POS, _NEG = _powers(_P, size), _powers(_P_INV, size)
    return _POS, _NEG


# 1 + ln(count) for the counts a document usually has (a lookup, not a log, per term)
_LOG_TF_MAX = 1024
_LOG_TF = np.concatenate([[0.0], 1.0 + np.log(np.arange(1, _LOG_TF_MAX, dtype=np.float64))])
_LOG_TF32 = _LOG_TF.astype(np.float32)


def _mix_into(x: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser of ``x`` written into ``out`` (``tmp``: scratch, may be ``x``).

    It scrambles all 64 bits (a polynomial hash mod 2^64 has weak low bits).
    Array arithmetic on uint64 wraps silently (only numpy scalars warn), so no
    ``errstate`` is needed; five in-place operations, no allocation.
    """
    np.right_shift(x, _SHIFT_29, out=out)
    out ^= x
    out *= _MIX_C
    np.right_shift(out, _SHIFT_32, out=tmp)
    out ^= tmp
    return out


def _mix(x: np.ndarray) -> np.ndarray:
    return _mix_into(x, np.empty_like(x), np.empty_like(x))


_SHIFT_29 = np.uint64(29)
_SHIFT_32 = np.uint64(32)

# Lowercasing and classes by table over the whole Basic Multilingual Plane, so
# a document is encoded once, never copied as a str, and needs one lookup per
# table: each code point below _CLASS_LEN maps to its one-character lowercase
# (the few whose lowercase is two characters, like "İ", and anything from
# _CLASS_LEN up, which is mostly caseless CJK, stay as they are). Code points
# above the BMP (emoji, rare scripts) take a slower path: unchanged, class 1.
_BMP = 0x10000
_LOWER = np.arange(_BMP, dtype=np.uint16)
for _i in range(_CLASS_LEN):
    _low = chr(_i).lower()
    if len(_low) == 1:
        _LOWER[_i] = ord(_low)
# The "words" tokenizer also folds the digits 1-9 to 0 ("2012," and "1999." are
# one feature); doing it in the same table lookup costs nothing extra.
_LOWER_FOLD = _LOWER.copy()
_LOWER_FOLD[0x31:0x3A] = 0x30
# The class of a character is that of its lowercase, looked up by the original
# code point; as intp so that the neighbour-pair codes below index a table
# directly (numpy indexes much faster with intp than with small integer types).
_CLASS_OF = _CLASS[np.minimum(_LOWER, _CLASS_LEN - 1)].astype(np.intp)

# Token boundaries from the classes of each pair of neighbours (prev, cur),
# coded prev * 3 + cur, with a separator before the first and after the last
# character: a token starts at a character where START[pair] and ends before
# one where END[pair]. One table lookup per mask instead of a chain of
# comparisons (this is on the scoring hot path).
_PAIRS = [(p, c) for p in range(3) for c in range(3)]
_BOUNDS = {
    # maximal runs of non-separators
    "spark": (np.array([p == 0 and c != 0 for p, c in _PAIRS]),
              np.array([p != 0 and c == 0 for p, c in _PAIRS])),
    # runs of word characters, and every punctuation character alone
    "words": (np.array([c == 2 or (c == 1 and p != 1) for p, c in _PAIRS]),
              np.array([p == 2 or (p == 1 and c != 1) for p, c in _PAIRS])),
}


def _chars(text: str, fold_digits: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(lowercased code points, classes) of ``text`` padded with a separator each side.

    Padding gives every character two neighbours without a copy into a bigger
    buffer. UTF-16 (2 bytes a character) is the cheapest encoding numpy can
    read as code points; text with characters above the BMP (surrogate pairs
    there) takes the UTF-32 path.
    """
    padded = " " + text + " "
    if padded.isascii():
        raw = np.frombuffer(padded.encode("ascii"), dtype=np.uint8).astype(np.intp)
    else:
        utf16 = padded.encode("utf-16-le", "surrogatepass")
        if len(utf16) != 2 * len(padded):
            return _chars_astral(padded, fold_digits)
        raw = np.frombuffer(utf16, dtype=np.uint16).astype(np.intp)
    return (_LOWER_FOLD if fold_digits else _LOWER)[raw], _CLASS_OF[raw]


def _chars_astral(padded: str, fold_digits: bool) -> tuple[np.ndarray, np.ndarray]:
    """``_chars`` for text with code points above the BMP: those stay as they are, class 1."""
    raw = np.frombuffer(padded.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    astral = raw >= _BMP
    bmp = np.where(astral, 0, raw).astype(np.intp)
    cp = np.where(astral, raw, (_LOWER_FOLD if fold_digits else _LOWER)[bmp])
    return cp, np.where(astral, 1, _CLASS_OF[bmp])


def _decode(cp: np.ndarray) -> str:
    return cp.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


def token_spans(text: str, tokenizer: str = "spark") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code points, token starts, token ends) of the lowercased text.

    "spark": maximal runs of non-whitespace (Spark's Tokenizer, ``str.split``).
    Lowercasing is per character (see ``_LOWER``), equal to ``str.lower`` but
    for the rare characters whose lowercase is two characters.
    "words": runs of word characters, and every punctuation character alone;
    its code points come back with the digits 1-9 folded to 0.

    >>> cp, s, e = token_spans("Hi, you!", "words")
    >>> s.tolist(), e.tolist()
    ([0, 2, 4, 7], [2, 3, 7, 8])
    """
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, not {tokenizer!r}")
    cp, cls = _chars(text, fold_digits=tokenizer == "words")
    # pair[i] = (class of character i-1, class of character i), i = 0..len, in
    # unpadded positions (the padding is the separator before 0 and after len-1)
    pair = cls[:-1] * 3
    pair += cls[1:]
    start, end = _BOUNDS[tokenizer]
    return cp[1:-1], start[pair].nonzero()[0], end[pair].nonzero()[0]


def tokenize(text: str, tokenizer: str = "spark") -> list[str]:
    """Tokens of ``text``, exactly those the features hash (digits folded to 0 by "words").

    >>> tokenize("The cat, in 2012.")
    ['the', 'cat,', 'in', '2012.']
    >>> tokenize("The cat, in 2012.", "words")
    ['the', 'cat', ',', 'in', '0000', '.']
    """
    cp, starts, ends = token_spans(text, tokenizer)
    low = _decode(cp)  # "words" code points already have their digits folded
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
    # How tokens and n-grams become buckets (see Featurizer._bucket_array): a
    # model's weights only mean something under the hashing it was trained with.
    hashing: int = HASHING

    def __post_init__(self):
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {TOKENIZERS}, not {self.tokenizer!r}")
        if self.tf not in ("raw", "log") or self.norm not in ("none", "l2"):
            raise ValueError("tf must be raw|log and norm none|l2")
        if self.ngrams < 1 or self.n_features < 2:
            raise ValueError("ngrams >= 1 and n_features >= 2 required")
        if self.hashing not in HASHINGS:
            raise ValueError(f"feature hashing {self.hashing!r} is unknown to this version "
                             f"(it knows {', '.join(map(str, HASHINGS))}): retrain the model, or upgrade")
        if self.hashing >= 2 and self.n_features > 2 ** 32:
            raise ValueError("n_features <= 2^32 required")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "FeatureConfig":
        """The config of a card; a card without ``hashing`` predates it: hashing 1.

        >>> FeatureConfig.from_json({"tokenizer": "spark"}).hashing
        1
        """
        known = {f.name for f in fields(cls)}
        return cls(**{"hashing": 1, **{k: v for k, v in obj.items() if k in known}})


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

    def _raw_hashes(self, text: str) -> np.ndarray:
        """Polynomial hashes of the tokens, before mixing (a fresh array, free to overwrite)."""
        cp, starts, ends = token_spans(text, self.config.tokenizer)
        if not len(starts):
            return np.zeros(0, dtype=np.uint64)
        n = len(cp)
        pos, neg = _get_powers(n + 1)
        # prefix[k] = sum_{i<k} c_i * P^-i, so a token [s, e) hashes to
        # (prefix[e] - prefix[s]) * P^s = sum_i c_i * P^-(i - s): position-free
        terms = cp.astype(np.uint64)
        terms *= neg[:n]
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(terms, out=prefix[1:])
        h = prefix[ends]
        h -= prefix[starts]
        h *= pos[starts]
        return h

    def token_hashes(self, text: str) -> np.ndarray:
        """64-bit hashes of the tokens, in order: the same token always gets the same hash."""
        return _mix(self._raw_hashes(text))

    def _bucket_array(self, text: str) -> np.ndarray:
        """Buckets (int64) of every token and n-gram occurrence: unigrams, then bigrams, ...

        A few in-place array operations per n-gram order, no strings joined.
        """
        h = self._raw_hashes(text)
        m = len(h)
        orders = [k for k in range(2, self.config.ngrams + 1) if m >= k]
        out = np.empty(m + sum(m - k + 1 for k in orders), dtype=np.uint64)
        if self.config.hashing == 1:
            return self._buckets_v1(h, orders, out)
        # Hashing 2: an n-gram's key is combined from its tokens' polynomial
        # hashes, x = (..(h1 * A ^ h2) * A ^ h3 ..); every key (token or
        # n-gram) goes to bucket floor(top32(key * G) * n / 2^32), where top32
        # is the top 32 bits of the product mod 2^64 (multiplicative hashing:
        # the top bits depend on every bit of the key). For n a power of two
        # that is simply the top log2(n) bits: one multiply and one shift.
        out[:m] = h
        at = m
        for k in orders:
            x = out[at: at + m - k + 1]
            np.multiply(h[: m - k + 1], _MIX_B, out=x)
            x ^= h[1: m - k + 2]
            for j in range(2, k):
                x *= _MIX_B
                x ^= h[j: m - k + 1 + j]
            at += m - k + 1
        out *= _MIX_A
        nf = self.config.n_features
        if nf & (nf - 1) == 0:
            out >>= np.uint64(64 - nf.bit_length() + 1)
        else:
            out >>= _SHIFT_32
            out *= np.uint64(nf)
            out >>= _SHIFT_32
        return out.view(np.int64)  # every bucket < n_features < 2^63: the same numbers

    def _buckets_v1(self, h: np.ndarray, orders: list[int], out: np.ndarray) -> np.ndarray:
        """Hashing 1 (models trained before hashing 2): every key mixed by splitmix64, then mod n.

        The token hashes are mixed, an n-gram's key is mixed from its tokens'
        mixed hashes, in order; ten more array operations than hashing 2.
        """
        m = len(h)
        u = _mix_into(h, out[:m], h)  # the token hashes (h is scratch from here on)
        at = m
        for k in orders:
            x = out[at: at + m - k + 1]
            np.multiply(u[: m - k + 1], _MIX_A, out=x)
            for j in range(1, k):
                x ^= u[j: m - k + 1 + j]
                x *= _MIX_B
            raw = x.copy()
            _mix_into(raw, x, raw)
            at += m - k + 1
        nf = self.config.n_features
        if nf & (nf - 1) == 0:  # a power of two: a mask is the same as mod, and cheaper
            out &= np.uint64(nf - 1)
        else:
            out %= np.uint64(nf)
        return out.view(np.int64)

    def buckets(self, text: str) -> np.ndarray:
        """The bucket of every token and n-gram occurrence (with repeats): unigrams, then bigrams, ..."""
        return self._bucket_array(text)

    def counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted distinct bucket indices, their occurrence counts) of one document.

        >>> sorted(Featurizer(FeatureConfig(n_features=16)).counts("b a b")[1].tolist())
        [1, 2]
        """
        return self._counts(text)[:2]

    def _counts(self, text: str) -> tuple[np.ndarray, np.ndarray, int]:
        """``counts`` and the number of occurrences.

        A sort and a run-length count: what ``np.unique(..., return_counts=True)``
        gives, without its overhead (this is on the scoring hot path).
        """
        b = self._bucket_array(text)
        if not len(b):
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp), 0
        b.sort()
        first = np.empty(len(b), dtype=bool)
        first[0] = True
        np.not_equal(b[1:], b[:-1], out=first[1:])
        at = first.nonzero()[0]
        counts = np.empty(len(at), dtype=np.intp)
        np.subtract(at[1:], at[:-1], out=counts[:-1])
        counts[-1] = len(b) - at[-1]
        return b[at], counts, len(b)

    def _values(self, counts: np.ndarray, repeats: int, dtype=np.float64) -> np.ndarray:
        """Term weights from counts: raw, or 1 + ln(count) (a lookup for the usual small counts).

        ``repeats`` (occurrences minus distinct buckets) bounds the largest count
        without a pass over the array.
        """
        if self.config.tf != "log":
            return counts.astype(dtype)
        if repeats < _LOG_TF_MAX - 1:
            return (_LOG_TF if dtype == np.float64 else _LOG_TF32)[counts]
        return (1.0 + np.log(counts)).astype(dtype, copy=False)

    def dot(self, text: str, coef: np.ndarray) -> float:
        """``coef`` dotted with the document's feature vector, without building it.

        The same values as ``vector`` (the sum may differ in the last bits),
        for the scoring hot path: no sparse matrix, nothing kept.
        """
        cfg = self.config
        if cfg.tf == "raw" and cfg.norm == "none":
            # raw counts: the sum over occurrences is the dot product
            return float(coef[self._bucket_array(text)].sum(dtype=np.float64))
        idx, counts, n = self._counts(text)
        if not n:
            return 0.0
        # unit-length rows: float32 values against float32 weights (numpy's dot
        # of mixed types is a slow generic loop; the training matrix holds
        # float32 values too); unnormalised rows sum in float64
        f32 = cfg.norm == "l2" and coef.dtype == np.float32
        val = self._values(counts, n - len(counts), np.float32 if f32 else np.float64)
        z = float(np.dot(coef[idx], val))
        if cfg.norm == "l2":
            z /= float(np.dot(val, val)) ** 0.5
        return z

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted bucket indices, values) of one document."""
        idx, counts, n = self._counts(text)
        val = self._values(counts, n - len(counts))
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
