"""``make fuzz``: the long fuzz run, random cases for a set time, with a summary.

    python -m tests.fuzz --minutes 10 [--seed N] [--out out/fuzz]

Cases cycle through every target (tests/fuzz/harness.py) with seeds drawn from
``--seed``, so a run is reproducible and each failure is printed with the case
that reproduces it (``--replay 'archive seed=3 rng=... ops=2 framing=members'``).
Failures are written to OUT/failures.jsonl; the summary (cases per target,
failures, slowest case, peak RSS) to OUT/summary.json and stderr. Exit status 1
when any case failed.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

from tests.fuzz.harness import FRAMINGS, TARGETS, Case, Seeds, run_case


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _parse_case(text: str) -> Case:
    target, *fields = text.split()
    kv = dict(f.split("=", 1) for f in fields)
    return Case(target, int(kv["seed"]), int(kv["rng"]), int(kv.get("ops", 1)), kv.get("framing", "plain"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    ap.add_argument("--seed", type=int, default=0, help="master seed of the case sequence")
    ap.add_argument("--out", default="out/fuzz", help="where failures.jsonl and summary.json go")
    ap.add_argument("--replay", help="run one case, as printed by a failure, and show its traceback")
    args = ap.parse_args(argv)
    seeds = Seeds()
    print(f"fuzz: seeds: {len(seeds.archives)} archives, {len(seeds.pages)} pages, "
          f"{len(seeds.jsonl.splitlines())} JSONL documents", file=sys.stderr, flush=True)
    if args.replay:
        info = run_case(_parse_case(args.replay), seeds)
        print(json.dumps(info, default=str))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.minutes * 60
    per_target: Counter = Counter()
    failures: list[dict] = []
    slowest = {"seconds": 0.0}
    n = 0
    next_report = time.monotonic() + 60
    with open(out / "failures.jsonl", "w", encoding="utf-8") as fail_fh:
        while time.monotonic() < deadline:
            target = TARGETS[n % len(TARGETS)]
            case = Case(target, rng.randrange(1000), rng.randrange(2**32), rng.randint(1, 6), rng.choice(FRAMINGS))
            n += 1
            per_target[target] += 1
            t0 = time.perf_counter()
            try:
                info = run_case(case, seeds)
            except Exception as exc:  # every failure is recorded with the case that reproduces it
                failure = {"case": case.describe(), "error": f"{type(exc).__name__}: {exc}"[:2000],
                           "traceback": traceback.format_exc(limit=8)}
                failures.append(failure)
                fail_fh.write(json.dumps(failure) + "\n")
                fail_fh.flush()
                print(f"fuzz: FAILED {case.describe()}: {failure['error'][:300]}", file=sys.stderr, flush=True)
                continue
            took = time.perf_counter() - t0
            if took > slowest["seconds"]:
                slowest = {"seconds": round(took, 3), **{k: v for k, v in info.items() if k != "seconds"}}
            if time.monotonic() >= next_report:
                next_report += 60
                left = max(0.0, deadline - time.monotonic())
                print(f"fuzz: {n} cases, {len(failures)} failures, peak RSS {_rss_mb():.0f} MB, "
                      f"{left / 60:.1f} min left", file=sys.stderr, flush=True)
    summary = {"minutes": args.minutes, "seed": args.seed, "cases": n, "cases_per_target": dict(per_target),
               "failures": len(failures), "slowest_case": slowest, "peak_rss_mb": round(_rss_mb(), 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
