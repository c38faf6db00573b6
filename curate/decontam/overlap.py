"""Benchmark decontamination: GPT-3 Appendix C, 13-gram overlap removal.

The rule (Brown et al. 2020, Appendix C): words are lowercased and
punctuation-free; every 13-gram of a training document that also occurs in a
benchmark is removed together with 200 characters on each side; the pieces
left are kept unless shorter than 200 characters; a document split into more
than 10 pieces is dropped; 13-grams found in more than 10 training documents
are ignored (they are common phrases, not leaked test items).

Two departures, both deliberate:

* **Long documents.** Applied to a whole book, "more than 10 pieces" drops the
  book for ten incidental quotes (GPT-3's filter went wrong on long documents).
  Here the piece limit is counted per block of ``block_chars`` (20,000)
  characters: a web page (shorter than a block) is judged exactly as in GPT-3;
  in a book only a block cut into more than 10 pieces is dropped.
* **Nothing survives.** After cutting, the kept text is scanned again (pieces
  are joined with a blank line and a junction could form a new 13-gram); any
  collision left is cut the same way, so no benchmark 13-gram remains.

Benchmarks are JSONL files; every string field of each record (nested ones
too) is benchmark text, so LAMBADA ``text``, GSM8K ``question``/``answer`` and
any other set work without configuration.

>>> bench = {"toy": ["the quick brown fox jumps over the lazy dog near the river bank today"]}
>>> dec = Decontaminator.build(bench)
>>> pad = "Lorem ipsum dolor sit amet. " * 20
>>> doc = Document(id="d", text=pad + "The quick brown fox jumps over the lazy dog near the river bank today! " + pad)
>>> out = list(dec.clean([doc]))
>>> "quick brown fox" in out[0].text, dec.report()["toy"]["docs_touched"]
(False, 1)
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from curate.core.counters import Counters
from curate.core.document import Document
from curate.core.words import ngram_hashes64, word_hashes

_WORD = re.compile(r"[^\W_]+")


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read, with the file and line named."""


@dataclass
class DecontamConfig:
    n: int = 13                 # n-gram size (GPT-3)
    window: int = 200           # characters removed on each side of a collision
    min_piece: int = 200        # pieces shorter than this are dropped
    max_pieces: int = 10        # more pieces than this (per block) -> dropped
    max_doc_freq: int = 10      # 13-grams in more training documents are ignored
    block_chars: int = 20_000   # the piece limit is counted per block this long

    def to_dict(self) -> dict:
        return asdict(self)


