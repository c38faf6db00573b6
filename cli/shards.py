"""``curate shards``: build a token-shard set from a mixture, and inspect one.

  curate shards build (--config MIX.json | --source NAME=GLOB[,GLOB][:WEIGHT] ...) --out DIR
                      [--preset gpt3|tiny] [--vocab-size N] [--tokenizer tokenizer.json|GPT2_DIR]
                      [--val-fraction F] [--budget TOKENS] [--max-epochs E]
  curate shards inspect MANIFEST [--docs N] [--chars C] [--verify]

``build`` prints GPT-3's Table 2.2 for the budget (tokens, weight, epochs per
source) and warns for sources repeated more than ``--max-epochs``.
Handlers return exit codes: 0 ok, 1 verification failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json

from cli.common import eprint
from curate.mixture.options import add_build_args, config_from_args


def cmd_build(args: argparse.Namespace) -> int:
    from curate.core.document import DocumentFormatError
    from curate.mixture.build import build, format_table

    try:
        config = config_from_args(args)
        manifest = build(config, args.out, tokenizer_path=args.tokenizer,
                         log=(lambda m: None) if args.quiet else (lambda m: eprint(m)),
                         progress=not args.quiet)
    except (OSError, ValueError, DocumentFormatError, json.JSONDecodeError) as exc:
        eprint(f"curate shards build: error: {exc}")
        return 2
    print(format_table(manifest["epochs_table"], config.budget_tokens, config.max_epochs))
    print(f"manifest: {args.out.rstrip('/')}/manifest.json")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from curate.mixture.build import format_table, load_manifest, verify_manifest
    from curate.mixture.shards import SPLITS, iter_documents
    from curate.mixture.tokenizer import Tokenizer

    try:
        manifest = load_manifest(args.manifest)
        root = Path(args.manifest).parent
        tok = Tokenizer.load(root / manifest["tokenizer"]["path"])
    except (OSError, ValueError) as exc:
        eprint(f"curate shards inspect: error: {exc}")
        return 2
    t = manifest["tokenizer"]
    print(f"tokenizer: vocab {t['vocab_size']:,}, {t['dtype']}, eot id {t['eot_id']}, sha256 {t['sha256'][:16]}")
    for src in manifest["sources"]:
        counts = ", ".join(f"{s}: {src['documents'][s]:,} docs / {src['tokens'][s]:,} tokens" for s in SPLITS)
        print(f"\n== {src['name']}  (weight {src['weight']:.1%}; {counts})")
        shown = 0
        for f in src["files"]["train"]:
            for ids in iter_documents(root / f["bin"], root / f["idx"]):
                if shown >= args.docs:
                    break
                text = tok.decode(ids)
                more = "..." if len(text) > args.chars else ""
                print(f"-- doc {shown} ({len(ids)} tokens): {text[:args.chars]!r}{more}")
                shown += 1
            if shown >= args.docs:
                break
    cfg = manifest["config"]
    print()
    print(format_table(manifest["epochs_table"], cfg["budget_tokens"], cfg["max_epochs"]))
    if args.verify:
        problems = verify_manifest(args.manifest)
        for p in problems:
            eprint(f"verify: {p}")
        print("verify: ok" if not problems else f"verify: {len(problems)} problem(s)")
        return 1 if problems else 0
    return 0



def add_shards_parser(sub) -> argparse.ArgumentParser:
    """Add ``shards build|inspect`` to an argparse subparsers object; sets ``func``."""
    p = sub.add_parser("shards", help="token shards: build from a mixture, inspect")
    ssub = p.add_subparsers(dest="shards_command", required=True)

    b = ssub.add_parser("build", help="train/reuse the tokenizer and write .bin/.idx shards + manifest")
    add_build_args(b)
    b.set_defaults(func=cmd_build)

    i = ssub.add_parser("inspect", help="decode a few documents per source and print the counts")
    i.add_argument("manifest")
    i.add_argument("--docs", type=int, default=2, help="documents to show per source")
    i.add_argument("--chars", type=int, default=300, help="characters to show per document")
    i.add_argument("--verify", action="store_true", help="also check every file's sha256 and header")
    i.set_defaults(func=cmd_inspect)
    return p

