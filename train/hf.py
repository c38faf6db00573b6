"""Hugging Face model directories: our GPT written as GPT-2 or GPT-Neo, and read back.

The mapping is exact, not approximate: an exported directory loaded with
``transformers.AutoModelForCausalLM`` gives our logits to float32 rounding, and
a GPT-2 or GPT-Neo directory imported here gives transformers' logits. Where
the two definitions differ, the weights are rewritten so that both compute the
same function:

* **Which architecture.** A model whose layers are all dense is a GPT-2
  (``GPT2LMHeadModel``). A model with banded layers (GPT-3's alternation) is a
  GPT-Neo (``GPTNeoForCausalLM``), whose ``attention_types`` list marks each
  layer ``global`` or ``local``.
* **The band.** GPT-Neo's local layer masks the causal mask with
  ``tril(-window_size)``: query i sees keys ``i - window_size < j <= i``, itself
  and the ``window_size - 1`` before it. That is our ``band_mask`` with
  ``local_window == window_size``, so the width is copied as it is.
* **Score scaling.** GPT-Neo does not divide the scores by sqrt(head_dim); we
  do (it keeps the softmax in range at initialisation). ``q.k / sqrt(d)`` is
  ``(q / sqrt(d)).k``, so the export multiplies the query projection by
  ``1/sqrt(d)`` and the import multiplies it back.
* **Biases.** GPT-Neo's q/k/v projections have none, so models that are to be
  exported as GPT-Neo are built without them (``GPTConfig.qkv_bias``, off by
  default). GPT-2 has them; a model without them exports zeros there.
* **Vocabulary.** Our token table is padded to a multiple of 64 rows that are
  never a token; HF models get the real rows only (so the logits have the real
  width, as ours do), and an import pads again with zero rows.
* **GELU.** Ours is the tanh approximation, transformers' ``gelu_pytorch_tanh``
  (the same formula as GPT-2's ``gelu_new``, computed by the same torch kernel).

Only ``safetensors`` is needed to write or read a directory; ``transformers``
itself is needed only to use the result (and by the tests, which check it).

>>> cfg = GPTConfig(vocab_size=100, n_layer=2, n_embd=32, n_head=4, block_size=64, local_window=8)
>>> hf_config(cfg, eot_id=99)["architectures"], hf_config(cfg, eot_id=99)["attention_types"]
(['GPTNeoForCausalLM'], [[['global', 'local'], 1]])
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from train.model import GPT, GPTConfig

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
GENERATION_CONFIG = "generation_config.json"
TOKENIZER = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
LAYER_NORM_EPS = 1e-5  # torch's nn.LayerNorm default, which our model uses
# activation names in transformers' table that are the tanh-approximated GELU we use
TANH_GELU = ("gelu_pytorch_tanh", "gelu_new")


class HFFormatError(ValueError):
    """A model directory or checkpoint that cannot be mapped exactly; the message names it."""


# --------------------------------------------------------------------------- export

def architecture(cfg: GPTConfig) -> str:
    """``'gpt2'`` for an all-dense model, ``'gpt_neo'`` when some layer is banded."""
    return "gpt_neo" if any(cfg.is_banded(i) for i in range(cfg.n_layer)) else "gpt2"


def attention_kinds(cfg: GPTConfig) -> list[str]:
    """GPT-Neo's name for each layer: ``global`` (dense) or ``local`` (banded)."""
    return ["local" if cfg.is_banded(i) else "global" for i in range(cfg.n_layer)]


