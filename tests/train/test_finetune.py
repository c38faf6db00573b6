"""Fine-tuning: the example format and its loss mask, the split, full / top-N / LoRA runs,
early stopping, exact resume, and LoRA merged into the weights that are exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.common import require, shared
from train.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from train.finetune import Example, collate, main, read_examples, split_examples
from train.model import GPT, GPTConfig

pytestmark = [pytest.mark.shared_data, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def base(tiny_manifest, tmp_path_factory) -> Path:
    """A small random model saved as a pretraining checkpoint of the real shard set."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", n_layer=2, n_embd=64, n_head=2, block_size=128, local_window=16))
    path = tmp_path_factory.mktemp("base") / "ckpt.pt"
    save_checkpoint(path, {"format": FORMAT, "model": model.state_dict(), "step": 0,
                           "config": {"manifest": str(tiny_manifest), "model": model.config.to_dict()}})
    return path


@pytest.fixture(scope="module")
def sections(tmp_path_factory) -> Path:
    """WikiText section examples (title + heading -> first paragraph) from the shared data."""
    from train.sft_data import build

    rows = build([shared("reference", "wikipedia", "wikitext-2_valid.txt.gz")])[:160]
    path = tmp_path_factory.mktemp("sft") / "sections.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tokenizer(tiny_manifest):
    from curate.mixture.tokenizer import Tokenizer

    return Tokenizer.load(tiny_manifest.parent / "tokenizer.json")


def test_examples_mask_the_prompt_and_bad_lines_are_counted(tiny_manifest, tmp_path):
    tok = tokenizer(tiny_manifest)
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "Q: two and two?\\nA:", "completion": " four"}\n'
                    "not json\n"
                    '{"text": "Plain text trains on every token."}\n'
                    '{"prompt": "only a prompt"}\n')
    pairs, errors = read_examples(path, tok, max_len=64)
    assert [e.line for e, _ in pairs] == [1, 3]
    assert len(errors) == 2 and errors[0].startswith(f"{path}:2: not JSON") and f"{path}:4:" in errors[1]
    pair, text = pairs[0][0], pairs[1][0]
    p, c = (tok.encode_batch(["Q: two and two?\nA:", " four"])[i].tolist() for i in range(2))
    assert pair.ids == p + c + [tok.eot_id] and pair.first_target == len(p)
    assert text.ids[0] == tok.eot_id and text.first_target == 1
    x, y = collate([pair, text])
    # the completion and its end-of-text are the only targets of the pair; padding is -1
    assert y[0][y[0] >= 0].tolist() == c + [tok.eot_id]
    assert y[1][y[1] >= 0].tolist() == text.ids[1:]
    assert (y[0, len(pair.ids) - 1:] == -1).all() and x[0, :len(pair.ids) - 1].tolist() == pair.ids[:-1]


