"""``curate quality {train,score,evaluate}``: the quality classifier.

Each handler returns an exit status. Expected bad
input (a missing file, a broken model directory) is one line on stderr, exit 1
or 2, never a traceback.

    curate quality train --positive PATH... --negative PATH... --out MODEL_DIR [--kind lr|fasttext]
    curate quality score --model MODEL_DIR  < {"id","text"} JSONL  > {"id","score"} JSONL
    curate quality evaluate --model MODEL_DIR --positive PATH... --negative PATH... [--report DIR]
"""

from __future__ import annotations

import argparse
import json
import sys

from cli.common import eprint
from curate.core.document import DocumentFormatError


def _classifier_config(args: argparse.Namespace):
    from classifiers.train import ClassifierConfig

    return ClassifierConfig(kind=args.kind, preset=args.preset, n_features=args.n_features, ngrams=args.ngrams,
                            C=args.C, balance=args.balance, alpha=args.alpha, test_fraction=args.test_fraction,
                            min_chars=args.min_chars)


def cmd_train(args: argparse.Namespace) -> int:
    from classifiers.train import train_and_report

    try:
        card = train_and_report(_classifier_config(args), args.positive, args.negative, args.out,
                                args.eval_positive, args.eval_negative,
                                log=(lambda *_: None) if args.quiet else eprint)
    except (OSError, DocumentFormatError, ValueError) as exc:
        eprint(f"curate quality train: error: {exc}")
        return 1
    if not args.quiet:
        eprint(f"model: {args.out} ({card['kind']}); report: {args.out}/report/report.md")
    return 0


def _load(location: str):
    from classifiers.models import ModelError, load_model

    try:
        return load_model(location)
    except (ModelError, OSError, KeyError, ValueError) as exc:
        eprint(f"curate quality: error: cannot load model {location}: {exc}")
        return None


def cmd_score(args: argparse.Namespace) -> int:
    """JSONL {"id","text"} on stdin -> {"id","score"} on stdout, in input order, batched."""
    model = _load(args.model)
    if model is None:
        return 2
    bad = 0
    batch: list[tuple[str, str]] = []

    def flush():
        if batch:
            for (doc_id, _), s in zip(batch, model.score([t for _, t in batch])):
                sys.stdout.write(json.dumps({"id": doc_id, "score": round(float(s), 6)}) + "\n")
            batch.clear()

    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ValueError('expected an object with a string "text"')
        except ValueError as exc:
            bad += 1
            eprint(f"curate quality score: error: stdin:{lineno}: {exc}")
            # keep the output aligned with the input: one line per input record
            flush()
            sys.stdout.write(json.dumps({"id": None, "score": None, "error": str(exc)}) + "\n")
            continue
        batch.append((obj.get("id"), obj["text"]))
        if len(batch) >= 256:
            flush()
    flush()
    sys.stdout.flush()
    return 1 if bad else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from classifiers.data import load_labelled
    from classifiers.report import evaluate, write_report

    model = _load(args.model)
    if model is None:
        return 2
    try:
        ds = load_labelled(args.positive, args.negative, args.min_chars)
    except (OSError, DocumentFormatError, ValueError) as exc:
        eprint(f"curate quality evaluate: error: {exc}")
        return 1
    s = model.score(ds.texts)
    ev = evaluate(s, ds.y(), ds.groups, ds.ids, args.alpha or model.alpha, ds.texts)
    if args.report:
        write_report(Path(args.report), model.kind, {"eval": ev}, {"eval": (s, ds.y(), ds.groups)})
    print(json.dumps({k: ev[k] for k in ("auc", "precision", "recall", "f1", "positive", "negative")}, indent=1))
    return 0


def add_quality_parser(sub) -> argparse.ArgumentParser:
    from classifiers.features import PRESETS
    from classifiers.keep import DEFAULT_ALPHA

    q = sub.add_parser("quality", help="quality classifier: train, score, evaluate")
    qs = q.add_subparsers(dest="quality_command", required=True)

    t = qs.add_parser("train", help="train a model on reference (positive) vs raw crawl (negative) documents")
    t.add_argument("--positive", action="extend", nargs="+", required=True, help="reference documents ([NAME=]PATH: JSONL/Parquet)")
    t.add_argument("--negative", action="extend", nargs="+", required=True,
                   help="raw crawl documents ([NAME=]PATH: JSONL/Parquet, or WARC/ARC read unfiltered)")
    t.add_argument("--eval-positive", action="extend", nargs="*", default=[], help="unseen reference files, evaluation only")
    t.add_argument("--eval-negative", action="extend", nargs="*", default=[], help="unseen crawl files, evaluation only")
    t.add_argument("--out", required=True, help="model directory (card.json, weights, report/)")
    t.add_argument("--kind", default="lr", choices=["lr", "fasttext"], help="lr (GPT-3, default) or fasttext")
    t.add_argument("--preset", default="gpt3", choices=sorted(PRESETS),
                   help="gpt3 (Spark unigrams, raw tf, 2^18; C 1, classes balanced) or best (words+bigrams, "
                        "log tf, l2, 2^20; C 10, sources balanced: AUC 0.99 on unseen files)")
    t.add_argument("--n-features", type=int, help="hash buckets (overrides the preset)")
    t.add_argument("--ngrams", type=int, help="n-gram order (overrides the preset)")
    t.add_argument("--C", type=float, help="LR inverse regularisation (default: the preset's, 1 or 10)")
    t.add_argument("--balance", choices=["class", "source"], help="sample weighting (default: the preset's)")
    t.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="Pareto alpha stored in the card (default 9)")
    t.add_argument("--test-fraction", type=float, default=0.2, help="held-out share by hashed id (default 0.2)")
    t.add_argument("--min-chars", type=int, default=200, help="ignore documents shorter than this (default 200)")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    s = qs.add_parser("score", help='JSONL {"id","text"} on stdin -> {"id","score"} on stdout')
    s.add_argument("--model", required=True, help="model directory or URL")
    s.set_defaults(func=cmd_score)

    e = qs.add_parser("evaluate", help="metrics (and a report with plots) of a model on labelled documents")
    e.add_argument("--model", required=True)
    e.add_argument("--positive", action="extend", nargs="+", required=True)
    e.add_argument("--negative", action="extend", nargs="+", required=True)
    e.add_argument("--report", help="write report.md/json and PNGs here")
    e.add_argument("--alpha", type=float, help="Pareto alpha (default: the model's)")
    e.add_argument("--min-chars", type=int, default=200)
    e.set_defaults(func=cmd_evaluate)
    return q

