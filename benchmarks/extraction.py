"""Main-content extraction benchmark: shingle precision / recall / F1 and speed.

Scores HTML -> text extractors against a ground-truth set of article bodies
(the layout of the public "article-extraction-benchmark": ``ground-truth.json``
mapping page id -> ``{"articleBody", "url"}`` plus ``html/<id>.html.gz``).

Metric (implemented here from the benchmark's description):

* tokens are unicode ``\\w+`` runs; shingles are word 4-grams (a text with
  fewer than 4 tokens yields one shingle of all its tokens, an empty text none);
* per page, the multisets of true and predicted shingles give
  ``tp = sum(min counts)``, ``fp = excess predicted``, ``fn = excess true``,
  normalised by ``tp + fp + fn`` so that every page weighs the same;
* per-page precision / recall handle the degenerate cases (both empty -> 1,
  nothing right -> 0); corpus precision is the mean over pages that predicted
  something (``tp + fp > 0``), recall the mean over pages that have a truth
  (``tp + fn > 0``); F1 is their harmonic mean.

Usage::

    python -m benchmarks.extraction                       # all extractors
    python -m benchmarks.extraction --extractor ours
    python -m benchmarks.extraction --data DIR --worst 10

Speed is measured on a single core in this process: only the extractor call is
timed (gzip and charset decoding are done beforehand). With ``ours``, the time on one
large synthetic page (5,000 paragraphs) and on smaller ones follows.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared/data/eval/article-extraction-benchmark"

_TOKEN_RE = re.compile(r"\w+")
SHINGLE = 4


# --------------------------------------------------------------------------- metric


def tokenize(text: str) -> list[str]:
    """Unicode word tokens (``\\w+``), case preserved."""
    return _TOKEN_RE.findall(text or "")


def shingles(text: str, n: int = SHINGLE) -> Counter:
    """Multiset of word n-grams; short texts give one tuple, empty text none."""
    toks = tokenize(text)
    if not toks:
        return Counter()
    if len(toks) < n:
        return Counter([tuple(toks)])
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def page_counts(truth: str, pred: str) -> tuple[float, float, float]:
    """Normalised ``(tp, fp, fn)`` for one page (they sum to 1 unless all 0)."""
    t, p = shingles(truth), shingles(pred)
    tp = fp = fn = 0
    for sh in t.keys() | p.keys():
        a, b = t.get(sh, 0), p.get(sh, 0)
        tp += min(a, b)
        fp += max(b - a, 0)
        fn += max(a - b, 0)
    total = tp + fp + fn
    if total > 0:
        return tp / total, fp / total, fn / total
    return 0.0, 0.0, 0.0


def page_precision_recall(tp: float, fp: float, fn: float) -> tuple[float, float]:
    """Per-page precision and recall with the benchmark's edge-case rules."""
    if fp == 0 and fn == 0:
        return 1.0, 1.0
    precision = 0.0 if tp == 0 and fp == 0 else tp / (tp + fp)
    recall = 0.0 if tp == 0 and fn == 0 else tp / (tp + fn)
    return precision, recall


