"""Text normalisation and word n-gram shingles for dedup and decontamination.

Two copies of a page differ in case, punctuation (curly vs straight quotes),
accents (Latin-1 vs ASCII Gutenberg editions) and numbers (dates, counters,
prices), none of which makes them different documents. So before shingling we
lowercase, strip accents, replace every punctuation or symbol character by a
space and fold every digit to ``0``.

Shingles are hashed without building n-gram strings: each word is hashed once
(xxh3-64 of its UTF-8 bytes) and the n-gram hash is a polynomial over the word
hashes computed with numpy, which is several times faster than joining and
hashing strings. :func:`shingle_batch` does the same for many documents at once
(one numpy pass over the concatenated word hashes), with identical values.

Tokenising is one ``bytes.translate`` + ``split`` (measured 0.05 ms for a
500-word ASCII document against 0.3 ms for the regex): a 256-byte table maps
ASCII letters to lowercase, digits to ``0`` and every other ASCII byte to a
space. Non-ASCII text is lowercased and NFKD-folded first, and each distinct
non-ASCII character is mapped the way the regex rule would (combining mark:
deleted; not alphanumeric: a space; decimal digit: ``0``), so the words are
exactly ``_WORD.findall(normalize(text))`` (tested against the regex).

>>> words("Hello, World! It's 2024 -- café.")
['hello', 'world', 'it', 's', '0000', 'cafe']
>>> len(shingle_hashes("one two three four five six", n=5))
2
"""

from __future__ import annotations

import itertools
import re
import unicodedata

import numpy as np
import xxhash

# A word is a maximal run of letters/digits; "_" is a word char for `\w` but is
# punctuation for us. Everything else (punctuation, symbols, spaces) separates.
_WORD = re.compile(r"[^\W_]+")
_DIGIT = re.compile(r"\d")
# Combining marks left by NFKD (the accents of "é" etc.): removing them makes
# Latin-1/UTF-8 and ASCII-transliterated copies of a text agree.
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

# Multiplier of the polynomial n-gram hash (odd, high entropy: the 64-bit golden ratio).
_POLY = np.uint64(0x9E3779B97F4A7C15)


def normalize(text: str) -> str:
    """Lowercase, strip accents, fold digits to 0 (punctuation is dropped by `words`).

    >>> normalize("Ça coûte 12,50 €")
    'ca coute 00,00 €'
    """
    text = text.lower()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return _DIGIT.sub("0", text)


def _table(lower: bool) -> bytes:
    t = bytearray(range(256))  # bytes >= 0x80 (UTF-8 of non-ASCII) pass through
    for c in range(128):
        ch = chr(c)
        t[c] = ord("0") if ch.isdigit() else ord(ch.lower() if lower else ch) if ch.isalnum() else ord(" ")
    return bytes(t)


# ASCII text: lowercase in the table. Non-ASCII text is lowercased with
# str.lower() *before* NFKD (as `normalize` does), and NFKD can produce ASCII
# capitals (U+1D4AB MATHEMATICAL SCRIPT P -> "P"), which must stay capitals.
_ASCII_LOWER = _table(lower=True)
_ASCII_KEEP = _table(lower=False)
_ASCII_BYTES = bytes(range(128))
# per non-ASCII character: (simple, replacement); see _char_rule
_RULES: dict[str, tuple[bool, bytes | None]] = {}


def _char_rule(ch: str) -> tuple[bool, bytes | None]:
    """How `words` treats one non-ASCII character, the regex rules applied to it alone.

    ``simple``: lowercasing and NFKD leave it unchanged, so it can be mapped in
    the original text (curly quotes, dashes, CJK). Replacement: b"" (combining
    mark, deleted), b" " (not alphanumeric: separates words), b"0" (decimal
    digit) or None (a letter: kept).
    """
    rule = _RULES.get(ch)
    if rule is None:
        simple = ch.lower() == ch and unicodedata.normalize("NFKD", ch) == ch
        rep = (b"" if _COMBINING.match(ch) else b" " if not ch.isalnum() else b"0" if ch.isdecimal() else None)
        rule = _RULES[ch] = (simple, rep)
    return rule


