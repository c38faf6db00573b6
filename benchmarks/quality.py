"""Quality classifier figures: AUC on unseen documents, scoring speed, training time.

    python -m benchmarks.quality [--part all|auc|speed|train] [--out out/bench/quality]
                                 [--models lr-gpt3,lr-best,fasttext] [--speed-repeats 5]
                                 [--train-docs 10000,30000,100000] [--train-budget 600]

Data (../shared/data), split so that evaluation is on documents the model never saw:

* train files: positives WikiText-2 *valid*, five Gutenberg books, Dragnet articles;
  negatives the Dolma CC-MAIN-2019-30 extracted text, and the documents our reader
  extracts (unfiltered) from the CC 2008 ARC, the ClueWeb09 and the iana.org WARC.
* ``heldout``: documents of those files whose hashed id falls in the 20% test split.
* ``unseen_files``: files never used in training: WikiText-2 *test*, two other books
  (Dracula, The Time Machine); the archive.org 2008 crawl, the two wget 2024 WARCs,
  CC-MAIN-2014-35, CC-MAIN-2020-34 and CC-MAIN-2024-22 (WARC and WET).
* ``unseen_files_en``: the same, crawl side restricted to documents fastText lid
  calls English (>= 0.65), which is what the pipeline's quality stage really sees.

Speed: documents/s per core (process CPU time) of the single-document path the
pipeline uses (``QualityScorer.__call__``), on 3,000-character windows of real
documents; ``--speed-repeats`` passes, best and median reported (on a shared
machine the CPU time of a pass grows with the load, so the best pass is the
machine's figure and the median what a busy worker sees). Training time on
each size of ``--train-docs`` windows sampled (seeded) from the real documents'
text, every fit in a child process bounded by ``--train-budget`` seconds: a fit
that does not finish in time is reported as such, with the budget, not guessed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REF = SHARED / "reference"
WARC = SHARED / "warc"

TRAIN_BOOKS = ["pg11_Alice-s-Adventures-in-Wonderland", "pg1342_Pride-and-Prejudice", "pg2701_Moby-Dick--Or-The-Whale",
               "pg84_Frankenstein", "pg98_A-Tale-of-Two-Cities"]
UNSEEN_BOOKS = ["pg345_Dracula", "pg35_The-Time-Machine"]
TRAIN_ARCHIVES = ["cc-2008_arc-small-sample-1213893279526_0.arc", "clueweb09-ja_resiliparse-clueweb-quirk.warc.gz",
                  "liveweb-2014_pywb-iana.warc.gz"]
UNSEEN_ARCHIVES = ["ia-archive-org-2008_heritrix-web_sample.warc.gz", "wget-2024_dolma-sample-0000.warc.gz",
                   "wget-2024_dolma-sample-0001.warc.gz", "cc-main-2014-35_wdps-CommonCrawl-sample.warc",
                   "cc-main-2020-34_resiliparse-warcfile.part1.warc.gz", "cc-main-2024-22_whirlwind.warc.gz",
                   "cc-main-2024-22_whirlwind.warc.wet.gz"]

MODELS = {
    # GPT-3's recipe as the paper describes it: Spark tokens, raw counts, 2^18, unigrams
    "lr-gpt3": {"kind": "lr", "preset": "gpt3"},
    # the best LR measured here (preset "best"): words + bigrams, log tf, l2, 2^20; C 10, sources balanced
    "lr-best": {"kind": "lr", "preset": "best"},
    # DCLM-style fastText: word bigrams, same data and balance as lr-best
    "fasttext": {"kind": "fasttext", "balance": "source"},
}


def build_corpora(work: Path) -> dict[str, list[str]]:
    """Write the named documents files; returns NAME=PATH specs per role."""
    from curate.core.document import write_documents
    from curate.ingest.records import read_archive
    from curate.ingest.reference import read_gutenberg, read_jsonl, read_wikitext

    work.mkdir(parents=True, exist_ok=True)

    def put(name, docs):
        path = work / f"{name}.jsonl.gz"
        if not path.exists():
            write_documents(path, docs)
        return f"{name}={path}"

    def archive_docs(name):
        return read_archive(str(WARC / name), [], source="crawl")

    def books(names):
        for n in names:
            yield from read_gutenberg(REF / "books" / f"{n}.txt.gz")

    roles = {
        "positive": [put("wikitext-valid", read_wikitext(REF / "wikipedia/wikitext-2_valid.txt.gz")),
                     put("books-train", books(TRAIN_BOOKS)),
                     put("dragnet", read_jsonl(REF / "webtext_like/dragnet-2012-articles.train.jsonl.gz",
                                               text_field="article", source="dragnet"))],
        "negative": [put("cc-2019-dolma", read_jsonl(WARC / "cc-main-2019-30_dolma-extracted-text.part1.jsonl.gz",
                                                    source="cc-2019-dolma")),
                     put("crawl-train", (d for a in TRAIN_ARCHIVES for d in archive_docs(a)))],
        "eval_positive": [put("wikitext-test", read_wikitext(REF / "wikipedia/wikitext-2_test.txt.gz")),
                          put("books-unseen", books(UNSEEN_BOOKS))],
        "eval_negative": [put("crawl-unseen", (d for a in UNSEEN_ARCHIVES for d in archive_docs(a)))],
    }
    return roles


def english_only(ds):
    """The subset of a LabelledSet whose crawl documents fastText lid calls English."""
    from curate.filters.langid import check_language

    keep = [y == 1 or check_language(t).keep for t, y in zip(ds.texts, ds.labels)]
    return ds.subset(keep)


def run_auc(out: Path, roles: dict, names: list[str]) -> dict:
    from classifiers.data import load_labelled
    from classifiers.models import load_model
    from classifiers.report import evaluate
    from classifiers.train import ClassifierConfig, train_and_report

    unseen_en = english_only(load_labelled(roles["eval_positive"], roles["eval_negative"]))
    results = {}
    for name in names:
        cfg = ClassifierConfig(**MODELS[name])
        card = train_and_report(cfg, roles["positive"], roles["negative"], out / "models" / name,
                                roles["eval_positive"], roles["eval_negative"], log=lambda *_: None)
        model = load_model(out / "models" / name)
        ev_en = evaluate(model.score(unseen_en.texts), unseen_en.y(), unseen_en.groups, unseen_en.ids, cfg.alpha)
        report = json.loads((out / "models" / name / "report" / "report.json").read_text())
        row = {"train_seconds": card["training"]["train_seconds"], "documents": card["training"]["documents"]}
        for k, ev in list(report["evaluations"].items()) + [("unseen_files_en", ev_en)]:
            row[k] = {m: ev[m] for m in ("auc", "precision", "recall", "f1", "n_positive", "n_negative")}
            row[k]["keep"] = {c: {x: ev[c].get(x) for x in ("keep_expected", "keep_realised")}
                              for c in ("positive", "negative")}
        results[name] = row
        print(f"{name:9s} heldout AUC {row['heldout']['auc']}  unseen AUC {row['unseen_files']['auc']}  "
              f"unseen(en) AUC {row['unseen_files_en']['auc']}  F1 {row['heldout']['f1']}/{row['unseen_files']['f1']}",
              flush=True)
    return results


def text_windows(n: int, chars: int = 3000, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``n`` windows of ~``chars`` characters cut from real documents (seeded), with labels."""
    from classifiers.data import load_labelled

    roles = build_corpora(Path(os.environ.get("QUALITY_WORK", REPO / "out" / "bench" / "quality" / "data")))
    ds = load_labelled(roles["positive"] + roles["eval_positive"], roles["negative"] + roles["eval_negative"])
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in rng.integers(0, len(ds), size=n):
        t = ds.texts[i]
        start = int(rng.integers(0, max(1, len(t) - chars)))
        # snap to a word boundary so no window starts with half a word
        sp = t.find(" ", start)
        start = sp + 1 if 0 <= sp < start + 50 else start
        w = t[start:start + chars]
        if len(w) < chars // 2:  # a short document: repeat it up to the window size
            w = (w + "\n\n") * (chars // max(1, len(w)) + 1)
            w = w[:chars]
        texts.append(w)
        labels.append(ds.labels[i])
    return texts, np.asarray(labels)


def run_speed(out: Path, names: list[str], n: int = 5000, repeats: int = 5) -> dict:
    from classifiers.scoring import make_scorer
    from curate.core.document import Document

    texts, _ = text_windows(n, seed=1)
    docs = [Document(id=f"w{i}", text=t) for i, t in enumerate(texts)]
    res = {}
    for name in names:
        scorer = make_scorer(out / "models" / name)
        for d in docs[:200]:  # warm up (first calls, page faults of the weights)
            scorer(d)
        rates = []
        for _ in range(repeats):
            c0 = time.process_time()
            for d in docs:
                scorer(d)
            rates.append(n / (time.process_time() - c0))
        # the batched path (``score_documents``, CLI ``quality score``), one pass
        c0 = time.process_time()
        for _ in scorer.score_documents(docs):
            pass
        batch = n / (time.process_time() - c0)
        res[name] = {"docs_per_s_per_core": round(max(rates)), "docs_per_s_per_core_median": round(float(np.median(rates))),
                     "passes": [round(r) for r in rates], "batched_docs_per_s_per_core": round(batch),
                     "doc_chars": 3000, "docs": n}
        print(f"{name:9s} scoring {max(rates):,.0f} docs/s per core best of {repeats} passes, median {np.median(rates):,.0f} "
              f"(single-document path, 3 KB docs); batched {batch:,.0f}", flush=True)
    return res


def _fit_child(conn, name: str, ds) -> None:
    """Runs in a child process: fit one model, send back (wall s, CPU s)."""
    from classifiers.train import ClassifierConfig, fit

    cfg = ClassifierConfig(**{**MODELS[name], "balance": "class"})
    w0, c0 = time.perf_counter(), time.process_time()
    fit(cfg, ds)
    conn.send((time.perf_counter() - w0, time.process_time() - c0))
    conn.close()


def run_train(out: Path, names: list[str], sizes: list[int], budget_s: float) -> dict:
    """Training time per model and training-set size, each fit bounded by ``budget_s``.

    A size is skipped (and said so) once a smaller one of the same model ran
    out of budget. The child is forked after the texts are built, so only the
    fit itself is timed.
    """
    import multiprocessing as mp

    from classifiers.data import LabelledSet

    texts, labels = text_windows(max(sizes), seed=2)
    res: dict = {}
    ctx = mp.get_context("fork")
    for name in names:
        res[name] = {}
        for n in sorted(sizes):
            ds = LabelledSet(ids=[f"t{i}" for i in range(n)], texts=texts[:n], labels=labels[:n].tolist(),
                             groups=["ref" if y else "crawl" for y in labels[:n]])
            if any(r.get("timed_out") for r in res[name].values()):
                res[name][n] = {"docs": n, "skipped": "a smaller set ran out of the budget"}
                continue
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_fit_child, args=(child, name, ds))
            proc.start()
            child.close()
            got = parent.poll(budget_s)
            if got:
                wall, cpu = parent.recv()
                proc.join()
                res[name][n] = {"docs": n, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
                print(f"{name:9s} training on {n:,} docs of 3 KB: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
            else:
                proc.terminate()
                proc.join()
                res[name][n] = {"docs": n, "timed_out": True, "budget_s": budget_s}
                print(f"{name:9s} training on {n:,} docs of 3 KB: not finished within {budget_s:.0f} s", flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.quality", description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", default="all", choices=["all", "auc", "speed", "train"])
    ap.add_argument("--out", default=str(REPO / "out" / "bench" / "quality"))
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--train-docs", default="10000,30000,100000", help="comma-separated training-set sizes")
    ap.add_argument("--train-budget", type=float, default=600.0, help="seconds one fit may take (default 600)")
    ap.add_argument("--speed-docs", type=int, default=5000)
    ap.add_argument("--speed-repeats", type=int, default=5)
    args = ap.parse_args(argv)
    if not REF.exists():
        print(f"benchmarks.quality: reference data not found at {REF} (expected ../shared/data)", file=sys.stderr)
        return 2
    out = Path(args.out)
    os.environ.setdefault("QUALITY_WORK", str(out / "data"))
    names = [m for m in args.models.split(",") if m]
    roles = build_corpora(out / "data")
    results: dict = {}
    if args.part in ("all", "auc"):
        results["auc"] = run_auc(out, roles, names)
    if args.part in ("all", "speed"):
        results["speed"] = run_speed(out, names, args.speed_docs, args.speed_repeats)
    if args.part in ("all", "train"):
        sizes = [int(x) for x in str(args.train_docs).split(",") if x]
        results["train"] = run_train(out, names, sizes, args.train_budget)
    path = out / f"results-{args.part}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
