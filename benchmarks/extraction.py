"""Main-content extraction benchmarks: quality (two metrics) and speed, ours beside peers.

Two labelled sets, each split into a *tuning* part and a *checking* part by
registered domain (a seeded hash, :func:`split_of`: one domain in three goes to
the checking part, so a site's template never sits on both sides). The block
model of ``curate/ingest/extract.py`` is trained on the tuning part only
(``benchmarks/extraction_train.py``); the checking part is what to quote.

* Article benchmark (``../shared/data/eval/article-extraction-benchmark``: news
  and blog pages, ``ground-truth.json`` mapping page id -> ``{"articleBody", "url"}``
  plus ``html/<id>.html.gz``), scored with its own metric, implemented here
  from its description:

  - tokens are unicode ``\\w+`` runs; shingles are word 4-grams (a text with
    fewer than 4 tokens yields one shingle of all its tokens, an empty text none);
  - per page, the multisets of true and predicted shingles give
    ``tp = sum(min counts)``, ``fp = excess predicted``, ``fn = excess true``,
    normalised by ``tp + fp + fn`` so that every page weighs the same;
  - per-page precision / recall handle the degenerate cases (both empty -> 1,
    nothing right -> 0); corpus precision is the mean over pages that predicted
    something (``tp + fp > 0``), recall the mean over pages that have a truth
    (``tp + fn > 0``); F1 is their harmonic mean.

* WCXB development split (``../shared/data/eval/wcxb-dev``: 1,497 pages of seven
  types), scored with WCXB's metric: per page, lower-case ``\\w+`` words as
  multisets, precision = overlap / predicted words, recall = overlap /
  reference words, F1; means over pages, overall and per page type. Also the
  share of ``with`` snippets (must be kept) found and of ``without`` snippets
  (boilerplate) wrongly kept, matched as runs of words.

Usage::

    python -m benchmarks.extraction                       # both benchmarks, both parts, all extractors
    python -m benchmarks.extraction --quick               # 25 pages per type and part: a few minutes
    python -m benchmarks.extraction --extractor ours --part check --bench wcxb
    python -m benchmarks.extraction --worst 10 --dump /tmp/preds

Speed is measured on a single core in this process (the process pins itself
to one CPU): only the extractor call is timed (gzip and charset decoding are
done beforehand), in the same run for every extractor, interleaved page by page
so that a change in machine load hits every extractor alike. With ``ours`` and no
``--limit``, the time on one large synthetic page (5,000 paragraphs) and on
smaller ones follows.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import hashlib
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

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


# --------------------------------------------------------------------------- tuning / checking split

# Second-level labels under which registrations sit one level deeper
# ("bbc.co.uk", "abc.net.au"): enough of the public-suffix idea for a split key,
# without a suffix-list dependency. Splitting by registered domain keeps the
# pages of one site (and its template) on one side only.
_SECOND_LEVEL = frozenset("co com org net ac gov edu gob nic ne or go mil ltd plc sch nhs".split())
SPLIT_SEED = "curate-extraction-split-1"
CHECK_SHARE = 3  # one domain in CHECK_SHARE goes to the checking part


def registered_domain(url: str) -> str:
    """``https://forum.example.co.uk/x`` -> ``example.co.uk`` (lower-case, no port, no www)."""
    host = urlsplit(url or "").hostname or ""
    labels = [p for p in host.lower().strip(".").split(".") if p]
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def split_of(url: str, seed: str = SPLIT_SEED) -> str:
    """``"tune"`` or ``"check"``: a seeded hash of the registered domain, so the split
    is reproducible, independent of file order, and never cuts a site in two."""
    digest = hashlib.sha256(f"{seed}:{registered_domain(url)}".encode()).digest()
    return "check" if int.from_bytes(digest[:8], "big") % CHECK_SHARE == 0 else "tune"


# --------------------------------------------------------------------------- WCXB

DEFAULT_WCXB = REPO_ROOT.parent / "shared/data/eval/wcxb-dev"
_WORD_RE = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """WCXB's tokens: lower-cased ``\\w+`` runs."""
    return _WORD_RE.findall((text or "").lower())


