"""Continue a prompt with a trained model: greedy, sampling, or beam search.

    python -m train.generate --checkpoint out/sample/train/ckpt.pt --prompt "Once upon a time" \\
        [--max-new-tokens 50] [--temperature 0.8] [--top-k 40] [--top-p 0.95] [--beams 4] [--seed 0]

``--checkpoint`` is a checkpoint of this trainer (pretraining or fine-tuning)
or a Hugging Face GPT-2/GPT-Neo directory (an export, or a model a user has).
stdout gets the prompt and its continuation as plain text and nothing else;
``--stats`` writes the token count and rate to stderr.

Decoding, one step per new token, each step reusing the keys and values of the
earlier tokens (the key/value cache) while the sequence fits the context:

* ``--temperature 0``: greedy, the most likely token each step.
* otherwise sampling from the softmax of logits / temperature, restricted to the
  ``top_k`` most likely tokens and then to the smallest set of them whose
  probability reaches ``top_p`` (nucleus sampling); ``--seed`` fixes the draw.
* ``--beams B`` (B > 1): beam search. It follows transformers' definition
  (``generate(num_beams=B, do_sample=False)``), so an exported model gives the
  same tokens in both: each step keeps the 2B best continuations of the B
  running beams by summed log-probability; those ending in end-of-text that
  rank in the first B become finished hypotheses scored
  ``sum_logprob / generated_length ** length_penalty`` (the best B are kept),
  and the best B unfinished ones run on. The search ends at the token budget,
  or once no running beam could still beat the worst of B finished hypotheses
  (``early_stopping`` False: judged at the current length; "never": at the
  longest possible length when ``length_penalty`` > 0; True: as soon as B
  hypotheses are finished). The best finished hypothesis is the answer.

All decoding ends at the end-of-text token or after ``max_new_tokens``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from train.model import GPT, device_of

NEG = -1.0e9  # the score that rules a candidate out (transformers uses the same constant)


class Decoder:
    """Next-token logits for growing sequences, with or without the key/value cache.

    ``start(prompt)`` runs the prompt; ``step(seqs, rows)`` runs the last token of
    each sequence, after reordering the cached rows by ``rows`` (beam search keeps
    the beams it extends). Without the cache, or once a sequence is longer than
    the context, every step runs the last ``block_size`` tokens afresh.
    """

    def __init__(self, model: GPT, use_cache: bool = True):
        self.model = model
        self.block = model.config.block_size
        self.use_cache = use_cache
        self.cache: list[dict] | None = None

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.model._real_logits(h[:, -1, :]).float()  # (B, V): the last position only

    def start(self, prompt: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) after ``prompt`` (B, T)."""
        if self.use_cache and prompt.size(1) <= self.block:
            self.cache = self.model.new_cache()
            return self._logits(self.model.hidden(prompt, self.cache))
        self.cache = None
        return self._logits(self.model.hidden(prompt[:, -self.block:]))

    def step(self, seqs: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, V) after ``seqs`` (B, L), whose first L-1 tokens were run before
        as rows ``rows`` of the previous call (None: the same rows)."""
        if self.cache is not None and seqs.size(1) <= self.block:
            if rows is not None:
                for layer in self.cache:  # (B_old, H, S, D) -> (B, H, S, D)
                    layer["k"], layer["v"] = layer["k"][rows], layer["v"][rows]
            return self._logits(self.model.hidden(seqs[:, -1:], self.cache))
        self.cache = None  # past the context every position moves: recompute
        return self._logits(self.model.hidden(seqs[:, -self.block:]))


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Logits (B, V) with everything outside the top ``k`` and then outside the nucleus
    ``p`` set to -inf. The nucleus is the smallest set of most likely tokens whose
    probability reaches ``p`` (always at least one token).

    >>> filter_logits(torch.tensor([[3.0, 2.0, 1.0, 0.0]]), top_k=3).isinf().tolist()
    [[False, False, False, True]]
    >>> filter_logits(torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])), top_p=0.8).isinf().tolist()
    [[False, False, True, True]]
    """
    if top_k is not None and 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # (B, V)
        # drop a token when the tokens before it already reach p; the first never goes
        drop_sorted = (cum - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.no_grad()
def sample(model: GPT, prompt: list[int], max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, seed: int = 0,
           eos_id: int | None = None, use_cache: bool = True) -> list[int]:
    """New tokens after ``prompt``: greedy for ``temperature == 0``, else sampled.

    Stops after ``eos_id`` (which is included) or ``max_new_tokens`` tokens.
    """
    device = device_of(model)
    gen = torch.Generator(device=device).manual_seed(seed)
    dec = Decoder(model, use_cache)
    seq = torch.tensor([prompt], dtype=torch.long, device=device)  # (1, T)
    new: list[int] = []
    logits = dec.start(seq) if max_new_tokens > 0 else None
    for i in range(max_new_tokens):
        if temperature == 0:
            nxt = int(logits.argmax(dim=-1))
        else:
            probs = F.softmax(filter_logits(logits / temperature, top_k, top_p), dim=-1)
            nxt = int(torch.multinomial(probs, 1, generator=gen))
        new.append(nxt)
        if nxt == eos_id or i == max_new_tokens - 1:
            break
        seq = torch.cat([seq, torch.tensor([[nxt]], device=device)], dim=1)
        logits = dec.step(seq)
    return new


@torch.no_grad()
def beam_search(model: GPT, prompt: list[int], max_new_tokens: int, num_beams: int,
                length_penalty: float = 1.0, early_stopping: bool | str = False,
                eos_id: int | None = None, use_cache: bool = True) -> list[int]:
    """New tokens of the best beam-search hypothesis (ending with ``eos_id`` when it did).

    The rules are transformers' (see the module docstring), so the result equals
    ``GPT2LMHeadModel/GPTNeoForCausalLM.generate(num_beams=..., length_penalty=...,
    early_stopping=...)`` on the exported model.
    """
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    if max_new_tokens <= 0:
        return []
    device = device_of(model)
    n, T = num_beams, len(prompt)
    K = 2 * n  # candidates kept per step: enough that n survive even if n of them just ended
    dec = Decoder(model, use_cache)
    logits = dec.start(torch.tensor([prompt], dtype=torch.long, device=device)).expand(n, -1)  # (n, V)
    if dec.cache is not None:  # every beam starts from the prompt's keys and values
        for layer in dec.cache:
            layer["k"], layer["v"] = layer["k"].expand(n, -1, -1, -1), layer["v"].expand(n, -1, -1, -1)
    running = torch.tensor([prompt] * n, dtype=torch.long, device=device)  # (n, L)
    # Only the first beam is live at the start, so the n beams do not all pick the same tokens.
    running_scores = torch.full((n,), NEG, device=device)
    running_scores[0] = 0.0
    finished: list[list[int]] = [[] for _ in range(n)]  # new tokens of each finished slot
    finished_scores = torch.full((n,), NEG, device=device)
    finished_real = torch.zeros(n, dtype=torch.bool, device=device)  # slot holds a real hypothesis
    improvable = True
    for step in range(max_new_tokens):
        V = logits.size(-1)
        scores = (F.log_softmax(logits, dim=-1) + running_scores[:, None]).reshape(-1)  # (n * V,)
        top_scores, top_idx = torch.topk(scores, K)  # (K,), best first
        beam, token = top_idx // V, top_idx % V
        last = step == max_new_tokens - 1
        ends = torch.ones(K, dtype=torch.bool, device=device) if last else (
            token == eos_id if eos_id is not None else torch.zeros(K, dtype=torch.bool, device=device))

        # finished hypotheses: candidates among the first n that end here, length-penalised
        gen_len = step + 1
        cand = top_scores / (gen_len ** length_penalty)
        if early_stopping is True and bool(finished_real.all()):
            cand = cand + NEG
        if not improvable:
            cand = cand + NEG
        first_n = torch.arange(K, device=device) < n
        just = ends & first_n
        cand = cand + (~just).float() * NEG
        merged = torch.cat([finished_scores, cand])
        keep = torch.topk(merged, n).indices.tolist()
        new_finished, new_scores, new_real = [], [], []
        for j in keep:
            if j < n:
                new_finished.append(finished[j])
                new_real.append(bool(finished_real[j]))
            else:
                c = j - n
                new_finished.append(running[beam[c], T:].tolist() + [int(token[c])])
                new_real.append(bool(just[c]))
            new_scores.append(float(merged[j]))
        finished = new_finished
        finished_scores = torch.tensor(new_scores, device=device)
        finished_real = torch.tensor(new_real, dtype=torch.bool, device=device)

        # the n best candidates that did not end run on
        alive = top_scores + ends.float() * NEG
        pick = torch.topk(alive, n).indices  # (n,)
        running_scores = alive[pick]
        rows = beam[pick]
        running = torch.cat([running[rows], token[pick, None]], dim=1)  # (n, L + 1)

        if last or bool(ends.all()):
            break
        # could a running beam still beat the worst finished one?
        if early_stopping == "never" and length_penalty > 0.0:
            best_len = max_new_tokens
        else:
            best_len = gen_len
        best_possible = running_scores[0] / (best_len ** length_penalty)
        worst = torch.where(finished_real, finished_scores.min(), torch.tensor(NEG, device=device))
        improvable = improvable and bool((best_possible > worst).any())
        if not improvable or (early_stopping is True and bool(finished_real.all())):
            break
        logits = dec.step(running, rows)
    return finished[int(torch.argmax(finished_scores))]


def _early_stopping(text: str) -> bool | str:
    low = text.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    if low == "never":
        return "never"
    raise argparse.ArgumentTypeError(f"--early-stopping takes true, false or never, not {text!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a trainer checkpoint (ckpt.pt) or a Hugging Face model folder")
    ap.add_argument("--prompt", required=True, help="the text to continue")
    ap.add_argument("--max-new-tokens", type=int, default=50)
    ap.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    ap.add_argument("--top-k", type=int, help="sample among the k most likely tokens only")
    ap.add_argument("--top-p", type=float, help="sample within the nucleus of probability p")
    ap.add_argument("--beams", type=int, default=1, help="beam search with this many beams (> 1)")
    ap.add_argument("--length-penalty", type=float, default=1.0,
                    help="beam score = summed log-prob / length ** this (transformers' default 1.0)")
    ap.add_argument("--early-stopping", type=_early_stopping, default=False, help="true, false (default) or never")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cache", action="store_true", help="recompute every position each step (for comparison)")
    ap.add_argument("--tokenizer", help="tokenizer.json (default: the one recorded with the model)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, help="CPU threads for torch")
    ap.add_argument("--stats", action="store_true", help="token count and tokens/s on stderr")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.temperature < 0 or args.max_new_tokens < 0 or args.beams < 1:
        print("generate: error: --temperature and --max-new-tokens must be >= 0, --beams >= 1", file=sys.stderr)
        return 2

    from train.hf import HFFormatError, load_any, load_tokenizer

    try:
        loaded = load_any(args.checkpoint, device=args.device)
        tok_path = Path(args.tokenizer) if args.tokenizer else loaded.tokenizer_path
        if tok_path is None:
            raise HFFormatError(f"{args.checkpoint}: no tokenizer recorded with the model; pass --tokenizer")
        tokenizer = load_tokenizer(tok_path)
    except (OSError, ValueError) as exc:
        print(f"generate: error: {exc}", file=sys.stderr)
        return 2
    model = loaded.model
    if tokenizer.vocab_size != model.config.vocab_size:
        print(f"generate: error: {tok_path}: tokenizer has {tokenizer.vocab_size:,} tokens, the model "
              f"{model.config.vocab_size:,}", file=sys.stderr)
        return 2
    ids = tokenizer.encode_batch([args.prompt])[0].tolist() if args.prompt else []
    ids = ids or [tokenizer.eot_id]  # an empty prompt starts a new document
    t0 = time.perf_counter()
    if args.beams > 1:
        new = beam_search(model, ids, args.max_new_tokens, args.beams, args.length_penalty, args.early_stopping,
                          eos_id=tokenizer.eot_id, use_cache=not args.no_cache)
    else:
        new = sample(model, ids, args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.seed,
                     eos_id=tokenizer.eot_id, use_cache=not args.no_cache)
    dt = time.perf_counter() - t0
    text = [t for t in new if t != tokenizer.eot_id]
    sys.stdout.write(args.prompt + tokenizer.decode(text) + "\n")
    if args.stats:
        print(f"generated {len(new)} tokens in {dt:.3f}s ({len(new) / max(dt, 1e-9):.1f} tokens/s, "
              f"{'beams ' + str(args.beams) if args.beams > 1 else 'sampling'}, "
              f"cache {'off' if args.no_cache else 'on'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
