"""The mixture's command-line options, defined once for ``curate shards build``
and ``python -m pipelines.shards`` so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from curate.mixture.build import MixtureConfig, parse_source


def add_build_args(b: argparse.ArgumentParser) -> None:
    """The mixture options of ``shards build`` ."""
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


def config_from_args(args: argparse.Namespace):
    """The :class:`MixtureConfig` that :func:`add_build_args`' options describe."""
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
