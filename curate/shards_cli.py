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
import sys
from dataclasses import replace


def _eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def config_from_args(args: argparse.Namespace):
    """The MixtureConfig that ``shards build``'s options describe (also used by pipelines.shards)."""
    from curate.mixture import MixtureConfig, parse_source

    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            obj = json.load(fh)
        if args.preset:
            obj["preset"] = args.preset
        config = MixtureConfig.from_json(obj)
    else:
        config = MixtureConfig.preset(args.preset or "gpt3")
        config = replace(config, sources=[])
    if args.source:
        config = replace(config, sources=[parse_source(s) for s in args.source])
    if args.vocab_size:
        config = replace(config, tokenizer=replace(config.tokenizer, vocab_size=args.vocab_size))
    if args.val_fraction is not None:
        config = replace(config, val_fraction=args.val_fraction)
    if args.budget:
        config = replace(config, budget_tokens=int(float(args.budget)))
    if args.max_epochs is not None:
        config = replace(config, max_epochs=args.max_epochs)
    return config


def cmd_build(args: argparse.Namespace) -> int:
    from curate.document import DocumentFormatError
    from curate.mixture import build, format_table

    try:
        config = config_from_args(args)
        manifest = build(config, args.out, tokenizer_path=args.tokenizer,
                         log=(lambda m: None) if args.quiet else (lambda m: _eprint(m)),
                         progress=not args.quiet)
    except (OSError, ValueError, DocumentFormatError, json.JSONDecodeError) as exc:
        _eprint(f"curate shards build: error: {exc}")
        return 2
    print(format_table(manifest["epochs_table"], config.budget_tokens, config.max_epochs))
    print(f"manifest: {args.out.rstrip('/')}/manifest.json")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from curate.mixture import format_table, load_manifest, verify_manifest
    from curate.shards import SPLITS, iter_documents
    from curate.tokenizer import Tokenizer

    try:
        manifest = load_manifest(args.manifest)
        root = Path(args.manifest).parent
        tok = Tokenizer.load(root / manifest["tokenizer"]["path"])
    except (OSError, ValueError) as exc:
        _eprint(f"curate shards inspect: error: {exc}")
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
            _eprint(f"verify: {p}")
        print("verify: ok" if not problems else f"verify: {len(problems)} problem(s)")
        return 1 if problems else 0
    return 0


def add_build_args(b: argparse.ArgumentParser) -> None:
    """The mixture options of ``shards build`` (shared with ``python -m pipelines.shards``)."""
    b.add_argument("--config", help="mixture JSON: {preset, sources: [{name, paths, weight}], ...}")
    b.add_argument("--source", action="append", metavar="NAME=GLOB[:WEIGHT]",
                   help="a source (repeatable); replaces the config's sources")
    b.add_argument("--out", required=True, help="output folder (manifest.json, tokenizer.json, NAME/)")
    b.add_argument("--preset", choices=["gpt3", "tiny"], help="base config (default gpt3)")
    b.add_argument("--vocab-size", type=int, help="BPE vocabulary incl. <|endoftext|> (gpt3: 50257)")
    b.add_argument("--tokenizer", help="use this tokenizer.json, or a folder with GPT-2's encoder.json + "
                   "vocab.bpe (GPT-2's own BPE, read locally), instead of training one")
    b.add_argument("--val-fraction", type=float, help="share of documents (by hashed id) held out")
    b.add_argument("--budget", help="training tokens for the epochs table, e.g. 300e9")
    b.add_argument("--max-epochs", type=float, help="warn for sources repeated more often")
    b.add_argument("-q", "--quiet", action="store_true")


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


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point until ``curate/cli.py`` wires the subcommand in."""
    parser = argparse.ArgumentParser(prog="curate")
    add_shards_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
