"""Fine-tune a trained model on supervised examples: fully, its top blocks, or with LoRA.

    python -m train.finetune --checkpoint out/sample/train/ckpt.pt --data examples.jsonl --out out/ft \\
        [--method full|top|lora] [--top-blocks 2] [--lora-r 8] [--lr 3e-4] [--max-steps 300] [--resume]

``--checkpoint`` is a trainer checkpoint or a Hugging Face GPT-2/GPT-Neo folder.
``--data`` is JSONL, one example a line, either

* ``{"prompt": ..., "completion": ...}``: the model reads prompt + completion +
  end-of-text and is trained on the completion's tokens (and the end-of-text)
  only; the prompt is context, as in GPT-3's fine-tuning format; or
* ``{"text": ...}``: plain text (after an end-of-text, as documents follow one
  another in pretraining), trained on every token.

An optional ``"group"`` field keeps examples that share it on one side of the
train/validation split (for example every example cut from one article), so
the held-out loss is measured on material the model never saw; without it the
split is by the example itself. The split is a hash of that key and the seed,
so it does not depend on the order of the file. A line that is not such a
record is counted, reported with its line number, and skipped.

Methods:

* ``full``: every weight trains.
* ``top``: only the top ``--top-blocks`` transformer blocks and the final
  LayerNorm train; the embeddings and lower blocks stay as they are.
* ``lora``: the ``peft`` library adds low-rank adapters (rank ``--lora-r``) to
  every linear layer of the blocks (``c_attn``, ``c_proj``, ``c_fc``); only
  the adapters train. Checkpoints hold the adapters and also the model with
  them merged into its weights, which is what evaluation, generation and
  ``train.export`` read.

The run directory is laid out as a pretraining run's: ``config.json``,
``log.jsonl`` (a record per step, validation records), ``loss.png``,
``ckpt.pt`` (atomic; weights, optimizer, data position, generator states;
``--resume`` continues it bit for bit on a CPU) and ``summary.json``, plus
``best.pt``: the weights with the lowest validation loss. Validation runs every
``--eval-interval`` steps; ``--patience`` evaluations without improvement stop
the run early.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from curate.core.fields import check_fields
from curate.core.files import write_json
from train.checkpoint import FORMAT, VERSION, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from train.data import stable_seed
from train.model import GPT, GPTConfig
from train.train import CONFIG, CURVE, LOG, SUMMARY, RunLog, lr_at, plot_curve, _hms, _median

CKPT = "ckpt.pt"
BEST = "best.pt"
METHODS = ("full", "top", "lora")
DEFAULT_LR = {"full": 1e-4, "top": 3e-4, "lora": 1e-3}
LORA_TARGETS = ("c_attn", "c_proj", "c_fc")


class FinetuneError(ValueError):
    """Bad settings or input, reported as one line."""


@dataclass
class FinetuneConfig:
    """A fine-tuning run; saved as ``config.json`` and in every checkpoint.

    ``model``, ``manifest`` and ``tokenizer`` describe the model as a pretraining
    checkpoint does, so ``train.eval``, ``train.generate`` and ``train.export``
    read a fine-tuning checkpoint like any other.
    """

    base: str = ""                # checkpoint or HF folder the run starts from (absolute)
    data: str = ""                # the JSONL examples (absolute)
    tokenizer: str = ""           # tokenizer the model reads (absolute)
    manifest: str = ""            # the base model's token shards, when it has them
    model: GPTConfig = field(default_factory=GPTConfig)
    method: str = "full"          # full | top | lora
    top_blocks: int = 2           # blocks trained by method "top"
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    seq_len: int = 0              # longest example in tokens; 0 = the model's context (longer ones are cut)
    batch_size: int = 8           # examples per step
    max_steps: int = 300
    lr: float = 0.0               # 0 = the method's default (DEFAULT_LR)
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    lr_decay_steps: int = 0
    weight_decay: float = 0.1     # on the trained matrices (not on LoRA adapters, biases, norms, embeddings)
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    val_fraction: float = 0.1
    eval_interval: int = 25
    patience: int = 4             # evaluations without a better validation loss before stopping; 0 = never
    log_interval: int = 10
    seed: int = 0
    threads: int = 0
    device: str = "auto"          # auto: cuda when available, else cpu
    base_fingerprint: float = 0.0  # sum of the base weights, checked when a LoRA run resumes

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FinetuneConfig":
        check_fields(cls, d, "fine-tuning config fields", FinetuneError)
        d = dict(d)
        d["model"] = GPTConfig.from_dict(d["model"])
        return cls(**d)


# --------------------------------------------------------------------------- data

@dataclass
class Example:
    """One tokenised example: ``ids`` (the whole sequence) and ``first_target``, the
    index of the first token the loss is taken on (1 for plain text)."""

    ids: list[int]
    first_target: int
    line: int


def read_examples(path: str | Path, tokenizer, max_len: int) -> tuple[list[tuple[Example, str]], list[str]]:
    """(example, split key) pairs of a JSONL file, and a message per bad line.

    Sequences longer than ``max_len + 1`` tokens (the model reads ``max_len``) are
    cut at the end; an example whose completion would then be empty is bad.
    """
    eot = tokenizer.eot_id
    records, errors = [], []
    with open(path, encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{path}:{no}: not JSON ({exc.msg})")
                continue
            if not isinstance(rec, dict):
                errors.append(f"{path}:{no}: not a JSON object")
                continue
            if isinstance(rec.get("prompt"), str) and isinstance(rec.get("completion"), str):
                kind = "pair"
            elif isinstance(rec.get("text"), str):
                kind = "text"
            else:
                errors.append(f"{path}:{no}: needs string fields prompt and completion, or text")
                continue
            records.append((no, kind, rec, line.strip()))
    texts = []
    for _, kind, rec, _ in records:
        texts += [rec["prompt"], rec["completion"]] if kind == "pair" else [rec["text"]]
    encoded = iter(tokenizer.encode_batch(texts)) if texts else iter(())
    out = []
    for no, kind, rec, raw in records:
        if kind == "pair":
            p, c = next(encoded).tolist(), next(encoded).tolist()
            if not p:
                p = [eot]  # an empty prompt: the completion starts a document
            ids, first = p + c + [eot], len(p)
        else:
            t = next(encoded).tolist()
            if not t:
                errors.append(f"{path}:{no}: empty text")
                continue
            ids, first = [eot] + t + [eot], 1
        ids = ids[:max_len + 1]
        if first >= len(ids):
            errors.append(f"{path}:{no}: the prompt fills the context ({max_len} tokens): nothing left to train on")
            continue
        key = str(rec["group"]) if "group" in rec else raw
        out.append((Example(ids, first, no), key))
    return out, errors


def split_examples(pairs: list[tuple[Example, str]], val_fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation): a key goes to validation when its hash falls under the fraction."""
    train, val = [], []
    for ex, key in pairs:
        u = stable_seed("finetune-split", seed, key) / 2 ** 64
        (val if u < val_fraction else train).append(ex)
    return train, val


