"""The training loop: schedule, weight decay groups, options, checkpoints, exact resume, DDP."""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.common import REPO
from train.checkpoint import load_checkpoint, load_model, save_checkpoint
from train.config import ConfigError, TrainConfig, apply_overrides
from train.model import GPT, GPTConfig
from train.train import decay_split, lr_at, main, peak_flops

# a model small enough that a few steps take well under a second
SMALL = ["--model.n_layer=2", "--model.n_embd=64", "--model.n_head=2", "--model.local_window=16",
         "--batch_size=4", "--seq_len=64", "--log_interval=1000", "--eval_batches=2",
         # one thread: the suite runs two workers on two cores, and oversubscribed
         # OpenMP threads make these tiny steps ~10x slower
         "--threads=1"]


def run(manifest, out, *args) -> int:
    return main(["--manifest", str(manifest), "--out", str(out), *SMALL, *args])


def records(out: Path, kind: str = "train") -> list[dict]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_learning_rate_schedule():
    cfg = TrainConfig(lr=6e-4, warmup_steps=100, max_steps=1100, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(6e-6)
    assert lr_at(49, cfg) == pytest.approx(3e-4)
    assert lr_at(99, cfg) == pytest.approx(6e-4)   # warmup ends at the peak
    assert lr_at(100, cfg) == pytest.approx(6e-4)  # the cosine starts at the peak
    assert lr_at(600, cfg) == pytest.approx(0.5 * (6e-4 + 6e-5))  # half way: the mean of peak and floor
    assert lr_at(1100, cfg) == pytest.approx(6e-5)  # 10% of the peak
    assert lr_at(5000, cfg) == pytest.approx(6e-5)  # and flat after
    later = TrainConfig(lr=1.0, warmup_steps=0, max_steps=10, lr_decay_steps=20)
    assert lr_at(10, later) == pytest.approx(0.1 + 0.45 * (1 + 0))  # the cosine follows lr_decay_steps
    lrs = [lr_at(s, cfg) for s in range(100, 1100)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_weight_decay_only_on_linear_matrices():
    model = GPT(GPTConfig.preset("tiny", n_layer=2))
    decay, no_decay = decay_split(model)
    assert set(decay) == {f"transformer.h.{i}.{m}.weight" for i in range(2)
                          for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    assert "transformer.wte.weight" in no_decay and "transformer.wpe.weight" in no_decay
    assert "lm_head.weight" not in decay + no_decay  # the tied head is the token table
    assert all(n.endswith(".bias") or ".ln_" in n or "wte" in n or "wpe" in n for n in no_decay)
    assert len(decay) + len(no_decay) == len(list(model.parameters()))


def test_peak_flops_table():
    assert peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops("NVIDIA H200") == 989e12
    assert peak_flops("NVIDIA L40S") == 362e12 and peak_flops("NVIDIA L4") == 121e12
    assert peak_flops("Tesla T4") is None


def test_overrides_are_typed_and_unknown_keys_rejected():
    cfg = apply_overrides(TrainConfig.from_preset("tiny"), ["--lr=3e-4", "--model.n_layer=2", "--compile=false",
                                                       "--model.local_window=None", "--max_steps=2e3"])
    assert (cfg.lr, cfg.model.n_layer, cfg.compile, cfg.model.local_window, cfg.max_steps) == \
        (3e-4, 2, False, None, 2000)
    assert TrainConfig.from_preset("tiny").model.n_layer == 4  # the preset itself is untouched
    for bad, message in [(["--nope=1"], "unknown option --nope"),
                         (["--model.n_layers=2"], r"did you mean --model.n_layer\?"),
                         (["--lr=fast"], "--lr takes a number"),
                         (["--max_steps=1.5"], "--max_steps takes an integer"),
                         (["--compile=maybe"], "true or false"),
                         (["--lr"], "needs a value"),
                         (["lr=1"], "unexpected argument"),
                         (["--model.n_head=5"], "not a multiple of n_head")]:
        with pytest.raises(ConfigError, match=message):
            apply_overrides(TrainConfig(), bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        TrainConfig.from_preset("gigantic")


@pytest.mark.shared_data
def test_cli_errors_are_one_line(tiny_manifest, tmp_path, capsys):  # noqa: F811
    assert main(["--manifest", str(tiny_manifest), "--out", str(tmp_path), "--lr_peak=1"]) == 2
    assert "train: error: unknown option --lr_peak" in capsys.readouterr().err
    assert main(["--manifest", str(tmp_path / "missing.json"), "--out", str(tmp_path)]) == 2
    assert "cannot read the manifest" in capsys.readouterr().err
    assert main(["--manifest", str(tiny_manifest), "--out", str(tmp_path), "--batch_tokens=1000"]) == 2
    assert "not a multiple of batch_size x seq_len" in capsys.readouterr().err


def test_checkpoint_is_atomic_and_loads_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "cfg": {"a": [1, 2]}, "w": torch.arange(3)})
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary left behind
    assert load_checkpoint(path)["cfg"] == {"a": [1, 2]}

    torch.save({"x": datetime.date(2020, 1, 1)}, tmp_path / "evil.pt")  # an arbitrary pickled object
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(tmp_path / "evil.pt")

    # a failed write leaves the previous file intact
    with pytest.raises(Exception):
        save_checkpoint(path, {"bad": lambda: None})  # unpicklable
    assert load_checkpoint(path)["step"] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "evil.pt"]


@pytest.mark.shared_data
@pytest.mark.slow
def test_short_run_learns_and_writes_its_outputs(tiny_manifest, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    assert run(tiny_manifest, out, "--max_steps=40", "--lr=3e-3", "--warmup_steps=5", "--eval_interval=20") == 0
    printed = capsys.readouterr().out
    train = records(out)
    assert [r["step"] for r in train] == list(range(1, 41))
    first, last = train[0]["loss"], sum(r["loss"] for r in train[-5:]) / 5
    assert first == pytest.approx(8.3, abs=0.2)  # ln(4096): a uniform guess
    assert last < first - 1.5
    val = records(out, "val")
    assert [r["step"] for r in val] == [20, 40] and set(val[0]["loss"]) == {"books", "web"}
    assert val[1]["loss"]["books"] < val[0]["loss"]["books"]
    for name in ("ckpt.pt", "log.jsonl", "loss.png", "config.json", "summary.json"):
        assert (out / name).exists() and str(out / name) in printed
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "config.json").read_text())["model"]["vocab_size"] == 4096

    model, cfg = load_model(out / "ckpt.pt")
    assert not model.training and cfg["step"] == 40
    assert cfg["manifest"] == str(Path(tiny_manifest).resolve()) and cfg["model"]["n_layer"] == 2
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["data"]["sequences"] == 40 * 4 and set(ckpt["rng"][0]) == {"torch", "numpy", "python"}
    x = torch.randint(0, 4096, (1, 16))
    assert model(x)[0].shape == (1, 16, 4096)

    # the run directory is not overwritten by accident
    assert run(tiny_manifest, out, "--max_steps=40") == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.shared_data
