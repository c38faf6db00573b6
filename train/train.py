"""Train the GPT on a token-shard mixture: one process, several GPUs, or several nodes.

    python -m train.train --manifest out/sample/shards/manifest.json --out out/sample/train [--preset tiny]
        [--resume] [--key=value ...]
    torchrun --nproc_per_node=8 -m train.train --manifest ... --out ... --preset small

The recipe is GPT-3's (Brown et al. 2020, Appendix B): AdamW with betas
(0.9, 0.95) and weight decay 0.1, gradients clipped to norm 1.0, a linear
warmup then cosine decay to 10% of the peak learning rate, and a batch size
in tokens reached by gradient accumulation, optionally grown linearly from a
small batch over the first tokens (``batch_ramp_tokens``). On a GPU the forward pass
runs under bfloat16 autocast (weights and optimizer state stay float32).
Under ``torchrun`` (RANK / WORLD_SIZE / LOCAL_RANK in the environment) the
model is wrapped in DistributedDataParallel; every rank reads its own slice of
each global batch and only rank 0 writes files.

The run directory gets ``config.json`` (the resolved config), ``log.jsonl``
(one record per step, plus validation records), ``loss.png``, ``ckpt.pt``
(atomic; model, optimizer, data position, generator states and step) and
``summary.json``. ``--resume`` continues from ``ckpt.pt``; on a CPU the
continued run is bit-for-bit the run that never stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

from train.checkpoint import FORMAT, VERSION, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from train.config import PRESETS, ConfigError, TrainConfig, apply_overrides
from curate.core.files import write_json
from train.model import GPT, device_of

CKPT = "ckpt.pt"
LOG = "log.jsonl"
CURVE = "loss.png"
SUMMARY = "summary.json"
CONFIG = "config.json"

# Dense bfloat16 tensor-core peak FLOP/s per GPU, from the vendor data sheets
# (no sparsity). Looked up by substring of torch.cuda.get_device_name(), first
# match wins, so the more specific names come first. --peak_flops overrides.
PEAK_BF16_FLOPS = [
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H100 PCIE", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),   # SXM
    ("H800", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
]


def peak_flops(device_name: str) -> float | None:
    """The table's bf16 dense peak for a GPU name, or None when it is not listed.

    >>> peak_flops("NVIDIA H100 80GB HBM3") / 1e12, peak_flops("NVIDIA H100 PCIe") / 1e12
    (989.0, 756.0)
    >>> peak_flops("cpu") is None
    True
    """
    upper = device_name.upper()
    return next((flops for key, flops in PEAK_BF16_FLOPS if key in upper), None)


# --------------------------------------------------------------------------- optimisation

def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based; with a batch ramp, the fractional
    number of full batches trained, so the curve is followed in tokens).

    Linear warmup from ``lr / warmup_steps`` to ``lr``, then a cosine down to
    ``min_lr_ratio * lr`` at ``lr_decay_steps`` (default ``max_steps``), flat after.

    >>> cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    >>> [round(lr_at(s, cfg), 3) for s in (0, 9, 10, 60, 110, 500)]
    [0.1, 1.0, 1.0, 0.55, 0.1, 0.1]
    """
    peak, floor = cfg.lr, cfg.lr * cfg.min_lr_ratio
    if step < cfg.warmup_steps:
        return peak * (step + 1) / cfg.warmup_steps
    end = cfg.lr_decay_steps or cfg.max_steps
    if step >= end:
        return floor
    progress = (step - cfg.warmup_steps) / max(1, end - cfg.warmup_steps)
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak - floor)


def decay_split(model: GPT) -> tuple[list[str], list[str]]:
    """Names of the parameters that get weight decay, and of those that do not.

    Only the matrices of the linear layers decay. Biases and LayerNorm
    gains/shifts are not weights in the overfitting sense, and decaying a gain
    towards 0 fights the normalisation. The embedding tables are left out too:
    decay shrinks every row on every step, but a row's gradient only arrives
    when its token (or position) occurs, so rare tokens would be pulled to zero
    for being rare. The output head shares the token table and is left out with it.
    """
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    matrices = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)} - embeddings
    decay, no_decay = [], []
    for name, p in model.named_parameters():  # a tied parameter is listed once
        (decay if id(p) in matrices else no_decay).append(name)
    return decay, no_decay


