"""The Beam filter job end to end: a Common Crawl-shaped mirror on loopback,
injected faults, a SIGKILL part-way, and the same input on three runners."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ccmirror import MirrorServer, build_mirror
from tests.common import REPO, SAMPLE, require, shared

# every test here runs on the real crawl files and needs Beam
pytestmark = [pytest.mark.shared_data, pytest.mark.beam]
require("apache_beam")

from pipelines.filter import run  # noqa: E402

QUIET = ["-q", "--workers", "1"]


def _tree(out: Path) -> dict[str, bytes]:
    """Every output file's bytes, by relative path (config.json aside: it names the inputs)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "config.json"}


def _same_outputs(a: Path, b: Path, kinds=("docs", "errors", "rejected", "stats", "done")) -> None:
    for kind in kinds:
        names_a = sorted(p.name for p in (a / kind).iterdir())
        names_b = sorted(p.name for p in (b / kind).iterdir())
        assert names_a == names_b, kind
        for name in names_a:
            assert filecmp.cmp(a / kind / name, b / kind / name, shallow=False), f"{kind}/{name} differs"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    shared("warc")
    return build_mirror(tmp_path_factory.mktemp("cc"))


@pytest.mark.slow
def test_make_filter_prefix_crawl_against_mirror(mirror, tmp_path):
    """`make filter CRAWL=<prefix> CC_BASE=http://127.0.0.1:PORT` end to end, two crawls."""
    out = tmp_path / "out"
    with MirrorServer(mirror["root"]) as server:
        r = subprocess.run(["make", "-s", "filter", "CRAWL=CC-MAIN-202", f"CC_BASE={server.url}",
                            f"OUT={out}", "WORKERS=2"], cwd=REPO, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
        fetched = {q.path for q in server.requests}
    assert "filter: 2 inputs, 0 already done, 2 to process" in r.stderr
    # both crawls' paths files and WARCs were fetched, nothing of 2014
    assert any("CC-MAIN-2020-34/warc.paths.gz" in p for p in fetched)
    assert any("CC-MAIN-2024-22/warc.paths.gz" in p for p in fetched)
    assert not any("2014-35" in p for p in fetched)
    markers = [json.loads(p.read_text()) for p in (out / "filter" / "done").iterdir()]
    assert sorted(m["input"].split("/crawl-data/")[1].split("/")[0] for m in markers) == [
        "CC-MAIN-2020-34", "CC-MAIN-2024-22"]
    assert all(m["complete"] for m in markers)
    stats = json.loads((out / "filter" / "stats.json").read_text())
    c = stats["counters"]
    assert c["read:files"] == 2 and c["docs"] == 12
    assert c["docs"] == c.get("kept", 0) + sum(v for k, v in c.items() if k.startswith("dropped:"))
    assert stats["incomplete_inputs"] == []
    # the summary table is printed
    assert "read:records" in r.stderr


@pytest.mark.slow
def test_faults_are_recovered_and_unrecoverable_file_is_reported(mirror, tmp_path):
    args = ["--crawl", "CC-MAIN-20", "--backoff", "0.01", "--retries", "4", *QUIET]
    # one server for all runs: documents and errors name the URL they came from
    with MirrorServer(mirror["root"]) as server:
        args += ["--cc-base", server.url]
        clean = run([*args, "--out", str(tmp_path / "clean")])
        assert clean["incomplete_inputs"] == []

        server.add_fault("00395.warc.gz", drop_after=(20000, 2))        # 2020-34: dropped mid-body, twice
        server.add_fault("-00000.warc.gz", status_first=(503, 2))       # 2024-22: two 503s
        server.add_fault("ec2.internal.warc.gz", drop_after=(3000, 1))  # 2014-35: one drop
        server.clear_log()
        faulty = run([*args, "--out", str(tmp_path / "faulty")])
        retried = [q for q in server.requests if q.range]
        assert faulty["incomplete_inputs"] == []
        assert retried, "expected Range requests after dropped connections"
        # the output is the same; only the counters say retries happened
        _same_outputs(tmp_path / "clean", tmp_path / "faulty", kinds=("docs", "errors", "rejected", "done"))
        c_clean = json.loads((tmp_path / "clean" / "stats.json").read_text())["counters"]
        c_faulty = json.loads((tmp_path / "faulty" / "stats.json").read_text())["counters"]
        assert c_faulty.pop("fetch:retries") >= 5 and "fetch:retries" not in c_clean
        assert c_faulty == c_clean

        server.clear_faults()
        server.add_fault("00395.warc.gz", truncate=30000)  # the 2020-34 file is cut for good
        broken = run([*args, "--out", str(tmp_path / "broken")])
    bad_key = [k for k in broken["incomplete_inputs"]]
    assert len(bad_key) == 1 and "00395" in bad_key[0]
    errors = [json.loads(l) for l in (tmp_path / "broken" / "errors" / f"{bad_key[0]}.jsonl").read_text().splitlines()]
    assert any("00395.warc.gz" in e["reason"] and "read failed at byte" in e["reason"] for e in errors)
    marker = json.loads((tmp_path / "broken" / "done" / f"{bad_key[0]}.json").read_text())
    assert marker["complete"] is False
    # the other inputs are untouched by the broken one
    for kind in ("docs", "errors", "rejected", "stats"):
        for p in (tmp_path / "clean" / kind).iterdir():
            if not p.name.startswith(bad_key[0]):
                assert p.read_bytes() == (tmp_path / "broken" / kind / p.name).read_bytes()


def _inputs() -> list[str]:
    warc = shared("warc")
    return sorted(str(p) for p in warc.iterdir() if p.name.endswith((".warc.gz", ".arc", ".warc")))


@pytest.mark.slow
def test_sigkill_and_rerun_gives_identical_output(tmp_path):
    inputs = _inputs()
    ref = tmp_path / "ref"
    run(["--input", *inputs, "--out", str(ref), *QUIET])

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "pipelines.filter", "--input", *inputs, "--out", str(out), *QUIET]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = list((out / "done").glob("*.json")) if (out / "done").exists() else []
        if done or proc.poll() is not None:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list((out / "done").glob("*.json"))) if (out / "done").exists() else 0
    assert finished < len(inputs), "the run finished before it could be killed; the test proves nothing"

    result = run(["--input", *inputs, "--out", str(out), *QUIET])
    assert result["incomplete_inputs"] == []
    assert _tree(out) == _tree(ref)
    # and a third run has nothing to do and changes nothing
    before = _tree(out)
    run(["--input", *inputs, "--out", str(out), *QUIET])
    assert _tree(out) == before
    assert not list(out.rglob("*.tmp"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def quality_model(tmp_path_factory):
    """A fixed LR model: every document scores sigmoid(2) = 0.88, so GPT-3's
    Pareto rule keeps about 1.12**-9 = 36% of them, chosen by document id."""
    import numpy as np

    from classifiers.features import FeatureConfig
    from classifiers.models import LRModel, save_model

    cfg = FeatureConfig(n_features=2 ** 10)
    path = tmp_path_factory.mktemp("model")
    save_model(LRModel(cfg, np.zeros(cfg.n_features), 2.0), path)
    return str(path)


@pytest.mark.slow
def test_same_documents_on_three_runners(tmp_path, quality_model):
    """In-process, multi-process and portable runs keep the same documents,
    the quality stage's Pareto draws included."""
    inputs = [str(p) for p in sorted(SAMPLE.glob("*.gz"))] + [
        str(shared("warc", "wget-2024_dolma-sample-0000.warc.gz"))]
    q = ["--quality-model", quality_model]
    run(["--input", *inputs, "--out", str(tmp_path / "inproc"), "-q", "--workers", "1", *q])
    run(["--input", *inputs, "--out", str(tmp_path / "multi"), "-q", "--workers", "2", *q])
    port = _free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", f"--port={port}"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        run(["--input", *inputs, "--out", str(tmp_path / "portable"), "-q",
             "--runner", "PortableRunner", "--job-endpoint", f"localhost:{port}", *q])
    finally:
        service.terminate()
        service.wait(timeout=30)
    _same_outputs(tmp_path / "inproc", tmp_path / "multi")
    _same_outputs(tmp_path / "inproc", tmp_path / "portable")
    assert len(list((tmp_path / "inproc" / "docs").iterdir())) == 4
    c = json.loads((tmp_path / "inproc" / "stats.json").read_text())["counters"]
    # the quality stage ran and its rule both kept and dropped documents
    assert c["quality:scored"] > 10 and c["dropped:quality"] > 0 and c["kept"] > 0
    assert c["quality:kept"] == c["kept"]
    assert c["docs"] == c["kept"] + sum(v for k, v in c.items() if k.startswith("dropped:"))
    from curate.core.document import read_documents

    kept = [d for p in sorted((tmp_path / "inproc" / "docs").iterdir()) for d in read_documents(p)]
    assert kept and all(abs(d.metadata["quality"] - 0.880797) < 1e-6 for d in kept)


