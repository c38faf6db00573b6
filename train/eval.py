"""Evaluate a trained GPT: validation loss per source, LAMBADA, GSM8K and text samples.

The benchmarks are scored the way EleutherAI's lm-evaluation-harness scores its
``lambada_openai`` and ``gsm8k`` tasks, so figures can be set beside published ones:

* **LAMBADA** (OpenAI's version): the context is the passage up to its last
  space, the target is the last word *with* its leading space. An item is
  accurate when every target token is the model's greedy (argmax) choice;
  perplexity is ``exp(-mean over items of the target's summed log-likelihood)``.
  Zero-shot uses that plain format. One- and few-shot use GPT-3's
  fill-in-the-blank format (Brown et al. 2020, section 3.1.2), demonstrations
  ``"<passage> ____. -> <word>"`` separated by blank lines, the item itself as
  ``"<passage> ____. ->"`` with target ``" <word>"``.
* **GSM8K**: ``k`` solved problems ``"Question: ...\\nAnswer: ..."`` separated by
  blank lines, then the problem; greedy generation until a blank line,
  ``"Question:"`` or the token limit; the answer is the number after ``####``
  (``exact_match_strict``), else the last number in the generation
  (``exact_match``); commas and ``$`` are ignored. At the sizes this trainer
  reaches on a CPU it is a plumbing check: expect ~0.

Demonstrations are drawn from the benchmark file itself, never the item being
scored, with a seed derived from (task, seed, item index), so a rerun picks the
same ones. Contexts longer than the model's context are cut from the left.

>>> lambada_example("He looked at the old map and then at Helen")
('He looked at the old map and then at', ' Helen')
>>> extract_answer("so 3 + 4 = 7 apples.\\n#### 1,200")
('1200', '1200')

Command line::

    python -m train.eval --checkpoint out/train/ckpt.pt --out out/eval --limit 200
    python -m train.eval --model path/to/hf-model-dir --out out/eval-hf --limit 200 [--manifest M]

``--model`` reads a Hugging Face GPT-2 or GPT-Neo folder into this project's
model (exactly: :mod:`train.hf`), so the harness, its batching and its scoring
are the same code for both; with GPT-2 small's own files the LAMBADA figures
can be set beside lm-eval's (32.6% accuracy, perplexity 40.1).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from curate.mixture.build import load_manifest
from curate.core.files import write_atomic
from curate.mixture.tokenizer import Tokenizer
from train.data import stable_seed, val_batches
from train.model import device_of

REPO = Path(__file__).resolve().parents[1]
# bundled with the code (sample/NOTICE), so a fresh clone evaluates on them
EVAL_DATA = REPO / "sample" / "eval"
DEFAULT_LAMBADA = EVAL_DATA / "lambada_openai_test.jsonl"
DEFAULT_GSM8K = EVAL_DATA / "gsm8k_test.jsonl"
DEFAULT_PROMPTS = ["The", "Once upon a time", "In a statement on Tuesday, the"]

LAMBADA_FEW_SHOT = 15  # GPT-3's K for LAMBADA few-shot (Table 3.2)
GSM8K_SHOTS = 5        # the harness's default for gsm8k
GSM8K_MAX_NEW = 256    # the harness's default generation budget
GSM8K_STOP = ("\n\n", "Question:")
# The command line's GSM8K defaults keep a CPU run of a small model short: at these
# sizes GSM8K is a check that the plumbing works (expect ~0), and a 5-shot prompt
# is longer than a small model's context, so each generated token runs a full
# forward over it (the key/value cache serves prompts that fit). Raise both on a GPU.
CLI_GSM8K_LIMIT = 8
CLI_GSM8K_MAX_NEW = 128

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Progress:
    """A line every ``every`` seconds (and one at the end) for loops that take a while."""

    def __init__(self, label: str, total: int, log: Log | None, every: float = 5.0):
        self.label, self.total, self.log, self.every = label, total, log, every
        self.start = self.last = time.monotonic()
        self.done = 0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.log is not None and (now - self.last >= self.every or self.done >= self.total):
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            self.log(f"{self.label}: {self.done}/{self.total} ({rate:.1f}/s, {now - self.start:.1f}s)")


def _exp(x: float) -> float:
    """exp that gives inf instead of raising OverflowError (a perplexity can be astronomically bad)."""
    return math.exp(x) if x < 700 else float("inf")


def read_jsonl(path: str | Path, limit: int | None = None) -> list[dict]:
    """The records of a JSONL file (the first ``limit`` when given)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
                if limit is not None and len(out) >= limit:
                    break
    return out


