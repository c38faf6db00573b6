"""Export a checkpoint as a Hugging Face model directory.

    python -m train.export --checkpoint out/sample/train/ckpt.pt --out out/sample/hf

The directory (``config.json``, ``model.safetensors``, ``generation_config.json``,
``tokenizer.json``, ``tokenizer_config.json``) loads with
``transformers.AutoModelForCausalLM.from_pretrained(DIR)`` and
``AutoTokenizer.from_pretrained(DIR)``, no code of this project needed: an
all-dense model as ``GPT2LMHeadModel``, one with GPT-3's banded layers as
``GPTNeoForCausalLM``. How the two definitions are made to agree exactly is in
:mod:`train.hf`. After writing, the export reloads the directory with our own
reader and checks that its logits equal the checkpoint's (``--check-tokens``
tokens of random ids; 0 skips it) and, when ``transformers`` is installed,
that transformers' logits do too; the largest difference is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

TOLERANCE = 1e-4  # float32 logits: ours and the export's differ by rounding only


@torch.no_grad()
def max_logit_difference(model, other, tokens: int, seed: int = 0) -> float:
    """Largest |logit difference| of two models on one row of ``tokens`` random ids."""
    g = torch.Generator().manual_seed(seed)
    T = min(tokens, model.config.block_size)
    x = torch.randint(0, model.config.vocab_size, (1, T), generator=g)
    ours = model(x)[0]
    theirs = other(x)
    theirs = theirs.logits if hasattr(theirs, "logits") else theirs[0]
    return float((ours - theirs).abs().max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="ckpt.pt or best.pt of a training or fine-tuning run")
    ap.add_argument("--out", required=True, help="model directory to write (replaced if it exists)")
    ap.add_argument("--tokenizer", help="tokenizer.json (default: the one recorded with the checkpoint)")
    ap.add_argument("--check-tokens", type=int, default=256, help="tokens of the logit check after writing (0: none)")
    args = ap.parse_args(argv)

    from train.hf import HFFormatError, export, load_any, load_hf

    try:
        loaded = load_any(args.checkpoint)
        tok = Path(args.tokenizer) if args.tokenizer else loaded.tokenizer_path
        if tok is None:
            raise HFFormatError(f"{args.checkpoint}: no tokenizer recorded with the model; pass --tokenizer")
        out = export(loaded.model, args.out, tok, source=loaded.source)
    except (OSError, ValueError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 2
    arch = "GPT-Neo" if any(loaded.model.config.is_banded(i) for i in range(loaded.model.config.n_layer)) else "GPT-2"
    print(f"wrote {out} ({arch}, {loaded.model.num_params() / 1e6:.2f}M parameters)")
    if args.check_tokens:
        diff = max_logit_difference(loaded.model, load_hf(out), args.check_tokens)
        line = f"check: max |logit difference| {diff:.2e} (reloaded here)"
        try:
            import transformers
        except ImportError:
            transformers = None
        if transformers is not None:
            transformers.logging.set_verbosity_error()
            hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
            d2 = max_logit_difference(loaded.model, hf, args.check_tokens)
            line += f", {d2:.2e} ({type(hf).__name__} in transformers {transformers.__version__})"
            diff = max(diff, d2)
        print(line)
        if diff > TOLERANCE:
            print(f"export: error: the exported model's logits differ by {diff:.2e} > {TOLERANCE:g}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
