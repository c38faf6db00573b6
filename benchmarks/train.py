"""Training speed of the bundled GPT, side by side with a plain nanoGPT-shaped reference.

    python -m benchmarks.train [--repeats 5] [--compile]

1. Training tokens/s (forward + backward + clip + AdamW step) of the ``tiny``
   and ``10m`` presets on this CPU, for our model as configured (dense and
   banded layers alternating), our model with every layer dense, and
   ``benchmarks.ref_gpt`` (all dense, the same shapes). The variants run in
   turn, several repeats of a few steps each, so load from other processes
   falls on all of them alike; medians are reported. Target: ours >= 1.0x.
2. What the banded layers save at GPT-3's context (T = 2048): forward +
   backward of the attention kernel alone, of a whole attention layer (GPT-3
   Small's width), and of the ``10m`` model with all-dense vs alternating layers.
3. Generation with and without the key/value cache (``GPT.generate``): new
   tokens/s for one sequence, a 32-token prompt continued to the context's end,
   ``tiny`` and ``10m``; both give the same tokens (tested).
4. On a CUDA device: GPT-3 Small in bfloat16, tokens/s and MFU against the
   device's peak (train.train.PEAK_BF16_FLOPS), ours and the reference.
   Without one this part says it was skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F

from benchmarks.ref_gpt import RefGPT
from train.config import TrainConfig
from train.model import GPT, GPTConfig, banded_attention, CausalSelfAttention
from train.train import make_optimizer, peak_flops


def train_step(model, optimizer, x, y, ours: bool, autocast=None) -> Callable[[], None]:
    """One optimizer step as the trainer takes it (the reference gets the same clip and AdamW)."""
    def step():
        with (autocast() if autocast else _null()):
            loss = model(x, y)[1] if ours else model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def interleaved(fns: dict[str, Callable[[], None]], steps: int, repeats: int, warmup: int = 1,
                sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Seconds per call of each function: ``repeats`` rounds, each timing ``steps`` calls of
    every function in turn (the order rotated every round), after ``warmup`` untimed calls."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            for _ in range(steps):
                fns[name]()
            sync()
            times[name].append((time.perf_counter() - t0) / steps)
    return times


def build(cfg: GPTConfig, device, ours: bool, dense: bool = False):
    torch.manual_seed(0)
    if ours:
        c = GPTConfig(**{**cfg.to_dict(), "local_window": 0}) if dense else cfg
        model = GPT(c).to(device)
        return model, make_optimizer(model, TrainConfig(), torch.device(device))
    model = RefGPT(cfg.padded_vocab_size, cfg.block_size, cfg.n_layer, cfg.n_embd, cfg.n_head).to(device)
    return model, model.optimizer()


# --------------------------------------------------------------------------- 1. CPU tokens/s

def cpu_throughput(preset: str, batch: int, steps: int, repeats: int) -> dict:
    cfg = GPTConfig.preset(preset)
    T = cfg.block_size
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.vocab_size, (batch, T), generator=g)
    y = torch.randint(0, cfg.vocab_size, (batch, T), generator=g)
    fns = {}
    for name, ours, dense in (("ours", True, False), ("ours all-dense", True, True), ("reference", False, False)):
        model, opt = build(cfg, "cpu", ours, dense)
        fns[name] = train_step(model, opt, x, y, ours)
    times = interleaved(fns, steps, repeats)
    rates = {name: batch * T / statistics.median(ts) for name, ts in times.items()}
    params = GPT(cfg).num_params()
    print(f"\n{preset}: {params / 1e6:.2f}M parameters, {cfg.n_layer} layers x {cfg.n_embd}, "
          f"context {T}, window {cfg.local_window}, batch {batch} x {T} tokens; "
          f"median of {repeats} rounds x {steps} steps")
    for name, rate in rates.items():
        spread = [batch * T / t for t in times[name]]
        print(f"  {name:<16} {rate:>9,.0f} tokens/s  (rounds {min(spread):,.0f}..{max(spread):,.0f})"
              f"  {rate / rates['reference']:.2f}x reference")
    return rates


# --------------------------------------------------------------------------- 2. banded vs dense at 2048

def long_context(repeats: int) -> None:
    T = 2048
    print(f"\nbanded vs dense attention at T = {T} (forward + backward, median of {repeats}):")
    small = GPTConfig.preset("small")
    H, D = small.n_head, small.head_dim
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, H, T, D, generator=g, requires_grad=True) for _ in range(3))

    def kernel(fn):
        def run():
            fn().sum().backward()
        return run

    fns = {"dense causal": kernel(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
           "banded w=256": kernel(lambda: banded_attention(q, k, v, 256)),
           "banded w=128": kernel(lambda: banded_attention(q, k, v, 128))}
    _report(f"  attention kernel, {H} heads x {D} (GPT-3 Small), batch 1",
            interleaved(fns, 2, repeats), "dense causal")

    x = torch.randn(1, T, small.n_embd, generator=g)
    layers = {"dense layer": CausalSelfAttention(small, banded=False),
              "banded layer": CausalSelfAttention(small, banded=True)}
    fns = {name: kernel(lambda m=m: m(x)) for name, m in layers.items()}
    _report(f"  attention layer incl. projections, d_model {small.n_embd}, window {small.local_window}",
            interleaved(fns, 2, repeats), "dense layer")

    cfg = GPTConfig.preset("10m", block_size=T, local_window=256)
    idx = torch.randint(0, cfg.vocab_size, (1, T), generator=g)
    models = {"all dense": GPT(GPTConfig(**{**cfg.to_dict(), "local_window": 0})), "alternating": GPT(cfg)}
    fns = {name: kernel(lambda m=m: m(idx, idx)[1]) for name, m in models.items()}
    _report(f"  whole 10m model ({cfg.n_layer} layers x {cfg.n_embd}), context {T}, window 256",
            interleaved(fns, 1, repeats), "all dense")


def _report(title: str, times: dict[str, list[float]], base: str) -> None:
    print(title)
    ref = statistics.median(times[base])
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"    {name:<14} {m * 1e3:>9.1f} ms  {ref / m:.2f}x faster than {base}" if name != base
              else f"    {name:<14} {m * 1e3:>9.1f} ms")


# --------------------------------------------------------------------------- 3. GPU

def gpu_small(batch: int, steps: int, repeats: int, compile_model: bool) -> None:
    if not torch.cuda.is_available():
        print("\nGPU: skipped (no CUDA device here); on one this part times GPT-3 Small in bf16 with MFU")
        return
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    peak = peak_flops(name)
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = GPTConfig.preset("small")
    T = cfg.block_size
    x = torch.randint(0, cfg.vocab_size, (batch, T), device=device)
    y = torch.randint(0, cfg.vocab_size, (batch, T), device=device)
    autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    fns, flops = {}, {}
    for label, ours in (("ours", True), ("reference", False)):
        model, opt = build(cfg, device, ours)
        if ours:
            flops[label] = model.estimate_flops_per_token(T)
        if compile_model:
            model = torch.compile(model)
        fns[label] = train_step(model, opt, x, y, ours, autocast)
    with torch.device("meta"):  # the same shapes, all dense: only the count is needed
        flops["reference"] = GPT(GPTConfig(**{**cfg.to_dict(), "local_window": 0})).estimate_flops_per_token(T)
    times = interleaved(fns, steps, repeats, warmup=3, sync=torch.cuda.synchronize)
    print(f"\nGPU {name}: GPT-3 Small, bf16 autocast, batch {batch} x {T}"
          f"{', torch.compile' if compile_model else ''}; peak {peak / 1e12 if peak else float('nan'):.0f} TFLOP/s")
    for label, ts in times.items():
        rate = batch * T / statistics.median(ts)
        mfu = f"  MFU {flops[label] * rate / peak:.1%}" if peak else "  (peak unknown: no MFU)"
        print(f"  {label:<10} {rate:>10,.0f} tokens/s{mfu}")
    print(f"  peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


@torch.no_grad()
def generation(repeats: int) -> None:
    print(f"\ngeneration, batch 1, greedy, 32-token prompt to the end of the context (median of {repeats}):")
    for preset in ("tiny", "10m"):
        torch.manual_seed(0)
        model = GPT(GPTConfig.preset(preset)).eval()
        prompt = torch.randint(0, model.config.vocab_size, (1, 32))
        n = model.config.block_size - 32
        times = interleaved({"cached": lambda: model.generate(prompt, n, temperature=0),
                             "recomputed": lambda: model.generate(prompt, n, temperature=0, use_cache=False)},
                            steps=1, repeats=repeats)
        rate = {k: n / statistics.median(v) for k, v in times.items()}
        print(f"  {preset:<5} {n} new tokens: cached {rate['cached']:,.0f} tokens/s, "
              f"recomputed {rate['recomputed']:,.0f} tokens/s ({rate['cached'] / rate['recomputed']:.1f}x)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds per variant (medians reported)")
    ap.add_argument("--gpu-batch", type=int, default=8, help="sequences per step for GPT-3 Small on a GPU")
    ap.add_argument("--compile", action="store_true", help="torch.compile the GPU models")
    ap.add_argument("--skip-long", action="store_true", help="skip the T=2048 comparison")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"load average {os.getloadavg()[0]:.1f} at start (other work on the machine slows every variant alike)")
    rates = {"tiny": cpu_throughput("tiny", batch=16, steps=3, repeats=args.repeats),
             "10m": cpu_throughput("10m", batch=4, steps=2, repeats=args.repeats)}
    if not args.skip_long:
        long_context(max(3, args.repeats - 2))
    generation(max(3, args.repeats - 2))
    gpu_small(args.gpu_batch, steps=10, repeats=args.repeats, compile_model=args.compile)
    print("\nsummary: " + ", ".join(f"{p} ours {r['ours'] / r['reference']:.2f}x reference"
                                     for p, r in rates.items()) + " (target >= 1.0x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
