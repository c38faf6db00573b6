"""Does the DirectRunner lose elements of a large shuffle? One join, counted on both sides.

    python -m benchmarks.beam_shuffle_loss --runs 4                # guarded (as the jobs run)
    python -m benchmarks.beam_shuffle_loss --runs 4 --unguarded    # Beam as shipped
    python -m benchmarks.beam_shuffle_loss --mode in_memory --runs 1

This builds a join of large elements from random arrays (``--items`` items of
``--item-kb`` KB keyed by 64-bit host keys, one ``--value-kb`` KB value per
host, each item joined with two hosts, one after the other, by the dedup job's
``pipelines.dedup.Lookup``) and prints how many items came out.

Beam 2.77's DirectRunner with worker processes (``multi_processing``) loses
whole ~10 MB chunks of a stage's input when its send queue is full: a race
between the runner's periodic flush and its writer, described in
``pipelines.direct_fix``. The jobs install that module's guard whenever they
start worker processes; ``--unguarded`` leaves Beam as shipped, to show the
loss. Every join in the dedup job is still counted on both sides
(``pipelines.dedup._lost``), so a loss from any other cause fails the run.
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time
import typing

import apache_beam as beam
import numpy as np
import xxhash
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import direct_fix
from pipelines.dedup import Lookup


def _host(h: int) -> int:
    # 64-bit keys, half of them above 2**63, as curate.dedup.templates.host_key gives
    return xxhash.xxh3_64_intdigest(str(h))


def _item(i: int, hosts: int, words: int) -> tuple:
    rng = np.random.default_rng(i)
    return int(rng.integers(0, hosts)), i, rng.integers(0, 2**32, words, dtype=np.uint32)


def _first_host(item: tuple) -> int:
    return _host(item[0])


def _second_host(item: tuple, hosts: int) -> int:
    return _host((item[0] * 7 + 1) % hosts)


def _by_host(item: tuple, hosts: int, second: bool):
    return (_second_host(item, hosts) if second else _first_host(item)), item


def _item_id(joined) -> str:
    return str(joined.item[1])


def run_once(mode: str, workers: int, items: int, item_kb: int, value_kb: int, out: str) -> int:
    """Items that came out of the join."""
    hosts = max(items // 4, 1)
    opts = PipelineOptions(["--runner=DirectRunner", f"--direct_num_workers={workers}",
                            f"--direct_running_mode={mode}"])
    with beam.Pipeline(options=opts) as p:
        left = (p | "Items" >> beam.Create(list(range(items)))
                | "Item" >> beam.Map(_item, hosts, item_kb * 256).with_output_types(typing.Any))
        table = (p | "Hosts" >> beam.Create(list(range(hosts)))
                 | "Value" >> beam.Map(lambda h: (_host(h), np.zeros(value_kb * 256, np.uint32)))
                 .with_output_types(typing.Any))
        (left
         | "ByFirst" >> beam.Map(_by_host, hosts, False)
         | "JoinFirst" >> Lookup(table)
         | "ByLast" >> beam.Map(lambda joined: _by_host(joined.item, hosts, True))
         | "JoinLast" >> Lookup(table)
         | "Id" >> beam.Map(_item_id)
         | "Write" >> beam.io.WriteToText(out))
    return sum(1 for f in glob.glob(out + "-*") for _ in open(f))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.beam_shuffle_loss", description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", default="multi_processing", choices=["multi_processing", "in_memory"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--items", type=int, default=8000)
    ap.add_argument("--item-kb", type=int, default=20)
    ap.add_argument("--value-kb", type=int, default=200)
    ap.add_argument("--unguarded", action="store_true",
                    help="leave out pipelines.direct_fix (the jobs install it): shows Beam's data-plane race")
    args = ap.parse_args(argv)
    guard = "unguarded" if args.unguarded else ("guarded" if direct_fix.install() else "guard not applicable")
    lossy = 0
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.runs):
            t = time.time()
            got = run_once(args.mode, args.workers, args.items, args.item_kb, args.value_kb,
                           os.path.join(tmp, f"run{k}"))
            lossy += got != args.items
            print(f"run {k}: {args.mode}, {args.workers} workers, {guard}: {got:,} of {args.items:,} items came out "
                  f"of the join ({args.items - got:,} lost) in {time.time() - t:.0f} s", flush=True)
    print(f"{lossy} of {args.runs} runs lost items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
