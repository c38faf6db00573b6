"""The run report: every figure it takes from a stats file equals that file's entry.

The fast tests build a run folder in the formats the stages write (values
chosen here, so a wrong lookup cannot pass by chance) and check the page
against it; tests/test_make_pipeline.py runs the same check on the folder a
real `make pretrain` leaves.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from curate.core.document import Document, DocumentWriter
from curate.core.layout import input_key
from curate.report import write_report
from curate.report.gather import gather
from curate.report.render import fmt

_CELL = re.compile(r'<td class="n" data-src="([^"]*)" data-key="([^"]*)" data-value="([^"]*)">([^<]*)</td>')


def report_cells(page: str) -> list[tuple[str, str, object, str]]:
    """(file, key, value, shown text) of every number cell that names its stats file."""
    return [(html.unescape(s), html.unescape(k), json.loads(html.unescape(v)), html.unescape(t))
            for s, k, v, t in _CELL.findall(page)]


def lookup(run: Path, src: str, key: str):
    """The entry ``key`` (a JSON pointer: ``/``-separated, ``~1`` for ``/`` in a name, list items by
    index) of the JSON file ``src`` in ``run``."""
    obj = json.loads((run / src).read_text())
    for part in (p.replace("~1", "/").replace("~0", "~") for p in key.split("/")):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def check_report(run: Path) -> list[tuple[str, str, object, str]]:
    """Every sourced cell of RUN/report.html equals its file's entry and shows it; returns the cells."""
    page = (run / "report.html").read_text()
    cells = report_cells(page)
    assert cells, "no sourced figures in the report"
    for src, key, value, shown in cells:
        assert lookup(run, src, key) == value, f"{src}:{key}"
        assert shown == fmt(value), f"{src}:{key} shows {shown!r} for {value!r}"
    # self-contained: nothing is fetched when it opens (URLs appear only as text)
    for loader in ("<script", "<link", "<img", "<iframe", " src=", " href=\"http", "url(", "@import"):
        assert loader not in page, f"the page loads something: {loader}"
    return cells


def _doc(i: int, warc: str, **meta) -> Document:
    return Document(id=f"d{i}", text=f"text of document {i} " * 5, source="cc", url=f"https://example.org/{i}",
                    metadata={"warc_file": warc, "language": "en", "language_score": 0.9, "quality": 0.5 + i / 100,
                              **meta})


