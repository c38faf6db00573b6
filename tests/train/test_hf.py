"""Hugging Face interop: export equals transformers' model, import of random HF models,
generation equal to transformers' generate, and the eval harness on a model folder.

Every HF model here is created in the test with random weights; nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.common import require
from train.hf import HFFormatError, export, gpt_config_from_hf, hf_state_dict, load_hf
from train.model import GPT, GPTConfig, GPT3_TABLE

transformers = require("transformers")
transformers.logging.set_verbosity_error()
# the tokenizer comes from the real shard set
pytestmark = [pytest.mark.shared_data, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def tokenizer_json(tiny_manifest) -> Path:
    return tiny_manifest.parent / "tokenizer.json"


def hf_logits(folder: Path, x: torch.Tensor) -> tuple[torch.Tensor, object]:
    hf, info = transformers.AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    with torch.no_grad():
        return hf.eval()(x).logits, hf


def randomise(model: torch.nn.Module, seed: int, scale: float = 0.05) -> None:
    """Give every weight (biases and LayerNorms too) a random value, so that a mapping that
    dropped or misplaced one would show in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def preset_shape(name: str) -> GPTConfig:
    """The preset's own shape when it is small; the GPT-3 sizes keep their head width, band
    (256), context (2048) and dense/local alternation with 2 heads and 2 layers, so the
    test builds them in seconds."""
    if name in ("tiny", "10m"):
        return GPTConfig.preset(name)
    cfg = GPTConfig.preset(name)
    return GPTConfig.preset(name, n_layer=2, n_head=2, n_embd=2 * cfg.head_dim, vocab_size=4096)