def test_split_keeps_groups_together_and_is_order_free():
    pairs = [(Example([1, 2, 3], 1, i), f"article {i // 5}") for i in range(200)]
    train, val = split_examples(pairs, 0.2, seed=0)
    groups = lambda xs: {x.line // 5 for x in xs}  # noqa: E731
    assert not groups(train) & groups(val) and 10 < len(val) < 80
    again_train, again_val = split_examples(list(reversed(pairs)), 0.2, seed=0)
    assert {e.line for e in again_val} == {e.line for e in val}


def run(base, data, out, *args) -> int:
    return main(["--checkpoint", str(base), "--data", str(data), "--out", str(out), "--batch-size", "4",
                 "--seq-len", "96", "--threads", "1", "--log-interval", "1000", "--val-fraction", "0.2", *args])


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("method,extra", [("full", ["--lr", "3e-3"]), ("top", ["--top-blocks", "1", "--lr", "1e-2"]),
                                          ("lora", ["--lora-r", "4", "--lr", "1e-2"])])
def test_each_method_lowers_the_held_out_loss(method, extra, base, sections, tmp_path):
    if method == "lora":
        require("peft")
    out = tmp_path / method
    assert run(base, sections, out, "--method", method, "--max-steps", "30", "--eval-interval", "15", *extra) == 0
    s = summary(out)
    assert s["best_val_loss"] < s["base_val_loss"] - 0.1, s  # a fixed held-out set: no noise to beat
    n = s["parameters"]
    if method == "full":
        assert s["trainable_parameters"] == n
    elif method == "top":
        block = 12 * 64 * 64 + 10 * 64  # a block of width 64 without q/k/v biases: matrices, biases, norms
        assert s["trainable_parameters"] == block + 2 * 64  # and the final LayerNorm
    else:
        assert 0 < s["trainable_parameters"] < 0.1 * n
    # best.pt is a plain model checkpoint that the other commands read
    best = load_checkpoint(out / "best.pt")
    assert best["format"] == FORMAT and best["step"] == s["best_step"]
    assert not any("lora" in k or "base_layer" in k for k in best["model"])


def test_lora_is_merged_into_the_weights_exactly(base, sections, tmp_path):
    require("peft")
    from train.finetune import FinetuneConfig, plain_model, prepare_model
    from train.hf import load_any

    cfg = FinetuneConfig(method="lora", lora_r=4)
    model = prepare_model(load_any(base).model, cfg)
    with torch.no_grad():  # peft starts B at zero; make the adapters do something
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    x = torch.randint(0, 4096, (2, 40))
    with torch.no_grad():
        wrapped = model(x)[0]
        merged = plain_model(model)(x)[0]
    assert isinstance(plain_model(model), GPT)
    assert (wrapped - merged).abs().max() < 1e-4 and (wrapped - load_any(base).model(x)[0]).abs().max() > 1e-3


def test_early_stopping_on_the_validation_loss(base, sections, tmp_path, capsys):
    out = tmp_path / "stop"
    # lr 0: the validation loss never improves, so patience 2 stops at the second evaluation
    assert run(base, sections, out, "--lr", "1e-12", "--warmup-steps", "1", "--max-steps", "50",
               "--eval-interval", "2", "--patience", "2", "--weight-decay", "0") == 0
    s = summary(out)
    assert s["stopped_early"] and s["step"] == 4, s
    assert "early stop" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["full", "lora"])
def test_resume_continues_bit_for_bit(method, base, sections, tmp_path):
    if method == "lora":
        require("peft")
    args = ["--method", method, "--lr", "2e-3", "--eval-interval", "3", "--patience", "0"]
    assert run(base, sections, tmp_path / "straight", *args, "--max-steps", "6") == 0
    assert run(base, sections, tmp_path / "split", *args, "--max-steps", "3") == 0
    assert main(["--out", str(tmp_path / "split"), "--resume", "--max-steps", "6"]) == 0
    a = load_checkpoint(tmp_path / "straight" / "ckpt.pt")
    b = load_checkpoint(tmp_path / "split" / "ckpt.pt")
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    losses = lambda d: [r["loss"] for r in map(json.loads, (d / "log.jsonl").read_text().splitlines())  # noqa: E731
                        if r["kind"] == "train"]
    assert losses(tmp_path / "straight") == losses(tmp_path / "split")


def test_finetuned_model_exports_and_generates(base, sections, tmp_path, capsys):
    require("peft")
    from train.export import main as export_main
    from train.generate import main as generate_main

    out = tmp_path / "ft"
    assert run(base, sections, out, "--method", "lora", "--max-steps", "4", "--eval-interval", "2") == 0
    assert export_main(["--checkpoint", str(out / "best.pt"), "--out", str(tmp_path / "hf")]) == 0
    assert "max |logit difference|" in capsys.readouterr().out
    assert generate_main(["--checkpoint", str(out / "best.pt"), "--prompt", "Homarus gammarus\n\n",
                          "--temperature", "0", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("Homarus gammarus\n\n")


def test_cli_errors_are_one_line(base, sections, tmp_path, capsys):
    assert main(["--checkpoint", str(base), "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert run(base, sections, tmp_path / "x", "--max-steps", "1") == 0
    assert run(base, sections, tmp_path / "x", "--max-steps", "1") == 2  # exists, no --resume
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "none.jsonl: no such file" in err and "--resume" in err