def _attention_types(cfg: GPTConfig) -> list:
    """GPT-Neo's compressed ``attention_types``: one repeated pattern when it divides the
    stack (``[[["global", "local"], 6]]`` for 12 layers), else one entry per layer."""
    kinds = attention_kinds(cfg)
    k = cfg.sparse_every
    if cfg.n_layer % k == 0 and kinds == kinds[:k] * (cfg.n_layer // k):
        return [[kinds[:k], cfg.n_layer // k]]
    return [[[kind], 1] for kind in kinds]


def hf_config(cfg: GPTConfig, eot_id: int) -> dict:
    """``config.json`` of the HF twin of a model of shape ``cfg``."""
    common = {
        "vocab_size": cfg.vocab_size,
        "activation_function": TANH_GELU[0],
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "initializer_range": 0.02,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
        "tie_word_embeddings": True,
        "use_cache": True,
        "dtype": "float32",
    }
    if architecture(cfg) == "gpt2":
        return {
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "n_embd": cfg.n_embd, "n_layer": cfg.n_layer, "n_head": cfg.n_head,
            "n_positions": cfg.block_size, "n_ctx": cfg.block_size, "n_inner": None,
            "resid_pdrop": cfg.dropout, "embd_pdrop": cfg.dropout, "attn_pdrop": cfg.dropout,
            "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False, **common,
        }
    return {
        "architectures": ["GPTNeoForCausalLM"], "model_type": "gpt_neo",
        "hidden_size": cfg.n_embd, "num_layers": cfg.n_layer, "num_heads": cfg.n_head,
        "max_position_embeddings": cfg.block_size, "intermediate_size": None,
        "attention_types": _attention_types(cfg), "window_size": int(cfg.local_window),
        "resid_dropout": cfg.dropout, "embed_dropout": cfg.dropout, "attention_dropout": cfg.dropout,
        **common,
    }


def hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """The weights under transformers' names and layouts (float32, contiguous, unshared).

    GPT-2 keeps its projections in ``Conv1D`` modules, (in, out) matrices: ours
    are (out, in), so they are transposed. GPT-Neo uses ``nn.Linear`` like ours,
    with q, k and v as three matrices. The tied output head is not written
    (transformers ties it to ``wte`` on load).
    """
    cfg = model.config
    arch = architecture(cfg)
    if arch == "gpt_neo" and cfg.qkv_bias and cfg.bias:
        raise HFFormatError("the model has query/key/value biases, which GPT-Neo has no place for; only all-dense "
                            "models (GPT-2) can carry them. Train banded models with --model.qkv_bias=false "
                            "(the default since the Hugging Face export)")
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    C = cfg.n_embd

    def bias(name: str, n: int) -> torch.Tensor:
        return sd[name] if name in sd else torch.zeros(n)  # a model without biases exports zeros

    out = {
        "transformer.wte.weight": sd["transformer.wte.weight"][:cfg.vocab_size],  # the real rows only
        "transformer.wpe.weight": sd["transformer.wpe.weight"],
        "transformer.ln_f.weight": sd["transformer.ln_f.weight"],
        "transformer.ln_f.bias": bias("transformer.ln_f.bias", C),
    }
    scale = 1.0 / math.sqrt(cfg.head_dim)
    for i in range(cfg.n_layer):
        p, q = f"transformer.h.{i}.", f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            out[q + ln + ".weight"] = sd[p + ln + ".weight"]
            out[q + ln + ".bias"] = bias(p + ln + ".bias", C)
        w_attn, b_attn = sd[p + "attn.c_attn.weight"], bias(p + "attn.c_attn.bias", 3 * C)  # (3C, C), (3C,)
        if arch == "gpt2":
            out[q + "attn.c_attn.weight"] = w_attn.t()  # (C, 3C)
            out[q + "attn.c_attn.bias"] = b_attn
            out[q + "attn.c_proj.weight"] = sd[p + "attn.c_proj.weight"].t()
            out[q + "attn.c_proj.bias"] = bias(p + "attn.c_proj.bias", C)
            out[q + "mlp.c_fc.weight"] = sd[p + "mlp.c_fc.weight"].t()  # (C, 4C)
            out[q + "mlp.c_proj.weight"] = sd[p + "mlp.c_proj.weight"].t()  # (4C, C)
        else:
            wq, wk, wv = w_attn.split(C, dim=0)  # 3 x (C, C)
            a = q + "attn.attention."
            out[a + "q_proj.weight"] = wq * scale  # GPT-Neo does not scale the scores: the query carries it
            out[a + "k_proj.weight"] = wk
            out[a + "v_proj.weight"] = wv
            out[a + "out_proj.weight"] = sd[p + "attn.c_proj.weight"]
            out[a + "out_proj.bias"] = bias(p + "attn.c_proj.bias", C)
            out[q + "mlp.c_fc.weight"] = sd[p + "mlp.c_fc.weight"]
            out[q + "mlp.c_proj.weight"] = sd[p + "mlp.c_proj.weight"]
        out[q + "mlp.c_fc.bias"] = bias(p + "mlp.c_fc.bias", 4 * C)
        out[q + "mlp.c_proj.bias"] = bias(p + "mlp.c_proj.bias", C)
    return {k: v.contiguous().clone() for k, v in out.items()}


def tokenizer_config(eot_token: str, block_size: int) -> dict:
    """``tokenizer_config.json``: the fast tokenizer of ``tokenizer.json`` as it is.

    ``PreTrainedTokenizerFast`` loads ``tokenizer.json`` without rebuilding it
    (a ``GPT2Tokenizer`` class would rebuild the pipeline from vocab and merges),
    so the ids are the ones the model was trained on. Decoding must not touch
    spaces (``clean_up_tokenization_spaces``), or the text would not round-trip.
    """
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": eot_token, "eos_token": eot_token, "unk_token": eot_token,
        "model_max_length": block_size, "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
    }


def export(model: GPT, out: str | os.PathLike, tokenizer_path: str | os.PathLike, source: dict | None = None) -> Path:
    """Write ``model`` and its tokenizer as a Hugging Face model directory; returns it.

    ``source`` (what the model came from: checkpoint, step) goes into the
    safetensors metadata. Files are written to a temporary folder beside ``out``
    and moved into place, so a crash leaves no half-written model.
    """
    from safetensors.torch import save_file

    from curate.mixture.tokenizer import EOT, Tokenizer

    tok = Tokenizer.load(tokenizer_path)
    if tok.vocab_size != model.config.vocab_size:
        raise HFFormatError(f"{tokenizer_path}: tokenizer has {tok.vocab_size:,} tokens, the model "
                            f"{model.config.vocab_size:,}")
    tensors = hf_state_dict(model)  # refuses a model GPT-Neo cannot hold before anything is written
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp-export")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    meta = {"format": "pt", "exported_by": "train.export"}
    meta.update({k: str(v) for k, v in (source or {}).items()})
    try:
        save_file(tensors, str(tmp / WEIGHTS), metadata=meta)
        _write_json(tmp / CONFIG, hf_config(model.config, tok.eot_id))
        _write_json(tmp / GENERATION_CONFIG, {"bos_token_id": tok.eot_id, "eos_token_id": tok.eot_id})
        tok.save(tmp / TOKENIZER)
        _write_json(tmp / TOKENIZER_CONFIG, tokenizer_config(EOT, model.config.block_size))
        _write_json(tmp / "special_tokens_map.json", {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- import

def is_hf_dir(path: str | os.PathLike) -> bool:
    """True for a folder with a ``config.json`` (what ``from_pretrained`` reads)."""
    return Path(path).is_dir() and (Path(path) / CONFIG).is_file()


def gpt_config_from_hf(d: dict, where: str = CONFIG) -> GPTConfig:
    """Our GPTConfig for an HF GPT-2 or GPT-Neo ``config.json`` (as a dict).

    Anything that would make our model compute something else is an error
    naming the setting, never silently dropped: another activation, another
    LayerNorm epsilon, an MLP that is not 4x wide, untied embeddings, GPT-2's
    per-layer score scaling, or a GPT-Neo layer pattern our banded layers
    cannot express (local every ``k``-th layer).
    """
    kind = d.get("model_type")
    if kind not in ("gpt2", "gpt_neo"):
        raise HFFormatError(f"{where}: model_type {kind!r} is not a GPT-2 or GPT-Neo model")
    d = {"activation_function": "gelu_new", **d}  # both configs' default when the file leaves it out

    def need(key, ok, want):
        value = d.get(key)
        if not ok(value):
            raise HFFormatError(f"{where}: {key}={value!r} has no exact equivalent here (needs {want})")

    need("activation_function", lambda v: v in TANH_GELU, " or ".join(TANH_GELU))
    need("layer_norm_epsilon", lambda v: v is None or abs(v - LAYER_NORM_EPS) < 1e-12, LAYER_NORM_EPS)
    need("tie_word_embeddings", lambda v: v in (None, True), "tied input and output embeddings")
    if kind == "gpt2":
        n_embd = d.get("n_embd", 768)
        need("n_inner", lambda v: v in (None, 4 * n_embd), f"None or {4 * n_embd}")
        need("scale_attn_weights", lambda v: v in (None, True), "True")
        need("scale_attn_by_inverse_layer_idx", lambda v: not v, "False")
        need("add_cross_attention", lambda v: not v, "False")
        drop = float(d.get("resid_pdrop", 0.0))
        return GPTConfig(vocab_size=d.get("vocab_size", 50257), block_size=d.get("n_positions", 1024),
                         n_layer=d.get("n_layer", 12), n_head=d.get("n_head", 12), n_embd=n_embd,
                         dropout=drop, bias=True, qkv_bias=True, local_window=0)
    if kind == "gpt_neo":
        hidden = d.get("hidden_size", 2048)
        need("intermediate_size", lambda v: v in (None, 4 * hidden), f"None or {4 * hidden}")
        n_layer = d.get("num_layers", 24)
        kinds = []
        for pattern, repeats in d.get("attention_types") or [[["global", "local"], 12]]:
            kinds += list(pattern) * int(repeats)
        if len(kinds) != n_layer:
            raise HFFormatError(f"{where}: attention_types lists {len(kinds)} layers, num_layers is {n_layer}")
        if set(kinds) - {"global", "local"}:
            raise HFFormatError(f"{where}: unknown attention types {sorted(set(kinds) - {'global', 'local'})}")
        window, every = 0, 2
        if "local" in kinds:
            window = int(d.get("window_size", 256))
            every = kinds.index("local") + 1  # layer i is local when i % every == every - 1
            if kinds != ["local" if i % every == every - 1 else "global" for i in range(n_layer)]:
                raise HFFormatError(f"{where}: the local layers {[i for i, k in enumerate(kinds) if k == 'local']} "
                                    "are not every k-th layer, which is the pattern this model can express")
        return GPTConfig(vocab_size=d.get("vocab_size", 50257), block_size=d.get("max_position_embeddings", 2048),
                         n_layer=n_layer, n_head=d.get("num_heads", 16), n_embd=hidden,
                         dropout=float(d.get("resid_dropout", 0.0)), bias=True, qkv_bias=False,
                         local_window=window, sparse_every=every)
    raise HFFormatError(f"{where}: model_type {kind!r} is not a GPT-2 or GPT-Neo model")


def read_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of ``model.safetensors`` or of the shards its index lists."""
    from safetensors.torch import load_file

    single, index = folder / WEIGHTS, folder / WEIGHTS_INDEX
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        out = {}
        for name in files:
            out.update(load_file(str(folder / name)))
        return out
    raise HFFormatError(f"{folder}: no {WEIGHTS} or {WEIGHTS_INDEX} (only safetensors weights are read; "
                        "a pytorch_model.bin is a pickle and is not loaded)")


def state_dict_from_hf(tensors: dict[str, torch.Tensor], cfg: GPTConfig, kind: str,
                       where: str = WEIGHTS) -> dict[str, torch.Tensor]:
    """Our state dict from transformers' tensors: the inverse of :func:`hf_state_dict`.

    Names may come with or without the ``transformer.`` prefix (GPT-2's own files
    have none). The causal-mask buffers old files carry are ignored; an output
    head that differs from the token table, a missing tensor or a left-over one
    is an error.
    """
    t = {}
    for name, value in tensors.items():
        if name.startswith("transformer."):
            name = name[len("transformer."):]
        if name.endswith((".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias")):
            continue  # causal-mask buffers of old transformers versions, not weights
        t[name] = value.float()
    head = t.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, t.get("wte.weight", head)):
        raise HFFormatError(f"{where}: lm_head.weight differs from wte.weight; only tied embeddings are supported")
    C, V = cfg.n_embd, cfg.vocab_size
    used = set()

    def take(name: str, shape: tuple) -> torch.Tensor:
        if name not in t:
            raise HFFormatError(f"{where}: missing tensor {name}")
        if tuple(t[name].shape) != shape:
            raise HFFormatError(f"{where}: {name} has shape {tuple(t[name].shape)}, expected {shape}")
        used.add(name)
        return t[name]

    wte = torch.zeros(cfg.padded_vocab_size, C)
    wte[:V] = take("wte.weight", (V, C))  # padding rows are never a token
    sd = {"transformer.wte.weight": wte, "transformer.wpe.weight": take("wpe.weight", (cfg.block_size, C)),
          "transformer.ln_f.weight": take("ln_f.weight", (C,)), "transformer.ln_f.bias": take("ln_f.bias", (C,))}
    scale = math.sqrt(cfg.head_dim)
    for i in range(cfg.n_layer):
        h, p = f"h.{i}.", f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            sd[p + ln + ".weight"] = take(h + ln + ".weight", (C,))
            sd[p + ln + ".bias"] = take(h + ln + ".bias", (C,))
        if kind == "gpt2":
            sd[p + "attn.c_attn.weight"] = take(h + "attn.c_attn.weight", (C, 3 * C)).t()
            sd[p + "attn.c_attn.bias"] = take(h + "attn.c_attn.bias", (3 * C,))
            sd[p + "attn.c_proj.weight"] = take(h + "attn.c_proj.weight", (C, C)).t()
            sd[p + "attn.c_proj.bias"] = take(h + "attn.c_proj.bias", (C,))
            sd[p + "mlp.c_fc.weight"] = take(h + "mlp.c_fc.weight", (C, 4 * C)).t()
            sd[p + "mlp.c_proj.weight"] = take(h + "mlp.c_proj.weight", (4 * C, C)).t()
        else:
            a = h + "attn.attention."
            wq = take(a + "q_proj.weight", (C, C)) * scale  # our attention divides by sqrt(d) again
            sd[p + "attn.c_attn.weight"] = torch.cat([wq, take(a + "k_proj.weight", (C, C)),
                                                      take(a + "v_proj.weight", (C, C))], dim=0)
            sd[p + "attn.c_proj.weight"] = take(a + "out_proj.weight", (C, C))
            sd[p + "attn.c_proj.bias"] = take(a + "out_proj.bias", (C,))
            sd[p + "mlp.c_fc.weight"] = take(h + "mlp.c_fc.weight", (4 * C, C))
            sd[p + "mlp.c_proj.weight"] = take(h + "mlp.c_proj.weight", (C, 4 * C))
        sd[p + "mlp.c_fc.bias"] = take(h + "mlp.c_fc.bias", (4 * C,))
        sd[p + "mlp.c_proj.bias"] = take(h + "mlp.c_proj.bias", (C,))
    extra = sorted(set(t) - used)
    if extra:
        raise HFFormatError(f"{where}: tensors this model has no place for: {extra[:5]}"
                            + (f" and {len(extra) - 5} more" if len(extra) > 5 else ""))
    sd["lm_head.weight"] = wte
    return {k: v.contiguous() for k, v in sd.items()}


def load_hf(folder: str | os.PathLike, device="cpu") -> GPT:
    """Our GPT (eval mode) with the weights of a local HF GPT-2 or GPT-Neo directory.

    Nothing is downloaded: ``folder`` must hold ``config.json`` and safetensors weights.
    """
    folder = Path(folder)
    if not is_hf_dir(folder):
        raise HFFormatError(f"{folder}: not a model directory (no {CONFIG})")
    d = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    cfg = gpt_config_from_hf(d, str(folder / CONFIG))
    sd = state_dict_from_hf(read_safetensors(folder), cfg, d["model_type"], str(folder))
    model = GPT(cfg)
    model.load_state_dict(sd)
    return model.to(device).eval()


def hf_tokenizer_path(folder: str | os.PathLike) -> Path:
    """The tokenizer of an HF directory, in a form ``Tokenizer.load`` reads.

    ``tokenizer.json`` when present; otherwise GPT-2's two-file format
    (``vocab.json`` + ``merges.txt``, the same content as OpenAI's
    ``encoder.json`` + ``vocab.bpe``), returned as the folder itself when it has
    those names, else an error.
    """
    folder = Path(folder)
    if (folder / TOKENIZER).is_file():
        return folder / TOKENIZER
    if (folder / "encoder.json").is_file() and (folder / "vocab.bpe").is_file():
        return folder
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return folder / "vocab.json"
    raise HFFormatError(f"{folder}: no tokenizer.json (or vocab.json + merges.txt)")


def load_tokenizer(path: str | os.PathLike):
    """A :class:`curate.mixture.tokenizer.Tokenizer` from ``tokenizer.json``, a GPT-2 file
    folder, or ``vocab.json`` (with ``merges.txt`` beside it)."""
    from curate.mixture.tokenizer import Tokenizer

    path = Path(path)
    if path.name == "vocab.json":
        return Tokenizer.from_gpt2_files(path, path.with_name("merges.txt"))
    return Tokenizer.load(path)


# --------------------------------------------------------------------------- either kind

@dataclass
class Loaded:
    """A model and what goes with it, from a checkpoint or an HF directory."""

    model: GPT
    tokenizer_path: Path | None  # tokenizer.json (or a GPT-2 file folder); None when unknown
    manifest: Path | None        # token shards the model trained on, when known
    source: dict                 # what it came from: kind, path, step


def tokenizer_of_checkpoint(run: dict) -> tuple[Path | None, Path | None]:
    """(tokenizer path, manifest) recorded in a checkpoint's config (pretraining or fine-tuning)."""
    manifest = Path(run["manifest"]) if run.get("manifest") else None
    if run.get("tokenizer"):
        return Path(run["tokenizer"]), manifest
    if manifest is not None and manifest.is_file():
        from curate.mixture.build import load_manifest

        return manifest.parent / load_manifest(manifest)["tokenizer"]["path"], manifest
    return None, manifest


def load_any(path: str | os.PathLike, device="cpu") -> Loaded:
    """The model at ``path``: a ``ckpt.pt`` of this trainer (pretraining or fine-tuning)
    or a Hugging Face GPT-2/GPT-Neo directory."""
    path = Path(path)
    if path.is_dir():
        model = load_hf(path, device)
        return Loaded(model, hf_tokenizer_path(path), None, {"kind": "hf", "path": str(path.resolve())})
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint or model directory")
    from train.checkpoint import load_model

    model, run = load_model(path, device=device)
    tok, manifest = tokenizer_of_checkpoint(run)
    return Loaded(model, tok, manifest, {"kind": "checkpoint", "path": str(path.resolve()), "step": run.get("step")})