@pytest.mark.parametrize("name", ["tiny", "10m", *GPT3_TABLE])
def test_export_equals_transformers_for_every_preset(name, tokenizer_json, tmp_path):
    torch.manual_seed(0)
    model = GPT(preset_shape(name)).eval()
    randomise(model, seed=1)
    out = export(model, tmp_path / "hf", tokenizer_json)
    cfg = model.config
    T = min(cfg.block_size, 3 * cfg.local_window + 17)  # several bands: the local layers matter
    x = torch.randint(0, cfg.vocab_size, (2, T), generator=torch.Generator().manual_seed(2))
    theirs, hf = hf_logits(out, x)
    with torch.no_grad():
        ours = model(x)[0]
    assert type(hf).__name__ == "GPTNeoForCausalLM"  # every preset alternates dense and local
    assert hf.config.attention_layers == ["global", "local"] * (cfg.n_layer // 2)
    assert hf.config.window_size == cfg.local_window
    assert (ours - theirs).abs().max() < 1e-4
    # the local layers really are banded on both sides: a dense model gives other logits
    dense = GPT(GPTConfig(**{**cfg.to_dict(), "local_window": 0})).eval()
    dense.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (dense(x)[0] - theirs).abs().max() > 1e-3
    # and our own reader gives the model back
    with torch.no_grad():
        assert (load_hf(out)(x)[0] - ours).abs().max() < 1e-5


def test_all_dense_model_exports_as_gpt2_with_qkv_biases(tokenizer_json, tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("tiny", local_window=0, qkv_bias=True, n_layer=2)).eval()
    randomise(model, seed=3)
    out = export(model, tmp_path / "hf", tokenizer_json)
    x = torch.randint(0, 4096, (2, 100))
    theirs, hf = hf_logits(out, x)
    assert type(hf).__name__ == "GPT2LMHeadModel"
    with torch.no_grad():
        assert (model(x)[0] - theirs).abs().max() < 1e-4
    # GPT-Neo has no q/k/v biases: a banded model with them is refused, not exported approximately
    banded = GPT(GPTConfig.preset("tiny", qkv_bias=True, n_layer=2))
    with pytest.raises(HFFormatError, match="qkv_bias=false"):
        hf_state_dict(banded)


def test_export_on_real_text_from_a_trained_checkpoint(tiny_manifest, tokenizer_json, tmp_path, capsys):
    from train.export import main as export_main
    from train.train import main as train_main

    run = tmp_path / "run"
    assert train_main(["--manifest", str(tiny_manifest), "--out", str(run), "--max_steps=6", "--batch_size=4",
                       "--seq_len=128", "--model.n_layer=2", "--model.local_window=32", "--eval_interval=0",
                       "--log_interval=1000", "--eval_batches=1", "--threads=1"]) == 0
    out = tmp_path / "hf"
    assert export_main(["--checkpoint", str(run / "ckpt.pt"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "GPT-Neo" in printed and "max |logit difference|" in printed
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json"} <= {p.name for p in out.iterdir()}
    from train.hf import load_any

    model = load_any(run / "ckpt.pt").model
    text = (tiny_manifest.parent.parent / "web.parquet")
    import pyarrow.parquet as pq

    doc = pq.read_table(text).column("text")[0].as_py()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    from curate.mixture.tokenizer import Tokenizer

    ours_ids = Tokenizer.load(tokenizer_json).encode_batch([doc])[0].tolist()
    assert hf_tok(doc)["input_ids"] == ours_ids  # the same tokenizer, loaded by transformers
    assert hf_tok.decode(ours_ids) == doc
    x = torch.tensor([ours_ids[:256]])
    theirs, _ = hf_logits(out, x)
    with torch.no_grad():
        assert (model(x)[0] - theirs).abs().max() < 1e-4


# --------------------------------------------------------------------------- import

def random_hf(kind: str, tmp_path: Path, tokenizer_json: Path, vocab: int = 4096) -> Path:
    """A small randomly initialised HF model saved as safetensors, with our tokenizer beside it."""
    torch.manual_seed(7)
    if kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=128, n_embd=64, n_layer=2, n_head=4)
        model = transformers.GPT2LMHeadModel(cfg)
    else:
        cfg = transformers.GPTNeoConfig(vocab_size=vocab, max_position_embeddings=128, hidden_size=64,
                                        num_layers=4, num_heads=4, window_size=16,
                                        attention_types=[[["global", "local"], 2]])
        model = transformers.GPTNeoForCausalLM(cfg)
    randomise(model, seed=8)
    folder = tmp_path / kind
    model.save_pretrained(folder)
    shutil.copy(tokenizer_json, folder / "tokenizer.json")
    return folder


@pytest.mark.parametrize("kind", ["gpt2", "gpt_neo"])
def test_import_random_hf_models(kind, tokenizer_json, tmp_path):
    folder = random_hf(kind, tmp_path, tokenizer_json)
    assert (folder / "model.safetensors").is_file()
    ours = load_hf(folder)
    x = torch.randint(0, 4096, (2, 100))
    theirs, _ = hf_logits(folder, x)
    with torch.no_grad():
        assert (ours(x)[0] - theirs).abs().max() < 1e-4
    assert ours.layer_kinds() == (["dense"] * 2 if kind == "gpt2" else ["dense", "banded"] * 2)


def test_import_refuses_what_it_cannot_map_exactly():
    base = {"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "activation_function": "gelu_new"}
    assert gpt_config_from_hf(base).qkv_bias
    with pytest.raises(HFFormatError, match="activation_function='relu'"):
        gpt_config_from_hf({**base, "activation_function": "relu"})
    with pytest.raises(HFFormatError, match="scale_attn_by_inverse_layer_idx"):
        gpt_config_from_hf({**base, "scale_attn_by_inverse_layer_idx": True})
    neo = {"model_type": "gpt_neo", "hidden_size": 64, "num_layers": 3, "num_heads": 4,
           "activation_function": "gelu_new", "attention_types": [[["local", "global", "global"], 1]]}
    with pytest.raises(HFFormatError, match="every k-th layer"):
        gpt_config_from_hf(neo)
    with pytest.raises(HFFormatError, match="model_type 'llama'"):
        gpt_config_from_hf({"model_type": "llama"})


def test_train_init_from_an_hf_folder(tiny_manifest, tokenizer_json, tmp_path, capsys):
    from train.checkpoint import load_model
    from train.train import main as train_main

    folder = random_hf("gpt_neo", tmp_path, tokenizer_json)
    run = tmp_path / "run"
    # lr 0: the run's weights must be exactly the imported ones
    args = ["--manifest", str(tiny_manifest), "--max_steps=1", "--lr=0", "--batch_size=2", "--eval_interval=0",
            "--eval_batches=1", "--threads=1"]
    assert train_main([*args, "--out", str(run), "--init-from", str(folder)]) == 0
    model, cfg = load_model(run / "ckpt.pt")
    assert cfg["init_from"] == str(folder.resolve()) and cfg["model"]["n_embd"] == 64
    imported = load_hf(folder)
    for k, v in imported.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    # a folder whose tokenizer is not the shards' is refused with one line
    other = random_hf("gpt2", tmp_path / "o", tokenizer_json, vocab=300)
    assert train_main([*args, "--out", str(tmp_path / "run2"), "--init-from", str(other)]) == 2
    assert "300 tokens" in capsys.readouterr().err


# --------------------------------------------------------------------------- generation

@pytest.fixture(scope="module")
def peaked(tokenizer_json, tmp_path_factory):
    """(our model, exported folder) per architecture; embeddings scaled up so the logits
    have no near-ties that float rounding could break differently in the two."""
    out = {}
    for kind, window in (("gpt_neo", 8), ("gpt2", 0)):
        torch.manual_seed(1)
        model = GPT(GPTConfig(vocab_size=4096, n_layer=4, n_embd=32, n_head=4, block_size=64,
                              local_window=window)).eval()
        with torch.no_grad():
            model.transformer.wte.weight.mul_(8)
        folder = export(model, tmp_path_factory.mktemp(kind) / "hf", tokenizer_json)
        out[kind] = (model, folder, transformers.AutoModelForCausalLM.from_pretrained(folder).eval())
    return out


@pytest.mark.parametrize("kind", ["gpt_neo", "gpt2"])
def test_greedy_and_beam_search_equal_transformers_generate(kind, peaked):
    from train.generate import beam_search, sample

    model, _, hf = peaked[kind]
    ended = 0
    for s in range(2):
        prompt = torch.randint(0, 4096, (1, 5), generator=torch.Generator().manual_seed(s))
        p = prompt[0].tolist()
        free = beam_search(model, p, 20, 4)
        # an end-of-text id the model really emits, so finished hypotheses and early stops are
        # exercised, and one it does not
        for eos in (free[2], 4095):
            kw = dict(attention_mask=torch.ones_like(prompt), max_new_tokens=20, eos_token_id=eos, pad_token_id=eos)
            theirs = hf.generate(prompt, do_sample=False, **kw)[0, 5:].tolist()
            assert sample(model, p, 20, temperature=0, eos_id=eos) == theirs
            for beams, lp, early in ((3, 1.0, False), (4, 0.5, "never"), (4, 2.0, True), (2, -1.0, False)):
                theirs = hf.generate(prompt, do_sample=False, num_beams=beams, length_penalty=lp,
                                     early_stopping=early, **kw)[0, 5:].tolist()
                ours = beam_search(model, p, 20, beams, lp, early, eos_id=eos)
                assert ours == theirs, (s, eos, beams, lp, early)
                ended += ours[-1] == eos and len(ours) < 20
            # the key/value cache changes the cost, not the result
            assert beam_search(model, p, 20, 3, eos_id=eos, use_cache=False) == beam_search(model, p, 20, 3, eos_id=eos)
    assert ended >= 3  # hypotheses that finished early were compared, not just full-length ones


def test_sampling_is_seeded_and_filtered(peaked):
    from train.generate import filter_logits, sample

    model = peaked["gpt_neo"][0]
    a = sample(model, [1, 2, 3], 15, temperature=1.0, top_k=50, top_p=0.9, seed=4)
    assert a == sample(model, [1, 2, 3], 15, temperature=1.0, top_k=50, top_p=0.9, seed=4)
    assert a == sample(model, [1, 2, 3], 15, temperature=1.0, top_k=50, top_p=0.9, seed=4, use_cache=False)
    assert a != sample(model, [1, 2, 3], 15, temperature=1.0, top_k=50, top_p=0.9, seed=5)
    logits = torch.randn(3, 100)
    kept = ~filter_logits(logits, top_k=10, top_p=0.5).isinf()
    assert (kept.sum(-1) <= 10).all() and (kept.sum(-1) >= 1).all()
    # top-1 sampling is greedy
    assert sample(model, [1, 2, 3], 10, top_k=1, seed=9) == sample(model, [1, 2, 3], 10, temperature=0)


def test_generate_cli_prints_only_the_text(peaked, capsys):
    from curate.mixture.tokenizer import Tokenizer
    from train.generate import main

    _, folder, hf = peaked["gpt2"]
    prompt = "The old house stood"
    assert main(["--checkpoint", str(folder), "--prompt", prompt, "--max-new-tokens", "12",
                 "--beams", "3"]) == 0
    captured = capsys.readouterr()
    tok = Tokenizer.load(folder / "tokenizer.json")
    ids = torch.tensor([tok.encode_batch([prompt])[0].tolist()])
    theirs = hf.generate(ids, attention_mask=torch.ones_like(ids), num_beams=3, do_sample=False,
                         max_new_tokens=12)[0, ids.shape[1]:].tolist()
    theirs = [t for t in theirs if t != tok.eot_id]
    assert captured.out == prompt + tok.decode(theirs) + "\n"
    assert captured.err == ""
    assert main(["--checkpoint", str(folder / "nope"), "--prompt", "x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# --------------------------------------------------------------------------- evaluation

def test_eval_on_an_hf_folder_equals_eval_on_the_checkpoint(tiny_manifest, tmp_path, capsys):
    from tests.common import shared
    from train.checkpoint import FORMAT, save_checkpoint
    from train.eval import main as eval_main

    torch.manual_seed(3)
    model = GPT(GPTConfig.preset("tiny", n_layer=2, block_size=128, local_window=16)).eval()
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(ckpt, {"format": FORMAT, "model": model.state_dict(), "step": 3,
                           "config": {"manifest": str(tiny_manifest), "model": model.config.to_dict()}})
    folder = export(model, tmp_path / "hf", tiny_manifest.parent / "tokenizer.json")
    common = ["--lambada", str(shared("eval", "lambada_openai_test.part1.jsonl")), "--limit", "3", "--shots", "2",
              "--gsm8k-limit", "1", "--gsm8k-max-new-tokens", "3", "--prompt", "The", "--max-new-tokens", "3"]
    assert eval_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "a"), *common]) == 0
    assert eval_main(["--model", str(folder), "--out", str(tmp_path / "b"), "--manifest", str(tiny_manifest),
                      *common]) == 0
    a, b = (json.loads((tmp_path / d / "eval.json").read_text()) for d in "ab")
    for setting in ("zero_shot", "one_shot", "few_shot"):
        assert b["lambada"][setting]["accuracy"] == a["lambada"][setting]["accuracy"]
        assert b["lambada"][setting]["perplexity"] == pytest.approx(a["lambada"][setting]["perplexity"], rel=1e-4)
    assert b["val"]["overall"]["loss"] == pytest.approx(a["val"]["overall"]["loss"], rel=1e-5)
    # without a manifest the validation loss is skipped, the benchmarks still run
    assert eval_main(["--model", str(folder), "--out", str(tmp_path / "c"), *common]) == 0
    c = json.loads((tmp_path / "c" / "eval.json").read_text())
    assert "skipped" in c["val"] and c["lambada"]["zero_shot"]["items"] == 3
