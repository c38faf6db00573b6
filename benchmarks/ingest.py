"""Throughput and memory of read + extract + langid + heuristics, beside datatrove.

    python -m benchmarks.ingest [--repeat 2] [--scale 8]

Builds one WARC from the gzip WARC files in ../shared/data/warc (concatenated
gzip members, repeated ``--repeat`` times with fresh record ids so nothing is
deduplicated away), then runs, each in its own single-process subprocess so its
CPU time and peak memory are its own:

* ours:      curate.ingest.records.read_archive -> curate.filters.stage.FilterStage
             (FastWARC, our extractor, fastText lid.176, C4 + Gopher + FineWeb rules)
* datatrove: WarcReader -> Trafilatura -> GopherRepetition -> GopherQuality ->
             C4Quality -> FineWebQuality (its equivalent chain; datatrove's
             LanguageFilter is left out because its model is downloaded at run time)

and prints documents/s per core (documents read, over the process's CPU seconds),
peak RSS, and the speed-up. Memory flatness: ours is run again on an input
``--scale`` times larger; its peak RSS should not grow with the input.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

# The readable gzip WARC files of the shared set (ARC and WAT/WET excluded:
# datatrove's reader cannot read ARC, and WAT/WET hold no HTML).
INPUTS = [
    "cc-main-2020-34_resiliparse-warcfile.part1.warc.gz",
    "cc-main-2024-22_whirlwind.warc.gz",
    "clueweb09-ja_resiliparse-clueweb-quirk.warc.gz",
    "ia-archive-org-2008_heritrix-web_sample.warc.gz",
    "liveweb-2014_pywb-iana.warc.gz",
    "wget-2024_dolma-sample-0000.warc.gz",
    "wget-2024_dolma-sample-0001.warc.gz",
]


def _members(data: bytes):
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(data)
        yield out
        data = d.unused_data


def assemble(out: Path, repeat: int, data_dir: Path = SHARED / "warc") -> Path:
    """Concatenate the shared WARCs ``repeat`` times, one gzip member per record.

    Each copy gets new WARC-Record-IDs (derived from the copy number, so the file
    is the same on every run) so downstream stages see distinct documents.
    """
    with open(out, "wb") as fh:
        for copy in range(repeat):
            for name in INPUTS:
                for rec in _members((data_dir / name).read_bytes()):
                    if copy:
                        rec = rec.replace(b"<urn:uuid:", f"<urn:uuid:c{copy}-".encode(), 1)
                    fh.write(gzip.compress(rec, compresslevel=6, mtime=0))
    return out


# --------------------------------------------------------------------------- workers (subprocesses)

def run_ours(path: str) -> dict:
    from curate.filters.stage import FilterStage
    from curate.ingest.records import read_archive
    from curate.core.counters import Counters

    counters = Counters()
    stage = FilterStage()
    stage.lid  # load the model before timing, as a worker's setup() would
    t0, c0 = time.perf_counter(), time.process_time()
    docs = kept = 0
    for doc in read_archive(path, [], counters):
        docs += 1
        if stage(doc, counters) is not None:
            kept += 1
    html_pages = docs + counters["skipped:no_text"] + sum(
        v for k, v in counters.as_dict().items() if k.startswith("skipped:http_status:"))
    return {"docs": docs, "kept": kept, "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0, "records": counters["read:records"], "pages": html_pages}


def run_datatrove(path: str) -> dict:
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import WarcReader

    p = Path(path)
    reader = WarcReader(str(p.parent), glob_pattern=p.name)
    steps = [Trafilatura(), GopherRepetitionFilter(), GopherQualityFilter(),
             C4QualityFilter(), FineWebQualityFilter()]
    t0, c0 = time.perf_counter(), time.process_time()
    docs = 0

    def counted(gen):
        nonlocal docs
        for d in gen:
            docs += 1
            yield d

    data = counted(reader.run(None, 0, 1))
    for step in steps:
        data = step.run(data, 0, 1)
    kept = sum(1 for _ in data)
    # datatrove's Trafilatura step extracts in a child process (its timeout
    # sandbox): count that CPU time too.
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + ch.ru_utime + ch.ru_stime
    return {"docs": docs, "kept": kept, "wall_s": time.perf_counter() - t0, "cpu_s": cpu}


def _worker(kind: str, path: str) -> None:
    from curate.core.progress import rss_mb

    result = run_ours(path) if kind == "ours" else run_datatrove(path)
    self_rss = rss_mb()  # this process's own peak (ru_maxrss would carry the parent's across exec)
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result["peak_rss_mb"] = max(self_rss, child_rss)
    print(json.dumps(result))


def measure(kind: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.ingest", "--worker", kind, str(path)],
                          capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2, help="copies of the shared WARCs in the bench input")
    ap.add_argument("--scale", type=int, default=8, help="input size multiple for the memory-flatness run")
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return 0
    if not (SHARED / "warc").is_dir():
        print(f"benchmarks.ingest: error: {SHARED / 'warc'} not found (the shared data set)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        small = assemble(Path(tmp) / "bench.warc.gz", args.repeat)
        big = assemble(Path(tmp) / "bench-big.warc.gz", args.repeat * args.scale)
        size_mb = small.stat().st_size / 1e6
        print(f"input: {len(INPUTS)} WARC files from {SHARED / 'warc'} x{args.repeat} "
              f"= {size_mb:.1f} MB gzip; single process, one core each")
        rows = [("ours", measure("ours", small))]
        if not args.skip_datatrove:
            rows.append(("datatrove", measure("datatrove", small)))
        big_run = measure("ours", big)
    # docs/s is over the same numerator for both chains: the HTML pages in the
    # input (what datatrove's reader yields; ours skips error pages and empty
    # extractions before counting a document, so its own count is lower).
    pages = rows[-1][1]["docs"] if len(rows) > 1 else rows[0][1]["pages"]
    print(f"\n{'chain':<11}{'pages in':>9}{'docs':>7}{'kept':>7}{'cpu s':>9}{'pages/s/core':>14}{'peak RSS MiB':>14}")
    for name, r in rows:
        print(f"{name:<11}{pages:>9}{r['docs']:>7}{r['kept']:>7}{r['cpu_s']:>9.2f}{pages / r['cpu_s']:>14.1f}"
              f"{r['peak_rss_mb']:>14.0f}")
    ours = rows[0][1]
    if len(rows) > 1:
        dt = rows[1][1]
        print(f"\nspeed-up vs datatrove: {dt['cpu_s'] / ours['cpu_s']:.1f}x (target >= 5x)")
    big_pages = pages * args.scale
    print(f"memory flatness: ours on {args.scale}x the input ({big_pages} pages): "
          f"{big_pages / big_run['cpu_s']:.1f} pages/s/core, peak RSS {big_run['peak_rss_mb']:.0f} MiB "
          f"(vs {ours['peak_rss_mb']:.0f} MiB on 1x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
