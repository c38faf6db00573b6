"""A GPT in the shape of GPT-2 and GPT-3, readable top to bottom.

The architecture is GPT-2's (Radford et al. 2019) as GPT-3 (Brown et al. 2020,
section 2.1) reuses it: learned token and position embeddings, a stack of
pre-LayerNorm blocks (attention then a 4x GELU MLP, each added back to the
residual stream), a final LayerNorm, and an output head that shares its matrix
with the token embedding. GPT-3's one change is that the layers alternate
between dense causal attention and *locally banded* attention, where a token
sees only the last ``local_window`` positions; the banded layers here really do
less work (chunked attention, ``O(T * 2w)`` instead of ``O(T^2)``), they are not
a dense layer with a mask.

The token table is padded to a multiple of 64 rows because matrix multiplies
whose sizes are multiples of 64 run faster on GPUs; the padded rows are never a
valid token, so :meth:`GPT.forward` slices their logits off and callers see the
real vocabulary only.

>>> import torch
>>> cfg = GPTConfig.preset("tiny", vocab_size=100, n_layer=2, block_size=32, local_window=8)
>>> cfg.padded_vocab_size
128
>>> model = GPT(cfg)
>>> x = torch.zeros(2, 20, dtype=torch.long)
>>> logits, loss = model(x, targets=x)
>>> tuple(logits.shape), loss.shape
((2, 20, 100), torch.Size([]))
>>> model.layer_kinds()
['dense', 'banded']
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from curate.core.fields import check_fields

VOCAB_MULTIPLE = 64  # token table rows are padded to a multiple of this

# GPT-3 Table 2.1 (n_params, n_layers, d_model, n_heads, d_head; every model has
# a 2048-token context). Two rows of the printed table do not multiply out:
# XL lists 24 heads of 128 (= 3072, not d_model 2048) and 13B lists d_model 5140
# (not a multiple of its 40 heads). The parameter counts in the paper only come
# out with the attention as wide as d_model, so XL keeps d_head 128 with 16
# heads and 13B uses 5120 = 40 x 128; both then match the paper's totals.
GPT3_TABLE = {
    #  name      n_layer d_model n_head   paper's n_params
    "small": (12, 768, 12),    # 125M
    "medium": (24, 1024, 16),  # 350M
    "large": (24, 1536, 16),   # 760M
    "xl": (24, 2048, 16),      # 1.3B
    "2.7b": (32, 2560, 32),    # 2.7B
    "6.7b": (32, 4096, 32),    # 6.7B
    "13b": (40, 5120, 40),     # 13.0B
    "175b": (96, 12288, 96),   # 175.0B
}
GPT2_VOCAB = 50257  # GPT-2/GPT-3's BPE vocabulary

# Small models for a CPU: ``tiny`` trains in minutes on two cores and keeps the
# tests fast; ``10m`` (~10M parameters with a 4k vocabulary) is the benchmark's
# second size.
SMALL_PRESETS = {
    "tiny": dict(n_layer=4, n_embd=128, n_head=4, block_size=256, local_window=64, vocab_size=4096),
    "10m": dict(n_layer=8, n_embd=320, n_head=5, block_size=256, local_window=64, vocab_size=4096),
}


@dataclass
class GPTConfig:
    """Shape of the model.

    ``local_window`` is the band width of the sparse layers: a token in a banded
    layer attends to itself and the ``local_window - 1`` tokens before it.
    ``0`` or ``None`` makes every layer dense. Layer ``i`` is banded when
    ``i % sparse_every == sparse_every - 1``, so the default 2 alternates dense,
    banded, dense, ... as GPT-3 does (the paper does not give the band width;
    256 is our choice for the GPT-3 presets).

    ``qkv_bias`` is off by default so that every model has an exact Hugging Face
    twin: GPT-Neo (the HF architecture with GPT-3's dense/local alternation) has
    no biases on its query, key and value projections, and of the three only the
    query bias could change what the model computes (a key bias adds the same
    amount to every score of a query, which the softmax cancels; a value bias
    passes through the attention weights, which sum to one, into the output
    projection's bias). Models imported from GPT-2 turn it on; configs saved
    before the field existed had it on and load that way.

    >>> GPTConfig.preset("small").n_head, GPTConfig.preset("small", n_layer=2).n_layer
    (12, 2)
    >>> GPTConfig.preset("nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown model preset 'nope' (known: tiny, 10m, small, medium, large, xl, 2.7b, 6.7b, 13b, 175b)
    """

    vocab_size: int = GPT2_VOCAB  # the real vocabulary; the table is padded (padded_vocab_size)
    block_size: int = 2048        # context length
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0          # GPT-3 does not use dropout in pre-training
    bias: bool = True             # GPT-2 has biases in Linear and LayerNorm
    qkv_bias: bool = False        # biases on the query/key/value projection (GPT-2 has them, GPT-Neo not)
    local_window: int | None = 256
    sparse_every: int = 2

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if self.local_window is not None and self.local_window < 0:
            raise ValueError(f"local_window must be >= 0, got {self.local_window}")
        if self.sparse_every < 1:
            raise ValueError(f"sparse_every must be >= 1, got {self.sparse_every}")

    @property
    def padded_vocab_size(self) -> int:
        return -(-self.vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def is_banded(self, layer: int) -> bool:
        return bool(self.local_window) and layer % self.sparse_every == self.sparse_every - 1

    @classmethod
    def preset(cls, name: str, **overrides) -> "GPTConfig":
        """A named shape (GPT-3 Table 2.1, or ``tiny``/``10m``) with fields overridden."""
        key = name.lower()
        if key in SMALL_PRESETS:
            base = dict(SMALL_PRESETS[key])
        elif key in GPT3_TABLE:
            n_layer, n_embd, n_head = GPT3_TABLE[key]
            base = dict(n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=2048, local_window=256)
        else:
            known = ", ".join([*SMALL_PRESETS, *GPT3_TABLE])
            raise ValueError(f"unknown model preset {name!r} (known: {known})")
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error, not silently dropped.

        A config saved before ``qkv_bias`` existed describes a model with q/k/v biases.

        >>> GPTConfig.from_dict({"n_layer": 2}).qkv_bias
        True
        """
        check_fields(cls, d, "GPTConfig fields")
        return cls(**{"qkv_bias": True, **d})


def device_of(model: nn.Module) -> torch.device:
    """The device a model's parameters (or buffers) are on; the CPU for an empty module."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


# --------------------------------------------------------------------------- attention

def band_mask(T: int, window: int, device=None) -> torch.Tensor:
    """Boolean (T, T) mask, True where query i may attend key j: ``i - window < j <= i``.

    The dense reference for :func:`banded_attention` (tests compare the two).

    >>> band_mask(4, 2).int().tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    return (j <= i) & (j > i - window)


def banded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int,
                     dropout_p: float = 0.0) -> torch.Tensor:
    """Causal attention within a band of ``window`` keys, in ``O(T * 2 * window)``.

    q, k, v are (B, H, T, D). The sequence is cut into blocks of ``window``
    positions. Every key a query in block b may see (``i - window < j <= i``)
    lies in block b or b - 1, so each query block attends to just those 2w keys
    with one fixed (w, 2w) mask, and the work grows with T * w instead of T^2.
    Block 0 has no previous block: it is plain causal attention over w keys.

    >>> q = k = v = torch.randn(1, 2, 10, 4)
    >>> dense = F.scaled_dot_product_attention(q, k, v, attn_mask=band_mask(10, 3))
    >>> torch.allclose(banded_attention(q, k, v, 3), dense, atol=1e-6)
    True
    """
    B, H, T, D = q.shape
    w = window
    if T <= w:  # the band covers the whole sequence: this is dense causal attention
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
    nb = -(-T // w)  # number of blocks
    pad = nb * w - T
    if pad:
        # Padding goes at the end: padded keys lie after every real query, so the
        # causal part of the band already hides them; padded queries are cut off below.
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))

    def blocks(t):  # (B, H, nb*w, D) -> (B, nb, H, w, D)
        return t.view(B, H, nb, w, D).transpose(1, 2)

    qb, kb, vb = blocks(q), blocks(k), blocks(v)
    # Block 0: causal attention within its own w keys.
    out0 = F.scaled_dot_product_attention(qb[:, 0], kb[:, 0], vb[:, 0], is_causal=True,
                                          dropout_p=dropout_p)  # (B, H, w, D)
    # Blocks 1..nb-1: keys of the previous block then the own block.
    k2 = torch.cat([kb[:, :-1], kb[:, 1:]], dim=3).reshape(B * (nb - 1), H, 2 * w, D)
    v2 = torch.cat([vb[:, :-1], vb[:, 1:]], dim=3).reshape(B * (nb - 1), H, 2 * w, D)
    q2 = qb[:, 1:].reshape(B * (nb - 1), H, w, D)
    # Query r of a block is absolute position b*w + r; key c of the 2w keys is
    # (b-1)*w + c. The band i - w < j <= i becomes r < c <= r + w, the same for every block.
    r = torch.arange(w, device=q.device)[:, None]
    c = torch.arange(2 * w, device=q.device)[None, :]
    mask = (c > r) & (c <= r + w)  # (w, 2w)
    out2 = F.scaled_dot_product_attention(q2, k2, v2, attn_mask=mask, dropout_p=dropout_p)  # (B*(nb-1), H, w, D)
    out = torch.cat([out0.unsqueeze(1), out2.view(B, nb - 1, H, w, D)], dim=1)  # (B, nb, H, w, D)
    out = out.transpose(1, 2).reshape(B, H, nb * w, D)  # (B, H, nb*w, D)
    return out[:, :, :T]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention, dense or locally banded."""

    def __init__(self, config: GPTConfig, banded: bool):
        super().__init__()
        self.n_head = config.n_head
        self.window = config.local_window if banded else 0
        self.dropout = config.dropout
        # q, k, v at once
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias and config.qkv_bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        """``cache`` (generation): a dict holding this layer's keys and values of the
        tokens before ``x``; the new ones are appended to it."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        # (B, T, C) -> (B, H, T, D): heads become a batch dimension for the kernels
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        if cache is not None:
            if "k" in cache:  # earlier tokens: attend to them as well
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
            if k.size(2) > T:
                y = self._after_prefix(q, k, v)  # (B, H, T, D)
                return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))
        if self.window:
            y = banded_attention(q, k, v, self.window, dropout_p=p)  # (B, H, T, D)
        else:
            # Flash / memory-efficient kernels where the device has them; the
            # causal flag lets them skip the masked half instead of computing it.
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))

    def _after_prefix(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of the last T queries over all S cached keys (positions S-T..S-1)."""
        T, S = q.size(2), k.size(2)
        if T == 1 and (not self.window or S <= self.window):  # one new token sees every key
            return F.scaled_dot_product_attention(q, k, v)
        if T == 1:  # a banded layer: the new token sees only the last window keys
            return F.scaled_dot_product_attention(q, k[:, :, -self.window:], v[:, :, -self.window:])
        i = torch.arange(S - T, S, device=q.device)[:, None]
        j = torch.arange(S, device=q.device)[None, :]
        mask = (j <= i) & (j > i - self.window) if self.window else j <= i  # (T, S)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class MLP(nn.Module):
    """Position-wise feed-forward: C -> 4C -> GELU -> C."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's GELU is the tanh approximation
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig, banded: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, banded)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)  # (B, T, C)
        return x + self.mlp(self.ln_2(x))