def collate(examples: list[Example], prompt_loss: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs (B, T) and targets (B, T); -1 marks padding and prompt positions.

    Position t predicts token t + 1, so the first target is predicted at
    ``first_target - 1``. Padding comes after each row's last token, where
    causal attention keeps it from changing the row's logits.
    """
    T = max(len(e.ids) for e in examples) - 1
    x = torch.zeros((len(examples), T), dtype=torch.long)
    y = torch.full((len(examples), T), -1, dtype=torch.long)
    for r, e in enumerate(examples):
        ids = torch.tensor(e.ids, dtype=torch.long)
        n = len(e.ids) - 1
        x[r, :n] = ids[:-1]
        y[r, :n] = ids[1:]
        if not prompt_loss:
            y[r, :e.first_target - 1] = -1
    return x, y


class ExampleLoader:
    """Batches of training examples, reshuffled every epoch with a seed of (seed, epoch).

    ``state_dict()`` is the epoch and position, so a resumed run draws the same batches.
    """

    def __init__(self, examples: list[Example], batch_size: int, seed: int):
        if not examples:
            raise FinetuneError("no training examples (every example went to validation or was bad)")
        self.examples, self.batch_size, self.seed = examples, batch_size, seed
        self.epoch, self.pos = 0, 0
        self._order = self._perm(0)

    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng(stable_seed("finetune-order", self.seed, epoch)).permutation(len(self.examples))

    def next_batch(self) -> list[Example]:
        batch = []
        while len(batch) < self.batch_size:
            if self.pos >= len(self._order):
                self.epoch += 1
                self.pos = 0
                self._order = self._perm(self.epoch)
            batch.append(self.examples[self._order[self.pos]])
            self.pos += 1
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._perm(self.epoch)


@torch.no_grad()
def held_out_loss(model: nn.Module, examples: list[Example], batch_size: int) -> tuple[float, int]:
    """Mean cross-entropy over every target token of ``examples`` and the token count.

    Batched by length (longest first) so little padding is computed; the order
    does not change the sum.
    """
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(examples, key=lambda e: -len(e.ids))
    nll, count = 0.0, 0
    for i in range(0, len(order), batch_size):
        x, y = collate(order[i:i + batch_size])
        logits, _ = model(x.to(device))  # (B, T, V)
        y = y.to(device)
        mask = y >= 0
        logp = torch.log_softmax(logits[mask].float(), dim=-1)  # (N, V)
        nll -= float(logp.gather(1, y[mask][:, None]).sum())
        count += int(mask.sum())
    model.train(was)
    return (nll / count if count else float("nan")), count


# --------------------------------------------------------------------------- the model

def fingerprint(model: nn.Module) -> float:
    """A cheap check that two models hold the same weights (the sum of all of them)."""
    return float(sum(p.detach().double().sum() for p in model.state_dict().values()))


def prepare_model(base: GPT, cfg: FinetuneConfig) -> nn.Module:
    """The module to train: ``base`` with the method's parameters trainable (LoRA wrapped by peft)."""
    if cfg.method == "full":
        for p in base.parameters():
            p.requires_grad_(True)
        return base
    if cfg.method == "top":
        n = len(base.transformer.h)
        if not 1 <= cfg.top_blocks <= n:
            raise FinetuneError(f"--top-blocks must be between 1 and {n}, got {cfg.top_blocks}")
        for p in base.parameters():
            p.requires_grad_(False)
        for block in base.transformer.h[n - cfg.top_blocks:]:
            for p in block.parameters():
                p.requires_grad_(True)
        for p in base.transformer.ln_f.parameters():
            p.requires_grad_(True)
        return base
    if cfg.method == "lora":
        import peft

        lora = peft.LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                               target_modules=list(LORA_TARGETS), bias="none")
        return peft.get_peft_model(base, lora)
    raise FinetuneError(f"--method must be one of {', '.join(METHODS)}, not {cfg.method!r}")


