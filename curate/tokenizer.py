"""Byte-level BPE tokenizer: train, save, load, encode documents.

GPT-3 uses GPT-2's byte-level BPE (50,257 tokens: 256 bytes, 50,000 merges and
``<|endoftext|>``). tiktoken fetches GPT-2's merge files at run time and this
toolkit must work offline, so we train the same kind of tokenizer with HF
``tokenizers`` on the curated text itself. Byte-level means every string
round-trips exactly: ``decode(encode(text)) == text`` for any Unicode input.

>>> tok = train_tokenizer(["hello world"] * 50, TokenizerConfig.preset("tiny"))
>>> tok.decode(tok.encode_batch(["hello world"])[0].tolist())
'hello world'
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from curate.outputs import sha256_file

EOT = "<|endoftext|>"


@dataclass(frozen=True)
class TokenizerConfig:
    """How to train the tokenizer.

    ``train_fraction`` picks the documents the BPE is learned from by hashed id
    (``id_fraction(doc.id, "tokenizer")``), so a Common-Crawl-sized mixture can
    train on a stable sample instead of every byte.
    """

    vocab_size: int = 50257  # GPT-2's: 256 bytes + 50,000 merges + <|endoftext|>
    min_frequency: int = 2
    train_fraction: float = 1.0

    PRESETS = ("gpt3", "tiny")

    @classmethod
    def preset(cls, name: str) -> "TokenizerConfig":
        """``gpt3`` (50,257 tokens) or ``tiny`` (4,096, for tests)."""
        if name == "gpt3":
            return cls()
        if name == "tiny":
            return cls(vocab_size=4096)
        raise ValueError(f"unknown tokenizer preset {name!r} (one of {', '.join(cls.PRESETS)})")

    def to_json(self) -> dict:
        return asdict(self)


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (halves the shards), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.uint32)


class Tokenizer:
    """A trained byte-level BPE with an end-of-text id; a thin wrapper over HF ``tokenizers``."""

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer
        # A document that literally contains "<|endoftext|>" must encode as text,
        # not as the separator, or decoding would no longer give the document back
        # and the trainer would see a fake document boundary.
        self.hf.encode_special_tokens = True
        eot = self.hf.token_to_id(EOT)
        if eot is None:
            raise ValueError(f"tokenizer has no {EOT} token")
        self.eot_id: int = eot
        self.vocab_size: int = self.hf.get_vocab_size(with_added_tokens=True)
        self.dtype = token_dtype(self.vocab_size)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_file(str(path)))

    def save(self, path: str | os.PathLike) -> str:
        """Write ``tokenizer.json`` atomically; returns its sha256."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        # to_str is deterministic for the same trained model (sorted vocab + merge list)
        tmp.write_text(self.hf.to_str(pretty=True), encoding="utf-8")
        tmp.replace(path)
        return sha256_file(path)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids per text (no end-of-text added), using all cores.

        ``encode_batch_fast`` skips character offsets, which we never use.
        """
        encode = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)
        encs = encode(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=self.dtype) for e in encs]

    def decode(self, ids) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=False)


def _new_hf_tokenizer():
    from tokenizers import Tokenizer as HFTokenizer, decoders, models, pre_tokenizers

    tok = HFTokenizer(models.BPE())
    # GPT-2's setup: no prefix space (it would change the text), GPT-2's regex split
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig = TokenizerConfig()) -> Tokenizer:
    """Learn a byte-level BPE from ``texts`` (streamed; memory ~ distinct words).

    The result depends only on the texts and the config: the trainer breaks
    count ties by the pair itself, so training twice gives the same file.
    """
    from tokenizers import pre_tokenizers, trainers

    tok = _new_hf_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=[EOT],
        # all 256 bytes up front, so any input is encodable even if unseen in training
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(tok)


def tokenizer_info(path: str | os.PathLike) -> dict:
    """What the manifest records about a saved tokenizer."""
    tok = Tokenizer.load(path)
    return {
        "path": Path(path).name,
        "sha256": sha256_file(path),
        "vocab_size": tok.vocab_size,
        "eot_token": EOT,
        "eot_id": tok.eot_id,
        "dtype": tok.dtype.name,
    }


def dumps_json(obj) -> str:
    """Stable JSON text (sorted keys) so reruns write byte-identical files."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