def tokens(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Lowercased punctuation-free words with their character spans in ``text``.

    >>> ws, starts, ends = tokens("Hi, there!")
    >>> ws, starts.tolist(), ends.tolist()
    (['hi', 'there'], [0, 4], [2, 9])
    """
    ws, starts, ends = [], [], []
    for m in _WORD.finditer(text):
        ws.append(m.group().lower())
        starts.append(m.start())
        ends.append(m.end())
    return ws, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def ngram_hashes(ws: list[str], n: int) -> np.ndarray:
    """64-bit hashes of the full ``n``-grams of ``ws`` (none if fewer words)."""
    if len(ws) < n:
        return np.empty(0, dtype=np.uint64)
    return ngram_hashes64(word_hashes(ws), n)


def _strings(obj) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def load_benchmarks(paths: Iterable[str | os.PathLike]) -> dict[str, list[str]]:
    """{benchmark name (file stem): every string field of every record}.

    Raises BenchmarkError naming the file (and line) for unreadable input.
    """
    out: dict[str, list[str]] = {}
    for path in paths:
        path = Path(path)
        name = path.name
        for suffix in (".gz", ".jsonl", ".json"):
            name = name[: -len(suffix)] if name.endswith(suffix) else name
        texts: list[str] = []
        try:
            import gzip

            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        texts.extend(_strings(json.loads(line)))
                    except ValueError as exc:
                        raise BenchmarkError(f"{path}:{lineno}: not JSON ({exc})") from exc
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise BenchmarkError(f"{path}: cannot read benchmark file ({exc})") from exc
        if not texts:
            raise BenchmarkError(f"{path}: no string fields found (expected JSONL records)")
        out.setdefault(name, []).extend(texts)
    return out


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


class Decontaminator:
    """A 13-gram index of benchmark text, and the cleaning rule.

    The index is two parallel numpy arrays (sorted 64-bit n-gram hashes, and the
    benchmark of each), about 10 bytes per benchmark 13-gram, looked up with
    ``searchsorted``: no Python object per n-gram.
    """

    def __init__(self, keys: np.ndarray, bench: np.ndarray, names: list[str], config: DecontamConfig):
        self.keys, self.bench, self.names, self.config = keys, bench, names, config
        self.ignored = np.zeros(len(keys), dtype=bool)  # frequent in training data
        self.counters = Counters()
        self._counted = False
        self._report = empty_report(names)

    @classmethod
    def build(cls, benchmarks: dict[str, Sequence[str]], config: DecontamConfig | None = None) -> "Decontaminator":
        cfg = config or DecontamConfig()
        names = sorted(benchmarks)
        ks, bs = [], []
        for b, name in enumerate(names):
            h = np.unique(np.concatenate([ngram_hashes(tokens(t)[0], cfg.n) for t in benchmarks[name]]
                                         + [np.empty(0, np.uint64)]))
            ks.append(h)
            bs.append(np.full(len(h), b, dtype=np.uint16))
        keys = np.concatenate(ks) if ks else np.empty(0, np.uint64)
        bench = np.concatenate(bs) if bs else np.empty(0, np.uint16)
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], bench[order], names, cfg)

    @property
    def size(self) -> int:
        """Distinct benchmark n-grams in the index."""
        return int(len(np.unique(self.keys)))

    def _lookup(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``h`` that hit a live benchmark n-gram, index rows of the hits)."""
        if not len(h) or not len(self.keys):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        idx = np.searchsorted(self.keys, h)
        idx = np.minimum(idx, len(self.keys) - 1)
        hit = self.keys[idx] == h
        pos = np.flatnonzero(hit)
        rows = idx[pos]
        live = ~self.ignored[rows]
        return pos[live], rows[live]

    # ------------------------------------------------------------ pass 1
    def count(self, docs: Iterable[Document]) -> int:
        """Pass 1: ignore benchmark n-grams found in more than ``max_doc_freq`` documents.

        Returns how many index n-grams are now ignored.
        """
        freq = np.zeros(len(self.keys), dtype=np.int64)
        for d in docs:
            # a key may repeat (same n-gram in two benchmarks): count all its rows
            for r in self.hit_keys(d):
                lo, hi = np.searchsorted(self.keys, r), np.searchsorted(self.keys, r, "right")
                freq[lo:hi] += 1
        self.ignored = freq > self.config.max_doc_freq
        self._counted = True
        n = int(len(np.unique(self.keys[self.ignored])))
        self.counters.inc("decontam:ngrams_ignored_frequent", n)
        return n

    # ------------------------------------------------------------ pass 2
    def _cut(self, text: str):
        """One cutting pass: (kept pieces, removed intervals, hits per benchmark) or None if clean."""
        cfg = self.config
        ws, starts, ends = tokens(text)
        pos, rows = self._lookup(ngram_hashes(ws, cfg.n))
        if not len(pos):
            return None
        spans, per_bench = [], defaultdict(list)
        for p, r in zip(pos.tolist(), rows.tolist()):
            lo = max(0, int(starts[p]) - cfg.window)
            hi = min(len(text), int(ends[p + cfg.n - 1]) + cfg.window)
            # widen to word boundaries so no piece starts or ends inside a word
            k = int(np.searchsorted(ends, lo, "right"))
            if k < len(starts) and starts[k] < lo:
                lo = int(starts[k])
            k = int(np.searchsorted(starts, hi, "right")) - 1
            if k >= 0 and ends[k] > hi:
                hi = int(ends[k])
            spans.append((lo, hi))
            gram = " ".join(ws[p:p + cfg.n])
            # every benchmark holding this n-gram shares the collision
            key = self.keys[r]
            lo_r, hi_r = np.searchsorted(self.keys, key), np.searchsorted(self.keys, key, "right")
            for b in set(self.bench[lo_r:hi_r].tolist()):
                per_bench[self.names[b]].append(((lo, hi), gram))
        removed = _merge(spans)
        pieces, prev = [], 0
        for lo, hi in removed:
            pieces.append((prev, lo))
            prev = hi
        pieces.append((prev, len(text)))
        return pieces, removed, per_bench

    def clean_document(self, doc: Document, counters: Counters | None = None) -> Document | None:
        """The cleaned document, the same object if untouched, or None if dropped; counted in
        ``counters`` (default: the decontaminator's own; a Beam bundle passes its own)."""
        counters = self.counters if counters is None else counters
        cfg = self.config
        text = doc.text
        touched: dict[str, list] = defaultdict(list)
        total_removed = 0
        for _ in range(8):  # re-scan: a junction of two pieces could form a new 13-gram
            cut = self._cut(text)
            if cut is None:
                break
            pieces, removed, per_bench = cut
            for name, hits in per_bench.items():
                touched[name].extend(hits)
            # the piece limit per block of block_chars (one block for a web page)
            blocks = Counter(lo // cfg.block_chars for lo, hi in pieces if text[lo:hi].strip())
            bad_blocks = {b for b, k in blocks.items() if k > cfg.max_pieces}
            kept = [text[lo:hi].strip() for lo, hi in pieces
                    if lo // cfg.block_chars not in bad_blocks]
            kept = [p for p in kept if len(p) >= cfg.min_piece]
            if bad_blocks:
                counters.inc("decontam:blocks_dropped", len(bad_blocks))
            new = "\n\n".join(kept)
            total_removed += len(text) - len(new)
            text = new
        else:
            raise RuntimeError(f"{doc.id}: benchmark n-grams still present after 8 passes")
        if not touched:
            counters.inc("decontam:clean")
            return doc
        # a page cut into too many pieces lost its only block; so did one whose
        # pieces were all shorter than min_piece
        dropped = len(text) == 0
        for name, hits in touched.items():
            rep = self._report[name]
            rep["docs_touched"] += 1
            rep["docs_dropped"] += dropped
            rep["chars_removed"] += len(doc.text) if dropped else sum(hi - lo for lo, hi in _merge([s for s, _ in hits]))
            rep["ngrams"].update(g for _, g in hits)
        counters.inc("decontam:touched")
        counters.inc("decontam:chars_removed", len(doc.text) if dropped else total_removed)
        if dropped:
            counters.inc("dropped:contaminated")
            return None
        meta = dict(doc.metadata)
        meta["decontam"] = {"benchmarks": sorted(touched), "chars_removed": total_removed,
                            "pieces": text.count("\n\n") + 1 if text else 0}
        return Document(doc.id, text, doc.source, doc.url, doc.created, meta)

    def clean(self, docs: Iterable[Document]) -> Iterator[Document]:
        """Pass 2 over ``docs``: cleaned documents, dropped ones omitted.

        Call :meth:`count` on the same documents first to apply the
        "more than 10 training documents" rule (a list passed here is counted
        automatically when nothing was counted yet).
        """
        if isinstance(docs, (list, tuple)) and not self._counted:
            self.count(docs)
        for d in docs:
            self.counters.inc("docs")
            out = self.clean_document(d)
            if out is not None:
                self.counters.inc("kept")
                yield out

    def report(self, top: int = 50) -> dict:
        """Per benchmark: documents touched and dropped, characters removed, colliding n-grams."""
        return summarize_report(self._report, top)

    def take_report(self) -> dict:
        """The raw per-benchmark report so far, then start a new one (for partial reports on Beam)."""
        raw = self._report
        self._report = empty_report(self.names)
        return raw

    def ignore(self, frequent_keys: Iterable[int]) -> None:
        """Pass 1 done elsewhere (on Beam): ignore these benchmark n-gram hashes."""
        self.ignored = np.isin(self.keys, np.fromiter(frequent_keys, dtype=np.uint64))
        self._counted = True

    def hit_keys(self, doc: Document) -> np.ndarray:
        """Distinct benchmark n-gram hashes in ``doc``: its contribution to pass 1's document counts."""
        _, rows = self._lookup(ngram_hashes(tokens(doc.text)[0], self.config.n))
        return np.unique(self.keys[rows])


def empty_report(names: Iterable[str]) -> dict:
    """A raw report with a zero row for each benchmark."""
    return {n: {"docs_touched": 0, "docs_dropped": 0, "chars_removed": 0, "ngrams": Counter()} for n in names}


def merge_reports(a: dict, b: dict) -> dict:
    """Two raw reports (from ``take_report``) added together; ``a`` is updated and returned."""
    for name, rep in b.items():
        mine = a.setdefault(name, empty_report([name])[name])
        for k in ("docs_touched", "docs_dropped", "chars_removed"):
            mine[k] += rep[k]
        mine["ngrams"].update(rep["ngrams"])
    return a


def summarize_report(raw: dict, top: int = 50) -> dict:
    """The report as written to JSON: counts and the ``top`` most frequent colliding n-grams."""
    out = {}
    for name in sorted(raw):
        rep = raw[name]
        out[name] = {"docs_touched": rep["docs_touched"], "docs_dropped": rep["docs_dropped"],
                     "chars_removed": rep["chars_removed"], "distinct_ngrams": len(rep["ngrams"]),
                     # ties broken by the n-gram so the JSON is identical whatever the order of counting
                     "ngrams": dict(sorted(rep["ngrams"].items(), key=lambda kv: (-kv[1], kv[0]))[:top])}
    return out