@pytest.mark.slow
def test_resume_continues_bit_for_bit(tiny_manifest, tmp_path):  # noqa: F811
    # dropout on, so the generator states have to come back too
    common = ["--lr_decay_steps=8", "--warmup_steps=2", "--model.dropout=0.1", "--ckpt_interval=0",
              "--eval_interval=0"]
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert run(tiny_manifest, straight, "--max_steps=8", *common) == 0
    assert run(tiny_manifest, halves, "--max_steps=4", *common) == 0
    assert main(["--out", str(halves), "--resume", "--max_steps=8"]) == 0  # the rest from the checkpoint

    a, b = load_checkpoint(straight / "ckpt.pt"), load_checkpoint(halves / "ckpt.pt")
    assert a["step"] == b["step"] == 8
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["data"] == b["data"]
    assert [r["loss"] for r in records(straight)] == [r["loss"] for r in records(halves)]
    assert [r["step"] for r in records(halves)] == list(range(1, 9))
    # without restoring them, the run would differ: the check above can fail
    c = tmp_path / "fresh"
    assert run(tiny_manifest, c, "--max_steps=8", *common, "--seed=1") == 0
    assert not torch.equal(load_checkpoint(c / "ckpt.pt")["model"]["transformer.wpe.weight"],
                           a["model"]["transformer.wpe.weight"])