def word_prf(truth: str, pred: str) -> tuple[float, float, float]:
    """WCXB's per-page metric: multiset word overlap -> (precision, recall, F1).
    An empty reference scores 1 only for an empty prediction."""
    t, p = Counter(words(truth)), Counter(words(pred))
    nt, np_ = sum(t.values()), sum(p.values())
    if nt == 0:
        return (1.0, 1.0, 1.0) if np_ == 0 else (0.0, 0.0, 0.0)
    if np_ == 0:
        return 0.0, 0.0, 0.0
    overlap = sum(min(c, t[w]) for w, c in p.items() if w in t)
    prec, rec = overlap / np_, overlap / nt
    return prec, rec, (2 * prec * rec / (prec + rec) if overlap else 0.0)


def snippet_found(snippet: str, pred_words: str) -> bool:
    """A snippet is found when its words occur, in order and adjacent, in the
    prediction (compared as space-joined lower-case words, so markup-level
    whitespace and punctuation differences do not count)."""
    w = " ".join(words(snippet))
    return bool(w) and f" {w} " in pred_words


def load_wcxb(data_dir: Path = DEFAULT_WCXB) -> list[dict]:
    """WCXB pages sorted by file id: dicts with id, url, type, truth, with, without, html, part."""
    data_dir = Path(data_dir)
    pages = []
    with gzip.open(data_dir / "ground-truth.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            gt = json.loads(line)
            path = data_dir / "html" / f"{gt['file_id']}.html.gz"
            if not path.exists():
                continue
            pages.append({
                "id": gt["file_id"], "url": gt.get("url") or "", "type": gt.get("page_type") or "unknown",
                "truth": gt.get("main_content") or "", "with": gt.get("with") or [],
                "without": gt.get("without") or [], "html": decode_html(gzip.decompress(path.read_bytes())),
                "part": split_of(gt.get("url") or ""),
            })
    pages.sort(key=lambda p: p["id"])
    return pages


def score_wcxb(pages: list[dict], preds: dict[str, str]) -> dict:
    """Mean per-page P/R/F1 (WCXB's metric) plus snippet shares, overall and per page type.

    ``with``: share of must-contain snippets found; ``without``: share of
    boilerplate snippets wrongly kept (lower is better)."""
    groups: dict[str, list] = {}
    per_page = {}
    for p in pages:
        pred = preds.get(p["id"], "") or ""
        prec, rec, f1 = word_prf(p["truth"], pred)
        joined = f" {' '.join(words(pred))} "
        w_hit = sum(snippet_found(s, joined) for s in p["with"])
        wo_hit = sum(snippet_found(s, joined) for s in p["without"])
        row = (prec, rec, f1, w_hit, len(p["with"]), wo_hit, len(p["without"]))
        per_page[p["id"]] = {"precision": prec, "recall": rec, "f1": f1}
        groups.setdefault("all", []).append(row)
        groups.setdefault(p["type"], []).append(row)

    def summarise(rows):
        n = len(rows)
        return {
            "n": n,
            "precision": sum(r[0] for r in rows) / n, "recall": sum(r[1] for r in rows) / n,
            "f1": sum(r[2] for r in rows) / n,
            "with": sum(r[3] for r in rows) / max(1, sum(r[4] for r in rows)),
            "without": sum(r[5] for r in rows) / max(1, sum(r[6] for r in rows)),
        }

    return {"groups": {k: summarise(v) for k, v in groups.items()}, "pages": per_page}


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



def _version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - a version string is decoration, never worth a failure
        return "?"


def _limit_pages(pages: list, limit: int | None, key: Callable) -> list:
    """At most ``limit`` pages per group (``key``), chosen by a seeded hash of the page id
    so that a quick run is a fixed, type-balanced sample."""
    if not limit:
        return pages
    order = sorted(pages, key=lambda p: hashlib.sha256(f"{SPLIT_SEED}:{p['id']}".encode()).digest())
    taken: Counter = Counter()
    out = []
    for p in order:
        if taken[key(p)] < limit:
            taken[key(p)] += 1
            out.append(p)
    return sorted(out, key=lambda p: p["id"])


def _timed_all(names: list[str], fns: dict, pages: list[dict], repeat: int) -> dict[str, tuple[dict, float]]:
    """Run every extractor on every page, interleaved page by page (so that a
    change in machine load hits all extractors alike); per extractor the
    predictions and pages/s (the best of ``repeat`` passes)."""
    best = {n: float("inf") for n in names}
    preds: dict[str, dict[str, str]] = {n: {} for n in names}
    for _ in range(max(1, repeat)):
        spent = dict.fromkeys(names, 0.0)
        for p in pages:
            for n in names:
                t0 = time.perf_counter()
                try:
                    out = fns[n](p["html"], p["url"])
                except Exception as exc:  # a peer crashing on one page should not kill the run
                    print(f"  ! {n} {p['id']}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    out = ""
                spent[n] += time.perf_counter() - t0
                preds[n][p["id"]] = out or ""
        for n in names:
            best[n] = min(best[n], spent[n])
    return {n: (preds[n], len(pages) / best[n] if best[n] > 0 else float("inf")) for n in names}


def _article_pages(data_dir: Path) -> list[dict]:
    truth, html, urls = load_dataset(data_dir)
    return [{"id": pid, "url": urls[pid], "truth": truth[pid], "html": html[pid], "type": "article",
             "part": split_of(urls[pid])} for pid in truth]


WCXB_TYPES = ("article", "documentation", "service", "product", "forum", "collection", "listing")


def run_wcxb(pages: list[dict], names: list[str], fns: dict, args) -> dict:
    results = {}
    timed = _timed_all(names, fns, pages, args.repeat)
    for name in names:
        preds, speed = timed[name]
        res = score_wcxb(pages, preds)
        res["speed"] = speed
        results[name] = res
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            (args.dump / f"wcxb-{pages[0]['part'] if pages else 'none'}-{name}.json").write_text(
                json.dumps(preds, ensure_ascii=False))
    types = [t for t in WCXB_TYPES if any(p["type"] == t for p in pages)]
    types += sorted({p["type"] for p in pages} - set(types))
    print(f"  {'group':14s} {'n':>4s} " + " ".join(f"{n[:12]:>33s}" for n in names))
    print(f"  {'':14s} {'':>4s} " + " ".join(f"{'P    R    F1   with  w/o':>33s}" for _ in names))
    for g in ["all", *types]:
        row = f"  {g:14s} {results[names[0]]['groups'][g]['n']:>4d} "
        for n in names:
            r = results[n]["groups"][g]
            row += f"      {r['precision']:.3f} {r['recall']:.3f} {r['f1']:.3f} {r['with']:.2f} {r['without']:.2f}"
        print(row)
    print(f"  {'pages/s':14s} {'':>4s} " + " ".join(f"{results[n]['speed']:>33.1f}" for n in names))
    if "ours" in results and args.worst:
        worst = sorted(results["ours"]["pages"].items(), key=lambda kv: kv[1]["f1"])[: args.worst]
        by_id = {p["id"]: p for p in pages}
        print("  ours, lowest F1:")
        for pid, r in worst:
            print(f"    F1={r['f1']:.3f} P={r['precision']:.3f} R={r['recall']:.3f}  {pid} "
                  f"{by_id[pid]['type']:13s} {by_id[pid]['url'][:90]}")
    return results


def run_article(pages: list[dict], names: list[str], fns: dict, args) -> dict:
    results = {}
    truth = {p["id"]: p["truth"] for p in pages}
    timed = _timed_all(names, fns, pages, args.repeat)
    for name in names:
        preds, speed = timed[name]
        res = score_pages(truth, preds)
        res["speed"] = speed
        results[name] = res
        print(f"  {name:12s} n={res['n']:<4d} precision={res['precision']:.4f} recall={res['recall']:.4f} "
              f"F1={res['f1']:.4f} speed={speed:.1f} pages/s")
    if "ours" in results and args.worst:
        urls = {p["id"]: p["url"] for p in pages}
        for pid, r in sorted(results["ours"]["pages"].items(), key=lambda kv: kv[1]["f1"])[: args.worst]:
            print(f"    ours F1={r['f1']:.3f} P={r['precision']:.3f} R={r['recall']:.3f}  {pid[:12]}  {urls[pid][:90]}")
    return results


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--extractor", nargs="+", action="extend", choices=sorted(EXTRACTORS))
    ap.add_argument("--bench", nargs="+", action="extend", choices=("article", "wcxb"))
    ap.add_argument("--part", nargs="+", action="extend", choices=("tune", "check"),
                    help="which side of the by-domain split to score (default: both, each reported on its own)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="article benchmark folder")
    ap.add_argument("--wcxb", type=Path, default=DEFAULT_WCXB, help="WCXB dev folder")
    ap.add_argument("--limit", type=int, default=0,
                    help="at most this many pages per page type and part (seeded choice); 0 = all")
    ap.add_argument("--quick", action="store_true", help="same as --limit 25 (a few minutes for all three extractors)")
    ap.add_argument("--type", nargs="+", action="extend", dest="types", help="only these WCXB page types")
    ap.add_argument("--worst", type=int, default=5, help="how many lowest-F1 pages of ours to list")
    ap.add_argument("--repeat", type=int, default=1, help="time the extraction this many times, report the best")
    ap.add_argument("--dump", type=Path, help="write each extractor's predictions (JSON) into this folder")
    ap.add_argument("--json", type=Path, help="write the summary figures to this JSON file")
    args = ap.parse_args(list(argv) if argv is not None else None)
    names = args.extractor or ["ours", "trafilatura", "resiliparse"]
    benches = args.bench or ["article", "wcxb"]
    parts = args.part or ["tune", "check"]
    limit = 25 if args.quick and not args.limit else args.limit

    _pin_one_core()
    fns = {}
    for name in names:
        try:
            fns[name] = EXTRACTORS[name]()
        except ImportError as exc:
            print(f"{name}: unavailable ({exc})")
    names = [n for n in names if n in fns]
    print("extractors: " + ", ".join(f"{n} ({_version(n) if n != 'ours' else 'curate'})" for n in names)
          + "; one core; split: sha256 of the registered domain, one domain in "
          f"{CHECK_SHARE} to the checking part (seed {SPLIT_SEED!r})")
    summary: dict = {}
    if "article" in benches:
        if not (args.data / "ground-truth.json").exists():
            print(f"no article benchmark data at {args.data}", file=sys.stderr)
            return 2
        pages = _article_pages(args.data)
        for part in parts:
            chosen = _limit_pages([p for p in pages if p["part"] == part], limit * 2, key=lambda p: "article")
            print(f"\narticle benchmark ({args.data.name}), {part} part: {len(chosen)} pages, "
                  "word 4-gram shingle P/R/F1")
            res = run_article(chosen, names, fns, args)
            summary[f"article/{part}"] = {n: {k: r[k] for k in ("precision", "recall", "f1", "speed", "n")}
                                          for n, r in res.items()}
    if "wcxb" in benches:
        if not (args.wcxb / "ground-truth.jsonl.gz").exists():
            print(f"no WCXB data at {args.wcxb}", file=sys.stderr)
            return 2
        pages = load_wcxb(args.wcxb)
        if args.types:
            pages = [p for p in pages if p["type"] in args.types]
        for part in parts:
            chosen = _limit_pages([p for p in pages if p["part"] == part], limit, key=lambda p: p["type"])
            domains = len({registered_domain(p["url"]) for p in chosen})
            print(f"\nWCXB dev, {part} part: {len(chosen)} pages, {domains} domains; word P/R/F1 (mean per page), "
                  "with = share of must-keep snippets found, w/o = share of boilerplate snippets kept")
            res = run_wcxb(chosen, names, fns, args)
            summary[f"wcxb/{part}"] = {n: {"speed": r["speed"], **r["groups"]} for n, r in res.items()}
    if "ours" in names and not limit:
        time_large_pages(args.repeat)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
