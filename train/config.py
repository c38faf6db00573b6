"""The training run's configuration: one typed dataclass, named presets, ``--key=value`` overrides.

A preset names a model shape and the optimisation that goes with it: ``tiny``
(a CPU run of a few minutes), ``10m``, and the eight GPT-3 sizes of Table 2.1
with the paper's learning rates and batch sizes (in tokens) and its schedule
(warmup over 375M tokens, cosine decay to 10% over 260B tokens, 300B tokens in
all, with the batch grown from 32k tokens over the first 4-12B). Any field can
then be overridden from the command line; model fields sit under ``model.``:

>>> cfg = apply_overrides(TrainConfig.from_preset("tiny"), ["--lr=3e-4", "--model.n_layer=2", "--compile"])
>>> cfg.lr, cfg.model.n_layer, cfg.compile
(0.0003, 2, True)
>>> apply_overrides(cfg, ["--model.n_layers=1"])
Traceback (most recent call last):
...
train.config.ConfigError: unknown option --model.n_layers (did you mean --model.n_layer?)
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import asdict, dataclass, field, fields, replace

from curate.core.fields import check_fields
from train.model import GPT3_TABLE, SMALL_PRESETS, GPTConfig


class ConfigError(ValueError):
    """A bad preset, option name or value on the command line."""


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` and inside every checkpoint."""

    preset: str = "tiny"
    manifest: str = ""            # token-shard manifest.json (stored absolute)
    model: GPTConfig = field(default_factory=lambda: GPTConfig.preset("tiny"))
    seq_len: int = 0              # tokens per training sequence; 0 = the model's context
    batch_size: int = 8           # sequences per micro-batch on each process
    batch_tokens: int = 0         # tokens per optimizer step over all processes; 0 = one micro-batch each
    batch_ramp_tokens: int = 0    # GPT-3's batch ramp: the batch grows to batch_tokens over this many tokens; 0 = off
    batch_start_tokens: int = 32768  # the ramp's first batch (GPT-3: 32k tokens)
    max_steps: int = 600
    lr: float = 2e-3              # peak learning rate
    min_lr_ratio: float = 0.1     # GPT-3 decays to 10% of the peak
    warmup_steps: int = 30
    lr_decay_steps: int = 0       # step where the cosine reaches its floor; 0 = max_steps
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"          # auto: cuda when available, else cpu
    dtype: str = "auto"           # auto: bfloat16 autocast on cuda, float32 on cpu
    compile: bool = False         # torch.compile the model (slow to warm up, worth it on GPUs)
    log_interval: int = 10        # steps between progress lines (every step goes to log.jsonl)
    eval_interval: int = 100      # steps between validation losses; 0 = only at the end
    eval_batches: int = 8         # validation batches per source
    ckpt_interval: int = 200      # steps between checkpoints; 0 = only at the end
    peak_flops: float = 0.0       # the device's peak FLOP/s for MFU; 0 = look the GPU up by name
    threads: int = 0              # CPU threads for torch; 0 = torch's default (one per core)
    init_from: str = ""           # start from these weights (HF GPT-2/GPT-Neo folder or ckpt.pt); "" = random

    @classmethod
    def from_preset(cls, name: str) -> "TrainConfig":
        """A named run preset.

        >>> TrainConfig.from_preset("small").batch_tokens, TrainConfig.from_preset("small").lr
        (524288, 0.0006)
        """
        key = name.lower()
        if key not in PRESETS:
            raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
        return PRESETS[key]()

    def to_dict(self) -> dict:
        """Plain dicts, lists and scalars only, so a checkpoint loads with ``weights_only=True``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        check_fields(cls, d, "config fields", ConfigError)
        d = dict(d)
        if "model" in d:
            d["model"] = GPTConfig.from_dict(d["model"])
        return cls(**d)

    @property
    def context(self) -> int:
        """The training sequence length actually used."""
        return self.seq_len or self.model.block_size


def _tiny() -> TrainConfig:
    # 1.35M parameters, 2k tokens a step: ~7k tokens/s on two idle CPU cores, so
    # 600 steps (1.2M tokens) take about three minutes.
    return TrainConfig(preset="tiny", model=GPTConfig.preset("tiny"), batch_size=8, max_steps=600,
                       lr=2e-3, warmup_steps=30, eval_interval=100, ckpt_interval=200)


def _10m() -> TrainConfig:
    return TrainConfig(preset="10m", model=GPTConfig.preset("10m"), batch_size=16, max_steps=2000,
                       lr=1e-3, warmup_steps=100, eval_interval=200, ckpt_interval=500)


# GPT-3 Table 2.1: peak learning rate and batch size. The paper's batch sizes
# (0.5M, 1M, 2M, 3.2M tokens) are 256, 512, 1024 and 1536 sequences of 2048.
# Appendix B grows the batch from 32k tokens over "the first 4-12 billion tokens
# of training, depending on the model size" without saying which size gets
# which; the last column is our reading of that range (4B up to XL, 12B for the
# two largest).
GPT3_OPTIM = {
    "small": (6.0e-4, 256, 4e9), "medium": (3.0e-4, 256, 4e9), "large": (2.5e-4, 256, 4e9),
    "xl": (2.0e-4, 512, 4e9), "2.7b": (1.6e-4, 512, 8e9), "6.7b": (1.2e-4, 1024, 8e9),
    "13b": (1.0e-4, 1024, 12e9), "175b": (0.6e-4, 1536, 12e9),
}


def _gpt3(name: str) -> TrainConfig:
    lr, sequences, ramp = GPT3_OPTIM[name]
    batch_tokens = sequences * 2048
    return TrainConfig(
        preset=name, model=GPTConfig.preset(name), batch_size=8, batch_tokens=batch_tokens,
        batch_ramp_tokens=int(ramp),
        lr=lr, warmup_steps=-(-375_000_000 // batch_tokens), lr_decay_steps=260_000_000_000 // batch_tokens,
        max_steps=300_000_000_000 // batch_tokens, eval_interval=1000, eval_batches=20, ckpt_interval=1000,
        log_interval=1)


PRESETS: dict[str, typing.Callable[[], TrainConfig]] = {"tiny": _tiny, "10m": _10m}
PRESETS.update({name: (lambda n=name: _gpt3(n)) for name in GPT3_TABLE})
assert set(SMALL_PRESETS) <= set(PRESETS)


# --------------------------------------------------------------------------- overrides

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_value(key: str, text: str | None, kind) -> object:
    """``text`` as the field's type; ``None`` text (a bare ``--flag``) means True for a bool."""
    args = typing.get_args(kind)
    optional = type(None) in args
    if optional:
        kind = next(a for a in args if a is not type(None))
        if text is not None and text.lower() in ("none", "null"):
            return None
    if kind is bool:
        if text is None or text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"--{key} takes true or false, not {text!r}")
    if text is None:
        raise ConfigError(f"--{key} needs a value: --{key}=VALUE")
    try:
        if kind is int:
            value = float(text) if any(c in text for c in ".eE") else int(text)
            if isinstance(value, float):  # allow 1e6 for counts, but not 1.5
                if not value.is_integer():
                    raise ValueError
                value = int(value)
            return value
        if kind is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"--{key} takes {'an integer' if kind is int else 'a number'}, not {text!r}") from None
    return text


