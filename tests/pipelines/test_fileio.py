"""Beam jobs on a filesystem that is not the local one (what gs:// is on Dataflow).

``lfs://`` below is the local disk behind a URL scheme, registered with Beam's
FileSystems the way GCS is: every read and write of the dedup and decontam jobs
must go through FileSystems (glob expansion, copying inputs to the worker,
temp-and-rename outputs) for these tests to pass.
"""

from __future__ import annotations

import json

import pytest

from tests.common import require, shared

pytestmark = pytest.mark.beam
beam = require("apache_beam")

from apache_beam.io.localfilesystem import LocalFileSystem  # noqa: E402

from curate.core.document import Document, read_documents, write_documents  # noqa: E402

PREFIX = "lfs://"


def _local(path: str) -> str:
    return path[len(PREFIX):] if path.startswith(PREFIX) else path


class PrefixedLocalFileSystem(LocalFileSystem):
    """The local disk under ``lfs://``: only the path spelling differs."""

    @classmethod
    def scheme(cls):
        return "lfs"

    def join(self, basepath, *paths):
        return PREFIX + super().join(_local(basepath), *paths)

    def split(self, path):
        head, tail = super().split(_local(path))
        return PREFIX + head, tail

    def mkdirs(self, path):
        return super().mkdirs(_local(path))

    def has_dirs(self):
        return True

    def _list(self, dir_or_prefix):
        import os

        from apache_beam.io.filesystem import FileMetadata

        for dirpath, _, files in os.walk(_local(dir_or_prefix)):
            for name in files:
                path = os.path.join(dirpath, name)
                yield FileMetadata(PREFIX + path, os.path.getsize(path), os.path.getmtime(path))

    def metadata(self, path):
        meta = super().metadata(_local(path))
        return type(meta)(path, meta.size_in_bytes, meta.last_updated_in_seconds)

    def create(self, path, *args, **kwargs):
        return super().create(_local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return super().open(_local(path), *args, **kwargs)

    def copy(self, sources, destinations):
        return super().copy([_local(s) for s in sources], [_local(d) for d in destinations])

    def rename(self, sources, destinations):
        return super().rename([_local(s) for s in sources], [_local(d) for d in destinations])

    def exists(self, path):
        return super().exists(_local(path))

    def size(self, path):
        return super().size(_local(path))

    def last_updated(self, path):
        return super().last_updated(_local(path))

    def checksum(self, path):
        return super().checksum(_local(path))

    def delete(self, paths):
        return super().delete([_local(p) for p in paths])


def test_local_copy_and_expand_on_a_remote_scheme(tmp_path):
    from pipelines.fileio import expand, local_copy

    write_documents(tmp_path / "a.parquet", [Document(id="x", text="hello there")])
    write_documents(tmp_path / "b.jsonl.gz", [Document(id="y", text="general kenobi")])
    found = expand([f"{PREFIX}{tmp_path}/*.parquet", f"{PREFIX}{tmp_path}/*.jsonl.gz"])
    assert found == [f"{PREFIX}{tmp_path}/a.parquet", f"{PREFIX}{tmp_path}/b.jsonl.gz"]
    texts = []
    for url in found:
        with local_copy(url) as path:
            assert "://" not in path
            texts += [d.text for d in read_documents(path)]
    assert texts == ["hello there", "general kenobi"]
    from curate.ingest.sources import SourceError
    with pytest.raises(SourceError, match="no input matches"):
        expand([f"{PREFIX}{tmp_path}/*.nothing"])


@pytest.mark.shared_data
@pytest.mark.slow
def test_dedup_and_decontam_jobs_read_and_write_through_filesystems(tmp_path):
    from apache_beam.options.pipeline_options import PipelineOptions

    from benchmarks.dedup import clough_docs
    from curate.decontam.overlap import Decontaminator, load_benchmarks
    from curate.dedup.core import dedup_documents
    from pipelines.decontam import run as decontam_run
    from pipelines.dedup import run as dedup_run

    shared("dedup", "clough-stevenson-plagiarism_tasks-abc.jsonl")
    docs = clough_docs()
    write_documents(tmp_path / "in-1.parquet", docs[:30])
    write_documents(tmp_path / "in-2.jsonl.gz", docs[30:])
    url = f"{PREFIX}{tmp_path}"

    def pipeline():
        return beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"]))

    stats = dedup_run(["--input", f"{url}/in-*", "--out", f"{url}/dedup", "-q"], test_pipeline=pipeline())
    got = {d.id: d.metadata["cluster"] for p in sorted((tmp_path / "dedup" / "docs").glob("*.parquet"))
           for d in read_documents(p)}
    assert got == {d.id: d.metadata["cluster"] for d in dedup_documents(docs).docs}
    assert stats["kept"] < len(docs) and json.loads((tmp_path / "dedup" / "stats.json").read_text()) == stats

    bench = str(shared("eval", "gsm8k_test.part1.jsonl"))
    rep = decontam_run(["--benchmark", bench, "--input", f"{url}/in-*", "--out", f"{url}/decontam", "-q"],
                       test_pipeline=pipeline())
    dec = Decontaminator.build(load_benchmarks([bench]))
    local = {d.id: d.text for d in dec.clean(docs)}
    cleaned = {d.id: d.text for p in (tmp_path / "decontam" / "docs").glob("*.parquet") for d in read_documents(p)}
    assert cleaned == local and rep["benchmarks"] == dec.report()