def plain_model(model: nn.Module) -> GPT:
    """The trained model as a plain GPT: LoRA adapters merged into a copy, else the model itself."""
    if isinstance(model, GPT):
        return model
    return copy.deepcopy(model).merge_and_unload()


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def make_optimizer(model: nn.Module, cfg: FinetuneConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; weight decay on the base model's linear matrices only."""
    matrices = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, rest = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_matrix = id(p) in matrices and id(p) not in embeddings and "lora_" not in name
        (decay if is_matrix else rest).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             eps=cfg.eps, fused=True)


# --------------------------------------------------------------------------- the run

def resolve(args: argparse.Namespace) -> tuple[FinetuneConfig, dict | None]:
    """The run's config (fresh from the arguments, or the checkpoint's on ``--resume``) and the checkpoint."""
    out = Path(args.out)
    ckpt = None
    if (out / CKPT).exists():
        if not args.resume:
            raise FinetuneError(f"{out} already holds a run ({out / CKPT}); pass --resume to continue it "
                                "or choose another --out")
        ckpt = load_checkpoint(out / CKPT)
        if ckpt.get("kind") != "finetune":
            raise FinetuneError(f"{out / CKPT}: not a fine-tuning checkpoint")
        cfg = FinetuneConfig.from_dict(ckpt["config"])
        if args.max_steps is not None:
            cfg.max_steps = args.max_steps  # --resume --max-steps N trains longer
        if args.patience is not None:
            cfg.patience = args.patience
        return cfg, ckpt
    if not args.checkpoint or not args.data:
        raise FinetuneError("--checkpoint and --data are required for a new run")
    data = Path(args.data)
    if not data.is_file():
        raise FinetuneError(f"{data}: no such file")
    from train.hf import load_any

    loaded = load_any(args.checkpoint)
    if loaded.tokenizer_path is None:
        raise FinetuneError(f"{args.checkpoint}: no tokenizer recorded with the model")
    cfg = FinetuneConfig(base=str(Path(args.checkpoint).resolve()), data=str(data.resolve()),
                         tokenizer=str(Path(loaded.tokenizer_path).resolve()),
                         manifest=str(loaded.manifest) if loaded.manifest else "",
                         model=loaded.model.config)
    for f in fields(FinetuneConfig):
        value = getattr(args, f.name, None)
        if value is not None and f.name not in ("base", "data", "tokenizer", "manifest", "model"):
            setattr(cfg, f.name, value)
    if cfg.method not in METHODS:
        raise FinetuneError(f"--method must be one of {', '.join(METHODS)}, not {cfg.method!r}")
    if not cfg.lr:
        cfg.lr = DEFAULT_LR[cfg.method]
    if not 0 < cfg.val_fraction < 1:
        raise FinetuneError(f"--val-fraction must be between 0 and 1, got {cfg.val_fraction}")
    cfg.base_fingerprint = fingerprint(loaded.model)
    return cfg, None