def _non_ascii_chars(data: bytes) -> set[str]:
    # deleting the ASCII bytes of UTF-8 leaves whole multi-byte sequences: one
    # C pass, then a set over a short string (a regex scan was 40 us/document)
    return set(data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass"))


def word_tokens(text: str) -> list[bytes]:
    """The normalised words of ``text`` as UTF-8 bytes: ``[w.encode() for w in words(text)]``, fast.

    >>> word_tokens("Hello, World! 42")
    [b'hello', b'world', b'00']
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) == len(text):  # ASCII
        return data.translate(_ASCII_LOWER).split()
    chars = _non_ascii_chars(data)
    rules = [(ch, _char_rule(ch)) for ch in chars]
    if all(simple for _, (simple, _) in rules):
        # lowercasing and NFKD would only touch ASCII: the lowering table does it
        for ch, (_, rep) in rules:
            if rep is not None:
                data = data.replace(ch.encode("utf-8", "surrogatepass"), rep)
        return data.translate(_ASCII_LOWER).split()
    # general case, as `normalize` then `_WORD`: lowercase, NFKD, then each
    # non-ASCII character by the same per-character rule
    text = unicodedata.normalize("NFKD", text.lower())
    data = text.encode("utf-8", "surrogatepass")
    for ch in _non_ascii_chars(data):
        rep = _char_rule(ch)[1]
        if rep is not None:
            data = data.replace(ch.encode("utf-8", "surrogatepass"), rep)
    return data.translate(_ASCII_KEEP).split()


def words(text: str) -> list[str]:
    """The normalised, punctuation-free words of ``text``."""
    return [w.decode("utf-8", "surrogatepass") for w in word_tokens(text)]


def word_hashes(tokens) -> np.ndarray:
    """One 64-bit hash per word (str or UTF-8 bytes: the same hash), shape (W,)."""
    # map() over the C hash function: measured 1.8x faster than a generator
    return np.fromiter(map(xxhash.xxh3_64_intdigest, tokens), dtype=np.uint64, count=len(tokens))


def _fmix64(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's finaliser: the polynomial alone leaves low bits of the last
    # word nearly untouched, this avalanches every input bit over the output.
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def ngram_hashes64(wh: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of all word n-grams from word hashes ``wh`` (W,) -> (W-n+1,).

    A text shorter than ``n`` words gives one hash (of all its words), so short
    documents still have a non-empty shingle set; an empty text gives none.
    """
    if len(wh) == 0:
        return np.empty(0, dtype=np.uint64)
    k = min(n, len(wh))
    m = len(wh) - k + 1
    with np.errstate(over="ignore"):
        acc = wh[:m].copy()
        for j in range(1, k):
            acc = acc * _POLY + wh[j:j + m]  # wraps mod 2**64, on purpose
        # mixing in k keeps a short text's single shingle apart from an n-gram
        return _fmix64(acc + np.uint64(k))


def shingle_hashes(text: str, n: int = 5) -> np.ndarray:
    """Distinct 32-bit hashes of the word n-grams of normalised ``text``, sorted, (S,).

    32 bits because datasketch's default ``affine32`` MinHash scheme takes 32-bit
    inputs; a false shingle match between two documents of S shingles has
    probability about S / 2**32, far below the similarity resolution of 128
    permutations.
    """
    h64 = ngram_hashes64(word_hashes(word_tokens(text)), n)
    return np.unique((h64 >> np.uint64(32)).astype(np.uint32))


def shingle_batch(token_lists: list[list[bytes]], n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """:func:`shingle_hashes` of many documents at once, from their :func:`word_tokens`.

    Returns (hashes (S,) uint32: each document's sorted distinct shingle hashes,
    concatenated in document order; sizes (B,) int64: hashes per document).
    One numpy pass over the concatenated word hashes instead of ~20 small numpy
    calls per document; windows that cross a document boundary are dropped.

    >>> h, sizes = shingle_batch([word_tokens("a b c d e f"), [], word_tokens("x y")], n=5)
    >>> sizes.tolist(), np.array_equal(h[:2], shingle_hashes("a b c d e f", 5))
    ([2, 0, 1], True)
    """
    lens = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, np.uint32), np.zeros(len(token_lists), np.int64)
    wh = np.fromiter(map(xxhash.xxh3_64_intdigest, itertools.chain.from_iterable(token_lists)),
                     dtype=np.uint64, count=total)
    starts = np.cumsum(lens) - lens
    m = total - n + 1
    parts_doc, parts_h = [], []
    if m > 0:
        with np.errstate(over="ignore"):
            acc = wh[:m].copy()
            for j in range(1, n):
                acc *= _POLY
                acc += wh[j:j + m]
            acc = _fmix64(acc + np.uint64(n))
        doc = np.repeat(np.arange(len(lens), dtype=np.int64), lens)[:m]
        ok = np.arange(m, dtype=np.int64) - starts[doc] <= lens[doc] - n  # window inside its document
        parts_doc.append(doc[ok])
        parts_h.append(acc[ok] >> np.uint64(32))
    for d in np.flatnonzero((lens > 0) & (lens < n)):  # short documents: one shingle of all words
        s = int(starts[d])
        parts_doc.append(np.array([d], np.int64))
        parts_h.append(ngram_hashes64(wh[s:s + int(lens[d])], n) >> np.uint64(32))
    # distinct per document in one sort: key = document << 32 | hash (np.sort +
    # neighbour test: numpy 2's hash-based np.unique measured 10x slower here)
    key = (np.concatenate(parts_doc).astype(np.uint64) << np.uint64(32)) | np.concatenate(parts_h)
    key.sort()
    key = key[np.r_[True, key[1:] != key[:-1]]]
    sizes = np.bincount((key >> np.uint64(32)).astype(np.int64), minlength=len(lens)).astype(np.int64)
    return key.astype(np.uint32), sizes


def shingle_positions(text: str, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(``shingle_hashes(text, n)``, where each first occurs in the text: its n-gram index, int32).

    The containment rule reads a page's opening from it (see
    :func:`curate.dedup.minhash.copy_containment`).

    >>> s, first = shingle_positions("a b c d e f a b c d e")
    >>> len(s), sorted(first.tolist())
    (6, [0, 1, 2, 3, 4, 5])
    """
    h64 = ngram_hashes64(word_hashes(word_tokens(text)), n)
    vals, first = np.unique((h64 >> np.uint64(32)).astype(np.uint32), return_index=True)
    return vals, first.astype(np.int32)