def make_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over two groups: decayed matrices and everything else."""
    params = dict(model.named_parameters())
    decay, no_decay = decay_split(model)
    groups = [{"params": [params[n] for n in decay], "weight_decay": cfg.weight_decay},
              {"params": [params[n] for n in no_decay], "weight_decay": 0.0}]
    # The fused kernel updates every parameter in one pass over its memory: on a
    # GPU a few launches instead of thousands, on a CPU ~3.5x faster than the
    # default loop (10 vs 36 ms a step for the 10m preset).
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)


# --------------------------------------------------------------------------- processes

@dataclass
class Dist:
    """This process's place: rank 0 of 1 unless launched by torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Dist":
        """Join the process group when torchrun set RANK/WORLD_SIZE/LOCAL_RANK."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if "RANK" not in os.environ or world <= 1:
            return cls()
        d = cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
        if torch.cuda.is_available():
            torch.cuda.set_device(d.local_rank)
        # NCCL between GPUs; gloo on CPUs (and for the tests)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return d

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def pick_device(cfg: TrainConfig, d: Dist) -> torch.device:
    if cfg.device == "auto":
        return torch.device(f"cuda:{d.local_rank}" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda":
        return torch.device(f"cuda:{d.local_rank}")
    return torch.device(cfg.device)


def autocast_for(cfg: TrainConfig, device: torch.device):
    """The mixed-precision context: bf16 autocast on GPUs, plain float32 on CPUs."""
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" else "float32"
    if dtype == "float32":
        return contextlib.nullcontext
    if dtype == "bfloat16":
        # bf16 has float32's exponent range, so unlike fp16 it needs no loss scaling.
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ConfigError(f"--dtype must be auto, float32 or bfloat16, not {cfg.dtype!r}")


# --------------------------------------------------------------------------- logging

class RunLog:
    """``log.jsonl`` of the run directory (rank 0 only), one JSON record per line."""

    def __init__(self, path: Path, enabled: bool, resume_step: int | None):
        self.path = path
        self.enabled = enabled
        self.records: list[dict] = []
        if not enabled:
            return
        if resume_step is not None and path.exists():
            # Steps after the checkpoint will be run again: drop their old records.
            for line in path.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                if rec.get("step", 0) <= resume_step:
                    self.records.append(rec)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records), encoding="utf-8")
        os.replace(tmp, path)
        self.file = open(path, "a", encoding="utf-8")

    def write(self, rec: dict) -> None:
        if not self.enabled:
            return
        self.records.append(rec)
        self.file.write(json.dumps(rec) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.enabled:
            self.file.close()


def plot_curve(records: list[dict], path: Path, title: str) -> None:
    """Training loss (raw and smoothed) and per-source validation loss against step, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")  # no display on a training machine
    import matplotlib.pyplot as plt

    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    fig, ax = plt.subplots(figsize=(8, 5))
    if train:
        steps = [r["step"] for r in train]
        losses = [r["loss"] for r in train]
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="train")
        smooth, ema = [], losses[0]
        for v in losses:  # exponential moving average, to see the trend through batch noise
            ema = 0.95 * ema + 0.05 * v
            smooth.append(ema)
        ax.plot(steps, smooth, color="tab:blue", linewidth=1.5, label="train (smoothed)")
    for source in sorted({s for r in val for s in r["loss"]}):
        pts = [(r["step"], r["loss"][source]) for r in val if source in r["loss"]]
        ax.plot(*zip(*pts), marker="o", linewidth=1.2, label=f"val {source}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


@torch.no_grad()
def validation_loss(model: GPT, cfg: TrainConfig, sources: list[str], autocast) -> dict[str, float]:
    """Mean token loss on each source's validation split (sources without one are left out)."""
    from train.data import val_batches

    was_training = model.training
    model.eval()
    out = {}
    for source in sources:
        total, count = 0.0, 0
        for x, y in val_batches(cfg.manifest, source, cfg.context, cfg.batch_size, max_batches=cfg.eval_batches):
            x, y = x.to(device_of(model)), y.to(device_of(model))
            with autocast():
                _, loss = model(x, y)
            total += loss.item() * y.numel()
            count += y.numel()
        if count:
            out[source] = total / count
    model.train(was_training)
    return out


def accum_at(tokens: int, cfg: TrainConfig, per_micro: int, full: int) -> int:
    """Micro-batches in the optimizer step that starts after ``tokens`` training tokens.

    GPT-3 (Appendix B) grows the batch linearly from a small one (32k tokens)
    to the full size over the first billions of tokens. The step's batch is the
    ramp's value at ``tokens`` rounded down to whole micro-batches of
    ``per_micro`` tokens, at least one and at most ``full``; without a ramp it
    is always ``full``.

    >>> cfg = TrainConfig(batch_ramp_tokens=1000, batch_start_tokens=100)
    >>> [accum_at(t, cfg, per_micro=100, full=10) for t in (0, 250, 500, 999, 1000, 5000)]
    [1, 3, 5, 9, 10, 10]
    """
    if not cfg.batch_ramp_tokens or tokens >= cfg.batch_ramp_tokens:
        return full
    full_tokens = full * per_micro
    start = min(cfg.batch_start_tokens, full_tokens)
    target = start + (full_tokens - start) * tokens / cfg.batch_ramp_tokens
    return max(1, min(full, int(target // per_micro)))


# --------------------------------------------------------------------------- the loop

def _check_batch(cfg: TrainConfig, d: Dist) -> int:
    """Micro-batches per optimizer step on each process (gradient accumulation)."""
    per_micro = cfg.batch_size * cfg.context * d.world
    if cfg.context > cfg.model.block_size:
        raise ConfigError(f"seq_len {cfg.context} is longer than the model's context {cfg.model.block_size}")
    if not cfg.batch_tokens:
        return 1
    if cfg.batch_tokens % per_micro:
        raise ConfigError(
            f"batch_tokens {cfg.batch_tokens:,} is not a multiple of batch_size x seq_len x processes "
            f"= {cfg.batch_size} x {cfg.context} x {d.world} = {per_micro:,}")
    return cfg.batch_tokens // per_micro


def train(cfg: TrainConfig, out: Path, ckpt: dict | None = None, d: Dist | None = None,
          say=print) -> dict:
    """Run (or continue, given a loaded checkpoint) training; returns the summary dict."""
    threads = torch.get_num_threads()
    if cfg.threads:
        # Small models on a shared CPU: OpenMP threads that wait for each other
        # while another process holds the cores can make a step 10x slower.
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, out, ckpt, d or Dist(), say)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: TrainConfig, out: Path, ckpt: dict | None, d: Dist, say) -> dict:
    from train.data import MixtureLoader

    say = say if d.main else (lambda *a, **k: None)
    device = pick_device(cfg, d)
    autocast = autocast_for(cfg, device)
    accum = _check_batch(cfg, d)
    per_micro = cfg.batch_size * cfg.context * d.world
    tokens_per_step = per_micro * accum  # the full batch
    # With a batch ramp the early steps are smaller, so the run is measured in
    # tokens: it ends after max_steps full batches' worth, and the learning rate
    # follows the same curve read at tokens / full batch (GPT-3's schedule is in tokens).
    ramp = bool(cfg.batch_ramp_tokens)
    if ramp and accum == 1:
        raise ConfigError(f"batch_ramp_tokens needs batch_tokens larger than one micro-batch "
                          f"({cfg.batch_size} seq x {cfg.context} x {d.world} proc = {per_micro:,} tokens)")
    budget = cfg.max_steps * tokens_per_step
    if device.type == "cuda":
        # TF32 for any float32 matmul left outside autocast
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = GPT(cfg.model).to(device)
    optimizer = make_optimizer(model, cfg, device)
    try:
        loader = MixtureLoader(cfg.manifest, seq_len=cfg.context, batch_size=cfg.batch_size,
                               seed=cfg.seed, rank=d.rank, world_size=d.world)
    except (OSError, ValueError) as exc:  # e.g. a source shorter than one sequence
        raise ConfigError(f"{cfg.manifest}: {exc}") from None
    step = tokens = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        loader.load_state_dict(ckpt["data"])
        step = int(ckpt["step"])
        # checkpoints from before the ramp existed have no count: every step was full
        tokens = int(ckpt.get("tokens", step * tokens_per_step))
        states = ckpt["rng"]
        if len(states) == d.world:
            set_rng_state(states[d.rank], device)
        else:  # another world size: the data continues exactly, dropout masks cannot
            torch.manual_seed(cfg.seed * 7919 + step * 31 + d.rank)
            say(f"note: checkpoint written by {len(states)} processes, resumed on {d.world}: "
                "data order continues exactly, random generators are reseeded")
    elif d.world > 1:
        torch.manual_seed(cfg.seed * 7919 + d.rank)  # different dropout masks per rank

    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out / LOG, d.main, step if ckpt is not None else None)
    if d.main:
        write_json(out / CONFIG, cfg.to_dict())

    flops_per_token = model.estimate_flops_per_token(cfg.context)
    peak = cfg.peak_flops or (peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None)
    say(f"model: {model.num_params() / 1e6:.2f}M parameters, {cfg.model.n_layer} layers "
        f"({', '.join(model.layer_kinds())}), d_model {cfg.model.n_embd}, context {cfg.context}, "
        f"vocab {cfg.model.vocab_size} (table {cfg.model.padded_vocab_size})")
    say(f"run: {d.world} process(es) on {device}"
        f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
        f"{tokens_per_step:,} tokens/step = {cfg.batch_size} seq x {cfg.context} x {d.world} proc x {accum} accum, "
        + (f"grown from {per_micro * accum_at(0, cfg, per_micro, accum):,} over the first "
           f"{cfg.batch_ramp_tokens:,} tokens, tokens {tokens:,}->{budget:,}" if ramp
           else f"steps {step}->{cfg.max_steps}")
        + f", peak lr {cfg.lr:g}")
    if device.type == "cuda" and not peak:
        say(f"note: no peak FLOP/s known for {torch.cuda.get_device_name(device)!r}; "
            "pass --peak_flops=... to see MFU")

    raw = model
    if cfg.compile:
        model = torch.compile(model)
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        model = DDP(model, device_ids=[d.local_rank] if device.type == "cuda" else None)

    def save(at_step: int) -> None:
        states = [rng_state(device)]
        if d.world > 1:  # every rank's generators, so each continues its own stream
            states = [None] * d.world
            dist.all_gather_object(states, rng_state(device))
        if d.main:
            save_checkpoint(out / CKPT, {
                "format": FORMAT, "version": VERSION, "step": at_step, "config": cfg.to_dict(),
                "model": raw.state_dict(), "optimizer": optimizer.state_dict(),
                "data": loader.state_dict(), "rng": states, "world_size": d.world, "tokens": tokens,
            })
            plot_curve(log.records, out / CURVE, f"{cfg.preset}: {out.name}")

    def evaluate(at_step: int) -> dict:
        losses = validation_loss(raw, cfg, loader.sources, autocast) if d.main else {}
        if losses:
            log.write({"kind": "val", "step": at_step, "loss": losses})
            say(f"step {at_step:>6}  val " + "  ".join(f"{s} {v:.4f}" for s, v in losses.items()))
        return losses

    model.train()
    t_start = time.perf_counter()
    rates: list[float] = []
    val: dict = {}
    start_step = step

    def more() -> bool:
        return tokens < budget if ramp else step < cfg.max_steps

    while more():
        t0 = time.perf_counter()
        lr = lr_at(tokens / tokens_per_step if ramp else step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        acc = accum_at(tokens, cfg, per_micro, accum)
        loss_sum = torch.zeros((), device=device)
        for micro in range(acc):
            x, y = loader.next_batch()  # (B, T), (B, T)
            if device.type == "cuda":
                x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
            # DDP averages gradients across ranks on backward(); only the last
            # micro-batch of a step needs to, the others just accumulate locally.
            sync = d.world == 1 or micro == acc - 1
            with (contextlib.nullcontext() if sync else model.no_sync()):
                with autocast():
                    _, loss = model(x, y)
                (loss / acc).backward()
            loss_sum += loss.detach() / acc
        grad_norm = torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        step_tokens = per_micro * acc
        tokens += step_tokens
        if d.world > 1:
            dist.all_reduce(loss_sum, op=dist.ReduceOp.AVG)
        loss_value = loss_sum.item()  # waits for the GPU: the step's time is complete here
        dt = time.perf_counter() - t0
        rate = step_tokens / dt
        if step > start_step + 1:  # the first step pays for warm-up (allocations, compilation)
            rates.append(rate)
        rec = {"kind": "train", "step": step, "loss": loss_value, "lr": lr, "grad_norm": float(grad_norm),
               "tokens": tokens, "batch_tokens": step_tokens, "dt": dt, "tokens_per_s": rate}
        mfu = flops_per_token * rate / (peak * d.world) if peak else None
        if mfu is not None:
            rec["mfu"] = mfu
        log.write(rec)
        last = not more()
        if step % cfg.log_interval == 0 or step == start_step + 1 or last:
            eta = (budget - tokens) / rate if ramp else (cfg.max_steps - step) * dt
            where = f"{tokens / budget:6.1%} of tokens" if ramp else f"/{cfg.max_steps}"
            say(f"step {step:>6}{where}  loss {loss_value:.4f}  lr {lr:.2e}  "
                f"{rate / 1e3:,.1f}k tok/s  {dt * 1e3:,.0f} ms/step"
                + (f"  mfu {mfu:.1%}" if mfu is not None else "") + f"  eta {_hms(eta)}")
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"loss is {loss_value} at step {step}; lower --lr or check the data")
        if (cfg.eval_interval and step % cfg.eval_interval == 0) or last:
            val = evaluate(step)
        if (cfg.ckpt_interval and step % cfg.ckpt_interval == 0) or last:
            save(step)

    wall = time.perf_counter() - t_start
    in_sync = _replicas_in_sync(raw, d)
    train_recs = [r for r in log.records if r["kind"] == "train"]
    tail = train_recs[-10:]
    summary = {
        "step": step, "tokens": tokens, "wall_s": wall,
        "tokens_per_s_median": _median(rates) if rates else None,
        "final_train_loss": sum(r["loss"] for r in tail) / len(tail) if tail else None,
        "val_loss": val or next((r["loss"] for r in reversed(log.records) if r["kind"] == "val"), {}),
        "parameters": raw.num_params(), "world_size": d.world, "device": str(device),
        "mixture": loader.report(), "replicas_in_sync": in_sync,
        "checkpoint": str(out / CKPT), "log": str(out / LOG), "curve": str(out / CURVE),
    }
    if d.main:
        if not (out / CURVE).exists() or start_step == step:
            plot_curve(log.records, out / CURVE, f"{cfg.preset}: {out.name}")
        if step > start_step or not (out / SUMMARY).exists():  # a no-op resume keeps the real run's figures
            write_json(out / SUMMARY, summary)
        say("mixture drawn:\n" + loader.format_report())
        if step == start_step:
            say(f"nothing to do: the checkpoint is already at step {step} of {cfg.max_steps}")
        else:
            say(f"trained {step - start_step} steps in {_hms(wall)}"
                + (f", median {summary['tokens_per_s_median'] / 1e3:,.1f}k tok/s" if rates else "")
                + (f", final train loss {summary['final_train_loss']:.4f}" if tail else ""))
        if d.world > 1:
            say(f"replicas identical after training: {'yes' if in_sync else 'NO'}")
        for label, name in (("checkpoint", CKPT), ("log", LOG), ("curve", CURVE), ("summary", SUMMARY),
                            ("config", CONFIG)):
            say(f"{label + ':':<12}{out / name}")
    log.close()
    return summary


def _replicas_in_sync(model: nn.Module, d: Dist) -> bool:
    """Whether every rank holds the same weights (DDP should guarantee it; this checks)."""
    if d.world == 1:
        return True
    sums = torch.stack([p.detach().double().sum() for p in model.parameters()])
    lo, hi = sums.clone(), sums.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(torch.equal(lo, hi))


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2]


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