def _write(path: Path, docs: list[Document]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with DocumentWriter(path) as w:
        for d in docs:
            w.write(d)


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@pytest.fixture
def run(tmp_path) -> Path:
    """A run folder as the stages leave it, with distinct counts everywhere."""
    r = tmp_path / "sample"
    inputs = ["sample/CC-MAIN-2020-34-a.warc.gz", "sample/CC-2008-b.arc.gz"]
    keys = [input_key(x) for x in inputs]
    per_input = [{"read:records": 40, "docs": 31, "kept": 3, "dropped:language": 17, "dropped:quality": 11},
                 {"read:records": 23, "docs": 19, "kept": 4, "dropped:c4_too_few_sentences": 15,
                  "skipped:http_status:4xx": 2, "skipped:mime:application/pdf": 5}]
    merged = {}
    for c in per_input:
        for k, v in c.items():
            merged[k] = merged.get(k, 0) + v
    _dump(r / "filter" / "stats.json", {"counters": merged, "inputs": 2, "incomplete_inputs": []})
    _dump(r / "filter" / "config.json", {"inputs": inputs, "rejected_rate": 1.0})
    docs = {keys[0]: [_doc(i, inputs[0]) for i in range(3)], keys[1]: [_doc(i, inputs[1]) for i in range(3, 7)]}
    for key, c in zip(keys, per_input):
        _dump(r / "filter" / "stats" / f"{key}.json", c)
        _dump(r / "filter" / "done" / f"{key}.json", {"complete": True, "key": key})
        _write(r / "filter" / "docs" / f"{key}.parquet", docs[key])
        (r / "filter" / "errors").mkdir(exist_ok=True)
        (r / "filter" / "errors" / f"{key}.jsonl").write_text(
            json.dumps({"offset": 12, "reason": "truncated gzip member"}) + "\n")
        (r / "filter" / "rejected").mkdir(exist_ok=True)
        (r / "filter" / "rejected" / f"{key}.jsonl").write_text(
            json.dumps({"id": "x", "url": "u", "reason": "language", "language": "de", "text": "ein Text"}) + "\n")
    all_docs = docs[keys[0]] + docs[keys[1]]
    dup = _doc(9, inputs[1], duplicate="near", cluster="d3")
    annotated = [Document(d.id, d.text, d.source, d.url, metadata={**d.metadata, "duplicate": False,
                                                                     "cluster": d.id}) for d in all_docs]
    _write(r / "dedup" / "cc" / "docs" / "part-00000.parquet", annotated + [dup])
    _write(r / "dedup" / "cc" / "kept" / "part-00000.parquet", all_docs[:6])
    _dump(r / "dedup" / "cc" / "stats.json", {"documents": 8, "kept": 6, "cluster_size_histogram": {"1": 6, "2": 1},
                                              "config": {"threshold": 0.8}})
    _dump(r / "decontam" / "cc" / "report.json", {
        "benchmarks": {"lambada_openai_test": {"docs_touched": 2, "docs_dropped": 1, "chars_removed": 345,
                                               "distinct_ngrams": 5, "ngrams": {"a b c": 2}},
                       "gsm8k_test": {"docs_touched": 0, "docs_dropped": 0, "chars_removed": 0,
                                      "distinct_ngrams": 0, "ngrams": {}}},
        "counters": {"docs": 6, "kept": 5}})
    _write(r / "decontam" / "cc" / "docs" / "part-00000.parquet", all_docs[:5])
    _dump(r / "shards" / "manifest.json", {
        "epochs_table": [{"source": "cc", "tokens": 1234, "weight": 0.6, "epochs": 3.5},
                         {"source": "books", "tokens": 98765, "weight": 0.4, "epochs": 0.25}],
        "sources": [{"name": "cc", "tokens": {"train": 1234, "val": 7}, "documents": {"train": 5, "val": 0},
                     "inputs": ["out/sample/decontam/cc/docs/part-00000.parquet"], "weight": 0.6},
                    {"name": "books", "tokens": {"train": 98765, "val": 11}, "documents": {"train": 50, "val": 1},
                     "inputs": ["out/sample/decontam/books/docs/part-00000.parquet"], "weight": 0.4}],
        "config": {"budget_tokens": 1000000}, "tokenizer": {"vocab_size": 4096}})
    (r / "train" / "eval").mkdir(parents=True)
    (r / "train" / "log.jsonl").write_text("\n".join(json.dumps(x) for x in [
        {"kind": "train", "step": 1, "loss": 8.3}, {"kind": "train", "step": 2, "loss": 7.9},
        {"kind": "val", "step": 2, "loss": {"books": 7.7}}]) + "\n")
    _dump(r / "train" / "config.json", {"model": {"block_size": 256}})
    _dump(r / "train" / "summary.json", {"step": 2, "tokens": 4096, "mixture": {
        "cc": {"sequences": 9, "epochs": 1.5, "realised_share": 0.5625, "target_share": 0.6},
        "books": {"sequences": 7, "epochs": 0.01, "realised_share": 0.4375, "target_share": 0.4}}})
    _dump(r / "train" / "eval" / "eval.json", {
        "lambada": {"zero_shot": {"accuracy": 0.125, "perplexity": 321.5, "items": 8, "shots": 0}},
        "gsm8k": {"exact_match": 0.0, "exact_match_strict": 0.0, "items": 3, "shots": 5}})
    mixture = {"path": "mixtures/sample.toml",
               "text": '[[source]]\nname = "cc"\nkind = "crawl"\nweight = 0.6\n'
                       '[[source]]\nname = "books"\nkind = "gutenberg"\npath = "x/*.txt.gz"\nweight = 0.4\n'}
    for i, stage in enumerate(("filter", "dedup", "decontam", "shards", "train")):
        _dump(r / stage / "stage.json", {"stage": stage, "complete": True, "seconds": 10.5 + i,
                                         "steps": [{"name": stage, "command": ["python", "-m", stage],
                                                    "seconds": 10.5 + i, "status": 0}], "mixture": mixture})
    return r


def test_every_sourced_figure_equals_its_stats_file(run):
    write_report(run)
    cells = check_report(run)
    seen = {(s, k) for s, k, _, _ in cells}
    # the funnel and the per-input rows, the dedup and decontam counts, the mixture and the eval
    for expected in [("filter/stats.json", "counters/read:records"), ("filter/stats.json", "counters/kept"),
                     ("filter/stats.json", "counters/dropped:language"),
                     ("filter/stats.json", "counters/skipped:http_status:4xx"),
                     ("filter/stats.json", "counters/skipped:mime:application~1pdf"),
                     ("dedup/cc/stats.json", "kept"), ("decontam/cc/report.json", "counters/kept"),
                     ("decontam/cc/report.json", "benchmarks/lambada_openai_test/chars_removed"),
                     ("shards/manifest.json", "sources/0/tokens/train"), ("shards/manifest.json", "epochs_table/1/epochs"),
                     ("train/eval/eval.json", "lambada/zero_shot/accuracy"), ("train/eval/eval.json", "gsm8k/items"),
                     ("train/stage.json", "seconds")]:
        assert expected in seen, expected
    per_input = [s for s, _ in seen if s.startswith("filter/stats/")]
    assert len(set(per_input)) == 2


def test_derived_figures_agree_with_the_stats(run):
    data = gather(run)
    dd = data["dedup"]["cc"]
    # documents per input after dedup, counted from the kept shards, sum to the job's own count
    assert sum(dd["kept_by_input"].values()) == dd["stats"]["kept"] == 6
    assert dd["removed_by_reason"] == {"near": 1}
    assert dd["examples"]["near"][0]["representative"].startswith("text of document 3")
    assert sum(data["decontam"]["cc"]["kept_by_input"].values()) == 5
    assert data["train"]["trained"]["cc"]["tokens"] == 9 * 256
    assert data["crawl_source"] == "cc"
    assert data["filter"]["languages"] == {"kept": {"en": 7}, "dropped (sample)": {"de": 2}}
    assert [i["errors"] for i in data["filter"]["inputs"]] == [1, 1]


def test_a_changed_stats_file_is_caught(run):
    """The check is not vacuous: a report built from other numbers fails it."""
    write_report(run)
    stats = json.loads((run / "filter" / "stats.json").read_text())
    stats["counters"]["read:records"] += 1
    (run / "filter" / "stats.json").write_text(json.dumps(stats))
    with pytest.raises(AssertionError, match="read:records"):
        check_report(run)


def test_a_partial_run_still_reports(tmp_path, run):
    """After the filter stage alone the page is built and says what has not run."""
    only = tmp_path / "only-filter"
    (only / "filter").mkdir(parents=True)
    for name in ("stats.json", "config.json"):
        (only / "filter" / name).write_text((run / "filter" / name).read_text())
    page = write_report(only).read_text()
    assert "The dedup stage has not run." in page and "The train stage has not run." in page
    check_report(only)
