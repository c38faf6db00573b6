"""Cost of the heuristic filters: the worst case for the repetition rules, and a real document.

    python -m benchmarks.filters [--repeat 5]

1. Gopher's duplicated n-gram fractions (n = 5..10) on one 10-word phrase repeated 500 to
   20,000 times (every n-gram repeats: the worst case for the pruning), with the time per
   word, which stays flat when the work is linear.
2. All the filters (Gopher quality and repetition, FineWeb, C4 line cleaning) on real
   4-6 kB news articles from ../shared/data (the hand-cleaned Dragnet set): ms per
   document (measured ~0.2-0.7 ms on the 2-core dev machine).

The unit tests check the same properties by counting the work instead of timing it
(tests/filters/test_heuristics.py); the times live here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRAGNET = REPO.parent / "shared" / "data" / "reference" / "webtext_like" / "dragnet-2012-articles.train.jsonl.gz"
PHRASE = "alpha beta gamma delta epsilon zeta eta theta iota kappa "


def best_of(repeat: int, fn, *args) -> float:
    """The fastest of ``repeat`` calls, in seconds (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="time each case this many times, report the best")
    ap.add_argument("--docs", type=int, default=40, help="real 4-6 kB articles to filter")
    args = ap.parse_args(argv)

    from curate.filters.gopher import dup_ngram_char_fracs
    from curate.filters.heuristics import TextView, c4_clean_lines, fineweb_filter, gopher_quality, gopher_repetition

    print("duplicated 5..10-gram fractions, one phrase repeated (worst case):")
    for reps in (500, 2_000, 5_000, 20_000):
        words = (PHRASE * reps).split()
        dt = best_of(args.repeat, dup_ngram_char_fracs, words, list(range(5, 11)), sum(map(len, words)))
        print(f"  {len(words):>8,} words: {dt * 1e3:8.1f} ms  ({dt / len(words) * 1e6:.2f} us/word)")

    if not DRAGNET.exists():
        print(f"benchmarks.filters: error: {DRAGNET} not found (the shared data set)", file=sys.stderr)
        return 2
    docs = []
    with gzip.open(DRAGNET, "rt", encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["article"]
            if 4000 <= len(text) <= 6000:
                docs.append(text)
                if len(docs) == args.docs:
                    break

    def all_filters(batch):
        for d in batch:
            v = TextView(d)
            gopher_quality(v), fineweb_filter(v), gopher_repetition(v), c4_clean_lines(d)

    dt = best_of(args.repeat, all_filters, docs)
    print(f"\nall filters on {len(docs)} real 4-6 kB articles: {dt / len(docs) * 1e3:.2f} ms per document "
          f"({len(docs) / dt:,.0f} documents/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
