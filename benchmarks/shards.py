"""Tokenisation throughput and shard write rate for ``curate shards``.

    python -m benchmarks.shards [--vocab 4096] [--copies 3]

Trains a byte-level BPE tokenizer on the reference books and Dragnet articles
in ../shared/data/reference, then times batched encoding over 1,024 documents
at a time (second pass), with tiktoken and with HF ``tokenizers`` (same ids),
and writing token shards of the same text with ``write_source_shards``. Prints tokens/s for each (target >= 1M
tokens/s for tokenisation) and the peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF = REPO.parent / "shared" / "data" / "reference"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", type=int, default=4096, help="BPE vocabulary size (50257 = GPT-2's)")
    ap.add_argument("--copies", type=int, default=3, help="times the text is encoded, for a stable timing")
    args = ap.parse_args(argv)
    if not REF.is_dir():
        print(f"benchmarks.shards: error: {REF} not found (the shared data set)", file=sys.stderr)
        return 2

    from curate.ingest.reference import read_gutenberg, read_jsonl
    from curate.core.progress import rss_mb
    from curate.mixture.shards import write_source_shards
    from curate.mixture.tokenizer import TokenizerConfig, train_tokenizer

    docs = [d for p in sorted((REF / "books").glob("*.txt.gz")) for d in read_gutenberg(p)]
    docs += list(read_jsonl(REF / "webtext_like" / "dragnet-2012-articles.train.jsonl.gz", text_field="article"))
    texts = [d.text for d in docs]
    mb = sum(map(len, texts)) / 1e6
    t0 = time.perf_counter()
    tok = train_tokenizer(texts, TokenizerConfig(vocab_size=args.vocab))
    print(f"{len(docs)} documents, {mb:.1f} M characters; tokenizer (vocab {args.vocab}) trained in "
          f"{time.perf_counter() - t0:.1f} s")

    batch = 1024
    rates = {}
    for name, encode in (("tiktoken (used when installed)", tok.encode_batch), ("HF tokenizers", tok.encode_batch_hf)):
        if name.startswith("tiktoken") and tok.backend != "tiktoken":
            print("tokenise with tiktoken: skipped (not installed, or the merges are not in rank order)")
            continue
        for _ in range(2):  # the first pass warms caches; the second is reported
            t0, n = time.perf_counter(), 0
            for _ in range(args.copies):
                for i in range(0, len(texts), batch):
                    n += sum(len(a) for a in encode(texts[i:i + batch]))
            dt = time.perf_counter() - t0
        rates[name] = n / dt
        print(f"tokenise, {name}: {n:,} tokens in {dt:.2f} s = {n / dt / 1e6:.2f} M tokens/s (target >= 1M)")
    print(f"encoder used by curate shards: {tok.backend}")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = write_source_shards(docs, tok, Path(tmp) / "src", val_fraction=0.01)
        dt = time.perf_counter() - t0
    tokens = n // args.copies
    print(f"tokenise + write shards: {tokens:,} tokens in {dt:.2f} s = {tokens / dt / 1e6:.2f} M tokens/s")
    print(f"peak RSS {rss_mb():.0f} MiB")
    del result

    # memory flat in the input size: `curate shards build` in a fresh process on
    # 1x and 4x the documents (copies with new ids), tokenizer reused
    import subprocess

    from curate.core.document import Document, write_documents

    with tempfile.TemporaryDirectory() as tmp:
        tok.save(Path(tmp) / "tokenizer.json")
        for k in (1, 4, 8):
            src = Path(tmp) / f"docs{k}.parquet"
            write_documents(src, (Document(id=f"{c}:{d.id}", text=d.text) for c in range(k) for d in docs))
            # the child's own peak (VmHWM via rss_mb): ru_maxrss would carry this process's across exec
            code = ("import sys; from curate.core.progress import rss_mb; from cli.shards import main; "
                    f"rc = main(['shards', 'build', '--source', 'x={src}:1', '--out', '{tmp}/out{k}', "
                    f"'--tokenizer', '{tmp}/tokenizer.json', '-q']); "
                    "print(round(rss_mb())); sys.exit(rc)")
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            dt = time.perf_counter() - t0
            print(f"curate shards build, {k}x input ({k * tokens:,} tokens): {dt:.1f} s, "
                  f"peak RSS {out.stdout.strip().splitlines()[-1]} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
