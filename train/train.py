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
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

from curate.core.files import atomic_path, write_atomic, write_json
from train.checkpoint import FORMAT, VERSION, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from train.config import PRESETS, ConfigError, TrainConfig, apply_overrides
from train.eval import validation_loss
from train.model import GPT

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
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in self.records))
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")  # the temporary name's suffix is not .png
    plt.close(fig)


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


@dataclass(frozen=True)
class BatchPlan:
    """How many tokens an optimizer step trains on, and when the run ends.

    A micro-batch is ``per_micro`` tokens over all processes; ``accum`` of them
    make the full batch. With a batch ramp the early steps are smaller, so the
    run is measured in tokens: it ends after ``max_steps`` full batches' worth
    (``budget``), and the learning rate follows the same curve read at tokens /
    full batch (GPT-3's schedule is in tokens). Without one it ends after
    ``max_steps`` steps.

    >>> plan = BatchPlan(per_micro=100, accum=4, max_steps=10, ramp=True)
    >>> plan.tokens_per_step, plan.budget, plan.more(step=12, tokens=3900), plan.schedule_position(3, 600)
    (400, 4000, True, 1.5)
    """

    per_micro: int
    accum: int
    max_steps: int
    ramp: bool

    @classmethod
    def for_run(cls, cfg: TrainConfig, d: Dist) -> "BatchPlan":
        accum = _check_batch(cfg, d)
        per_micro = cfg.batch_size * cfg.context * d.world
        ramp = bool(cfg.batch_ramp_tokens)
        if ramp and accum == 1:
            raise ConfigError(f"batch_ramp_tokens needs batch_tokens larger than one micro-batch "
                              f"({cfg.batch_size} seq x {cfg.context} x {d.world} proc = {per_micro:,} tokens)")
        return cls(per_micro, accum, cfg.max_steps, ramp)

    @property
    def tokens_per_step(self) -> int:
        """The full batch."""
        return self.per_micro * self.accum

    @property
    def budget(self) -> int:
        """Tokens in the whole run (the end, with a ramp)."""
        return self.max_steps * self.tokens_per_step

    def more(self, step: int, tokens: int) -> bool:
        """Whether another step is due after ``step`` steps and ``tokens`` tokens."""
        return tokens < self.budget if self.ramp else step < self.max_steps

    def schedule_position(self, step: int, tokens: int) -> float:
        """Where :func:`lr_at` reads the schedule: full batches' worth of tokens, or steps."""
        return tokens / self.tokens_per_step if self.ramp else step


def train(cfg: TrainConfig, out: Path, ckpt: dict | None = None, d: Dist | None = None,
          say=print) -> dict:
    """Run (or continue, given a loaded checkpoint) training; returns the summary dict."""
    threads = torch.get_num_threads()
    if cfg.threads:
        # Small models on a shared CPU: OpenMP threads that wait for each other
        # while another process holds the cores can make a step 10x slower.
        torch.set_num_threads(cfg.threads)
    try:
        trainer = Trainer(cfg, out, d or Dist(), say)
        trainer.restore(ckpt)
        trainer.open_run_dir(resumed=ckpt is not None)
        trainer.announce()
        trainer.wrap_for_training()
        return trainer.run()
    finally:
        torch.set_num_threads(threads)


def _silent(*args, **kwargs) -> None:
    """``say`` on ranks other than 0: one process speaks for the run."""


