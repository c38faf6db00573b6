"""Hugging Face interop figures: export error per preset, beam-search speed with and
without the key/value cache, and the cost of dropping the q/k/v biases.

    python -m benchmarks.hf_interop                       # everything (a few minutes on two cores)
    python -m benchmarks.hf_interop --only export|beam|qkv|finetune
    python -m benchmarks.hf_interop --checkpoint RUN/ckpt.pt   # also: real text through a trained model

* **export**: for every preset, a model with random weights (every bias and
  LayerNorm perturbed too) is exported, loaded with transformers, and the
  largest |logit difference| over a row of random token ids (3 bands of the
  local window plus some) is printed. ``tiny``, ``10m``, ``small`` and
  ``medium`` have their real shape; the larger GPT-3 sizes keep their width and
  heads (``large``, ``xl``, ``2.7b``) or their head width with 4 heads
  (``6.7b``, ``13b``, ``175b``), with 2 layers, so the run fits a workstation.
  The vocabulary is the 4,096-token tiny tokenizer's for all (the mapping of
  the token table does not depend on its size). With ``--checkpoint``, the same
  on real text (WikiText-2 from ../shared/data) through the trained model.
* **beam**: tokens/s of ``train.generate.beam_search`` with 4 beams, 64 new
  tokens after a 64-token prompt, cache on and off, on the ``tiny`` and ``10m``
  shapes (median of 3).
* **qkv**: training step time of the ``tiny`` preset with and without q/k/v
  biases (the change that makes banded models exportable as GPT-Neo),
  interleaved so the machine's load falls on both alike.
* **finetune**: step time of full, top-2-block and LoRA fine-tuning on the
  same batch (the ``--checkpoint`` model, else a random ``tiny``), interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from train.model import GPT, GPTConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FULL = ("tiny", "10m", "small", "medium")
WIDE = ("large", "xl", "2.7b")
HEADS4 = ("6.7b", "13b", "175b")


def tokenizer_json(tmp: Path) -> Path:
    """A 4,096-token byte-level BPE trained on a Gutenberg novel from ../shared/data."""
    from curate.ingest.reference import read_gutenberg
    from curate.mixture.tokenizer import TokenizerConfig, train_tokenizer

    books = sorted((SHARED / "reference" / "books").glob("*.txt.gz"))[:3]
    tok = train_tokenizer((d.text for b in books for d in read_gutenberg(b)), TokenizerConfig.preset("tiny"))
    assert tok.vocab_size == 4096, tok.vocab_size
    path = tmp / "tokenizer.json"
    tok.save(path)
    return path


def shape(name: str) -> tuple[GPTConfig, str]:
    cfg = GPTConfig.preset(name, vocab_size=4096)
    if name in FULL:
        return cfg, "full shape"
    if name in WIDE:
        return GPTConfig.preset(name, vocab_size=4096, n_layer=2), f"2 of {cfg.n_layer} layers, full width"
    return (GPTConfig.preset(name, vocab_size=4096, n_layer=2, n_head=4, n_embd=4 * cfg.head_dim),
            f"2 of {cfg.n_layer} layers, 4 of {cfg.n_head} heads of {cfg.head_dim}")


@torch.no_grad()
def export_errors(checkpoint: str | None) -> None:
    import transformers

    from train.hf import export, load_any

    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tok = tokenizer_json(tmp)
        print(f"{'preset':<8} {'HF class':<20} {'params':>9} {'tokens':>6}  {'max |logit diff|':>16}  shape")
        for name in (*FULL, *WIDE, *HEADS4):
            cfg, note = shape(name)
            torch.manual_seed(0)
            model = GPT(cfg).eval()
            g = torch.Generator().manual_seed(1)
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.02)
            folder = export(model, tmp / name, tok)
            hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
            T = min(cfg.block_size, 3 * cfg.local_window + 17)
            x = torch.randint(0, cfg.vocab_size, (1, T), generator=g)
            diff = float((model(x)[0] - hf(x).logits).abs().max())
            print(f"{name:<8} {type(hf).__name__:<20} {model.num_params() / 1e6:>8.1f}M {T:>6}  {diff:>16.2e}  {note}")
            del model, hf
        if checkpoint:
            from curate.ingest.reference import read_wikitext

            loaded = load_any(checkpoint)
            folder = export(loaded.model, tmp / "trained", loaded.tokenizer_path)
            hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
            from train.hf import load_tokenizer

            text = next(iter(read_wikitext(SHARED / "reference" / "wikipedia" / "wikitext-2_test.txt.gz"))).text
            ids = load_tokenizer(loaded.tokenizer_path).encode_batch([text])[0].tolist()
            x = torch.tensor([ids[:loaded.model.config.block_size]])
            diff = float((loaded.model(x)[0] - hf(x).logits).abs().max())
            print(f"trained {checkpoint}: {type(hf).__name__}, real text (WikiText-2), {x.shape[1]} tokens: "
                  f"max |logit diff| {diff:.2e}")


@torch.no_grad()
def beam_speed() -> None:
    from train.generate import beam_search

    torch.set_num_threads(1)
    print("beam search, 4 beams, 64-token prompt, 64 new tokens, one thread (median of 3):")
    for name in ("tiny", "10m"):
        torch.manual_seed(0)
        model = GPT(GPTConfig.preset(name)).eval()
        prompt = torch.randint(0, 4096, (64,), generator=torch.Generator().manual_seed(0)).tolist()
        rates = {}
        for cache in (True, False):
            times = []
            for _ in range(3):
                t = time.perf_counter()
                new = beam_search(model, prompt, 64, 4, use_cache=cache)
                times.append(time.perf_counter() - t)
            rates[cache] = len(new) / statistics.median(times)
        print(f"  {name:<5} cache on {rates[True]:7.1f} tokens/s   off {rates[False]:7.1f} tokens/s   "
              f"({rates[True] / rates[False]:.1f}x)")


def qkv_speed(rounds: int = 12, steps: int = 5) -> None:
    from train.config import TrainConfig
    from train.train import make_optimizer

    torch.set_num_threads(1)
    runs = {}
    for qkv in (False, True):
        torch.manual_seed(0)
        m = GPT(GPTConfig.preset("tiny", qkv_bias=qkv)).train()
        runs[qkv] = (m, make_optimizer(m, TrainConfig(), torch.device("cpu")), [])
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 4096, (8, 256), generator=g), torch.randint(0, 4096, (8, 256), generator=g)
    _time_steps(runs, x, y, rounds, steps)
    print("tiny preset training step (8 x 256 tokens, one thread), interleaved:")
    for qkv, (m, _, times) in runs.items():
        med = statistics.median(times)
        print(f"  qkv_bias={str(qkv):<5} {m.num_params():>9,} parameters  median step {med * 1e3:6.1f} ms  "
              f"= {8 * 256 / med:7,.0f} tokens/s over {len(times)} steps")


def _time_steps(runs: dict, x: torch.Tensor, y: torch.Tensor, rounds: int, steps: int) -> None:
    """Training steps on one batch, ``steps`` per run in turn for ``rounds`` rounds (so that
    a change in machine load hits every run alike); each step's seconds go to the run's
    list, the first round (warm-up) left out. ``runs``: {name: (model, optimizer, times)}."""
    for r in range(rounds):
        for model, opt, times in runs.values():
            for _ in range(steps):
                t = time.perf_counter()
                _, loss = model(x, y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if r:
                    times.append(time.perf_counter() - t)


def finetune_speed(checkpoint: str | None, rounds: int = 8, steps: int = 5) -> None:
    """Fine-tuning step time of full, top-2 and LoRA (r 8) on one batch, interleaved."""
    from train.finetune import FinetuneConfig, make_optimizer, prepare_model
    from train.hf import load_any

    torch.set_num_threads(1)
    runs = {}
    for method in ("full", "top", "lora"):
        torch.manual_seed(0)
        base = load_any(checkpoint).model if checkpoint else GPT(GPTConfig.preset("tiny"))
        cfg = FinetuneConfig(method=method, lr=1e-4, model=base.config)
        model = prepare_model(base, cfg).train()
        runs[method] = (model, make_optimizer(model, cfg), [])
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4096, (8, 256), generator=g)
    y = torch.randint(0, 4096, (8, 256), generator=g)
    y[:, :128] = -1  # a prompt half: no loss there
    _time_steps(runs, x, y, rounds, steps)
    print("fine-tuning step (8 x 256 tokens, one thread), interleaved:")
    for method, (model, _, times) in runs.items():
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        med = statistics.median(times)
        print(f"  {method:<5} {n:>9,} trainable  median step {med * 1e3:6.1f} ms  = {8 * 256 / med:7,.0f} tokens/s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.hf_interop", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("export", "beam", "qkv", "finetune"))
    ap.add_argument("--checkpoint", help="a trained ckpt.pt: export error on real text too")
    args = ap.parse_args(argv)
    if args.only in (None, "export"):
        export_errors(args.checkpoint)
    if args.only in (None, "beam"):
        beam_speed()
    if args.only in (None, "qkv"):
        qkv_speed()
    if args.only in (None, "finetune"):
        finetune_speed(args.checkpoint)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
