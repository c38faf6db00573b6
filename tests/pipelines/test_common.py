"""What the Beam jobs share: counters bound to Beam Metrics, the command wrapper, the dedup
options, and DoFns that pass their counters to the library instead of patching it."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tests.common import require

pytestmark = pytest.mark.beam
beam = require("apache_beam")

from curate.core.counters import Counters  # noqa: E402
from curate.core.document import Document  # noqa: E402
from curate.ingest.sources import SourceError  # noqa: E402
from pipelines.common import NAMESPACE, BeamCounters, run_main  # noqa: E402

PROSE = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age "
         "of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season "
         "of Light, it was the season of Darkness, it was the spring of hope, it was the winter of despair.")


class _CountFn(beam.DoFn):
    def process(self, n):
        counters = BeamCounters()
        counters.inc("seen")
        counters.update({"weight": n})
        yield counters.as_dict()


def test_beam_counters_keep_the_dict_and_feed_metrics():
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    p = beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"]))
    out = p | beam.Create([1, 2, 3]) | beam.ParDo(_CountFn())
    assert_that(out, equal_to([{"seen": 1, "weight": n} for n in (1, 2, 3)]))
    result = p.run()
    result.wait_until_finish()
    got = {r.key.metric.name: r.committed
           for r in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]}
    assert got == {"seen": 3, "weight": 6}


def test_run_main_turns_expected_errors_into_one_line_and_status_2(capsys):
    def failing(argv):
        raise SourceError("no input matches x/*.parquet")

    assert run_main("pipelines.x", failing, []) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pipelines.x: error: no input matches x/*.parquet"]
    assert run_main("pipelines.x", lambda argv: {"bad": 3}, [], status=lambda r: 1 if r["bad"] else 0) == 1
    assert run_main("pipelines.x", lambda argv: {}, []) == 0
    with pytest.raises(KeyError):  # an unexpected error is not hidden
        run_main("pipelines.x", lambda argv: {}[1], [])


def test_dedup_options_are_the_config_defaults_on_both_command_lines():
    from cli.dedup import add_dedup_parser
    from curate.dedup.config import DedupConfig, config_from_args
    from pipelines.dedup import _parser

    ap = argparse.ArgumentParser(prog="curate")
    add_dedup_parser(ap.add_subparsers(dest="command"))
    cli_args = ap.parse_args(["dedup", "-i", "a.jsonl", "-o", "b.jsonl"])
    beam_args, _ = _parser().parse_known_args(["--input", "a.parquet", "--out", "o"])
    assert config_from_args(cli_args) == DedupConfig() == config_from_args(beam_args)
    assert cli_args.scope == beam_args.scope == "all"
    changed, _ = _parser().parse_known_args(["--input", "a", "--out", "o", "--template-docs", "0",
                                             "--threshold", "0.9"])
    assert config_from_args(changed) == DedupConfig(template_docs=0, threshold=0.9)


@pytest.fixture(scope="module")
def scorer_factory():
    """A fixed LR model: every document scores sigmoid(2) = 0.88, so the Pareto rule keeps
    about 36% of them, chosen by id."""
    import functools

    from classifiers.features import FeatureConfig
    from classifiers.models import LRModel
    from classifiers.scoring import QualityScorer

    cfg = FeatureConfig(n_features=2 ** 10)
    return functools.partial(QualityScorer, LRModel(cfg, np.zeros(cfg.n_features), 2.0))


def test_filter_then_quality_count_each_document_once(scorer_factory):
    """The heuristic stage's pass is not ``kept`` when a quality stage follows; the
    quality stage counts ``kept`` itself, into the counters it passes to the scorer."""
    from curate.filters.stage import StageConfig
    from pipelines.filter import FilterFn, QualityFn

    docs = [("in", Document(id=f"d{k}", text=PROSE)) for k in range(40)]
    filt = FilterFn(StageConfig.preset("filters:none"), rejected_rate=0.0, final=False)
    filt.setup()
    filt.start_bundle()
    passed = [out for element in docs for out in filt.process(element)]
    assert len(passed) == len(docs)
    assert "kept" not in filt.counts["in"].as_dict()

    quality = QualityFn(scorer_factory, rejected_rate=0.0)
    quality.setup()
    quality.start_bundle()
    kept = [out for element in passed for out in quality.process(element)]
    c = quality.counts["in"].as_dict()
    assert 0 < len(kept) < len(docs)
    assert c == {"kept": len(kept), "quality:kept": len(kept), "quality:scored": len(docs),
                 "dropped:quality": len(docs) - len(kept)}
    assert quality.scorer.counters.as_dict() == {}   # the scorer's own counters are not used
    assert all(n > 0 for n in c.values())

    final = FilterFn(StageConfig.preset("filters:none"), rejected_rate=0.0)
    final.setup()
    final.start_bundle()
    list(final.process(docs[0]))
    assert final.counts["in"]["kept"] == 1
    assert isinstance(final.counts["in"], Counters)


@pytest.mark.slow
def test_dedup_command_on_two_processes_gives_the_in_process_clusters(tmp_path):
    """``python -m pipelines.dedup --workers 2``: worker processes unpickle the job's element
    classes (pipelines.dedup.Edge, ...), which they cannot find in the driver's __main__."""
    import subprocess
    import sys

    from curate.core.document import read_documents, write_documents
    from pipelines.dedup import run
    from tests.common import REPO

    words = PROSE.split()
    docs = [Document(id=f"d{k}", text=" ".join(words[k % 7:] + [f"w{k % 5}"] * (k % 3)), source="ab"[k % 2],
                     url=f"http://site{k % 4}.example/{k % 9}") for k in range(40)]
    write_documents(tmp_path / "in.jsonl", docs)
    run(["--input", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "one"), "--band-parts", "2", "-q"])
    r = subprocess.run([sys.executable, "-m", "pipelines.dedup", "--input", str(tmp_path / "in.jsonl"),
                        "--out", str(tmp_path / "two"), "--band-parts", "2", "-q", "--workers", "2"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]

    def clusters(out):
        return {d.id: (d.metadata["cluster"], d.metadata.get("duplicate_reason"))
                for p in sorted((out / "docs").glob("*.parquet")) for d in read_documents(p)}

    one = clusters(tmp_path / "one")
    assert one == clusters(tmp_path / "two") and len(one) == len(docs)
    assert sum(reason is not None for _, reason in one.values()) >= 10   # not vacuous


@pytest.mark.parametrize("job, argv, message", [
    ("pipelines.filter", ["--preset", "nope", "--input", "sample/CC-2008-excerpt.arc.gz"], "unknown preset 'nope'"),
    ("pipelines.dedup", ["--input", "docs.parquet", "--threshold", "0"], "threshold must be in (0, 1]"),
])
def test_unusable_settings_are_one_line_and_no_output(job, argv, message, tmp_path, capsys):
    import importlib

    out = tmp_path / "out"
    assert importlib.import_module(job).main(argv + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{job}: error: {err[0].split(': error: ', 1)[1]}"] and message in err[0]
    assert "Traceback" not in "".join(err)
    assert not out.exists()


def test_filter_marks_an_input_incomplete_when_kept_documents_went_missing_in_the_shuffle(tmp_path):
    import json

    from pipelines.filter import DOCS_LOST, WritePerInputFn

    docs = [Document(id=f"d{k}", text=f"text {k}", source="cc") for k in range(3)]

    def write(key, kept_counted, received):
        groups = {"docs": received, "errors": [], "rejected": [], "inputs": [f"/in/{key}.warc.gz"],
                  "stats": [{"docs": 5, "kept": kept_counted}]}
        marker = list(WritePerInputFn(str(tmp_path)).process((key, groups)))[0]
        return marker, json.loads((tmp_path / "stats" / f"{key}.json").read_text())

    marker, stats = write("whole", 3, docs)
    assert marker["complete"] and DOCS_LOST not in stats
    marker, stats = write("short", 3, docs[:2])        # one kept document did not come out of the shuffle
    assert not marker["complete"] and stats[DOCS_LOST] == 1 and marker["kept"] == 2