@pytest.mark.shared_data
@pytest.mark.slow
def test_batch_ramp_grows_the_batch_and_resumes_exactly(tiny_manifest, tmp_path, capsys):  # noqa: F811
    # micro-batch 4 x 64 = 256 tokens; full batch 2048 (8 micro-batches), grown from
    # 512 over the first 4096 tokens; max_steps=4 full batches = 8192 tokens
    common = ["--batch_tokens=2048", "--batch_ramp_tokens=4096", "--batch_start_tokens=512",
              "--warmup_steps=1", "--lr_decay_steps=4", "--ckpt_interval=0", "--eval_interval=0"]
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert run(tiny_manifest, straight, "--max_steps=4", *common) == 0
    recs = records(straight)
    sizes = [r["batch_tokens"] for r in recs]
    # 512 + 1536 * t / 4096 rounded down to whole micro-batches, then full
    assert sizes == [512, 512, 768, 1024, 1536, 2048, 2048]
    assert [r["tokens"] for r in recs] == [sum(sizes[:k + 1]) for k in range(len(sizes))]
    assert sum(sizes[:-1]) < 4 * 2048 <= sum(sizes)           # ends once 4 full batches are in
    cfg = TrainConfig.from_dict(json.loads((straight / "config.json").read_text()))
    before = [0] + [r["tokens"] for r in recs[:-1]]
    assert [r["lr"] for r in recs] == [lr_at(t / 2048, cfg) for t in before]  # the schedule, in tokens
    assert load_checkpoint(straight / "ckpt.pt")["data"]["sequences"] == sum(sizes) // 64
    # stopped halfway (after 2 full batches' worth) and resumed: the same run
    assert run(tiny_manifest, halves, "--max_steps=2", *common) == 0
    assert len(records(halves)) == 5
    assert main(["--out", str(halves), "--resume", "--max_steps=4"]) == 0
    a, b = load_checkpoint(straight / "ckpt.pt"), load_checkpoint(halves / "ckpt.pt")
    assert a["tokens"] == b["tokens"] == sum(sizes) and a["data"] == b["data"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["loss"] for r in records(straight)] == [r["loss"] for r in records(halves)]
    # a ramp needs a batch of several micro-batches to grow into
    capsys.readouterr()
    assert run(tiny_manifest, tmp_path / "bad", "--batch_ramp_tokens=4096") == 2
    assert "batch_ramp_tokens needs batch_tokens" in capsys.readouterr().err


@pytest.mark.shared_data
@pytest.mark.slow
def test_ddp_two_processes_match_one(tiny_manifest, tmp_path):  # noqa: F811
    """2 gloo ranks x 4 sequences x 2 micro-batches == 1 process x 4 sequences x 4 micro-batches."""
    # Adam's first updates are +-lr for any non-zero gradient, so a gradient that is
    # ~0 up to rounding could flip sign between the two summation orders; a larger
    # eps makes tiny gradients give tiny updates and the comparison tight.
    args = ["--max_steps=3", "--batch_tokens=1024", "--eval_interval=0", "--eps=1e-3", *SMALL]
    one = tmp_path / "one"
    assert main(["--manifest", str(tiny_manifest), "--out", str(one), *args]) == 0
    two = tmp_path / "two"
    # What torchrun does, minus its own start-up: two processes with the rendezvous in the environment.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    base.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "train.train", "--manifest", str(tiny_manifest), "--out", str(two), *args]
    procs = [subprocess.Popen(cmd, cwd=REPO, env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    stdout = outs[0][0]
    assert "2 proc x 2 accum" in stdout and "replicas identical after training: yes" in stdout
    assert outs[1][0] == ""  # only rank 0 speaks
    a, b = load_checkpoint(one / "ckpt.pt"), load_checkpoint(two / "ckpt.pt")
    assert b["world_size"] == 2 and len(b["rng"]) == 2 and a["data"] == b["data"]
    for k in a["model"]:  # the same sequences, summed in another order
        assert torch.allclose(a["model"][k], b["model"][k], atol=1e-5), k
    la, lb = [r["loss"] for r in records(one)], [r["loss"] for r in records(two)]
    assert la == pytest.approx(lb, abs=1e-5)


def test_config_defaults_are_plain_values():
    """A dataclass field and a classmethod of one name once made the field's default a bound method."""
    import json

    cfg = TrainConfig()
    assert cfg.preset == "tiny"
    json.dumps(cfg.to_dict())
