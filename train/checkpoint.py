"""Checkpoints: written atomically, read back without unpickling arbitrary objects.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python
containers, so ``torch.load(..., weights_only=True)`` reads it: a checkpoint
someone downloads cannot run code. The trainer's checkpoint has these keys:

* ``model``: the state dict; ``optimizer``: AdamW's state dict
* ``config``: the run's TrainConfig as a dict (``manifest`` absolute, ``model`` the GPTConfig)
* ``step``: optimizer steps taken; ``data``: the MixtureLoader's ``state_dict()``
* ``rng``: torch, numpy and Python generator states, one entry per process

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "c.pt")
>>> save_checkpoint(path, {"step": 3, "w": torch.ones(2)})
>>> load_checkpoint(path)["step"]
3
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from curate.core.files import atomic_path
from train.model import GPT, GPTConfig

FORMAT = "curate-gpt-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a crash mid-write leaves the old file intact.

    The bytes go to a temporary name beside ``path`` (:func:`atomic_path`) and
    are flushed to disk before the rename, so a machine that dies right after
    the rename still has the whole checkpoint, not a renamed empty file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The dict saved by :func:`save_checkpoint`, loaded with ``weights_only=True``.

    A file that is not one (text, a truncated download, a pickle holding
    objects) is a ValueError naming it: torch reports those as unpickling,
    key, EOF or zip-reader errors of many types, which every command would
    otherwise show as a traceback. A missing or unreadable file stays OSError.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # re-raised as one error naming the file, never swallowed
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})"[:500]) from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a checkpoint (holds a {type(state).__name__}, not a dict)")
    return state


def load_model(path: str | os.PathLike, device="cpu") -> tuple[GPT, dict]:
    """The trained model (eval mode, on ``device``) and the run's config as a dict.

    The dict is the TrainConfig saved with the run plus ``step``: among others
    ``manifest`` (absolute path of the shards the run trained on) and ``model``
    (the GPTConfig as a dict). ``python -m train.eval --checkpoint RUN/ckpt.pt`` is its main user.
    """
    ckpt = load_checkpoint(path, map_location=device)
    if ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    model = GPT(GPTConfig.from_dict(ckpt["config"]["model"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    run = dict(ckpt["config"])
    run["step"] = int(ckpt["step"])
    return model, run


# --------------------------------------------------------------------------- generator states

def rng_state(device: torch.device | None = None) -> dict:
    """Every random generator a run touches, as tensors and lists (``weights_only`` safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss_next],
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device | None = None) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