def score_pages(truth: dict[str, str], pred: dict[str, str]) -> dict:
    """Score predictions against ground truth (both: page id -> text).

    Pages missing from ``pred`` count as an empty prediction. Returns
    ``{"precision", "recall", "f1", "n", "pages": {id: {"precision", "recall",
    "f1", "tp", "fp", "fn"}}}``.
    """
    per_page: dict[str, dict] = {}
    precisions: list[float] = []
    recalls: list[float] = []
    for pid, true_text in truth.items():
        tp, fp, fn = page_counts(true_text, pred.get(pid, "") or "")
        p, r = page_precision_recall(tp, fp, fn)
        if tp + fp > 0:
            precisions.append(p)
        if tp + fn > 0:
            recalls.append(r)
        f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
        per_page[pid] = {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
    precision = sum(precisions) / len(precisions) if precisions else 0.0
    recall = sum(recalls) / len(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n": len(truth), "pages": per_page}


# --------------------------------------------------------------------------- data

_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def decode_html(raw: bytes) -> str:
    """Bytes -> str: valid UTF-8 wins, then a declared ``<meta>`` charset, then UTF-8 lossy.

    Strict UTF-8 is tried first because pages mislabelled as latin-1/cp1252 but
    actually UTF-8 are common, while real legacy-encoded text almost never
    happens to be valid UTF-8.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    m = _CHARSET_RE.search(raw[:16384])
    if m:
        name = m.group(1).decode("ascii", "ignore")
        try:
            codecs.lookup(name)
            return raw.decode(name, errors="replace")
        except (LookupError, ValueError):
            pass
    return raw.decode("utf-8", errors="replace")


def load_dataset(data_dir: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Return ``(truth, html, urls)`` dicts keyed by page id."""
    data_dir = Path(data_dir)
    gt = json.loads((data_dir / "ground-truth.json").read_text(encoding="utf-8"))
    truth, html, urls = {}, {}, {}
    for pid in sorted(gt):
        path = data_dir / "html" / f"{pid}.html.gz"
        if not path.exists():
            continue
        truth[pid] = gt[pid].get("articleBody") or ""
        urls[pid] = gt[pid].get("url") or ""
        html[pid] = decode_html(gzip.decompress(path.read_bytes()))
    return truth, html, urls


# --------------------------------------------------------------------------- extractors


def _ours() -> Callable[[str, str], str]:
    from curate.ingest.extract import html_to_text

    return lambda html, url: html_to_text(html)  # ours does not use the URL


def _resiliparse() -> Callable[[str, str], str]:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    def run(html: str, url: str) -> str:
        return extract_plain_text(HTMLTree.parse(html), main_content=True)

    return run


def _trafilatura() -> Callable[[str, str], str]:
    import trafilatura

    def run(html: str, url: str) -> str:
        return trafilatura.extract(html, url=url) or ""

    return run


EXTRACTORS: dict[str, Callable[[], Callable[[str, str], str]]] = {
    "ours": _ours,
    "resiliparse": _resiliparse,
    "trafilatura": _trafilatura,
}


def run_extractor(fn: Callable[[str, str], str], html: dict[str, str], urls: dict[str, str]) -> tuple[dict[str, str], float]:
    """Run ``fn`` on every page; return predictions and seconds spent inside ``fn``."""
    preds: dict[str, str] = {}
    elapsed = 0.0
    for pid, doc in html.items():
        t0 = time.perf_counter()
        try:
            out = fn(doc, urls.get(pid, ""))
        except Exception as exc:  # a peer crashing on one page should not kill the run
            print(f"  ! {pid}: {type(exc).__name__}: {exc}", file=sys.stderr)
            out = ""
        elapsed += time.perf_counter() - t0
        preds[pid] = out or ""
    return preds, elapsed


LARGE_PARAGRAPH = ("The city council voted on Tuesday to expand the bus network, adding three new routes "
                   "that will connect the northern suburbs with the central station.")


def large_page(divs: int = 100, paragraphs: int = 50) -> str:
    """A synthetic page of ``divs`` x ``paragraphs`` paragraphs (the unit test's large page:
    tests/ingest/test_extract.py checks that its work is linear; its time is measured here)."""
    return "<body>" + ("<div class='post'>" + f"<p>{LARGE_PARAGRAPH}</p>" * paragraphs + "</div>") * divs + "</body>"


def time_large_pages(repeat: int = 1) -> None:
    """Print our extractor's time on the large page and on pages 4x and 16x smaller."""
    from curate.ingest.extract import html_to_text

    print("\nours on one large synthetic page (best of {}):".format(max(1, repeat)))
    for divs in (100 // 16, 100 // 4, 100):
        page = large_page(divs)
        best = float("inf")
        for _ in range(max(1, repeat)):
            t0 = time.perf_counter()
            html_to_text(page)
            best = min(best, time.perf_counter() - t0)
        print(f"  {divs * 50:>6,} paragraphs, {len(page) / 1e3:>7,.0f} kB: {best * 1e3:7.1f} ms")


def _pin_one_core() -> None:
    """Best effort: restrict this process to a single CPU (Linux only)."""
    try:
        import os

        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
    except (AttributeError, OSError):
        pass


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--extractor", nargs="+", choices=sorted(EXTRACTORS), default=["ours", "resiliparse", "trafilatura"])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--worst", type=int, default=5, help="how many lowest-F1 pages to list")
    ap.add_argument("--repeat", type=int, default=1, help="time the extraction this many times, report the best")
    args = ap.parse_args(list(argv) if argv is not None else None)

    if not (args.data / "ground-truth.json").exists():
        print(f"no benchmark data at {args.data}", file=sys.stderr)
        return 2
    _pin_one_core()
    truth, html, urls = load_dataset(args.data)
    print(f"{len(truth)} pages from {args.data}")
    for name in args.extractor:
        try:
            fn = EXTRACTORS[name]()
        except ImportError as exc:
            print(f"\n{name}: unavailable ({exc})")
            continue
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            preds, elapsed = run_extractor(fn, html, urls)
            best = min(best, elapsed)
        res = score_pages(truth, preds)
        speed = len(html) / best if best > 0 else float("inf")
        print(
            f"\n{name:12s} precision={res['precision']:.4f} recall={res['recall']:.4f} "
            f"F1={res['f1']:.4f} speed={speed:.1f} pages/s"
        )
        worst = sorted(res["pages"].items(), key=lambda kv: kv[1]["f1"])[: args.worst]
        for pid, r in worst:
            print(f"  F1={r['f1']:.3f} P={r['precision']:.3f} R={r['recall']:.3f}  {pid[:12]}  {urls.get(pid, '')}")
    if "ours" in args.extractor:
        time_large_pages(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
