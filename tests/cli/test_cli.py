"""The CLI in the exact forms other tools rely on, run as a user would."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from curate.core.document import read_documents
from tests.common import REPO, SAMPLE, shared


def curate(*args, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], input=stdin,
                          capture_output=True, text=True, cwd=REPO)


@pytest.mark.shared_data
def test_read_bad_set_one_line_per_bad_file(tmp_path):
    bad = sorted(shared("bad").iterdir())
    out, errs = tmp_path / "docs.jsonl", tmp_path / "errors.jsonl"
    r = curate("read", *bad, "-o", out, "--errors", errs)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("curate read: error:")]
    errors = [json.loads(l) for l in errs.read_text().splitlines()]
    bad_files = sorted({e["file"] for e in errors})
    # one stderr line per bad file, naming it
    assert len(lines) == len(bad_files) >= 4
    for f in bad_files:
        assert sum(f in l for l in lines) == 1
    assert all({"file", "offset", "reason"} <= e.keys() for e in errors)
    docs = list(read_documents(out))
    # ids are WARC-Record-IDs: unique within a file (the warcio fixtures share
    # some records between files, which is a real duplicate, kept for dedup)
    assert len(docs) >= 5 and len({(d.metadata["warc_file"], d.id) for d in docs}) == len(docs)
    stats = json.loads((tmp_path / "docs.jsonl.stats.json").read_text())
    assert stats["counters"]["read:records"] == sum(
        v for k, v in stats["counters"].items() if k.startswith("skipped:")) + stats["counters"]["docs"]


def test_read_clean_sample_exits_zero(tmp_path):
    out = tmp_path / "docs.parquet"
    r = curate("read", *sorted(SAMPLE.glob("*.gz")), "-o", out)
    assert r.returncode == 0, r.stderr
    assert len(list(read_documents(out))) == 127


def test_read_not_an_archive_is_one_clear_line(tmp_path):
    page = tmp_path / "page.html.gz"
    page.write_bytes(gzip.compress(b"<html><body>hello</body></html>"))
    good = SAMPLE / "CC-MAIN-2024-22-excerpt.warc.gz"
    out = tmp_path / "docs.jsonl"
    r = curate("read", page, good, "-o", out)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    err_lines = [l for l in r.stderr.splitlines() if "error" in l]
    assert len(err_lines) == 1 and str(page) in err_lines[0] and "not a WARC or ARC file" in err_lines[0]
    # the good file after it is still read
    assert len(list(read_documents(out))) == 1


def test_read_missing_file(tmp_path):
    r = curate("read", tmp_path / "nope.warc.gz", "-o", tmp_path / "d.jsonl")
    assert r.returncode == 1 and "nope.warc.gz" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.shared_data
def test_read_strict_stops_at_first_error(tmp_path):
    bad = shared("bad", "warcio_bad.arc")
    r = curate("read", bad, SAMPLE / "CC-MAIN-2024-22-excerpt.warc.gz", "-o", tmp_path / "d.jsonl", "--strict")
    assert r.returncode == 1 and "--strict" in r.stderr
    # a strict run that failed leaves no output that could pass for complete
    assert not (tmp_path / "d.jsonl.stats.json").exists() and not (tmp_path / "d.jsonl").exists()
    assert not list(tmp_path.glob("d.jsonl*.tmp"))


def test_html2text_keeps_input_order():
    pages = [{"id": str(i), "url": f"http://x/{i}",
              "html": f"<html><body><article><p>Paragraph number {i} of a page about rivers and the "
                      f"towns that grew beside them over many centuries.</p></article></body></html>"}
             for i in range(20)]
    stdin = "".join(json.dumps(p) + "\n" for p in pages)
    r = curate("html2text", stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = [json.loads(l) for l in r.stdout.splitlines()]
    assert [o["id"] for o in out] == [p["id"] for p in pages]
    assert all(f"Paragraph number {i} " in o["text"] for i, o in enumerate(out))


def test_html2text_bad_line_is_reported_and_skipped():
    r = curate("html2text", stdin='{"id": "1", "html": "<p>a</p>"}\nnot json\n{"id": "2", "html": ""}\n')
    assert r.returncode == 1 and "stdin:2" in r.stderr
    assert [json.loads(l)["id"] for l in r.stdout.splitlines()] == ["1", "2"]


def test_filter_writes_kept_and_stats(tmp_path):
    docs = tmp_path / "docs.parquet"
    assert curate("read", *sorted(SAMPLE.glob("*.gz")), "-o", docs).returncode == 0
    kept = tmp_path / "kept.jsonl"
    r = curate("filter", "-i", docs, "-o", kept)
    assert r.returncode == 0, r.stderr
    stats = json.loads((tmp_path / "kept.jsonl.stats.json").read_text())
    counters = stats["counters"]
    n_in = len(list(read_documents(docs)))
    kept_docs = list(read_documents(kept))
    # every document is counted exactly once: kept or dropped with a reason
    assert counters.get("kept", 0) == len(kept_docs)
    assert sum(v for k, v in counters.items() if k.startswith("dropped:")) + len(kept_docs) == n_in
    # the sample is mostly non-English (2008 Spanish/French pages, a Chinese and a Russian page ...)
    assert counters["dropped:language"] > 0
    assert all(d.metadata["language"] == "en" and d.metadata["language_score"] >= 0.65 for d in kept_docs)
    assert stats["config"]["langid"]["threshold"] == 0.65


def test_filter_languages_option(tmp_path):
    docs = tmp_path / "docs.parquet"
    curate("read", SAMPLE / "CC-2008-excerpt.arc.gz", "-o", docs)
    r = curate("filter", "-i", docs, "-o", tmp_path / "es.jsonl", "--languages", "es", "--preset", "filters:none")
    assert r.returncode == 0, r.stderr
    kept = list(read_documents(tmp_path / "es.jsonl"))
    assert kept and all(d.metadata["language"] == "es" for d in kept)


@pytest.mark.parametrize("bad", ["nope.parquet", "docs.txt"])
def test_filter_bad_input_is_clear(tmp_path, bad):
    r = curate("filter", "-i", tmp_path / bad, "-o", tmp_path / "k.jsonl")
    assert r.returncode != 0 and bad in r.stderr and "Traceback" not in r.stderr