class Trainer:
    """One training run on this process: the model, optimizer and data of ``cfg``, and
    the run directory ``out`` (written by rank 0 only).

    :func:`train` drives it in this order, which is also the order random
    generators are seeded and used in (so a resumed run is bit-for-bit the run
    that never stopped): build the model (seeded), ``restore`` a checkpoint,
    ``open_run_dir``, ``announce``, ``wrap_for_training`` (compile, DDP), ``run``.
    """

    def __init__(self, cfg: TrainConfig, out: Path, d: Dist, say):
        from train.data import MixtureLoader

        self.cfg, self.out, self.d = cfg, out, d
        self.say = say if d.main else _silent
        self.device = pick_device(cfg, d)
        self.autocast = autocast_for(cfg, self.device)
        self.plan = BatchPlan.for_run(cfg, d)
        if self.device.type == "cuda":
            # TF32 for any float32 matmul left outside autocast
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        self.raw = GPT(cfg.model).to(self.device)  # what is saved and evaluated
        self.model: nn.Module = self.raw  # what the steps call: compiled and/or DDP-wrapped later
        self.optimizer = make_optimizer(self.raw, cfg, self.device)
        try:
            self.loader = MixtureLoader(cfg.manifest, seq_len=cfg.context, batch_size=cfg.batch_size,
                                        seed=cfg.seed, rank=d.rank, world_size=d.world)
        except (OSError, ValueError) as exc:  # e.g. a source shorter than one sequence
            raise ConfigError(f"{cfg.manifest}: {exc}") from None
        self.step = self.tokens = 0
        self.start_step = 0  # where this process's run began (the checkpoint's step on a resume)
        self.flops_per_token = self.raw.estimate_flops_per_token(cfg.context)
        self.peak = cfg.peak_flops or (peak_flops(torch.cuda.get_device_name(self.device))
                                       if self.device.type == "cuda" else None)
        self.log: RunLog | None = None

    def restore(self, ckpt: dict | None) -> None:
        """Continue from ``ckpt`` (weights, optimizer, data position, generators), or give a
        fresh multi-process run its per-rank generators."""
        cfg, d = self.cfg, self.d
        if ckpt is None:
            if cfg.init_from:
                self.init_weights(cfg.init_from)
            if d.world > 1:
                torch.manual_seed(cfg.seed * 7919 + d.rank)  # different dropout masks per rank
            return
        self.raw.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.loader.load_state_dict(ckpt["data"])
        self.step = self.start_step = int(ckpt["step"])
        # checkpoints from before the ramp existed have no count: every step was full
        self.tokens = int(ckpt.get("tokens", self.step * self.plan.tokens_per_step))
        states = ckpt["rng"]
        if len(states) == d.world:
            set_rng_state(states[d.rank], self.device)
        else:  # another world size: the data continues exactly, dropout masks cannot
            torch.manual_seed(cfg.seed * 7919 + self.step * 31 + d.rank)
            self.say(f"note: checkpoint written by {len(states)} processes, resumed on {d.world}: "
                     "data order continues exactly, random generators are reseeded")

    def init_weights(self, path: str) -> None:
        """Start from the weights of ``path`` (an HF GPT-2/GPT-Neo folder or a checkpoint)
        instead of random ones; :func:`resolve` has already given the model its shape."""
        from train.hf import load_any

        try:
            src = load_any(path).model
            self.raw.load_state_dict(src.state_dict())
        except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: shapes changed by an override
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
            raise ConfigError(f"--init-from {path}: cannot load its weights into this model: {first}") from None
        self.say(f"init: weights from {path}")

    def open_run_dir(self, resumed: bool) -> None:
        """Create ``out``, start ``log.jsonl`` (keeping a resumed run's records up to its
        checkpoint) and save the resolved config."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.out / LOG, self.d.main, self.step if resumed else None)
        if self.d.main:
            write_json(self.out / CONFIG, self.cfg.to_dict())

    def announce(self) -> None:
        """The model and run lines printed before the first step."""
        cfg, d, device, plan, model = self.cfg, self.d, self.device, self.plan, self.raw
        self.say(f"model: {model.num_params() / 1e6:.2f}M parameters, {cfg.model.n_layer} layers "
                 f"({', '.join(model.layer_kinds())}), d_model {cfg.model.n_embd}, context {cfg.context}, "
                 f"vocab {cfg.model.vocab_size} (table {cfg.model.padded_vocab_size})")
        self.say(f"run: {d.world} process(es) on {device}"
                 f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, "
                 f"{plan.tokens_per_step:,} tokens/step = {cfg.batch_size} seq x {cfg.context} x {d.world} proc "
                 f"x {plan.accum} accum, "
                 + (f"grown from {plan.per_micro * accum_at(0, cfg, plan.per_micro, plan.accum):,} over the first "
                    f"{cfg.batch_ramp_tokens:,} tokens, tokens {self.tokens:,}->{plan.budget:,}" if plan.ramp
                    else f"steps {self.step}->{cfg.max_steps}")
                 + f", peak lr {cfg.lr:g}")
        if device.type == "cuda" and not self.peak:
            self.say(f"note: no peak FLOP/s known for {torch.cuda.get_device_name(device)!r}; "
                     "pass --peak_flops=... to see MFU")

    def wrap_for_training(self) -> None:
        """Compile (``--compile``) and, under torchrun, wrap in DistributedDataParallel."""
        if self.cfg.compile:
            self.model = torch.compile(self.model)
        if self.d.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.model = DDP(self.model, device_ids=[self.d.local_rank] if self.device.type == "cuda" else None)

    def run(self) -> dict:
        """Optimizer steps until the plan's end, validating and checkpointing on schedule
        and after the last step; returns the summary."""
        cfg = self.cfg
        self.model.train()
        t_start = time.perf_counter()
        rates: list[float] = []
        val: dict = {}
        while self.plan.more(self.step, self.tokens):
            t0 = time.perf_counter()
            lr, loss_value, grad_norm, step_tokens = self.optimizer_step()
            dt = time.perf_counter() - t0
            rate = step_tokens / dt
            if self.step > self.start_step + 1:  # the first step pays for warm-up (allocations, compilation)
                rates.append(rate)
            last = not self.plan.more(self.step, self.tokens)
            self.record_step(lr, loss_value, grad_norm, step_tokens, dt, rate, last)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"loss is {loss_value} at step {self.step}; lower --lr or check the data")
            if (cfg.eval_interval and self.step % cfg.eval_interval == 0) or last:
                val = self.evaluate()
            if (cfg.ckpt_interval and self.step % cfg.ckpt_interval == 0) or last:
                self.save()
        return self.finish(time.perf_counter() - t_start, rates, val)

    def optimizer_step(self) -> tuple[float, float, torch.Tensor, int]:
        """One optimizer step over the step's micro-batches (gradient accumulation).

        Returns the learning rate, the loss (the mean over micro-batches and
        processes), the gradient norm before clipping and the tokens trained on.
        """
        cfg, d, device, plan = self.cfg, self.d, self.device, self.plan
        lr = lr_at(plan.schedule_position(self.step, self.tokens), cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        acc = accum_at(self.tokens, cfg, plan.per_micro, plan.accum)
        loss_sum = torch.zeros((), device=device)
        for micro in range(acc):
            x, y = self.loader.next_batch()  # (B, T), (B, T)
            if device.type == "cuda":
                x, y = x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
            # DDP averages gradients across ranks on backward(); only the last
            # micro-batch of a step needs to, the others just accumulate locally.
            sync = d.world == 1 or micro == acc - 1
            with (contextlib.nullcontext() if sync else self.model.no_sync()):
                with self.autocast():
                    _, loss = self.model(x, y)
                (loss / acc).backward()
            loss_sum += loss.detach() / acc
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        step_tokens = plan.per_micro * acc
        self.tokens += step_tokens
        if d.world > 1:
            dist.all_reduce(loss_sum, op=dist.ReduceOp.AVG)
        loss_value = loss_sum.item()  # waits for the GPU: the step's time is complete here
        return lr, loss_value, grad_norm, step_tokens

    def record_step(self, lr: float, loss_value: float, grad_norm: torch.Tensor, step_tokens: int,
                    dt: float, rate: float, last: bool) -> None:
        """The step's record in ``log.jsonl`` and, every ``log_interval`` steps, its line."""
        cfg, plan, step, tokens = self.cfg, self.plan, self.step, self.tokens
        rec = {"kind": "train", "step": step, "loss": loss_value, "lr": lr, "grad_norm": float(grad_norm),
               "tokens": tokens, "batch_tokens": step_tokens, "dt": dt, "tokens_per_s": rate}
        mfu = self.flops_per_token * rate / (self.peak * self.d.world) if self.peak else None
        if mfu is not None:
            rec["mfu"] = mfu
        self.log.write(rec)
        if step % cfg.log_interval == 0 or step == self.start_step + 1 or last:
            eta = (plan.budget - tokens) / rate if plan.ramp else (cfg.max_steps - step) * dt
            where = f"{tokens / plan.budget:6.1%} of tokens" if plan.ramp else f"/{cfg.max_steps}"
            self.say(f"step {step:>6}{where}  loss {loss_value:.4f}  lr {lr:.2e}  "
                     f"{rate / 1e3:,.1f}k tok/s  {dt * 1e3:,.0f} ms/step"
                     + (f"  mfu {mfu:.1%}" if mfu is not None else "") + f"  eta {_hms(eta)}")

    def evaluate(self) -> dict:
        """Validation loss per source (rank 0 only), measured as the training loss is; logged."""
        cfg = self.cfg
        losses = {}
        if self.d.main:
            result = validation_loss(self.raw, cfg.manifest, cfg.context, cfg.batch_size, cfg.eval_batches,
                                     sources=self.loader.sources, autocast=self.autocast)
            # sources without a validation split are left out
            losses = {name: r["loss"] for name, r in result["sources"].items() if "loss" in r}
        if losses:
            self.log.write({"kind": "val", "step": self.step, "loss": losses})
            self.say(f"step {self.step:>6}  val " + "  ".join(f"{s} {v:.4f}" for s, v in losses.items()))
        return losses

    def save(self) -> None:
        """``ckpt.pt`` (written by rank 0, with every rank's generator states) and the curve."""
        d, out = self.d, self.out
        states = [rng_state(self.device)]
        if d.world > 1:  # every rank's generators, so each continues its own stream
            states = [None] * d.world
            dist.all_gather_object(states, rng_state(self.device))
        if d.main:
            save_checkpoint(out / CKPT, {
                "format": FORMAT, "version": VERSION, "step": self.step, "config": self.cfg.to_dict(),
                "model": self.raw.state_dict(), "optimizer": self.optimizer.state_dict(),
                "data": self.loader.state_dict(), "rng": states, "world_size": d.world, "tokens": self.tokens,
            })
            plot_curve(self.log.records, out / CURVE, f"{self.cfg.preset}: {out.name}")

    def finish(self, wall: float, rates: list[float], val: dict) -> dict:
        """The summary (``summary.json``) and the closing lines; closes the log."""
        cfg, d, out, log = self.cfg, self.d, self.out, self.log
        step, start_step = self.step, self.start_step
        in_sync = _replicas_in_sync(self.raw, d)
        train_recs = [r for r in log.records if r["kind"] == "train"]
        tail = train_recs[-10:]
        summary = {
            "step": step, "tokens": self.tokens, "wall_s": wall,
            "tokens_per_s_median": _median(rates) if rates else None,
            "final_train_loss": sum(r["loss"] for r in tail) / len(tail) if tail else None,
            "val_loss": val or next((r["loss"] for r in reversed(log.records) if r["kind"] == "val"), {}),
            "parameters": self.raw.num_params(), "world_size": d.world, "device": str(self.device),
            "mixture": self.loader.report(), "replicas_in_sync": in_sync,
            "checkpoint": str(out / CKPT), "log": str(out / LOG), "curve": str(out / CURVE),
        }
        if d.main:
            if not (out / CURVE).exists() or start_step == step:
                plot_curve(log.records, out / CURVE, f"{cfg.preset}: {out.name}")
            if step > start_step or not (out / SUMMARY).exists():  # a no-op resume keeps the real run's figures
                write_json(out / SUMMARY, summary)
            self.say("mixture drawn:\n" + self.loader.format_report())
            if step == start_step:
                self.say(f"nothing to do: the checkpoint is already at step {step} of {cfg.max_steps}")
            else:
                self.say(f"trained {step - start_step} steps in {_hms(wall)}"
                         + (f", median {summary['tokens_per_s_median'] / 1e3:,.1f}k tok/s" if rates else "")
                         + (f", final train loss {summary['final_train_loss']:.4f}" if tail else ""))
            if d.world > 1:
                self.say(f"replicas identical after training: {'yes' if in_sync else 'NO'}")
            for label, name in (("checkpoint", CKPT), ("log", LOG), ("curve", CURVE), ("summary", SUMMARY),
                                ("config", CONFIG)):
                self.say(f"{label + ':':<12}{out / name}")
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
        if args.init_from:
            cfg = init_from(cfg, args.init_from)
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
    if cfg.init_from and ckpt is None:
        if cfg.model.vocab_size != vocab:
            raise ConfigError(f"--init-from {cfg.init_from}: the model has {cfg.model.vocab_size:,} tokens, "
                              f"the manifest's tokenizer {vocab:,}")
        _check_init_tokenizer(cfg.init_from, manifest, vocab)
    # The model's vocabulary is the tokenizer's, whatever the preset said.
    model = cfg.model
    if any(o.startswith("--model.vocab_size=") for o in overrides) and model.vocab_size != vocab:
        raise ConfigError(f"--model.vocab_size={model.vocab_size} but the manifest's tokenizer has {vocab}")
    cfg = apply_overrides(cfg, [f"--model.vocab_size={vocab}"])
    cfg.manifest = manifest
    return cfg, ckpt


