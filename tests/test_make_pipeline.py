"""`make pretrain` end to end: filter -> dedup -> decontaminate -> shards -> train, one run folder.

Each test runs make as a user would, into a temporary run folder, with the
training cut to a few steps, then checks what the issue asks for: the crawl
source of the manifest is the run's decontam/ output, decontamination names the
bundled benchmarks, evaluation scores LAMBADA and GSM8K from sample/eval (no
../shared), the report's figures equal the stats files, and a second
`make pretrain` does no work.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.ccmirror import MirrorServer, build_mirror
from tests.common import shared
from tests.report.test_report import check_report

REPO = Path(__file__).resolve().parents[1]
QUICK = ["WORKERS=1", "TRAIN_ARGS=--max_steps=2",
         "EVAL_ARGS=--limit 2 --gsm8k-limit 1 --gsm8k-max-new-tokens 4 --max-new-tokens 4"]
BENCHMARKS = {"lambada_openai_test", "gsm8k_test"}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> list[str]:
    """The quality classifier, trained once per worker as `make` trains it on a fresh machine."""
    d = tmp_path_factory.mktemp("classifier")
    args = [f"MODEL={d / 'quality'}", f"CLASSIFIER_DATA={d / 'data'}"]
    r = subprocess.run(["make", "-s", "classifier", *args], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return args


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "pretrain", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def _markers(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.json")}


def check_run(out: Path, crawl: str, rerun) -> dict:
    """What every finished run must show; ``rerun()`` runs the same make command again."""
    for stage in ("filter", "dedup", "decontam", "shards", "train"):
        marker = json.loads((out / stage / "stage.json").read_text())
        assert marker["complete"] and marker["steps"], stage
        # nothing in the default path reads ../shared
        assert not any("shared/data" in " ".join(s["command"]) for s in marker["steps"]), stage
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    sources = {s["name"]: s for s in manifest["sources"]}
    assert set(sources) == {crawl, "books"}
    for name, src in sources.items():
        files = [(REPO / p).resolve() for p in src["inputs"]]
        assert files and all(f.parent == (out / "decontam" / name / "docs").resolve() for f in files), src["inputs"]
    for name in sources:
        report = json.loads((out / "decontam" / name / "report.json").read_text())
        assert set(report["benchmarks"]) == BENCHMARKS
    ev = json.loads((out / "train" / "eval" / "eval.json").read_text())
    assert ev["lambada"]["zero_shot"]["items"] == 2 and ev["gsm8k"]["items"] == 1
    assert Path(ev["settings"]["lambada"]).resolve() == REPO / "sample" / "eval" / "lambada_openai_test.jsonl"
    assert Path(ev["settings"]["gsm8k"]).resolve() == REPO / "sample" / "eval" / "gsm8k_test.jsonl"
    check_report(out)
    page = (out / "report.html").read_text()
    assert "lambada_openai_test" in page and "gsm8k_test" in page
    before = _markers(out)
    again = rerun()
    assert again.returncode == 0, again.stderr[-3000:]
    assert "pipelines.run" not in again.stdout + again.stderr, "a second make pretrain did work"
    assert _markers(out) == before
    return manifest


@pytest.mark.slow
def test_make_pretrain_on_the_bundled_sample(tmp_path, model):
    out = tmp_path / "sample"
    args = [f"OUT={out}", *model, *QUICK]
    r = make(*args)
    assert r.returncode == 0, r.stderr[-4000:]
    # every long stage reports its progress with a rate and an ETA
    assert "ETA" in r.stderr and "MB/s" in r.stderr
    check_run(out, "cc", lambda: make(*args))
    stats = json.loads((out / "filter" / "stats.json").read_text())["counters"]
    assert stats["read:files"] == 3 and stats["kept"] >= 1


@pytest.mark.slow
@pytest.mark.shared_data
def test_make_pretrain_on_a_crawl_from_a_mirror(tmp_path, model):
    """`make pretrain CRAWL=... CC_BASE=<loopback mirror>`. The mirror's one 2020-34 file is 11
    pages that GPT-3's heuristics and classifier all drop, so the filter keeps what the
    language id keeps (no heuristics, no classifier): the point is the flow, not the filters."""
    shared("warc")
    mirror = build_mirror(tmp_path / "cc")
    out = tmp_path / "CC-MAIN-2020-34"
    with MirrorServer(mirror["root"]) as server:
        args = ["CRAWL=CC-MAIN-2020-34", f"CC_BASE={server.url}", "FILES=1", f"OUT={out}", *model, *QUICK,
                "ARGS=--quality-model= --preset filters:none"]
        r = make(*args)
        assert r.returncode == 0, r.stderr[-4000:]
        assert any("CC-MAIN-2020-34/warc.paths.gz" in q.path for q in server.requests)
        check_run(out, "cc", lambda: make(*args))
    done = [json.loads(p.read_text()) for p in (out / "filter" / "done").iterdir()]
    assert len(done) == 1 and done[0]["input"].startswith(server.url)
