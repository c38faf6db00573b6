"""Documents to weighted token shards: the byte-level BPE tokenizer, the shard
format (``.bin``/``.idx``) and the mixture build with its manifest.
"""
