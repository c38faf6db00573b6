"""The trainer's data loader: exact mixture, shuffled epochs, resume, DDP ranks, validation batches."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from curate.core.document import read_documents
from curate.mixture.build import MANIFEST_FORMAT, MANIFEST_VERSION, load_manifest
from curate.mixture.shards import ShardFile, ShardWriter
from curate.mixture.tokenizer import EOT, Tokenizer
from tests.common import WEIGHTS
from train.data import MixtureLoader, TokenStream, WindowPermutation, val_batches

BASE = 20_000  # token ids of source s are s*BASE + position: every token says where it came from


def synthetic_manifest(root: Path, sizes: dict[str, list[int]], weights: dict[str, float],
                       val: dict[str, list[int]] | None = None) -> Path:
    """A manifest whose sources hold tokens ``s*BASE + position in the source's stream``.

    ``sizes[name]`` lists the token count of each train shard (several shards
    make windows cross file boundaries).
    """
    val = val or {}
    sources = []
    for s, name in enumerate(sizes):
        entry = {"name": name, "weight": weights[name], "files": {"train": [], "val": []}}
        for split, counts in (("train", sizes[name]), ("val", val.get(name, []))):
            pos = 0
            for i, n in enumerate(counts):
                prefix = root / name / f"{split}-{i:05d}"
                with ShardWriter(prefix, np.uint16, eot_id=0) as w:
                    # one "document" of n-1 tokens + the appended end-of-text id, overwritten below
                    w.add(np.zeros(n - 1, np.uint16))
                # rewrite the body so every token (end-of-text included) is its stream position
                body = np.arange(pos, pos + n, dtype=np.uint16) + np.uint16(s * BASE + (0 if split == "train" else 10_000))
                with open(f"{prefix}.bin", "r+b") as fh:
                    fh.seek(32)
                    fh.write(body.tobytes())
                entry["files"][split].append(asdict(ShardFile(
                    bin=f"{name}/{split}-{i:05d}.bin", idx=f"{name}/{split}-{i:05d}.idx", tokens=n, documents=1)))
                pos += n
        sources.append(entry)
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "sources": sources,
                "tokenizer": {"path": "tokenizer.json", "vocab_size": 65535, "eot_id": 0}}
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.fixture
def three(tmp_path) -> Path:
    """Three sources with awkward weights; ``a`` spans three shard files."""
    return synthetic_manifest(tmp_path, {"a": [300, 7, 500], "b": [450], "c": [130]},
                              {"a": 0.5, "b": 0.3, "c": 0.2}, val={"a": [100], "b": [33]})


def origin(row: torch.Tensor) -> tuple[int, int]:
    """(source index, stream position of the window's first token) of a synthetic window."""
    first = int(row[0])
    return first // BASE, first % BASE


def test_blending_follows_the_weights_exactly_at_every_step(three):
    loader = MixtureLoader(three, seq_len=8, batch_size=5)
    w = loader.weights
    counts = dict.fromkeys(loader.sources, 0)
    for step in range(60):
        x, _ = loader.next_batch()
        for row in x:
            counts[loader.sources[origin(row)[0]]] += 1
        n = (step + 1) * 5
        for name in loader.sources:
            assert abs(counts[name] - w[name] * n) < 1, (name, counts, n)
            assert loader.report()[name]["sequences"] == counts[name]
    report = loader.report()
    assert report["c"]["realised_share"] == pytest.approx(0.2, abs=1 / 300)
    assert report["c"]["epochs"] == pytest.approx(counts["c"] / (129 // 8))


def test_blending_within_one_for_many_weightings():
    # the rule alone, on weights with no short period (irrational-ish shares)
    rng = np.random.default_rng(0)
    for trial in range(30):
        k = int(rng.integers(2, 7))
        # some trials with a tiny share, the case that breaks a furthest-behind rule
        w = rng.dirichlet(np.ones(k) * (0.3 if trial % 2 else 1.0))
        loader = MixtureLoader.__new__(MixtureLoader)
        loader._units = [max(1, round(x * 2 ** 40)) for x in w]
        loader._total, loader.sequences, loader.drawn = sum(loader._units), 0, np.zeros(k, np.int64)
        src, _ = loader._choose_sources(2000)
        counts = np.zeros(k)
        for n, s in enumerate(src, 1):
            counts[s] += 1
            assert np.all(np.abs(counts - w * n) < 1), (w, counts, n)


def test_every_window_once_per_epoch_then_a_new_order(three):
    loader = MixtureLoader(three, seq_len=8, batch_size=4)
    n_win = loader.windows["c"]
    assert n_win == (130 - 1) // 8
    seen: dict[int, list[int]] = {0: [], 1: []}
    drawn = 0
    while drawn < 2 * n_win:
        for row in loader.next_batch()[0]:
            s, pos = origin(row)
            if loader.sources[s] == "c" and drawn < 2 * n_win:
                seen[drawn // n_win].append(pos // 8)
                drawn += 1
    assert sorted(seen[0]) == list(range(n_win))
    assert sorted(seen[1]) == list(range(n_win))
    assert seen[0] != seen[1]  # reshuffled
    assert seen[0] != sorted(seen[0])  # shuffled at all


def test_windows_are_the_stream_shifted_by_one_across_shard_files(three):
    loader = MixtureLoader(three, seq_len=8, batch_size=16)
    crossed = False
    for _ in range(20):
        x, y = loader.next_batch()
        assert x.shape == y.shape == (16, 8) and x.dtype == y.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        # consecutive stream positions: no gap where shards join (a: 300 | 7 | 500 tokens)
        assert torch.equal(y - x, torch.ones_like(x))
        for row in x:
            s, pos = origin(row)
            assert pos % 8 == 0
            crossed |= loader.sources[s] == "a" and pos < 300 < pos + 9
    assert crossed


def test_permutation_is_a_bijection_for_awkward_sizes():
    for n in (1, 2, 3, 5, 16, 17, 1000, 4099):
        got = WindowPermutation(n, key=n)(np.arange(n))
        assert sorted(got.tolist()) == list(range(n))
    assert WindowPermutation(100, 1)(np.arange(100)).tolist() != WindowPermutation(100, 2)(np.arange(100)).tolist()


@pytest.mark.shared_data
def test_deterministic_and_seeded(tiny_manifest):
    a = MixtureLoader(tiny_manifest, seq_len=32, batch_size=4, seed=1)
    b = MixtureLoader(tiny_manifest, seq_len=32, batch_size=4, seed=1)
    c = MixtureLoader(tiny_manifest, seq_len=32, batch_size=4, seed=2)
    xa = [a.next_batch()[0] for _ in range(5)]
    xb = [b.next_batch()[0] for _ in range(5)]
    xc = [c.next_batch()[0] for _ in range(5)]
    assert all(torch.equal(p, q) for p, q in zip(xa, xb))
    assert not all(torch.equal(p, q) for p, q in zip(xa, xc))


@pytest.mark.shared_data
def test_resume_is_exact_through_a_weights_only_checkpoint(tiny_manifest):
    a = MixtureLoader(tiny_manifest, seq_len=32, batch_size=3, seed=5)
    for _ in range(7):
        a.next_batch()
    buf = io.BytesIO()
    torch.save({"loader": a.state_dict()}, buf)
    after = [a.next_batch() for _ in range(6)]
    b = MixtureLoader(tiny_manifest, seq_len=32, batch_size=3, seed=5)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True)["loader"])
    again = [b.next_batch() for _ in range(6)]
    for (x1, y1), (x2, y2) in zip(after, again):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert a.report() == b.report()


@pytest.mark.shared_data
def test_resume_refuses_another_layout(tiny_manifest):
    state = MixtureLoader(tiny_manifest, seq_len=32, batch_size=3).state_dict()
    with pytest.raises(ValueError, match="seq_len"):
        MixtureLoader(tiny_manifest, seq_len=16, batch_size=3).load_state_dict(state)


def test_ranks_are_disjoint_and_together_the_single_process_stream(three):
    world = 3
    single = MixtureLoader(three, seq_len=8, batch_size=4 * world)
    ranks = [MixtureLoader(three, seq_len=8, batch_size=4, rank=r, world_size=world) for r in range(world)]
    for _ in range(5):
        x, y = single.next_batch()
        parts = [r.next_batch() for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
    # disjoint: within the first epoch of `b` no window appears on two ranks
    owner: dict[tuple[int, int], int] = {}
    ranks = [MixtureLoader(three, seq_len=8, batch_size=2, rank=r, world_size=world) for r in range(world)]
    for _ in range(4):
        for r, loader in enumerate(ranks):
            for row in loader.next_batch()[0]:
                key = origin(row)
                if loader.sources[key[0]] == "b":
                    assert owner.setdefault(key, r) == r
    # every rank keeps the same global counters, so any rank's state resumes the run
    assert ranks[0].state_dict() == ranks[2].state_dict()


def test_resume_with_another_world_size_continues_the_stream(three):
    a = MixtureLoader(three, seq_len=8, batch_size=6)
    a.next_batch()
    state = a.state_dict()
    x, _ = a.next_batch()
    halves = [MixtureLoader(three, seq_len=8, batch_size=3, rank=r, world_size=2) for r in range(2)]
    for h in halves:
        h.load_state_dict(state)
    assert torch.equal(torch.cat([h.next_batch()[0] for h in halves]), x)


@pytest.mark.shared_data
def test_windows_decode_to_real_text_of_their_source(tiny_manifest):
    manifest = load_manifest(tiny_manifest)
    tok = Tokenizer.load(tiny_manifest.parent / manifest["tokenizer"]["path"])
    texts = {s["name"]: [d.text for f in s["inputs"] for d in read_documents(f)] for s in manifest["sources"]}
    loader = MixtureLoader(tiny_manifest, seq_len=64, batch_size=6)
    assert set(loader.sources) == set(WEIGHTS)
    for _ in range(3):
        for source, win in loader.upcoming():
            row = loader.window(source, win)
            pieces = [p.strip("\ufffd") for p in tok.decode(row).split(EOT)]
            longest = max(pieces, key=len)
            assert len(longest) > 20
            assert any(longest in t for t in texts[source]), (source, longest)
        loader.next_batch()


@pytest.mark.shared_data
def test_upcoming_matches_what_next_batch_returns(tiny_manifest):
    loader = MixtureLoader(tiny_manifest, seq_len=16, batch_size=5)
    plan = loader.upcoming()
    x, y = loader.next_batch()
    rows = torch.from_numpy(np.stack([loader.window(s, w) for s, w in plan]))
    assert torch.equal(rows[:, :-1], x) and torch.equal(rows[:, 1:], y)


@pytest.mark.shared_data
def test_shards_are_memory_mapped_not_read(tiny_manifest, monkeypatch):
    # reading a shard whole (np.fromfile / file.read) would show up here
    monkeypatch.setattr(np, "fromfile", lambda *a, **k: pytest.fail("np.fromfile used"))
    loader = MixtureLoader(tiny_manifest, seq_len=32, batch_size=2)
    loader.next_batch()
    for stream in loader.streams.values():
        assert stream.arrays and all(isinstance(a, np.memmap) for a in stream.arrays)
    row = loader.window(loader.sources[0], 0)
    assert type(row) is np.ndarray and row.base is None  # a copy of one window, not a view of the file


def test_a_source_too_small_for_one_window_is_named(tmp_path):
    path = synthetic_manifest(tmp_path, {"big": [500], "tiny": [20], "unused": [3]},
                              {"big": 0.9, "tiny": 0.1, "unused": 0.0})
    with pytest.raises(ValueError, match="'tiny'"):
        MixtureLoader(path, seq_len=32, batch_size=2)
    # a zero-weight source is never drawn from, so its size does not matter
    loader = MixtureLoader(path, seq_len=16, batch_size=2)
    assert loader.sources == ["big", "tiny"]


def test_val_batches_cover_the_split_in_order(three):
    stream = TokenStream.open(three, "a", "val")
    batches = list(val_batches(three, "a", seq_len=8, batch_size=4))
    # 100 tokens -> 12 full windows (3 batches of 4) + a (1, 3) tail
    assert [tuple(x.shape) for x, _ in batches] == [(4, 8)] * 3 + [(1, 3)]
    xs = torch.cat([x.reshape(-1) for x, _ in batches])
    ys = torch.cat([y.reshape(-1) for _, y in batches])
    full = torch.from_numpy(stream[0:len(stream)])
    assert torch.equal(xs, full[:-1]) and torch.equal(ys, full[1:])
    again = list(val_batches(three, "a", seq_len=8, batch_size=4, max_batches=2))
    assert len(again) == 2 and all(torch.equal(p[0], q[0]) for p, q in zip(again, batches))


def test_val_batches_of_a_source_without_validation_tokens_is_empty(three):
    assert list(val_batches(three, "c", seq_len=8, batch_size=4)) == []


@pytest.mark.shared_data
def test_val_batches_on_the_real_fixture(tiny_manifest):
    for name in WEIGHTS:
        batches = list(val_batches(tiny_manifest, name, seq_len=64, batch_size=8, max_batches=3))
        assert len(batches) == 3 and batches[0][0].shape == (8, 64)