def test_dataflow_graph_builds_and_every_dofn_pickles(tmp_path):
    """What can be proved offline of a Dataflow run: the job graph, built with
    Dataflow's options and gs:// paths, translates to the portable runner API
    proto (what the Dataflow service receives), and every DoFn survives Beam's
    pickler and works after it (what staging to workers does). Constructing
    the pipeline with --runner=DataflowRunner itself contacts GCS (staging
    bucket, credentials), so the runner is left unset here; submission needs GCP."""
    import apache_beam as beam
    from apache_beam.internal import pickler
    from apache_beam.options.pipeline_options import PipelineOptions

    from curate.filters.stage import StageConfig
    from pipelines.filter import build

    opts = PipelineOptions(["--project=p", "--region=us-central1", "--temp_location=gs://bucket/tmp",
                            "--extra_package=dist/curate-0.1.0-py3-none-any.whl"])
    p = beam.Pipeline(options=opts)
    build(p, ["gs://bucket/in/a.warc.gz", "https://data.commoncrawl.org/crawl-data/x.warc.gz"],
          "gs://bucket/out", StageConfig())
    proto = p.to_runner_api()
    names = {t.unique_name for t in proto.components.transforms.values()}
    for stage in ("Read", "Filter", "Quality", "ByInput", "WritePerInput"):
        assert stage in names
    fns = []

    class Collect(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            fn = getattr(node.transform, "fn", None)
            if isinstance(fn, beam.DoFn):
                fns.append(fn)

    p.visit(Collect())
    assert {type(f).__name__ for f in fns} >= {"ReadArchiveFn", "FilterFn", "QualityFn", "WritePerInputFn"}
    for fn in fns:
        clone = pickler.loads(pickler.dumps(fn))
        assert type(clone) is type(fn)
    # the filter stage really works after a round trip (as on a worker: setup, then process)
    filt = next(f for f in fns if type(f).__name__ == "FilterFn")
    clone = pickler.loads(pickler.dumps(filt))
    clone.setup()
    clone.start_bundle()
    import gzip

    from curate.core.document import Document

    with gzip.open(shared("reference", "webtext_like", "dragnet-2012-articles.train.jsonl.gz"), "rt") as fh:
        article = json.loads(fh.readline())["article"]
    kept = list(clone.process(("k", Document(id="d", text=article))))
    assert kept and kept[0][1].metadata["language"] == "en"
    assert clone.counts["k"]["kept"] == 1


@pytest.mark.slow
def test_unknown_crawl_is_a_clear_error(mirror, tmp_path):
    with MirrorServer(mirror["root"]) as server:
        r = subprocess.run([sys.executable, "-m", "pipelines.filter", "--crawl", "CC-MAIN-2020-35",
                            "--cc-base", server.url, "--out", str(tmp_path / "o")],
                           cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "CC-MAIN-2020-35" in r.stderr and "CC-MAIN-2020-34" in r.stderr


def test_progress_line_gives_an_eta_from_the_inputs_this_run_finished(tmp_path):
    from pipelines.filter import _Watcher

    (tmp_path / "done").mkdir()
    for k in range(3):
        (tmp_path / "done" / f"in{k}.json").write_text(json.dumps({"docs_read": 10, "kept": 5}))
    watcher = _Watcher(str(tmp_path), total=5, already=1)
    watcher.start_time -= 20.0  # 20 s in, two inputs finished by this run: 10 s each, two left
    line = watcher.line()
    assert "3/5 inputs done" in line and "30 docs" in line and "50.0% kept" in line
    eta = float(line.rsplit("ETA ", 1)[1].rstrip("s"))
    assert 19.0 <= eta <= 22.0, line
    # nothing finished by this run yet: no ETA to give
    assert "ETA" not in _Watcher(str(tmp_path), total=5, already=3).line()