def init_from(cfg: TrainConfig, path: str) -> TrainConfig:
    """``cfg`` with the model shape of ``path`` (an HF GPT-2/GPT-Neo folder or a checkpoint),
    whose weights the run then starts from (``--init-from``)."""
    import json

    from train.hf import CONFIG as HF_CONFIG, HFFormatError, gpt_config_from_hf, is_hf_dir

    src = Path(path)
    try:
        if is_hf_dir(src):
            model = gpt_config_from_hf(json.loads((src / HF_CONFIG).read_text(encoding="utf-8")), str(src / HF_CONFIG))
        elif src.is_file():
            from train.model import GPTConfig

            model = GPTConfig.from_dict(load_checkpoint(src)["config"]["model"])
        else:
            raise ConfigError(f"--init-from {path}: no such model folder or checkpoint")
    except (HFFormatError, KeyError, OSError, RuntimeError) as exc:
        raise ConfigError(f"--init-from {path}: {exc}") from None
    return replace(cfg, model=model, init_from=str(src.resolve()))


def _check_init_tokenizer(path: str, manifest: str, vocab: int) -> None:
    """The shards must be in the tokenizer the initial weights were trained with."""
    from curate.mixture.build import load_manifest
    from train.hf import HFFormatError, hf_tokenizer_path, is_hf_dir, load_tokenizer, tokenizer_of_checkpoint

    if is_hf_dir(path):
        try:
            theirs_path = hf_tokenizer_path(path)
        except HFFormatError:
            theirs_path = None  # a folder without a tokenizer: only the vocabulary size can be checked
    else:
        theirs_path = tokenizer_of_checkpoint(dict(load_checkpoint(path)["config"]))[0]
    ours = load_tokenizer(Path(manifest).parent / load_manifest(manifest)["tokenizer"]["path"])
    if theirs_path is None or not Path(theirs_path).exists():
        return
    theirs = load_tokenizer(theirs_path)
    if theirs.hf.get_vocab(with_added_tokens=True) != ours.hf.get_vocab(with_added_tokens=True):
        raise ConfigError(f"--init-from {path}: its tokenizer ({theirs_path}, {theirs.vocab_size:,} tokens) is not "
                          f"the one of {manifest} ({vocab:,} tokens); build the shards with it "
                          "(curate shards --tokenizer ...)")


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
    ap.add_argument("--init-from", help="start from these weights: a Hugging Face GPT-2/GPT-Neo folder "
                                        "(safetensors) or a checkpoint; the model takes its shape")
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