def pick_shots(n: int, item: int, k: int, seed: int, task: str) -> list[int]:
    """``k`` distinct indices of ``range(n)`` other than ``item``, fixed by (task, seed, item).

    >>> s = pick_shots(10, 3, 4, seed=0, task="t")
    >>> len(set(s)), 3 in s, s == pick_shots(10, 3, 4, seed=0, task="t")
    (4, False, True)
    """
    k = min(k, n - 1)
    if k <= 0:
        return []
    rng = np.random.default_rng(stable_seed(task, seed, item))
    picked = rng.choice(n - 1, size=k, replace=False)
    return [int(j) + (j >= item) for j in picked]  # skip over the item itself


# --------------------------------------------------------------------------- log-likelihood scoring

def encode_pairs(tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """Token ids of (context, continuation) pairs, split as the harness splits them.

    Whitespace at the end of the context moves to the start of the continuation,
    the pair is encoded as one string, and the continuation is what follows the
    context's own encoding. With a GPT-2-style pre-tokenizer a word keeps its
    leading space (``" Helen"`` is one piece), so this is the tokenisation the
    model saw in training. An empty context becomes the end-of-text token.
    """
    ctxs, conts = [], []
    for ctx, cont in pairs:
        stripped = ctx.rstrip()
        ctxs.append(stripped)
        conts.append(ctx[len(stripped):] + cont)
    whole = tokenizer.encode_batch([c + t for c, t in zip(ctxs, conts)])
    ctx_ids = tokenizer.encode_batch(ctxs)
    out = []
    for c, w, text in zip(ctx_ids, whole, ctxs):
        c, w = c.tolist(), w.tolist()
        cont = w[len(c):]
        out.append((c if text else [tokenizer.eot_id], cont))
    return out


@torch.no_grad()
def score_continuations(model: torch.nn.Module, pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
                        batch_size: int = 32, log: Log | None = None,
                        label: str = "score") -> list[tuple[float, bool]]:
    """(summed log-likelihood, all-greedy) of each continuation given its context.

    The model sees the last ``block_size`` tokens of context + continuation
    minus the final token (the harness's left truncation). Items are batched
    longest first and right-padded: with causal attention, padding after a row's
    last token cannot change that row's logits.
    """
    block = model.config.block_size
    device = device_of(model)
    rows = []
    for ctx, cont in pairs:
        if not ctx or not cont:
            raise ValueError("every pair needs a non-empty context and continuation")
        if len(cont) > block:
            raise ValueError(f"a continuation of {len(cont)} tokens does not fit the context of {block}")
        full = list(ctx) + list(cont)
        rows.append((full[-(block + 1):-1], list(cont)))
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    results: list[tuple[float, bool]] = [(0.0, False)] * len(rows)
    progress = _Progress(label, len(rows), log)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        T = len(rows[chunk[0]][0])
        x = torch.zeros((len(chunk), T), dtype=torch.long)
        r_idx, p_idx, tgt = [], [], []
        for r, i in enumerate(chunk):
            inp, cont = rows[i]
            x[r, :len(inp)] = torch.tensor(inp)
            # position p predicts token p + 1: the continuation is predicted by the last len(cont) positions
            r_idx += [r] * len(cont)
            p_idx += range(len(inp) - len(cont), len(inp))
            tgt += cont
        logits, _ = model(x.to(device))  # (B, T, V)
        picked = logits[torch.tensor(r_idx), torch.tensor(p_idx)].float()  # (N, V): target positions only
        tgt_t = torch.tensor(tgt, device=picked.device)
        token_ll = F.log_softmax(picked, dim=-1).gather(1, tgt_t[:, None])[:, 0]  # (N,)
        missed = (picked.argmax(dim=-1) != tgt_t).float()  # (N,)
        seg = torch.tensor(r_idx, device=picked.device)
        ll = torch.zeros(len(chunk), device=picked.device).index_add_(0, seg, token_ll)  # (B,)
        misses = torch.zeros(len(chunk), device=picked.device).index_add_(0, seg, missed)  # (B,)
        for r, i in enumerate(chunk):
            results[i] = (float(ll[r]), bool(misses[r] == 0))
        progress.update(len(chunk))
    return results


# --------------------------------------------------------------------------- LAMBADA

def lambada_example(text: str) -> tuple[str, str]:
    """(context, target): the passage up to its last space, and the last word with its space."""
    context, _, word = text.rpartition(" ")
    return context, " " + word


def lambada_prompt(texts: Sequence[str], item: int, shots: int, seed: int = 0) -> tuple[str, str]:
    """(context, target) of one item: plain for zero-shot, GPT-3's fill-in-the-blank otherwise.

    >>> lambada_prompt(["Alice was friends with Bob. Alice went to visit her friend Bob",
    ...                 "The cat sat on the mat"], 1, 1)
    ('Alice was friends with Bob. Alice went to visit her friend ____. -> Bob\\n\\nThe cat sat on the ____. ->', ' mat')
    """
    context, target = lambada_example(texts[item])
    if shots == 0:
        return context, target
    demos = []
    for j in pick_shots(len(texts), item, shots, seed, "lambada"):
        c, t = lambada_example(texts[j])
        demos.append(f"{c} ____. ->{t}")
    return "\n\n".join(demos + [f"{context} ____. ->"]), target


def lambada(model: torch.nn.Module, tokenizer: Tokenizer, texts: Sequence[str], limit: int | None = None,
            few_shot: int = LAMBADA_FEW_SHOT, seed: int = 0, batch_size: int = 32,
            log: Log | None = None) -> dict:
    """Accuracy and perplexity zero-shot, one-shot and ``few_shot``-shot.

    Every text is a possible demonstration; the first ``limit`` are scored.
    """
    n = len(texts) if limit is None else min(limit, len(texts))
    settings = {"zero_shot": 0, "one_shot": 1, "few_shot": few_shot}
    out = {}
    for name, k in settings.items():
        if name == "few_shot" and k <= 1:
            continue  # it would repeat the zero- or one-shot figures
        pairs = [lambada_prompt(texts, i, k, seed) for i in range(n)]
        scores = score_continuations(model, encode_pairs(tokenizer, pairs), batch_size, log,
                                     label=f"lambada {name}")
        lls = [ll for ll, _ in scores]
        out[name] = {
            "shots": k,
            "format": "plain" if k == 0 else "fill-in-the-blank",
            "items": n,
            "accuracy": sum(g for _, g in scores) / n if n else None,
            "perplexity": _exp(-sum(lls) / n) if n else None,
        }
    return out


# --------------------------------------------------------------------------- GSM8K

_STRICT = re.compile(r"#### (-?[0-9.,]+)")
_NUMBER = re.compile(r"-?[$0-9.,]*[0-9][$0-9.,]*")


def _normalize_number(s: str) -> str:
    return s.replace(",", "").replace("$", "").strip().rstrip(".")


def gsm8k_gold(answer: str) -> str:
    """The reference answer: the number after ``####``.

    >>> gsm8k_gold("She makes 9 * 2 = $<<9*2=18>>18.\\n#### 18")
    '18'
    """
    return _normalize_number(answer.split("####")[-1])


def extract_answer(generation: str) -> tuple[str | None, str | None]:
    """(strict, flexible) answers of a generation: the number after ``####``, and
    that or else the last number in the text (None when there is none).

    >>> extract_answer("The total is $1,000. Then 12 more")
    (None, '12')
    """
    m = _STRICT.search(generation)
    strict = _normalize_number(m.group(1)) if m else None
    if strict is not None:
        return strict, strict
    numbers = _NUMBER.findall(generation)
    return None, (_normalize_number(numbers[-1]) if numbers else None)


def gsm8k_prompt(items: Sequence[dict], item: int, shots: int, seed: int = 0) -> str:
    """``shots`` solved problems then the question, in the harness's format."""
    demos = [f"Question: {items[j]['question']}\nAnswer: {items[j]['answer']}"
             for j in pick_shots(len(items), item, shots, seed, "gsm8k")]
    return "\n\n".join(demos + [f"Question: {items[item]['question']}\nAnswer:"])


def _last_logits(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Logits (B, V) at each row's last real position of right-padded ``x`` (B, T).

    Generation needs one position per row, and the output head over every
    position is a third of a small model's forward; when the model exposes its
    hidden states (``train.model.GPT.hidden``) only those rows go through the
    head. Any other model (a test stub) goes through ``forward``.
    """
    rows = torch.arange(x.size(0), device=x.device)
    hidden, head = getattr(model, "hidden", None), getattr(model, "lm_head", None)
    if callable(hidden) and isinstance(head, torch.nn.Module):
        h = hidden(x)[rows, lengths - 1]  # (B, C)
        return head(h)[:, :model.config.vocab_size]  # (B, V): the head's padding rows are not tokens
    logits, _ = model(x)  # (B, T, V)
    return logits[rows, lengths - 1]


@torch.no_grad()
def greedy_until(model: torch.nn.Module, tokenizer: Tokenizer, prompts: Sequence[Sequence[int]],
                 max_new_tokens: int, stop: Sequence[str] = GSM8K_STOP, batch_size: int = 32,
                 log: Log | None = None, label: str = "generate") -> list[str]:
    """Greedy continuations of token prompts, each cut before its first stop string.

    A row whose prompt and budget fit the context (and a model with a key/value
    cache, ``train.model.GPT``) continues from the cache, one position's forward
    per token. The other rows share a batch right-padded (causal attention keeps
    padding from changing a row's logits) and run their whole context each
    step; each keeps its own last ``block_size`` tokens, as generating it alone
    would. A row stops when it emits a stop string or the end-of-text token.
    """
    block = model.config.block_size
    device = device_of(model)
    tail = max([len(s) for s in stop] + [1]) + 8  # tokens enough to hold any stop string
    texts = [""] * len(prompts)
    progress = _Progress(label, len(prompts), log)
    cached = callable(getattr(model, "new_cache", None))
    for start in range(0, len(prompts), batch_size):
        ids = {i: list(prompts[i])[-block:] for i in range(start, min(start + batch_size, len(prompts)))}
        new: dict[int, list[int]] = {i: [] for i in ids}
        active = []
        for i in ids:
            if cached and len(ids[i]) + max_new_tokens <= block:
                out = model.generate(torch.tensor([ids[i]], dtype=torch.long, device=device), max_new_tokens,
                                     temperature=0, stop_token=tokenizer.eot_id,
                                     stop=lambda toks: any(s in tokenizer.decode(toks[-tail:]) for s in stop))
                toks = out[0, len(ids[i]):].tolist()
                new[i] = toks[:toks.index(tokenizer.eot_id)] if tokenizer.eot_id in toks else toks
            else:
                active.append(i)
        for _ in range(max_new_tokens):
            if not active:
                break
            lengths = torch.tensor([len(ids[i]) for i in active])
            x = torch.zeros((len(active), int(lengths.max())), dtype=torch.long)
            for r, i in enumerate(active):
                x[r, :len(ids[i])] = torch.tensor(ids[i])
            nxt = _last_logits(model, x.to(device), lengths.to(device)).argmax(dim=-1).tolist()  # (B,)
            still = []
            for i, tok in zip(active, nxt):
                if tok == tokenizer.eot_id:
                    continue
                new[i].append(tok)
                ids[i] = (ids[i] + [tok])[-block:]
                if any(s in tokenizer.decode(new[i][-tail:]) for s in stop):
                    continue
                still.append(i)
            active = still
        for i in ids:
            text = tokenizer.decode(new[i])
            cut = min([text.find(s) for s in stop if s in text] + [len(text)])
            texts[i] = text[:cut]
        progress.update(len(ids))
    return texts


def gsm8k(model: torch.nn.Module, tokenizer: Tokenizer, items: Sequence[dict], limit: int | None = None,
          shots: int = GSM8K_SHOTS, seed: int = 0, max_new_tokens: int = GSM8K_MAX_NEW,
          batch_size: int = 32, log: Log | None = None) -> dict:
    """Few-shot exact match on the first ``limit`` problems (demonstrations from all of them)."""
    n = len(items) if limit is None else min(limit, len(items))
    prompts = [gsm8k_prompt(items, i, shots, seed) for i in range(n)]
    encoded = [e.tolist() for e in tokenizer.encode_batch(prompts)] if n else []
    generations = greedy_until(model, tokenizer, encoded, max_new_tokens, GSM8K_STOP, batch_size, log,
                               label="gsm8k")
    strict_hits = flexible_hits = 0
    examples = []
    for i, gen in enumerate(generations):
        gold = gsm8k_gold(items[i]["answer"])
        strict, flexible = extract_answer(gen)
        strict_hits += strict == gold
        flexible_hits += flexible == gold
        if len(examples) < 3:
            examples.append({"question": items[i]["question"], "gold": gold, "generation": gen,
                             "extracted": flexible})
    return {
        "shots": shots, "items": n, "max_new_tokens": max_new_tokens,
        "exact_match": flexible_hits / n if n else None,
        "exact_match_strict": strict_hits / n if n else None,
        "examples": examples,
    }


# --------------------------------------------------------------------------- validation loss

@torch.no_grad()
def validation_loss(model: torch.nn.Module, manifest_path: str | Path, seq_len: int | None = None,
                    batch_size: int = 8, max_batches: int | None = None, log: Log | None = None, *,
                    sources: Sequence[str] | None = None, autocast: Callable | None = None) -> dict:
    """Per-source loss and perplexity on the validation split, and the token-weighted overall.

    ``sources`` names the sources to measure, in order (default: every source of
    the manifest); one without validation tokens is listed as skipped. The model
    is measured in eval mode and handed back in the mode it came in.

    A batch is scored in one of two ways, and each caller keeps its own so its
    files stay comparable with the runs before it:

    * by default (``python -m train.eval``), the float32 cross-entropy of the
      full logits, summed over the batch's tokens: a figure that does not depend
      on the precision the model was trained in;
    * with ``autocast`` (the trainer's mixed-precision context), the model's own
      training loss computed under that context, times the batch's tokens, so
      the validation curve in ``log.jsonl`` is the same quantity as the training
      loss beside it.

    The two agree to float32 rounding (about 1e-7 relative) on a CPU.
    """
    seq_len = seq_len or model.config.block_size
    device = device_of(model)
    if sources is None:
        sources = [src["name"] for src in load_manifest(manifest_path)["sources"]]
    was_training = model.training
    model.eval()
    results: dict[str, dict] = {}
    total_nll, total_tokens = 0.0, 0
    for name in sources:
        nll, tokens = 0.0, 0
        for x, y in val_batches(manifest_path, name, seq_len, batch_size, max_batches):
            if autocast is None:
                logits, _ = model(x.to(device))  # (B, T, V)
                nll += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(),
                                             y.reshape(-1).to(device), reduction="sum"))
            else:
                with autocast():
                    _, loss = model(x.to(device), y.to(device))  # mean over the batch's tokens
                nll += loss.item() * y.numel()
            tokens += y.numel()
        if tokens == 0:
            results[name] = {"skipped": "no validation tokens"}
            if log:
                log(f"val {name}: skipped, no validation tokens")
            continue
        results[name] = {"loss": nll / tokens, "perplexity": _exp(nll / tokens), "tokens": tokens}
        total_nll += nll
        total_tokens += tokens
        if log:
            log(f"val {name}: loss {nll / tokens:.4f} over {tokens:,} tokens")
    model.train(was_training)
    overall = ({"loss": total_nll / total_tokens, "perplexity": _exp(total_nll / total_tokens),
                "tokens": total_tokens} if total_tokens else {"skipped": "no source has validation tokens"})
    return {"seq_len": seq_len, "max_batches": max_batches, "sources": results, "overall": overall}


# --------------------------------------------------------------------------- samples

@torch.no_grad()
def sample_texts(model: torch.nn.Module, tokenizer: Tokenizer, prompts: Iterable[str], max_new_tokens: int = 100,
                 temperature: float = 0.8, top_k: int | None = 200, seed: int = 0) -> list[dict]:
    """A continuation per prompt, seeded per (seed, prompt number), stopping at end-of-text."""
    device = device_of(model)
    out = []
    for i, prompt in enumerate(prompts):
        ids = tokenizer.encode_batch([prompt])[0].tolist() if prompt else []
        ids = (ids or [tokenizer.eot_id])[-model.config.block_size:]
        gen = torch.Generator(device=device).manual_seed(stable_seed("sample", seed, i) % 2 ** 63)
        idx = torch.tensor([ids], dtype=torch.long, device=device)
        result = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=gen,
                                stop_token=tokenizer.eot_id)
        new = result[0, len(ids):].tolist()
        if tokenizer.eot_id in new:
            new = new[:new.index(tokenizer.eot_id)]
        out.append({"prompt": prompt, "completion": tokenizer.decode(new)})
    return out


# --------------------------------------------------------------------------- everything

def evaluate(model: torch.nn.Module, tokenizer: Tokenizer, manifest_path: str | Path | None = None,
             lambada_path: str | Path | None = None, gsm8k_path: str | Path | None = None,
             limit: int | None = None, shots: int = LAMBADA_FEW_SHOT, gsm8k_shots: int = GSM8K_SHOTS,
             gsm8k_limit: int | None = None, gsm8k_max_new_tokens: int = GSM8K_MAX_NEW,
             prompts: Sequence[str] = (), max_new_tokens: int = 100, temperature: float = 0.8,
             top_k: int | None = 200, seed: int = 0, batch_size: int = 32, val_batch_size: int = 8,
             val_max_batches: int | None = None, log: Log | None = _stderr) -> dict:
    """Every evaluation that has its input; a missing input is recorded as skipped.
    ``python -m train.eval`` calls it with a checkpoint's model; tests/train/test_eval.py
    runs it on a small real shard set.
    """
    model.eval()
    results: dict = {"settings": {
        "limit": limit, "shots": shots, "gsm8k_shots": gsm8k_shots, "gsm8k_limit": gsm8k_limit,
        "gsm8k_max_new_tokens": gsm8k_max_new_tokens, "max_new_tokens": max_new_tokens,
        "temperature": temperature, "top_k": top_k, "seed": seed, "block_size": model.config.block_size,
        "manifest": str(manifest_path) if manifest_path else None,
        "lambada": str(lambada_path) if lambada_path else None,
        "gsm8k": str(gsm8k_path) if gsm8k_path else None,
    }}
    seconds = results["seconds"] = {}

    def skipped(what: str, path) -> dict:
        why = "no file given" if path is None else f"no file at {path}"
        if log:
            log(f"{what}: skipped, {why}")
        return {"skipped": why}

    t = time.monotonic()
    if manifest_path is not None and Path(manifest_path).exists():
        results["val"] = validation_loss(model, manifest_path, batch_size=val_batch_size,
                                         max_batches=val_max_batches, log=log)
    else:
        results["val"] = skipped("validation loss", manifest_path)
    seconds["val"] = time.monotonic() - t

    t = time.monotonic()
    if limit == 0:
        results["lambada"] = {"skipped": "limit 0"}
    elif lambada_path is not None and Path(lambada_path).exists():
        texts = [r["text"] for r in read_jsonl(lambada_path)]
        results["lambada"] = lambada(model, tokenizer, texts, limit, shots, seed, batch_size, log)
    else:
        results["lambada"] = skipped("lambada", lambada_path)
    seconds["lambada"] = time.monotonic() - t

    t = time.monotonic()
    caps = [x for x in (limit, gsm8k_limit) if x is not None]
    n = min(caps) if caps else None
    if n == 0:
        results["gsm8k"] = {"skipped": "limit 0"}
    elif gsm8k_path is not None and Path(gsm8k_path).exists():
        results["gsm8k"] = gsm8k(model, tokenizer, read_jsonl(gsm8k_path), n, gsm8k_shots, seed,
                                 gsm8k_max_new_tokens, batch_size, log)
    else:
        results["gsm8k"] = skipped("gsm8k", gsm8k_path)
    seconds["gsm8k"] = time.monotonic() - t

    t = time.monotonic()
    results["samples"] = sample_texts(model, tokenizer, prompts, max_new_tokens, temperature, top_k, seed)
    seconds["samples"] = time.monotonic() - t
    return results


def _cell(value, spec: str, width: int) -> str:
    return f"{'n/a' if value is None else format(value, spec):>{width}}"


def format_results(results: dict) -> str:
    """The figures as a small table.

    >>> print(format_results({"gsm8k": {"skipped": "limit 0"}}))
    evaluation                     accuracy   perplexity     loss  items/tokens
    gsm8k                         skipped: limit 0
    """
    lines = [f"{'evaluation':<28}  {'accuracy':>9}  {'perplexity':>11}  {'loss':>7}  {'items/tokens':>12}"]
    val = results.get("val", {})
    rows = list(val.get("sources", {}).items()) + ([("overall", val["overall"])] if "overall" in val else [])
    for name, r in rows:
        label = f"val {name}"
        if "skipped" in r:
            lines.append(f"{label:<28}  skipped: {r['skipped']}")
        else:
            lines.append(f"{label:<28}  {'':>9}  {_cell(r['perplexity'], '.2f', 11)}  "
                         f"{_cell(r['loss'], '.4f', 7)}  {r['tokens']:>12,}")
    if "skipped" in val:
        lines.append(f"{'val':<28}  skipped: {val['skipped']}")
    lam = results.get("lambada", {})
    if "skipped" in lam:
        lines.append(f"{'lambada':<28}  skipped: {lam['skipped']}")
    for name, r in lam.items():
        if isinstance(r, dict) and "accuracy" in r:
            label = f"lambada {name} (k={r['shots']})"
            lines.append(f"{label:<28}  {_cell(r['accuracy'], '.2%', 9)}  {_cell(r['perplexity'], '.2f', 11)}  "
                         f"{'':>7}  {r['items']:>12,}")
    g = results.get("gsm8k", {})
    if "skipped" in g:
        lines.append(f"{'gsm8k':<28}  skipped: {g['skipped']}")
    elif g:
        label = f"gsm8k (k={g['shots']}, strict {_cell(g['exact_match_strict'], '.1%', 0)})"
        lines.append(f"{label:<28}  {_cell(g['exact_match'], '.2%', 9)}  {'':>11}  {'':>7}  {g['items']:>12,}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.eval", description=__doc__.split("\n\n")[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="checkpoint written by the trainer (or the fine-tuner)")
    which.add_argument("--model", help="a Hugging Face GPT-2/GPT-Neo folder (an export, or GPT-2's own files); "
                                       "its tokenizer is the folder's")
    ap.add_argument("--out", required=True, help="folder for eval.json and samples.txt")
    ap.add_argument("--manifest", help="token-shard manifest for the validation loss (default: the one the "
                                       "checkpoint trained on; with --model, none unless given)")
    ap.add_argument("--lambada", default=str(DEFAULT_LAMBADA), help="LAMBADA (OpenAI) JSONL, records {'text'}")
    ap.add_argument("--gsm8k", default=str(DEFAULT_GSM8K), help="GSM8K JSONL, records {'question', 'answer'}")
    ap.add_argument("--limit", type=int, help="items scored per benchmark (default: all)")
    ap.add_argument("--shots", type=int, default=LAMBADA_FEW_SHOT, help="LAMBADA few-shot K (GPT-3: 15)")
    ap.add_argument("--gsm8k-shots", type=int, default=GSM8K_SHOTS)
    ap.add_argument("--gsm8k-limit", type=int, default=CLI_GSM8K_LIMIT,
                    help=f"GSM8K problems (default {CLI_GSM8K_LIMIT}; also capped by --limit). A prompt longer "
                         "than the context leaves no room for the key/value cache: every generated token is "
                         "then a full forward pass, so this is the slow benchmark")
    ap.add_argument("--gsm8k-max-new-tokens", type=int, default=CLI_GSM8K_MAX_NEW,
                    help=f"generation budget per problem (default {CLI_GSM8K_MAX_NEW}; the harness uses "
                         f"{GSM8K_MAX_NEW}, which most reference solutions fit in)")
    ap.add_argument("--prompt", action="append", help="a sample prompt (repeatable)")
    ap.add_argument("--max-new-tokens", type=int, default=100, help="tokens per text sample")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--val-batches", type=int, help="validation batches per source (default: all)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int,
                    help="CPU threads for torch (default: torch's choice). On a CPU other processes are "
                         "using, 1 can be several times faster than threads that wait for each other")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from train.hf import load_any, load_tokenizer

    src = Path(args.checkpoint or args.model)
    if args.checkpoint and not src.is_file():
        print(f"error: {src}: no such checkpoint", file=sys.stderr)
        return 2
    try:
        loaded = load_any(src, device=args.device)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = loaded.model
    manifest = Path(args.manifest) if args.manifest else loaded.manifest
    if manifest is not None and not manifest.is_file():
        print(f"error: {manifest}: no manifest (the tokenizer comes from it); pass --manifest", file=sys.stderr)
        return 2
    tok_path = loaded.tokenizer_path
    if tok_path is None and manifest is not None:
        tok_path = manifest.parent / load_manifest(manifest)["tokenizer"]["path"]
    if tok_path is None:
        print(f"error: {src}: no tokenizer recorded with the model; pass --manifest", file=sys.stderr)
        return 2
    tokenizer = load_tokenizer(tok_path)
    if tokenizer.vocab_size != model.config.vocab_size:
        print(f"error: {tok_path}: tokenizer has {tokenizer.vocab_size:,} tokens, the model "
              f"{model.config.vocab_size:,}", file=sys.stderr)
        return 2
    run = {"step": loaded.source.get("step"), "model": model.config.to_dict()}

    t0 = time.monotonic()
    results = evaluate(model, tokenizer, manifest, args.lambada, args.gsm8k, limit=args.limit, shots=args.shots,
                       gsm8k_shots=args.gsm8k_shots, gsm8k_limit=args.gsm8k_limit,
                       gsm8k_max_new_tokens=args.gsm8k_max_new_tokens,
                       prompts=args.prompt or DEFAULT_PROMPTS, max_new_tokens=args.max_new_tokens,
                       temperature=args.temperature, top_k=args.top_k, seed=args.seed,
                       batch_size=args.batch_size, val_max_batches=args.val_batches)
    results["seconds"]["total"] = time.monotonic() - t0
    results["checkpoint"] = loaded.source["path"]
    results["step"] = run.get("step")
    results["model"] = run.get("model")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "eval.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_atomic(out / "samples.txt", "".join(
        f"=== prompt {i + 1}: {s['prompt']!r}\n{s['prompt']}{s['completion']}\n\n"
        for i, s in enumerate(results["samples"])))
    print(format_results(results))
    print(f"wrote {out / 'eval.json'} and {out / 'samples.txt'} in {results['seconds']['total']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