# --------------------------------------------------------------------------- the loss

class _ChunkedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over rows of (N, V) logits, in row chunks that stay in cache.

    ``F.cross_entropy`` writes a full (N, V) log-softmax in the forward pass and,
    in the backward, a zero-filled (N, V) tensor plus another full pass; with a
    large vocabulary these memory-bound passes are a tenth of a small model's
    step on a CPU. Here the forward keeps only the log-sum-exp of each row, and
    the backward writes the gradient ``softmax - onehot`` in one pass, a chunk
    of rows at a time. Targets of -1 are ignored.
    """

    CHUNK = 256  # rows: 256 x 4096 float32 = 4 MiB of temporaries

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        N = logits.shape[0]
        valid = targets >= 0  # (N,)
        safe = targets.clamp(min=0)
        lse = torch.empty(N, dtype=logits.dtype, device=logits.device)  # (N,)
        for i in range(0, N, _ChunkedCrossEntropy.CHUNK):
            lse[i:i + _ChunkedCrossEntropy.CHUNK] = torch.logsumexp(logits[i:i + _ChunkedCrossEntropy.CHUNK], dim=-1)
        picked = logits.gather(1, safe[:, None])[:, 0]  # (N,) logit of the right token
        count = valid.sum()
        ctx.save_for_backward(logits, safe, valid, lse, count)
        return torch.where(valid, lse - picked, 0.0).sum() / count

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        logits, safe, valid, lse, count = ctx.saved_tensors
        N = logits.shape[0]
        scale = (grad_out / count) * valid.to(logits.dtype)  # (N,) 0 for ignored rows
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)  # (N, V)
        for i in range(0, N, _ChunkedCrossEntropy.CHUNK):
            rows = slice(i, i + _ChunkedCrossEntropy.CHUNK)
            torch.sub(logits[rows], lse[rows, None], out=grad[rows])
            grad[rows].exp_().mul_(scale[rows, None])  # softmax, scaled
        grad[torch.arange(N, device=grad.device), safe] -= scale  # minus the one-hot target
        return grad, None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (N, V) logits against (N,) targets; -1 targets are ignored.

    Equal to ``F.cross_entropy(logits.float(), targets, ignore_index=-1)``, which
    it is on GPUs (where that kernel is already fused); on CPUs a chunked
    version that skips two memory-bound passes.

    >>> x, t = torch.randn(5, 7), torch.tensor([1, 0, -1, 6, 2])
    >>> torch.allclose(cross_entropy(x, t), F.cross_entropy(x, t, ignore_index=-1))
    True
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # the softmax of half-precision logits loses the small probabilities
    if logits.is_cuda:
        return F.cross_entropy(logits, targets, ignore_index=-1)
    return _ChunkedCrossEntropy.apply(logits, targets)


# --------------------------------------------------------------------------- the model

class GPT(nn.Module):
    """The language model. ``forward(idx, targets)`` returns ``(logits, loss)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.padded_vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, config.is_banded(i)) for i in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.padded_vocab_size, bias=False)
        # Tied embeddings: reading a token in and scoring it out use one matrix,
        # which saves V x C parameters and helps small models (Press & Wolf 2017).
        self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2: residual projections are scaled by 1/sqrt(number of residual
        # additions) so the residual stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def layer_kinds(self) -> list[str]:
        """``'dense'`` or ``'banded'`` for each layer, bottom to top."""
        return ["banded" if b.attn.window else "dense" for b in self.transformer.h]

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, the tied matrix counted once; ``non_embedding`` leaves out both tables."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
        return n

    def hidden(self, idx: torch.Tensor, cache: list[dict] | None = None) -> torch.Tensor:
        """Final-LayerNorm hidden states (B, T, C) for token ids (B, T).

        ``cache`` (generation): one dict per layer from :meth:`new_cache`, holding the
        keys and values of the tokens that came before ``idx``; ``idx`` continues them
        (its positions start after theirs) and is added to them.
        """
        B, T = idx.shape
        start = cache[0]["k"].size(2) if cache and "k" in cache[0] else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than the context ({self.config.block_size})")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)  # (B, T, C) + (T, C)
        x = self.transformer.drop(x)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache[i] if cache is not None else None)  # (B, T, C)
        return self.transformer.ln_f(x)

    def new_cache(self) -> list[dict]:
        """An empty key/value cache for :meth:`hidden`: one dict per layer."""
        return [{} for _ in self.transformer.h]

    def _real_logits(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(h)  # (..., V_padded): the padded width keeps the matmul fast
        V = self.config.vocab_size
        return logits if V == logits.shape[-1] else logits[..., :V]  # (..., V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits over the real vocabulary (B, T, V) and the mean cross-entropy (or None).

        Targets equal to -1 are ignored in the loss (padding).
        """
        logits = self._real_logits(self.hidden(idx))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None,
                 stop_token: int | None = None, use_cache: bool = True,
                 stop: Callable[[list[int]], bool] | None = None) -> torch.Tensor:
        """Continue each row of ``idx`` (B, T) by sampling; returns (B, T + n).

        ``temperature=0`` is greedy decoding. ``top_k`` keeps only the k most
        likely tokens. With ``stop_token``, generation ends once every row has
        produced it, and rows that finished earlier are filled with it. ``stop``
        (with ``stop_token``) also finishes a row: it is called with the row's
        new tokens after each one (a stop string, say). Put the model in eval
        mode first (dropout).

        The keys and values of the tokens so far are cached, so each new token
        costs one position's forward instead of the whole context's, while the
        sequence fits the context. Past it the window slides, every position
        moves, and each step runs the last ``block_size`` tokens afresh.

        >>> m = GPT(GPTConfig.preset("tiny", vocab_size=50, n_layer=1)).eval()
        >>> g = torch.Generator().manual_seed(0)
        >>> m.generate(torch.zeros(3, 4, dtype=torch.long), 5, top_k=10, generator=g).shape
        torch.Size([3, 9])
        """
        if stop is not None and stop_token is None:
            raise ValueError("stop needs a stop_token to fill the rows it finishes")
        done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        start = idx.size(1)
        cache = self.new_cache() if use_cache else None
        fed = 0  # tokens of idx already in the cache
        for _ in range(max_new_tokens):
            if cache is not None and idx.size(1) <= self.config.block_size:
                h = self.hidden(idx[:, fed:], cache)  # the prompt once, then one token a step
                fed = idx.size(1)
            else:
                cache = None
                h = self.hidden(idx[:, -self.config.block_size:])  # the model never sees more than its context
            logits = self._real_logits(h[:, -1, :]).float()  # (B, V): last position only
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.size(-1):
                    kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            if stop_token is not None:
                nxt = nxt.masked_fill(done[:, None], stop_token)
                done |= nxt[:, 0] == stop_token
            idx = torch.cat([idx, nxt], dim=1)
            if stop is not None:
                for r in (~done).nonzero().flatten().tolist():
                    done[r] = stop(idx[r, start:].tolist())
            if stop_token is not None and bool(done.all()):
                break
        return idx

    def estimate_flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs (forward + backward) per token, for MFU.

        6 per parameter per token for the matrix multiplies (2 forward, 4
        backward; the tied head counts once as a matmul, the position table is
        a lookup), plus attention's QK^T and AV: 12 * d_model * keys per query
        per layer. As in the PaLM paper's MFU, a dense layer counts all T keys
        (the causal mask is not subtracted); a banded layer counts the 2w keys
        its chunked kernel multiplies.

        >>> m = GPT(GPTConfig.preset("tiny", n_layer=2, local_window=0))
        >>> n = m.num_params() - m.transformer.wpe.weight.numel()
        >>> m.estimate_flops_per_token() == 6 * n + 12 * 2 * 128 * 256
        True
        """
        cfg = self.config
        T = seq_len or cfg.block_size
        n = self.num_params() - self.transformer.wpe.weight.numel()
        attn = 0
        for i in range(cfg.n_layer):
            keys = min(T, 2 * cfg.local_window) if cfg.is_banded(i) and T > cfg.local_window else T
            attn += 12 * cfg.n_embd * keys
        return float(6 * n + attn)