# --------------------------------------------------------------------------- command line

def resolve(args: argparse.Namespace, overrides: list[str]) -> tuple[TrainConfig, dict | None]:
    """The run's config and, with ``--resume`` and a checkpoint present, the checkpoint.

    A fresh run starts from the preset; a resumed one from the config saved in
    the checkpoint. Command-line overrides apply on top of either (so
    ``--resume --max_steps=2000`` trains longer).
    """
    out = Path(args.out)
    path = out / CKPT
    ckpt = None
    if path.exists():
        if not args.resume:
            raise ConfigError(f"{out} already holds a run ({path}); pass --resume to continue it "
                              "or choose another --out")
        try:
            ckpt = load_checkpoint(path)
            cfg = TrainConfig.from_dict(ckpt["config"])
        except (OSError, RuntimeError, KeyError, pickle.UnpicklingError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]  # torch's message runs to a page
            raise ConfigError(f"cannot read the checkpoint {path}: {first}") from None
        if args.preset and args.preset.lower() != cfg.preset:
            raise ConfigError(f"{out} was trained with --preset {cfg.preset}, not {args.preset}")
    else:
        cfg = TrainConfig.from_preset(args.preset or "tiny")
    cfg = apply_overrides(cfg, overrides)

    from curate.mixture.build import load_manifest

    manifest = args.manifest or cfg.manifest
    if not manifest:
        raise ConfigError("--manifest is required (the token shards' manifest.json)")
    manifest = str(Path(manifest).resolve())
    if ckpt is not None and manifest != cfg.manifest:
        raise ConfigError(f"{out} was trained on {cfg.manifest}, not {manifest}")
    try:
        vocab = int(load_manifest(manifest)["tokenizer"]["vocab_size"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the manifest {manifest}: {exc}") from None
    # The model's vocabulary is the tokenizer's, whatever the preset said.
    model = cfg.model
    if any(o.startswith("--model.vocab_size=") for o in overrides) and model.vocab_size != vocab:
        raise ConfigError(f"--model.vocab_size={model.vocab_size} but the manifest's tokenizer has {vocab}")
    cfg = apply_overrides(cfg, [f"--model.vocab_size={vocab}"])
    cfg.manifest = manifest
    return cfg, ckpt


def _options_help() -> str:
    """Every config field with the tiny preset's value, for --help."""
    tiny = TrainConfig.from_preset("tiny").to_dict()
    model = tiny.pop("model")
    tiny.pop("manifest")
    tiny.pop("preset")

    def wrap(items: dict, prefix: str = "") -> str:
        lines, line = [], " "
        for k, v in items.items():
            word = f" --{prefix}{k}={v}"
            if len(line) + len(word) > 88:
                lines.append(line)
                line = " "
            line += word
        return "\n".join(lines + [line])

    return ("config options, --key=value (shown: the tiny preset's values):\n" + wrap(tiny) + "\n"
            + wrap(model, "model.") + "\n\npresets: " + ", ".join(PRESETS) +
            "\n\nexample: python -m train.train --manifest out/sample/shards/manifest.json "
            "--out out/sample/train --lr=1e-3 --model.n_layer=2")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m train.train", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the bundled GPT on a token-shard mixture (run under torchrun for DDP).",
        epilog=_options_help())
    ap.add_argument("--manifest", help="token shards' manifest.json (curate shards build)")
    ap.add_argument("--out", required=True, help="run directory: checkpoint, log, curve, config")
    ap.add_argument("--preset", help="named config (default tiny; on --resume, the run's own)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt if it exists")
    args, rest = ap.parse_known_args(argv)
    d = Dist.from_env()
    try:
        cfg, ckpt = resolve(args, rest)
        if ckpt is None and args.resume and d.main:
            print(f"no checkpoint in {args.out}: starting a new run")
        train(cfg, Path(args.out), ckpt, d)
    except ConfigError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    finally:
        d.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