def _known(obj) -> dict[str, tuple[object, typing.Any]]:
    """Every overridable key (dotted for nested dataclasses) -> (owner, field type)."""
    hints = typing.get_type_hints(type(obj))
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if hasattr(value, "__dataclass_fields__"):
            out.update({f"{f.name}.{k}": v for k, v in _known(value).items()})
        else:
            out[f.name] = (obj, hints[f.name])
    return out


def apply_overrides(config: TrainConfig, args: list[str]) -> TrainConfig:
    """``config`` with ``--key=value`` (or ``--flag`` for booleans) applied; a new object.

    Unknown keys, malformed arguments and values of the wrong type raise
    :class:`ConfigError` with a message fit for the command line.

    >>> apply_overrides(TrainConfig(), ["--max_steps=1e3", "--model.local_window=none"]).max_steps
    1000
    >>> apply_overrides(TrainConfig(), ["--max_steps=ten"])
    Traceback (most recent call last):
    ...
    train.config.ConfigError: --max_steps takes an integer, not 'ten'
    """
    top = {k: v for k, v in asdict(config).items() if k != "model"}
    model = asdict(config.model)
    known = _known(config)
    for arg in args:
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"unexpected argument {arg!r}: options are --key=value")
        key, eq, text = arg[2:].partition("=")
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean --{close[0]}?)" if close else ""
            raise ConfigError(f"unknown option --{key}{hint}")
        value = _parse_value(key, text if eq else None, known[key][1])
        if key.startswith("model."):
            model[key[len("model."):]] = value
        else:
            top[key] = value
    try:
        return replace(config, **top, model=GPTConfig(**model))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