def finetune(cfg: FinetuneConfig, out: Path, ckpt: dict | None = None, say=print) -> dict:
    """Run (or continue) fine-tuning; returns the summary."""
    from train.hf import load_any, load_tokenizer

    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        tokenizer = load_tokenizer(cfg.tokenizer)
        seq_len = cfg.seq_len or cfg.model.block_size
        if seq_len > cfg.model.block_size:
            raise FinetuneError(f"--seq-len {seq_len} is longer than the model's context ({cfg.model.block_size})")
        pairs, errors = read_examples(cfg.data, tokenizer, seq_len)
        for msg in errors[:5]:
            say(f"skipped: {msg}")
        if len(errors) > 5:
            say(f"skipped {len(errors) - 5} more bad lines")
        train_set, val_set = split_examples(pairs, cfg.val_fraction, cfg.seed)
        if not val_set:
            raise FinetuneError(f"{cfg.data}: no example fell in the validation split; raise --val-fraction")

        torch.manual_seed(cfg.seed)
        if ckpt is not None and cfg.method != "lora":
            base = GPT(cfg.model)
            base.load_state_dict(ckpt["model"])  # the trained weights themselves
        else:
            base = load_any(cfg.base).model
            if ckpt is not None and abs(fingerprint(base) - cfg.base_fingerprint) > 1e-6 * max(1.0, abs(cfg.base_fingerprint)):
                raise FinetuneError(f"{cfg.base}: the base model changed since this LoRA run started")
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
        model = prepare_model(base.to(device), cfg)
        if ckpt is not None and cfg.method == "lora":
            missing = model.load_state_dict(ckpt["trainable"], strict=False)
            if missing.unexpected_keys:
                raise FinetuneError(f"checkpoint adapters do not fit: {missing.unexpected_keys[:3]}")
        optimizer = make_optimizer(model, cfg)
        loader = ExampleLoader(train_set, cfg.batch_size, cfg.seed)
        step, best, bad, tokens_seen = 0, {"step": 0, "val_loss": None}, 0, 0
        if ckpt is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
            loader.load_state_dict(ckpt["data"])
            set_rng_state(ckpt["rng"], device)
            step, best, bad = int(ckpt["step"]), dict(ckpt["best"]), int(ckpt["bad_evals"])
            tokens_seen = int(ckpt.get("tokens", 0))
        out.mkdir(parents=True, exist_ok=True)
        log = RunLog(out / LOG, True, step if ckpt is not None else None)
        write_json(out / CONFIG, cfg.to_dict())
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in plain_model(model).parameters()) if cfg.method != "lora" else \
            sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
        say(f"fine-tune ({cfg.method}): {n_train:,} of {n_all:,} parameters train ({n_train / n_all:.2%}); "
            f"{len(train_set):,} train / {len(val_set):,} validation examples, {len(errors)} bad lines; "
            f"batch {cfg.batch_size}, lr {cfg.lr:g}, steps {step}->{cfg.max_steps}")

        def evaluate() -> float:
            loss, count = held_out_loss(model, val_set, cfg.batch_size)
            log.write({"kind": "val", "step": step, "loss": {"finetune": loss}, "tokens": count})
            say(f"step {step:>5}  val loss {loss:.4f} over {count:,} tokens")
            return loss

        def save() -> None:
            plain = plain_model(model)
            save_checkpoint(out / CKPT, {
                "format": FORMAT, "version": VERSION, "kind": "finetune", "step": step, "config": cfg.to_dict(),
                "model": plain.state_dict(), "trainable": trainable_state(model),
                "optimizer": optimizer.state_dict(), "data": loader.state_dict(), "rng": rng_state(device),
                "best": best, "bad_evals": bad, "tokens": tokens_seen,
            })
            plot_curve(log.records, out / CURVE, f"fine-tune ({cfg.method}): {out.name}")

        def save_best(loss: float) -> None:
            save_checkpoint(out / BEST, {
                "format": FORMAT, "version": VERSION, "kind": "finetune-best", "step": step,
                "config": cfg.to_dict(), "model": plain_model(model).state_dict(), "val_loss": loss})

        if ckpt is None:  # the base model's held-out loss: what fine-tuning has to beat
            loss0 = evaluate()
            best = {"step": 0, "val_loss": loss0}
            save_best(loss0)
        base_loss = next((r["loss"]["finetune"] for r in log.records if r["kind"] == "val" and r["step"] == 0), None)
        model.train()
        rates, t_start, stopped_early = [], time.perf_counter(), False
        start_step = step
        while step < cfg.max_steps and not stopped_early:
            t0 = time.perf_counter()
            lr = lr_at(step, cfg)
            for g in optimizer.param_groups:
                g["lr"] = lr
            batch = loader.next_batch()
            x, y = collate(batch)
            _, loss = model(x.to(device), y.to(device))
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad],
                                                       cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            read = sum(len(e.ids) - 1 for e in batch)  # real positions the model read (padding left out)
            tokens_seen += read
            dt = time.perf_counter() - t0
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"loss is {loss_value} at step {step}; lower --lr")
            if step > start_step + 1:
                rates.append(read / dt)
            log.write({"kind": "train", "step": step, "loss": loss_value, "lr": lr, "grad_norm": float(grad_norm),
                       "tokens": tokens_seen, "batch_tokens": read, "dt": dt, "tokens_per_s": read / dt})
            last = step >= cfg.max_steps
            if step % cfg.log_interval == 0 or step == start_step + 1 or last:
                say(f"step {step:>5}/{cfg.max_steps}  loss {loss_value:.4f}  lr {lr:.2e}  "
                    f"{read / dt / 1e3:,.1f}k tok/s  eta {_hms((cfg.max_steps - step) * dt)}")
            if (cfg.eval_interval and step % cfg.eval_interval == 0) or last:
                val = evaluate()
                if best["val_loss"] is None or val < best["val_loss"]:
                    best, bad = {"step": step, "val_loss": val}, 0
                    save_best(val)
                else:
                    bad += 1
                    if cfg.patience and bad >= cfg.patience:
                        stopped_early = True
                        say(f"early stop: no better validation loss in {bad} evaluations "
                            f"(best {best['val_loss']:.4f} at step {best['step']})")
                save()
        wall = time.perf_counter() - t_start
        summary = {
            "method": cfg.method, "step": step, "stopped_early": stopped_early, "wall_s": wall,
            "trainable_parameters": n_train, "parameters": n_all,
            "train_examples": len(train_set), "val_examples": len(val_set), "bad_lines": len(errors),
            "tokens": tokens_seen, "tokens_per_s_median": _median(rates) if rates else None,
            "base_val_loss": base_loss, "best_val_loss": best["val_loss"], "best_step": best["step"],
            "checkpoint": str(out / CKPT), "best": str(out / BEST), "log": str(out / LOG),
        }
        if step > start_step or not (out / SUMMARY).exists():
            write_json(out / SUMMARY, summary)
        say(f"trained {step - start_step} steps in {_hms(wall)}"
            + (f", median {summary['tokens_per_s_median'] / 1e3:,.1f}k tok/s" if rates else "")
            + (f"; validation loss {base_loss:.4f} -> best {best['val_loss']:.4f} (step {best['step']})"
               if base_loss is not None else ""))
        say(f"best weights: {out / BEST} (python -m train.export --checkpoint {out / BEST} --out DIR)")
        log.close()
        return summary
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.finetune", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="the model to start from: a ckpt.pt or a Hugging Face folder")
    ap.add_argument("--data", help="JSONL of {prompt, completion} or {text} records")
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--resume", action="store_true", help="continue OUT/ckpt.pt")
    ap.add_argument("--method", choices=METHODS)
    ap.add_argument("--top-blocks", dest="top_blocks", type=int, help="blocks trained by --method top (default 2)")
    ap.add_argument("--lora-r", dest="lora_r", type=int, help="LoRA rank (default 8)")
    ap.add_argument("--lora-alpha", dest="lora_alpha", type=float, help="LoRA scale numerator (default 16)")
    ap.add_argument("--lora-dropout", dest="lora_dropout", type=float)
    ap.add_argument("--lr", type=float, help=f"peak learning rate (default by method: {DEFAULT_LR})")
    ap.add_argument("--batch-size", dest="batch_size", type=int)
    ap.add_argument("--max-steps", dest="max_steps", type=int)
    ap.add_argument("--warmup-steps", dest="warmup_steps", type=int)
    ap.add_argument("--weight-decay", dest="weight_decay", type=float)
    ap.add_argument("--seq-len", dest="seq_len", type=int, help="longest example in tokens (default: the context)")
    ap.add_argument("--val-fraction", dest="val_fraction", type=float)
    ap.add_argument("--eval-interval", dest="eval_interval", type=int)
    ap.add_argument("--patience", type=int, help="evaluations without improvement before stopping (0 = never)")
    ap.add_argument("--log-interval", dest="log_interval", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--threads", type=int, help="CPU threads for torch")
    ap.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when available)")
    args = ap.parse_args(argv)
    try:
        try:
            cfg, ckpt = resolve(args)
        except ValueError as exc:  # a file that is not a model (HFFormatError, not a checkpoint)
            raise FinetuneError(str(exc)) from exc
        finetune(cfg, Path(args.out), ckpt)
    except (FinetuneError, OSError) as exc:
        print(f"finetune: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
