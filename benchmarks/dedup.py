"""Dedup and decontamination: quality on the ground-truth sets, speed, memory.

    python -m benchmarks.dedup                 # everything (about 2-3 minutes on one core)
    python -m benchmarks.dedup --only quality  # quality | speed | memory | decontam | ensemble
    python -m benchmarks.dedup --memory-docs 100000
    python -m benchmarks.dedup --scale 10000 --scale 100000   # crawl-shaped corpora, CLI and Beam

Quality (ground truth in ../shared/data/dedup, see its MANIFEST):

* Gutenberg edition clusters (39 files, 8 clusters): pairwise precision and
  recall of our clusters against the book numbers.
* CopyCat canonical-link pairs (240 labelled pairs, 479 documents, all run
  together): recall = labelled pairs with S3 >= 0.8 that end in one cluster.
  A page is a copy of another when it is its canonical-link partner, or, for
  pages the labels do not pair, S3 >= 0.8 (the dataset's own score,
  recomputed from the texts: it reproduces every labelled pair's score
  exactly) or the other holds at least 0.8 of its word 8-grams (a cut-down
  copy). Precision, four ways: removed pages a copy of which is kept
  (the removal itself), removed pages whose representative is a copy
  (the ``cluster`` field), same-cluster pairs and verified pairs that are
  copies; and cluster-pair precision against the canonical-link labels alone. Pairs with S3 < 0.8 that we join are reported apart, with
  their exact containment, because the containment rule joins cut-down copies
  by design.
* Clough-Stevenson short answers (60 documents): recall = 'cut' answers in a
  cluster of two or more; 'non' answers flagged must be 0; precision =
  same-cluster pairs of one task with no 'non' answer, over all same-cluster
  pairs.

Speed: signatures/s per core on 500-word documents (real English text from the
Gutenberg set, 128 permutations), CPU time of this process only, best of 3.
Memory: peak RSS of a subprocess running the streaming dedup (``dedup_files``,
what ``curate dedup`` runs) on a Parquet file of N synthetic 500-word documents
(windows of real text, planted near, exact and URL duplicates; N=100k by
default) and on N/5; the two give the fixed and the per-document cost, and
1M = fixed + 1M x per-document.
Decontamination: index build (13-grams/s) and lookup (MB/s, docs/s) with
LAMBADA + GSM8K against WikiText and Dragnet articles, and the share of
characters removed from that clean text.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from curate.core.document import Document
from curate.core.progress import rss_mb
from curate.dedup.config import DedupConfig
from curate.dedup.core import dedup_documents

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEDUP = SHARED / "dedup"
EVAL = SHARED / "eval"


# --------------------------------------------------------------------------- data

def _jsonl(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def gutenberg_docs(max_chars: int | None = None, clusters: set | None = None) -> list[Document]:
    """Gutenberg edition files as documents; ``metadata['truth']`` = book cluster."""
    out = []
    for r in _jsonl(DEDUP / "gutenberg-edition-clusters.shared.jsonl.gz"):
        if clusters and r["cluster_id"] not in clusters:
            continue
        text = r["text"] if max_chars is None else r["text"][:max_chars]
        out.append(Document(id=r["doc_id"], text=text, source="gutenberg",
                            metadata={"truth": r["cluster_id"]}))
    return out


def copycat_docs() -> tuple[list[Document], list[dict]]:
    """CopyCat documents (unique ids) and the labelled pairs.

    CopyCat gives no page URLs, only the canonical link both pages of a pair
    declare. A page declares a canonical URL on its own site, so the link's
    host stands in for the page's host (what the site-template rule needs);
    each page gets its own URL under it (``#`` + its id), so the URL stage,
    which keys on the whole URL, never joins two pages.
    """
    docs: dict[str, Document] = {}
    pairs = []
    for r in _jsonl(DEDUP / "copycat-canonical-link-pairs.shared.jsonl.gz"):
        a, b = r["pair_id"].split("__to__")
        link = r["canonical_link"].split("#")[0]
        docs.setdefault(a, Document(id=a, text=r["src_text"], source=r["corpus"], url=f"{link}#{a}"))
        docs.setdefault(b, Document(id=b, text=r["target_text"], source=r["corpus"], url=f"{link}#{b}"))
        pairs.append({"a": a, "b": b, "s3": r["s3_score"], "label": r["label_raw"]})
    return [docs[k] for k in sorted(docs)], pairs


def clough_docs() -> list[Document]:
    return [Document(id=r["file"], text=r["text"], source="clough",
                     metadata={"task": r["task"], "category": r["category"]})
            for r in _jsonl(DEDUP / "clough-stevenson-plagiarism_tasks-abc.jsonl")]


# --------------------------------------------------------------------------- metrics

def _cluster_pairs(res_docs) -> set[tuple[str, str]]:
    by = defaultdict(list)
    for d in res_docs:
        by[d.metadata["cluster"]].append(d.id)
    return {tuple(sorted(p)) for ids in by.values() for p in itertools.combinations(ids, 2)}


def _pr(pred: set, truth: set) -> tuple[float, float]:
    tp = len(pred & truth)
    return (tp / len(pred) if pred else 1.0), (tp / len(truth) if truth else 1.0)


def edge_precision(res, docs, cfg: DedupConfig) -> tuple[float, int]:
    """Share of verified pairs that meet the duplicate rule on the exact shingle sets
    (what a bucket collision or an estimation error would break), and the pair count."""
    import numpy as np

    from curate.dedup.rules import is_duplicate
    from curate.core.words import shingle_hashes

    text = {d.id: d.text for d in docs}
    sets: dict = {}

    def get(k):
        if k not in sets:
            sets[k] = set(shingle_hashes(text[k], cfg.ngram).tolist())
        return sets[k]

    ok = 0
    for a, b, _, _ in res.pairs:
        A, B = get(a), get(b)
        inter = len(A & B)
        j = inter / max(1, len(A | B))
        c = inter / max(1, min(len(A), len(B)))
        ok += bool(is_duplicate(np.float64(j), np.float64(c), len(A), len(B), cfg))
    return (ok / len(res.pairs) if res.pairs else 1.0), len(res.pairs)


def word_8grams(text: str) -> set:
    """CopyCat's chunks: word 8-grams of its (already normalised) text split on whitespace."""
    w = text.split()
    return {tuple(w[i:i + 8]) for i in range(len(w) - 7)}


def s3(a: set, b: set) -> float:
    """S3 (Bernstein and Zobel, 2005), CopyCat's near-duplicate score: shared chunks over the
    mean chunk count. On the word 8-grams it reproduces the ``s3_score`` of all 240 labelled
    pairs exactly (the benchmark prints the largest difference)."""
    return len(a & b) / ((len(a) + len(b)) / 2) if a and b else 0.0


def eval_gutenberg(cfg: DedupConfig, max_chars: int | None = None, clusters=None) -> dict:
    docs = gutenberg_docs(max_chars, clusters)
    res = dedup_documents(docs, cfg)
    ep, n = edge_precision(res, docs, cfg)
    by = defaultdict(list)
    for d in docs:
        by[d.metadata["truth"]].append(d.id)
    truth = {tuple(sorted(p)) for ids in by.values() for p in itertools.combinations(ids, 2)}
    p, r = _pr(_cluster_pairs(res.docs), truth)
    return {"set": "gutenberg", "docs": len(docs), "precision": p, "recall": r,
            "pair_precision_vs_exact": ep, "verified_pairs": n,
            "clusters": len({d.metadata["cluster"] for d in res.docs}), "true_clusters": len(by)}


def eval_copycat(cfg: DedupConfig) -> dict:
    from curate.core.words import shingle_hashes

    docs, pairs = copycat_docs()
    res = dedup_documents(docs, cfg)
    cluster = {d.id: d.metadata["cluster"] for d in res.docs}
    pred = _cluster_pairs(res.docs)
    labelled = {tuple(sorted((p["a"], p["b"]))) for p in pairs}
    pos = [p for p in pairs if p["s3"] >= 0.8]
    hit = [p for p in pos if cluster[p["a"]] == cluster[p["b"]]]
    low = [p for p in pairs if p["s3"] < 0.8 and cluster[p["a"]] == cluster[p["b"]]]
    sets = {d.id: set(shingle_hashes(d.text, cfg.ngram).tolist()) for d in docs}

    def exact_c(a, b):
        A, B = sets[a], sets[b]
        return round(len(A & B) / max(1, min(len(A), len(B))), 3)

    wrong = sorted(pred - labelled)
    ep, n = edge_precision(res, docs, cfg)
    # removals: is the page a removed page points to a copy of it? The labels
    # only pair pages that declare one canonical URL, so a removal outside a
    # pair is not necessarily wrong (the same Wikipedia article under two
    # redirects is a copy with two canonical URLs). Outside the pairs the
    # dataset's own measure decides: S3 on word 8-grams (s3), at the issue's
    # positive bar 0.8, or a cut-down copy at the same bar (at least 0.8 of the
    # removed page's 8-grams in the representative).
    grams = {d.id: word_8grams(d.text) for d in docs}
    s3_error = max(abs(s3(grams[p["a"]], grams[p["b"]]) - p["s3"]) for p in pairs)
    partner = defaultdict(set)
    for p in pairs:
        partner[p["a"]].add(p["b"])
        partner[p["b"]].add(p["a"])
    removed = [(d.id, d.metadata["cluster"]) for d in res.docs if d.metadata["duplicate"]]
    inside = [len(sets[x] & sets[r]) / max(1, len(sets[x])) for x, r in removed]

    def inside8(x, r):
        return len(grams[x] & grams[r]) / max(1, len(grams[x]))

    def copy_of(k, x):  # is k a copy of x: partner, S3 >= 0.8, or holds 0.8 of x's 8-grams
        return k in partner[x] or s3(grams[x], grams[k]) >= 0.8 or inside8(x, k) >= 0.8

    near = [(x, r) for x, r in removed if r in partner[x] or s3(grams[x], grams[r]) >= 0.8]
    bad = [(x, r) for x, r in removed if (x, r) not in near and inside8(x, r) < 0.8]
    kept = [d.id for d in res.docs if not d.metadata["duplicate"]]
    # the removal itself: does a copy of the removed page stay in the output (even
    # when the representative named is another page)?
    covered = sum(any(copy_of(k, x) for k in kept) for x, _ in removed)
    true_pair = lambda a, b: copy_of(a, b) or copy_of(b, a)  # noqa: E731
    host = {d.id: d.url.split("/")[2] for d in docs}
    return {"set": "copycat", "docs": len(docs), "positives_s3_ge_0.8": len(pos),
            "recall": len(hit) / len(pos),
            "pair_precision_vs_exact": ep, "verified_pairs": n, "removed": res.stats["removed"],
            "s3_reproduced_max_error": round(s3_error, 9),
            "removed_with_a_copy_kept": round(covered / len(removed), 4) if removed else 1.0,
            "representative_precision": round(1 - len(bad) / len(removed), 4) if removed else 1.0,
            "representative_precision_partner_or_s3": round(len(near) / len(removed), 4) if removed else 1.0,
            "cluster_pair_precision": round(sum(true_pair(a, b) for a, b in pred) / len(pred), 4) if pred else 1.0,
            "verified_pair_precision": round(sum(true_pair(a, b) for a, b, _, _ in res.pairs) / n, 4) if n else 1.0,
            "wrong_representatives": [(x[:14], host[x], r[:14], host[r], round(s3(grams[x], grams[r]), 2),
                                       round(inside8(x, r), 2)) for x, r in bad],
            "removed_text_in_representative_min": round(min(inside), 3) if inside else None,
            "removed_text_in_representative_median": round(sorted(inside)[len(inside) // 2], 3) if inside else None,
            "cluster_precision_vs_canonical_link": 1 - len(wrong) / len(pred) if pred else 1.0,
            "same_cluster_pairs": len(pred),
            "joined_s3_lt_0.8": len(low),
            "joined_s3_lt_0.8_exact_containment_min": min((exact_c(p["a"], p["b"]) for p in low), default=None),
            "missed": [(p["a"][:8], p["b"][:8], round(p["s3"], 3), exact_c(p["a"], p["b"]))
                       for p in pos if p not in hit]}


def eval_clough(cfg: DedupConfig) -> dict:
    docs = clough_docs()
    res = dedup_documents(docs, cfg)
    size = defaultdict(int)
    for d in res.docs:
        size[d.metadata["cluster"]] += 1
    meta = {d.id: d.metadata for d in docs}
    flagged = {d.id for d in res.docs if size[d.metadata["cluster"]] > 1}
    cut = [d.id for d in docs if meta[d.id]["category"] == "cut"]
    non = [d.id for d in docs if meta[d.id]["category"] == "non"]
    pred = _cluster_pairs(res.docs)
    good = {p for p in pred if meta[p[0]]["task"] == meta[p[1]]["task"]
            and "non" not in (meta[p[0]]["category"], meta[p[1]]["category"])}
    ep, n = edge_precision(res, docs, cfg)
    by_cat = defaultdict(lambda: [0, 0])
    for d in docs:
        by_cat[meta[d.id]["category"]][1] += 1
        by_cat[meta[d.id]["category"]][0] += d.id in flagged
    return {"set": "clough-stevenson", "docs": len(docs),
            "cut_recall": sum(c in flagged for c in cut) / len(cut),
            "non_flagged": sum(n in flagged for n in non),
            "precision": len(good) / len(pred) if pred else 1.0,
            "pair_precision_vs_exact": ep, "verified_pairs": n,
            "flagged_by_category": {k: f"{a}/{b}" for k, (a, b) in sorted(by_cat.items())},
            "missed_cut": [c for c in cut if c not in flagged]}


# --------------------------------------------------------------------------- speed / memory

def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def english_words() -> list[str]:
    """Real English words (Gutenberg, one edition per book) for synthetic documents."""
    words: list[str] = []
    seen = set()
    for r in _jsonl(DEDUP / "gutenberg-edition-clusters.shared.jsonl.gz"):
        if r["cluster_id"] in seen:
            continue
        seen.add(r["cluster_id"])
        words += r["text"].split()
    return words


def make_docs(n: int, words: list[str], length: int = 500, dup_share: float = 0.05, seed: int = 0,
              contiguous: bool = True):
    """``n`` documents of ``length`` words of real text; ``dup_share`` of them are
    near-copies (3% of words replaced) of an earlier one.

    ``contiguous``: cut at random offsets (natural text, for speed; windows of
    the same book overlap) or draw words at random from the text (for the memory
    run: unrelated documents must not overlap, or 100k windows of 7 books
    become one giant cluster).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    offs = rng.integers(0, len(words) - length, size=n)
    out = []
    for i in range(n):
        if not contiguous and not (i > 10 and rng.random() < dup_share):
            idx = rng.integers(0, len(words), size=length)
            out.append(Document(id=f"d{i:08d}", text=" ".join(words[k] for k in idx), source="synthetic"))
            continue
        if i > 10 and rng.random() < dup_share:
            src = out[int(rng.integers(0, i))].text.split()
            for k in rng.integers(0, length, size=length * 3 // 100):
                src[k] = words[int(rng.integers(0, len(words)))]
            text = " ".join(src)
        else:
            o = int(offs[i])
            text = " ".join(words[o:o + length])
        out.append(Document(id=f"d{i:08d}", text=text, source="synthetic"))
    return out


def bench_signatures(n: int = 2000, repeat: int = 3) -> dict:
    """Signatures/s per CPU second: the batched path dedup uses (``signatures``) and the
    one-document call (``signature``, what a Beam DoFn does per element); best of ``repeat``
    (the machine is shared, so the best run is the least disturbed one)."""
    from curate.dedup.minhash import signature, signatures

    cfg = DedupConfig()
    texts = [d.text for d in make_docs(n, english_words(), dup_share=0.0)]
    signature(texts[0], cfg)  # warm the permutation template
    best = {"batched": 0.0, "one_by_one": 0.0}
    wall = 0.0
    for _ in range(repeat):
        c0, w0 = _cpu(), time.perf_counter()
        signatures(texts, cfg)
        cpu = _cpu() - c0
        if n / cpu > best["batched"]:
            best["batched"], wall = n / cpu, n / (time.perf_counter() - w0)
        c0 = _cpu()
        for t in texts:
            signature(t, cfg)
        best["one_by_one"] = max(best["one_by_one"], n / (_cpu() - c0))
    return {"docs": n, "words_per_doc": 500, "num_perm": cfg.num_perm,
            "signatures_per_cpu_second": round(best["batched"]),
            "signatures_per_wall_second": round(wall),
            "one_by_one_per_cpu_second": round(best["one_by_one"])}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reference_words() -> list[str]:
    """Real running text: the reference books and the Dragnet news articles, as words."""
    words: list[str] = []
    for f in sorted((SHARED / "reference" / "books").glob("*.txt.gz")):
        words += gzip.open(f, "rt", encoding="utf-8").read().split()
    for r in _jsonl(SHARED / "reference" / "webtext_like" / "dragnet-2012-articles.train.jsonl.gz"):
        words += r["article"].split()
    return words


def write_corpus(out_dir: Path, n: int, length: int = 500, seed: int = 0, shard: int = 10_000) -> tuple[list, dict]:
    """``n`` synthetic web documents from windows of real text, with planted duplicates, written
    as Parquet shards of ``shard`` documents (as the filter stage writes them); (files, planted).

    Each document is a ``length``-word window at a random offset of
    :func:`reference_words` with one word in four replaced by a random word of
    the corpus: the text keeps real words, punctuation and typography, but two
    windows that overlap in the source share no 5-gram (without this, 100k
    windows of ~3M words would be one giant cluster). Planted: 5% near copies
    of an earlier document (3% of words replaced), 2% exact copies (case and
    punctuation changed), 1% second captures of an earlier URL. Quality scores
    vary so the representative rule has work to do.
    """
    import contextlib

    import numpy as np

    from curate.core.document import DocumentWriter

    words = reference_words()
    rng = np.random.default_rng(seed)
    planted = {"near": 0, "exact": 0, "url": 0}
    kept_text: list[str] = []   # a bounded pool of earlier texts to copy from
    files = [Path(out_dir) / f"part-{k:05d}.parquet" for k in range((n + shard - 1) // shard)]
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(DocumentWriter(f)) for f in files]
        for i in range(n):
            w = writers[i // shard]
            r = rng.random()
            url, created = f"http://site{i % 997}.example/page/{i}", "2020-03-01"
            if i > 100 and r < 0.05:
                src = kept_text[int(rng.integers(len(kept_text)))].split()
                for k in rng.integers(0, len(src), size=max(1, len(src) * 3 // 100)):
                    src[k] = words[int(rng.integers(len(words)))]
                text = " ".join(src)
                planted["near"] += 1
            elif i > 100 and r < 0.07:
                text = kept_text[int(rng.integers(len(kept_text)))].upper().replace(".", " .")
                planted["exact"] += 1
            else:
                o = int(rng.integers(0, len(words) - length))
                win = words[o:o + length]
                for k in range(int(rng.integers(4)), length, 4):
                    win[k] = words[int(rng.integers(len(words)))]
                text = " ".join(win)
                if i > 100 and r < 0.08:
                    url, created = f"http://site{(i - 50) % 997}.example/page/{i - 50}", "2020-05-01"
                    planted["url"] += 1
            if len(kept_text) < 5000:
                kept_text.append(text)
            elif rng.random() < 0.01:
                kept_text[int(rng.integers(len(kept_text)))] = text
            w.write(Document(id=f"cc:{i:08d}", text=text, source=("cc", "news", "forum")[i % 3], url=url,
                             created=created, metadata={"quality": round(float(rng.random()), 3)}))
    return files, planted


def _memory_child(out: str, *paths: str) -> None:
    """One streaming dedup (what ``curate dedup`` runs) of ``paths``; prints peak RSS and timings."""
    from curate.dedup.core import dedup_files

    base = _rss_mb()
    c0, t = _cpu(), time.perf_counter()
    res = dedup_files(list(paths), out, DedupConfig())
    peak = rss_mb()  # VmHWM: ru_maxrss would carry the driver's peak across exec
    print(json.dumps({"docs": res.stats["documents"], "peak_rss_mb": round(peak), "rss_after_imports_mb": round(base),
                      "seconds": round(time.perf_counter() - t, 1), "cpu_seconds": round(_cpu() - c0, 1),
                      "signature_seconds": res.stats["seconds"]["signatures"],
                      "removed_by_reason": res.stats["removed_by_reason"], "pairs": res.stats["pairs"],
                      "exact_containment_checks": res.counters["dedup:exact_containment_checks"]}))


def bench_memory(n: int, small: int | None = None) -> dict:
    """Peak RSS of the streaming dedup at ``small`` and ``n`` documents, and the 1M estimate.

    Two sizes separate the fixed part (interpreter, numpy, pyarrow, the reader
    and writer buffers) from the per-document state; 1M = fixed + 1M x per-document.
    """
    import tempfile

    small = small or max(n // 5, 1000)
    runs = []
    with tempfile.TemporaryDirectory(prefix="dedup-mem-") as tmp:
        for k in (small, n):
            d = Path(tmp) / f"in-{k}"
            files, planted = write_corpus(d, k)
            out = subprocess.run([sys.executable, "-m", "benchmarks.dedup", "--memory-child",
                                  str(Path(tmp) / f"out-{k}.parquet"), *map(str, files)],
                                 cwd=REPO, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["planted"] = planted
            r["input_files"] = len(files)
            r["input_mb"] = round(sum(f.stat().st_size for f in files) / 2**20)
            runs.append(r)
    (a, b) = runs
    per_doc_kb = (b["peak_rss_mb"] - a["peak_rss_mb"]) * 1024 / (b["docs"] - a["docs"])
    fixed = b["peak_rss_mb"] - per_doc_kb * b["docs"] / 1024
    return {"runs": runs, "per_document_kb": round(per_doc_kb, 2), "fixed_mb": round(fixed),
            "estimate_1M_docs_peak_mb": round(fixed + per_doc_kb * 1_000_000 / 1024)}


# --------------------------------------------------------------------------- decontam

def bench_decontam() -> dict:
    from curate.decontam.overlap import Decontaminator, load_benchmarks

    benches = [EVAL / "lambada_openai_test.part1.jsonl", EVAL / "gsm8k_test.part1.jsonl"]
    t = time.perf_counter()
    records = load_benchmarks(benches)
    dec = Decontaminator.build(records)
    build_s = time.perf_counter() - t
    clean = []
    for name in ("wikitext-2_test.txt.gz", "wikitext-2_valid.txt.gz"):
        text = gzip.open(SHARED / "reference" / "wikipedia" / name, "rt", encoding="utf-8").read()
        # articles start with " = Title = " lines
        for k, art in enumerate(text.split("\n = ")):
            if len(art) > 500:
                clean.append(Document(id=f"{name}:{k}", text=art, source="wikipedia"))
    for r in _jsonl(SHARED / "reference" / "webtext_like" / "dragnet-2012-articles.train.jsonl.gz"):
        clean.append(Document(id=f"dragnet:{r['id']}", text=r["article"], source="dragnet"))
    chars = sum(len(d.text) for d in clean)
    t = time.perf_counter()
    out = list(dec.clean(clean))
    lookup_s = time.perf_counter() - t
    kept_chars = sum(len(d.text) for d in out)
    return {"benchmarks": [b.name for b in benches], "index_13grams": dec.size,
            "build_seconds": round(build_s, 2), "build_13grams_per_s": round(dec.size / build_s),
            "clean_docs": len(clean), "clean_mb": round(chars / 2**20, 1),
            "lookup_mb_per_s": round(chars / 2**20 / lookup_s, 2),
            "lookup_docs_per_s": round(len(clean) / lookup_s),
            "clean_docs_dropped": len(clean) - len(out),
            "clean_chars_removed_share": round(1 - kept_chars / chars, 5),
            "report": {k: {kk: vv for kk, vv in v.items() if kk != "ngrams"} for k, v in dec.report().items()}}


# --------------------------------------------------------------------------- LSH Ensemble (the alternative)

def bench_ensemble(threshold: float = 0.4) -> dict:
    """datasketch LSHEnsemble on the containment sets, for comparison with our banding."""
    from datasketch import MinHash
    from datasketch.lshensemble import MinHashLSHEnsemble as LSHEnsemble

    from curate.dedup.minhash import estimate, signature
    from curate.dedup.rules import exact_containment, is_duplicate, needs_exact
    from curate.core.words import shingle_hashes

    cfg = DedupConfig()
    out = {}
    for name, docs in (("clough", clough_docs()), ("copycat", copycat_docs()[0])):
        sig = {d.id: signature(d.text, cfg) for d in docs}
        mh = {k: MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashvalues=s, scheme=cfg.scheme)
              for k, (s, n) in sig.items() if n > 0}
        t = time.perf_counter()
        ens = LSHEnsemble(threshold=threshold, num_perm=cfg.num_perm, num_part=8)
        ens.index([(k, mh[k], sig[k][1]) for k in mh])
        cand = set()
        for k in mh:
            for other in ens.query(mh[k], sig[k][1]):
                if other != k:
                    cand.add(tuple(sorted((k, other))))
        secs = time.perf_counter() - t
        ver = 0
        text = {d.id: d.text for d in docs}
        # both sides verify with the plain rule (exact containment check included; no
        # site template or opening check, which need URLs and text order), so the
        # counts compare the two candidate generators
        for a, b in cand:
            j, c = estimate(sig[a][0], sig[b][0], sig[a][1], sig[b][1])
            if j < cfg.threshold and needs_exact(j, c, sig[a][1], sig[b][1], cfg):
                c = exact_containment(shingle_hashes(text[a], cfg.ngram), shingle_hashes(text[b], cfg.ngram))
            ver += bool(is_duplicate(j, c, sig[a][1], sig[b][1], cfg))
        ours = dedup_documents(docs, DedupConfig(template_docs=0, opening=0)).stats["pairs"]
        out[name] = {"ensemble_candidates": len(cand), "ensemble_verified": ver, "ensemble_seconds": round(secs, 2),
                     "banded_candidates": ours["candidates"], "banded_verified": ours["verified"]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.dedup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["quality", "speed", "memory", "decontam", "ensemble"])
    ap.add_argument("--memory-docs", type=int, default=100_000)
    ap.add_argument("--containment", type=float, help="override DedupConfig.containment (compare settings)")
    ap.add_argument("--threshold", type=float, help="override DedupConfig.threshold")
    ap.add_argument("--memory-small", type=int, help="the smaller memory run (default: memory-docs / 5)")
    ap.add_argument("--memory-child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, action="append",
                    help="crawl-shaped corpus of N pages through the CLI and the Beam job (repeatable; "
                         "see benchmarks/dedup_scale.py)")
    ap.add_argument("--paths", default="cli,beam", help="with --scale: which of cli,beam to run")
    ap.add_argument("--workers", type=int, default=1,
                    help="with --scale: Beam DirectRunner workers (processes; see pipelines.direct_fix)")
    ap.add_argument("--timeout", type=float, default=3600, help="with --scale: seconds per run")
    ap.add_argument("--workdir", help="with --scale: keep (and reuse) the corpus and outputs here")
    args = ap.parse_args(argv)
    if args.memory_child:
        _memory_child(*args.memory_child)
        return 0
    if args.scale:
        from benchmarks.dedup_scale import bench_scale

        for n in args.scale:
            wd = os.path.join(args.workdir, str(n)) if args.workdir else None
            bench_scale(n, tuple(args.paths.split(",")), args.workers, args.timeout, wd)
        return 0
    if not DEDUP.exists():
        print(f"benchmarks.dedup: {DEDUP} not found (the shared data set)", file=sys.stderr)
        return 2
    from curate.dedup.minhash import s_curve_table

    cfg = DedupConfig()
    if args.containment is not None:
        cfg.containment = args.containment
    if args.threshold is not None:
        cfg.threshold = args.threshold
    print(s_curve_table(cfg), f"\nthreshold={cfg.threshold} containment={cfg.containment} ngram={cfg.ngram}")
    todo = [args.only] if args.only else ["quality", "speed", "decontam", "ensemble", "memory"]
    for what in todo:
        t = time.perf_counter()
        if what == "quality":
            for fn in (eval_gutenberg, eval_copycat, eval_clough):
                print(json.dumps(fn(cfg)), flush=True)
        elif what == "speed":
            print(json.dumps({"signatures": bench_signatures()}), flush=True)
        elif what == "memory":
            print(json.dumps({"memory": bench_memory(args.memory_docs, args.memory_small)}), flush=True)
        elif what == "decontam":
            print(json.dumps({"decontam": bench_decontam()}), flush=True)
        elif what == "ensemble":
            print(json.dumps({"lsh_ensemble": bench_ensemble(cfg.containment)}), flush=True)
        print(f"  ({what}: {time.perf_counter() - t:.1f}s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
