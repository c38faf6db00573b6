"""The bundled GPT trainer: train a small GPT on the token shards ``curate`` writes, then evaluate it.

* ``model``: the GPT (dense and banded attention layers, GPT-3's shapes as presets)
* ``config``: ``TrainConfig``, named presets and ``--key=value`` overrides
* ``data``: ``MixtureLoader`` samples the shard mixture by weight; ``val_batches``
* ``train``: the training loop (``python -m train.train``; DDP under ``torchrun``)
* ``checkpoint``: atomic, ``weights_only`` checkpoints and ``load_model``
* ``eval``: validation loss, LAMBADA, GSM8K and samples (``python -m train.eval``, ``--model HF_DIR`` too)
* ``hf``: exact mapping to and from Hugging Face GPT-2 / GPT-Neo folders; ``export`` its command
* ``finetune``: full, top-N-block or LoRA fine-tuning on prompt/completion JSONL (``sft_data`` builds a set)
* ``generate``: greedy, sampling and beam search with the key/value cache (``python -m train.generate``)
"""
