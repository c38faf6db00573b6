"""Training batches from the token shards: the mixture followed exactly, resumable, rank-split.

GPT-3 draws a fixed share of its training sequences from each source (Table 2.2),
so a small high-quality source is repeated while Common Crawl is seen less than
once. ``MixtureLoader`` does the same with three rules:

* **Blending** is deterministic, not sampled. After ``N`` sequences (counted over
  the whole run and all ranks) source ``s`` has given ``floor(w_s N)`` or
  ``ceil(w_s N)`` of them, so it is within one sequence of its share at every step,
  not only on average, and a short run already has the mixture it asked for.
  Each sequence goes to the source whose next sequence is due soonest (its
  deadline, the first ``N`` with ``w_s N >= drawn_s + 1``) among those still under
  their ceiling, ties to the earlier source in the manifest. This
  earliest-deadline rule provably keeps the bound; the simpler "furthest behind
  its share" rule drifts past one sequence with three or more sources. Weights
  are kept as integers (units of 2**-40) so the rule is exact arithmetic.
* **Within a source** the train split's shards are one token stream cut into
  windows of ``seq_len + 1`` tokens starting every ``seq_len`` tokens (input and
  target, shifted by one, overlap in all but one token; neighbouring windows share
  one), so an epoch predicts every token once, except the first and the fewer than
  ``seq_len`` left over at the end. Windows are visited in a shuffled order without replacement; when a
  source runs out its next epoch has a fresh order. The order is a keyed
  permutation (a Feistel network on the window index, keys from a sha256 of
  ``(seed, source, epoch)``), so it takes no memory, costs nothing to resume, and
  reads the same on every machine.
* **Ranks** split one global stream: step ``k`` consumes global sequences
  ``[k*B*W, (k+1)*B*W)`` and rank ``r`` takes ``[r*B, (r+1)*B)`` of them, so DDP
  ranks never share a sequence and together see exactly what one process with a
  ``B*W`` batch would.

Shards are memory-mapped; only the windows of a batch are ever read. A source
with a positive weight but fewer than ``seq_len + 1`` train tokens is an error
that names it (wrapping a tiny source around itself would repeat it many times
within a single sequence and hide a mixture mistake).

A one-source mixture built in a temporary folder (about a second):

>>> import tempfile
>>> from curate.core.document import Document, write_documents
>>> from curate.mixture.build import MixtureConfig, SourceConfig, build
>>> d = tempfile.mkdtemp()
>>> write_documents(f"{d}/books.jsonl", [Document(id=f"b{i}", text=f"Chapter {i}. It was a dark and "
...                 "stormy night; the rain fell in torrents. " * 20) for i in range(40)])
40
>>> config = MixtureConfig(sources=[SourceConfig("books", [f"{d}/books.jsonl"], 1.0)],
...                        tokenizer=MixtureConfig.preset("tiny").tokenizer, val_fraction=0.1)
>>> _ = build(config, f"{d}/shards", log=lambda message: None)
>>> loader = MixtureLoader(f"{d}/shards/manifest.json", seq_len=64, batch_size=4)
>>> x, y = loader.next_batch()
>>> tuple(x.shape), bool((x[:, 1:] == y[:, :-1]).all())  # y is x shifted by one token
((4, 64), True)
>>> sum(len(y) for _, y in val_batches(f"{d}/shards/manifest.json", "books", seq_len=64, batch_size=8)) > 0
True
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from curate.mixture.build import load_manifest, shard_files
from curate.mixture.shards import read_tokens

STATE_VERSION = 1

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


# --------------------------------------------------------------------------- token streams

class TokenStream:
    """One source split's shards as a single memory-mapped token sequence.

    ``stream[a:b]`` returns int64 tokens and may cross shard boundaries; nothing
    is read until sliced.

    >>> s = TokenStream([np.arange(3), np.arange(10, 12)])
    >>> len(s), s[2:4].tolist()
    (5, [2, 10])
    """

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = [a for a in arrays if len(a)]  # an empty shard is an np.zeros, not a memmap
        # starts[i]: stream offset of arrays[i]; the last entry is the total length
        self.starts = np.cumsum([0] + [len(a) for a in self.arrays]).astype(np.int64)

    @classmethod
    def open(cls, manifest_path: str | os.PathLike, source: str, split: str) -> "TokenStream":
        root = Path(manifest_path).parent
        manifest = load_manifest(manifest_path)
        return cls([read_tokens(root / f.bin) for f in shard_files(manifest, source, split)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, sl: slice) -> np.ndarray:
        a, b, step = sl.indices(len(self))
        if step != 1:
            raise ValueError("TokenStream slices must be contiguous")
        if b <= a:
            return np.zeros(0, dtype=np.int64)
        first = int(np.searchsorted(self.starts, a, side="right")) - 1
        pieces = []
        i = first
        while a < b:
            lo = a - int(self.starts[i])
            hi = min(b, int(self.starts[i + 1])) - int(self.starts[i])
            pieces.append(np.asarray(self.arrays[i][lo:hi], dtype=np.int64))
            a += hi - lo
            i += 1
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


# --------------------------------------------------------------------------- shuffling

def stable_seed(*parts) -> int:
    """A 64-bit seed from a sha256 of the parts (Python's hash() is salted per process).

    >>> stable_seed("windows", 0, "books", 1) == stable_seed("windows", 0, "books", 1)
    True
    """
    text = "\0".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class WindowPermutation:
    """A keyed bijection of ``range(n)``: the visiting order of one source epoch.

    A balanced Feistel network over the smallest even number of bits covering
    ``n`` is a permutation of ``[0, 2**bits)`` whatever its round function;
    "cycle walking" (re-encrypting until the value lands below ``n``) restricts
    it to ``[0, n)`` and stays a bijection. At most 4x the domain is covered,
    so a few rounds of walking on average. Nothing is stored, so a source of a
    billion windows costs no memory and any position is computed directly.

    >>> p = WindowPermutation(10, key=7)
    >>> sorted(p(np.arange(10)).tolist()) == list(range(10))
    True
    """

    ROUNDS = 6

    def __init__(self, n: int, key: int):
        if n < 1:
            raise ValueError("a permutation needs n >= 1")
        self.n = n
        bits = max(2, (n - 1).bit_length())
        bits += bits % 2
        self.half = np.uint64(bits // 2)
        self.mask = np.uint64((1 << (bits // 2)) - 1)
        self.keys = [np.uint64(stable_seed(key, r)) for r in range(self.ROUNDS)]

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self.half, x & self.mask
        for k in self.keys:
            left, right = right, left ^ (_mix64(right ^ k) & self.mask)
        return (left << self.half) | right

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        shape = np.shape(positions)
        # 1-d arrays: numpy wraps uint64 overflow silently for arrays but warns for scalars
        x = np.asarray(positions, dtype=np.uint64).reshape(-1)
        if self.n == 1:
            return np.zeros(shape, dtype=np.int64)
        y = self._encrypt(x)
        out = y >= np.uint64(self.n)
        while out.any():
            y[out] = self._encrypt(y[out])
            out = y >= np.uint64(self.n)
        return y.astype(np.int64).reshape(shape)


# --------------------------------------------------------------------------- the loader

class MixtureLoader:
    """Batches ``(x, y)`` of shape (batch_size, seq_len) sampled from a token-shard manifest.

    ``seed`` keys the per-epoch shuffles; ``rank``/``world_size`` pick this
    process's slice of the global stream. ``state_dict()`` is plain ints and
    strings, so it can live in a checkpoint read with ``weights_only=True``.
    The module docstring has a runnable example.
    """

    def __init__(self, manifest_path: str | os.PathLike, seq_len: int, batch_size: int,
                 split: str = "train", seed: int = 0, rank: int = 0, world_size: int = 1):
        if seq_len < 1 or batch_size < 1:
            raise ValueError("seq_len and batch_size must be >= 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.manifest_path = Path(manifest_path)
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.split = split
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        manifest = load_manifest(manifest_path)
        raw = {s["name"]: float(s["weight"]) for s in manifest["sources"]}
        total = sum(w for w in raw.values() if w > 0)
        if total <= 0:
            raise ValueError(f"{manifest_path}: no source has a positive weight")
        # zero-weight sources are never drawn from, so they need no data
        self.sources: list[str] = [n for n, w in raw.items() if w > 0]
        self.weights: dict[str, float] = {n: raw[n] / total for n in self.sources}
        self.streams: dict[str, TokenStream] = {}
        self.windows: dict[str, int] = {}
        for name in self.sources:
            stream = TokenStream.open(manifest_path, name, split)
            if len(stream) < seq_len + 1:
                raise ValueError(
                    f"source {name!r} has {len(stream):,} {split} tokens, fewer than one window of "
                    f"seq_len + 1 = {seq_len + 1:,}: add data, lower seq_len, or give it weight 0")
            self.streams[name] = stream
            self.windows[name] = (len(stream) - 1) // seq_len
        # exact integer shares for the blending rule; the float weights are for reporting
        self._units = [max(1, round(self.weights[n] * 2 ** 40)) for n in self.sources]
        self._total = sum(self._units)
        self.sequences = 0  # global sequences drawn so far, over all ranks
        self.drawn = np.zeros(len(self.sources), dtype=np.int64)
        self._perms: dict[tuple[int, int], WindowPermutation] = {}

    # -- sizes

    @property
    def tokens_per_epoch(self) -> dict[str, int]:
        """Target tokens in one pass over each source's windows."""
        return {n: self.windows[n] * self.seq_len for n in self.sources}

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    # -- the schedule

    def _choose_sources(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Source index of the next ``count`` global sequences, and the per-source
        draw count each one takes (its position in that source's stream)."""
        drawn = [int(d) for d in self.drawn]
        units, total = self._units, self._total
        src = np.empty(count, dtype=np.int64)
        nth = np.empty(count, dtype=np.int64)
        for i in range(count):
            n = self.sequences + i + 1  # sequences after this one
            best, best_due = -1, 0
            for s, u in enumerate(units):
                if drawn[s] * total < u * n:  # drawn + 1 <= ceil(w * n): room under the ceiling
                    due = -(-(drawn[s] + 1) * total // u)  # ceil((drawn + 1) / w)
                    if best < 0 or due < best_due:
                        best, best_due = s, due
            src[i] = best
            nth[i] = drawn[best]
            drawn[best] += 1
        return src, nth

    def _perm(self, s: int, epoch: int) -> WindowPermutation:
        perm = self._perms.get((s, epoch))
        if perm is None:
            name = self.sources[s]
            perm = WindowPermutation(self.windows[name], stable_seed("windows", self.seed, name, epoch))
            # keep this source's live epoch and the one before; older epochs are never revisited
            self._perms = {k: v for k, v in self._perms.items() if k[0] != s or k[1] >= epoch - 1}
            self._perms[(s, epoch)] = perm
        return perm

    def _windows_of(self, src: np.ndarray, nth: np.ndarray) -> np.ndarray:
        """Window index for each (source, per-source position) pair."""
        win = np.empty(len(src), dtype=np.int64)
        for s in np.unique(src):
            sel = src == s
            n_win = self.windows[self.sources[s]]
            epochs, pos = np.divmod(nth[sel], n_win)
            out = np.empty(len(pos), dtype=np.int64)
            for e in np.unique(epochs):
                at = epochs == e
                out[at] = self._perm(int(s), int(e))(pos[at])
            win[sel] = out
        return win

    def upcoming(self, count: int | None = None) -> list[tuple[str, int]]:
        """The next ``count`` global sequences as (source, window index), without drawing them.

        Window ``w`` of a source is its train tokens ``[w*seq_len, (w+1)*seq_len + 1)``.
        Defaults to one global batch (all ranks).
        """
        count = self.global_batch if count is None else count
        src, nth = self._choose_sources(count)
        win = self._windows_of(src, nth)
        return [(self.sources[s], int(w)) for s, w in zip(src, win)]

    def window(self, source: str, index: int) -> np.ndarray:
        """The ``seq_len + 1`` tokens (int64) of one window."""
        a = index * self.seq_len
        return self.streams[source][a:a + self.seq_len + 1]

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's next ``(x, y)``, int64 tensors of shape (batch_size, seq_len)."""
        src, nth = self._choose_sources(self.global_batch)
        lo = self.rank * self.batch_size
        mine = slice(lo, lo + self.batch_size)
        win = self._windows_of(src[mine], nth[mine])
        rows = np.stack([self.window(self.sources[s], int(w)) for s, w in zip(src[mine], win)])  # (B, T+1)
        # every rank advances by the whole global batch: the counters stay identical across ranks
        np.add.at(self.drawn, src, 1)
        self.sequences += self.global_batch
        t = torch.from_numpy(rows)
        return t[:, :-1].contiguous(), t[:, 1:].contiguous()  # (B, T), (B, T)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    # -- resuming

    def state_dict(self) -> dict:
        """Where the global stream stands: plain Python types only.

        The stream does not depend on the batch size or the number of ranks, so
        a run may resume with a different world size and continue it exactly.
        """
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "split": self.split,
            "sequences": int(self.sequences),
            "sources": list(self.sources),
            "windows": [int(self.windows[n]) for n in self.sources],
            "drawn": [int(d) for d in self.drawn],
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a ``state_dict()``; refuses a state of another data layout."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"loader state version {state.get('version')}, expected {STATE_VERSION}")
        mine = self.state_dict()
        for key in ("seed", "seq_len", "split", "sources", "windows"):
            if state[key] != mine[key]:
                raise ValueError(f"loader state was saved with {key}={state[key]!r}, "
                                 f"this loader has {mine[key]!r}: the stream positions would not match")
        if sum(state["drawn"]) != state["sequences"]:
            raise ValueError("loader state is inconsistent: per-source counts do not sum to the total")
        self.sequences = int(state["sequences"])
        self.drawn = np.array(state["drawn"], dtype=np.int64)

    # -- reporting

    def report(self) -> dict:
        """Per source: target and realised share, epochs consumed and sequences drawn (global)."""
        out = {}
        for i, name in enumerate(self.sources):
            d = int(self.drawn[i])
            out[name] = {
                "target_share": self.weights[name],
                "realised_share": d / self.sequences if self.sequences else 0.0,
                "epochs": d / self.windows[name],
                "sequences": d,
                "windows": self.windows[name],
                "tokens_per_epoch": self.windows[name] * self.seq_len,
            }
        return out

    def format_report(self) -> str:
        """The report as a small table, one line per source."""
        rows = self.report()
        width = max([len("source")] + [len(n) for n in rows])
        lines = [f"{'source':<{width}}  {'target':>7}  {'realised':>8}  {'epochs':>8}  {'sequences':>12}"]
        for name, r in rows.items():
            lines.append(f"{name:<{width}}  {r['target_share']:>7.1%}  {r['realised_share']:>8.1%}  "
                         f"{r['epochs']:>8.3f}  {r['sequences']:>12,}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- validation

def val_batches(manifest_path: str | os.PathLike, source: str, seq_len: int, batch_size: int,
                max_batches: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` over a source's validation split, in order: the same batches every call.

    Windows are those of the training loader (``seq_len + 1`` tokens every
    ``seq_len``), so every validation token but the first is a target exactly
    once. The tokens left over after the last full window come as one final
    shorter batch of shape (1, rest), so a validation split smaller than one
    window is still measured. A source without validation tokens yields nothing.
    """
    stream = TokenStream.open(manifest_path, source, "val")
    if len(stream) < 2:
        return
    full = (len(stream) - 1) // seq_len
    made = 0
    for first in range(0, full, batch_size):
        if max_batches is not None and made >= max_batches:
            return
        n = min(batch_size, full - first)
        rows = stream[first * seq_len:(first + n) * seq_len + 1]
        x = torch.from_numpy(rows[:-1].reshape(n, seq_len))  # (n, T)
        y = torch.from_numpy(rows[1:].reshape(n, seq_len))   # (n, T)
        made += 1
        yield x, y
    rest = stream[full * seq_len:len(stream)]
    if len(rest) >= 2 and (max_batches is None or made < max_batches):
        t = torch.from_numpy(rest)
        yield t[None, :-1], t[None, 1:]  # (1, rest-1)
