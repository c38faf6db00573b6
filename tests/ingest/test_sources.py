"""curate.ingest.sources against a Common Crawl-shaped mirror on loopback (no network).

The mirror (tests/ccmirror.py) serves the real sample archives with CC's layout
and injects the faults a multi-hour crawl read meets: dropped connections,
503s, servers that ignore Range, files cut short.
"""

from __future__ import annotations

import gzip
import io
import json
import socket
from pathlib import Path

import pytest

from curate.core.counters import Counters
from curate.ingest import sources
from curate.ingest.sources import (
    RemoteReadError,
    SourceError,
    UnknownCrawlError,
    expand_inputs,
    known_crawls,
    list_files,
    open_input,
    resolve_crawls,
)
from tests.ccmirror import MirrorServer, build_mirror
from tests.common import shared

WARC_2020 = "crawl-data/CC-MAIN-2020-34/segments/1596439737883.59/warc/CC-MAIN-20200808165417-20200808195417-00395.warc.gz"
FAST = dict(backoff=0.001, timeout=5)  # retries in tests must not sleep for real


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    return build_mirror(tmp_path_factory.mktemp("cc"), shared("warc"))


@pytest.fixture(scope="module")
def server(mirror):
    with MirrorServer(mirror["root"]) as srv:
        yield srv


@pytest.fixture
def srv(server):
    """The module's server with a clean request log and no faults left over."""
    server.clear_faults()
    server.clear_log()
    yield server
    server.clear_faults()


@pytest.fixture
def offline(monkeypatch):
    """Point the default collinfo look-up at a closed loopback port: fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(sources, "COLLINFO_URL", f"http://127.0.0.1:{port}/collinfo.json")


# --------------------------------------------------------------------------- crawl ids


@pytest.mark.shared_data
def test_known_crawls_from_mirror_collinfo(mirror, srv):
    assert known_crawls(srv.url) == (["CC-MAIN-2024-22", "CC-MAIN-2020-34", "CC-MAIN-2014-35"], "collinfo")
    assert known_crawls(str(mirror["root"]))[1] == "collinfo"


def test_known_crawls_falls_back_to_bundled(tmp_path, offline):
    ids, source = known_crawls()  # default base, index unreachable
    assert source == "bundled"
    assert ids[-1] == "CC-MAIN-2013-20" and "CC-MAIN-2020-34" in ids
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
    assert known_crawls(str(tmp_path))[1] == "bundled"  # mirror without collinfo.json


@pytest.mark.shared_data
def test_resolve_exact_and_prefix_against_mirror(srv):
    assert resolve_crawls("CC-MAIN-2020-34", base=srv.url) == ["CC-MAIN-2020-34"]
    assert resolve_crawls("CC-MAIN-20", base=srv.url) == ["CC-MAIN-2014-35", "CC-MAIN-2020-34", "CC-MAIN-2024-22"]
    assert resolve_crawls("cc-main-2024", base=srv.url) == ["CC-MAIN-2024-22"]
    assert resolve_crawls("CC-MAIN-2014-35,CC-MAIN-2024", base=srv.url) == ["CC-MAIN-2014-35", "CC-MAIN-2024-22"]
    # the mirror's list is authoritative: a real crawl it does not hold is unknown there
    with pytest.raises(UnknownCrawlError, match="collinfo.json"):
        resolve_crawls("CC-MAIN-2019", base=srv.url)


def test_resolve_against_bundled_list(offline):
    assert resolve_crawls("CC-MAIN-2020-34") == ["CC-MAIN-2020-34"]
    assert resolve_crawls("CC-MAIN-2020") == [
        "CC-MAIN-2020-05", "CC-MAIN-2020-10", "CC-MAIN-2020-16", "CC-MAIN-2020-24", "CC-MAIN-2020-29",
        "CC-MAIN-2020-34", "CC-MAIN-2020-40", "CC-MAIN-2020-45", "CC-MAIN-2020-50",
    ]
    assert resolve_crawls("CC-MAIN-2013") == ["CC-MAIN-2013-20", "CC-MAIN-2013-48"]


@pytest.mark.shared_data
def test_unknown_crawl_lists_nearest_ids(offline, srv):
    with pytest.raises(UnknownCrawlError) as e:
        resolve_crawls("CC-MAIN-2020-33")
    msg = str(e.value)
    assert "'CC-MAIN-2020-33'" in msg and "crawls.txt" in msg
    nearest = msg.split("nearest: ")[1].split(", ")
    assert nearest[0] == "CC-MAIN-2020-34" and len(nearest) == 5
    with pytest.raises(UnknownCrawlError, match=r"nearest: CC-MAIN-2014-35, CC-MAIN-2020-34, CC-MAIN-2024-22$"):
        resolve_crawls("CC-MAIN-2012-01", base=srv.url)
    with pytest.raises(UnknownCrawlError, match="nearest: "):
        resolve_crawls("not-a-crawl")
    with pytest.raises(UnknownCrawlError, match="empty crawl spec"):
        resolve_crawls(" , ")


# --------------------------------------------------------------------------- paths files


@pytest.mark.shared_data
def test_list_files_http_and_local_bases(mirror, srv):
    rel = mirror["crawls"]["CC-MAIN-2020-34"]["warc"]
    assert rel == [WARC_2020]
    assert list_files("CC-MAIN-2020-34", base=srv.url) == [srv.url + WARC_2020]
    root = str(mirror["root"])
    assert list_files("CC-MAIN-2020-34", base=root) == [str(mirror["root"] / WARC_2020)]
    wet = list_files("CC-MAIN-2024-22", base=root, kind="wet")
    assert len(wet) == 1 and wet[0].endswith("/wet/CC-MAIN-20240517233122-20240518023122-00000.warc.wet.gz")
    assert Path(wet[0]).is_file()


@pytest.mark.shared_data
def test_list_files_missing_paths_file_is_named(mirror, srv):
    with pytest.raises(SourceError, match=r"CC-MAIN-2014-35/wet\.paths\.gz.*404"):
        list_files("CC-MAIN-2014-35", base=srv.url, kind="wet")
    with pytest.raises(SourceError, match=r"paths file not found: .*CC-MAIN-2014-35/wet\.paths\.gz"):
        list_files("CC-MAIN-2014-35", base=str(mirror["root"]), kind="wet")
    with pytest.raises(SourceError, match="unknown file kind 'arc'"):
        list_files("CC-MAIN-2014-35", base=str(mirror["root"]), kind="arc")


@pytest.fixture(scope="module")
def big_crawl(tmp_path_factory):
    """A local base whose paths file lists 40 files, for sampling."""
    root = tmp_path_factory.mktemp("big")
    paths = [f"crawl-data/CC-MAIN-2099-01/segments/1.{i}/warc/CC-MAIN-2099-{i:05d}.warc.gz" for i in range(40)]
    target = root / "crawl-data" / "CC-MAIN-2099-01" / "warc.paths.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(gzip.compress("".join(p + "\n" for p in paths).encode()))
    return root, paths


def test_files_sampling_is_deterministic(big_crawl):
    root, paths = big_crawl
    full = list_files("CC-MAIN-2099-01", base=str(root))
    assert [Path(p).relative_to(root).as_posix() for p in full] == paths
    a = list_files("CC-MAIN-2099-01", base=str(root), files=5, seed=0)
    assert a == list_files("CC-MAIN-2099-01", base=str(root), files=5, seed=0)
    assert len(a) == 5 and a == [p for p in full if p in a]  # original order kept
    others = [tuple(list_files("CC-MAIN-2099-01", base=str(root), files=5, seed=s)) for s in range(1, 6)]
    assert any(o != tuple(a) for o in others)
    # a larger sample contains the smaller one (same hash ranking), and N >= all is all
    assert set(a) <= set(list_files("CC-MAIN-2099-01", base=str(root), files=10, seed=0))
    assert list_files("CC-MAIN-2099-01", base=str(root), files=100) == full


def test_files_sampling_same_over_http(big_crawl):
    root, _ = big_crawl
    with MirrorServer(root) as s:
        over_http = list_files("CC-MAIN-2099-01", base=s.url, files=3, seed=7)
    local = list_files("CC-MAIN-2099-01", base=str(root), files=3, seed=7)
    assert [u[len(s.url):] for u in over_http] == [Path(p).relative_to(root).as_posix() for p in local]


# --------------------------------------------------------------------------- local inputs


def test_expand_inputs_globs_and_errors(tmp_path):
    for name in ["b.warc.gz", "a.warc.gz", "c.arc", "sub/d.warc.gz"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    url = "https://data.commoncrawl.org/crawl-data/x.warc.gz"
    got = expand_inputs([str(tmp_path / "*.warc.gz"), str(tmp_path / "a.warc.gz"), url, str(tmp_path / "**/*.warc.gz")])
    assert got == [
        str(tmp_path / "a.warc.gz"), str(tmp_path / "b.warc.gz"), url, str(tmp_path / "sub/d.warc.gz"),
    ]
    with pytest.raises(SourceError, match=r"no input matches .*\*\.wet\.gz"):
        expand_inputs([str(tmp_path / "a.warc.gz"), str(tmp_path / "*.wet.gz")])
    with pytest.raises(SourceError, match="no input matches .*missing.warc"):
        expand_inputs([str(tmp_path / "missing.warc")])
    with pytest.raises(SourceError, match="is a directory"):
        expand_inputs([str(tmp_path / "sub")])


# --------------------------------------------------------------------------- streams


def _expected(mirror, rel=WARC_2020) -> bytes:
    return (mirror["root"] / rel).read_bytes()


@pytest.mark.shared_data
def test_open_local_and_http_plain_read(mirror, srv):
    want = _expected(mirror)
    with open_input(str(mirror["root"] / WARC_2020)) as f:
        assert f.read() == want
    c = Counters()
    with open_input(srv.url + WARC_2020, counters=c, **FAST) as f:
        assert f.read(10) == want[:10]
        assert f.read() == want[10:]
        assert f.read() == b""
    assert c.as_dict() == {}
    assert [(r.method, r.range, r.status) for r in srv.requests] == [("GET", None, 200)]


@pytest.mark.shared_data
def test_http_stream_works_under_buffered_reader(mirror, srv):
    want = _expected(mirror)
    with io.BufferedReader(open_input(srv.url + WARC_2020, **FAST), buffer_size=4096) as f:
        got = b"".join(iter(lambda: f.read(1000), b""))
    assert got == want
    with open_input(srv.url + WARC_2020, **FAST) as raw, gzip.open(raw) as g:
        assert g.read(8) == b"WARC/1.0"


@pytest.mark.shared_data
def test_drop_mid_body_resumes_with_range(mirror, srv):
    want = _expected(mirror)
    srv.add_fault(WARC_2020, drop_after=(5000, 3))
    c = Counters()
    with open_input(srv.url + WARC_2020, counters=c, **FAST) as f:
        assert f.read() == want
    assert c["fetch:retries"] == 3
    log = srv.requests_for(WARC_2020)
    assert [(r.range, r.status) for r in log] == [
        (None, 200), ("bytes=5000-", 206), ("bytes=10000-", 206), ("bytes=15000-", 206),
    ]


@pytest.mark.shared_data
def test_stalled_connection_times_out_and_resumes(mirror, srv):
    srv.add_fault(WARC_2020, stall_after=(20000, 1))
    c = Counters()
    with open_input(srv.url + WARC_2020, counters=c, backoff=0.001, timeout=0.2) as f:
        assert f.read() == _expected(mirror)
    assert c["fetch:retries"] == 1
    assert [r.range for r in srv.requests_for(WARC_2020)] == [None, "bytes=20000-"]


@pytest.mark.shared_data
def test_503s_then_success(mirror, srv):
    srv.add_fault("00395.warc.gz", status_first=(503, 2))  # suffix match
    c = Counters()
    with open_input(srv.url + WARC_2020, counters=c, **FAST) as f:
        assert f.read() == _expected(mirror)
    assert c["fetch:retries"] == 2
    assert [r.status for r in srv.requests_for(WARC_2020)] == [503, 503, 200]


@pytest.mark.shared_data
def test_429_is_retried_too(mirror, srv):
    srv.add_fault(WARC_2020, status_first=(429, 1))
    with open_input(srv.url + WARC_2020, **FAST) as f:
        assert f.read() == _expected(mirror)


@pytest.mark.shared_data
def test_ignore_range_with_drop_skips_what_was_read(mirror, srv):
    want = _expected(mirror)
    srv.add_fault(WARC_2020, drop_after=(7000, 2), ignore_range=True)
    c = Counters()
    with open_input(srv.url + WARC_2020, counters=c, **FAST) as f:
        got = b"".join(iter(lambda: f.read(3333), b""))
    assert got == want
    assert c["fetch:retries"] == 2
    assert [(r.range, r.status) for r in srv.requests_for(WARC_2020)] == [
        (None, 200), ("bytes=7000-", 200), ("bytes=7000-", 200),
    ]


@pytest.mark.shared_data
def test_truncated_file_gives_up_naming_url_and_position(srv):
    srv.add_fault(WARC_2020, truncate=12345)
    c = Counters()
    with pytest.raises(RemoteReadError) as e:
        with open_input(srv.url + WARC_2020, retries=3, counters=c, **FAST) as f:
            f.read()
    msg = str(e.value)
    assert srv.url + WARC_2020 in msg and "byte 12345" in msg and "after 3 retries" in msg
    assert "connection closed at byte 12345" in msg  # the last cause
    assert c["fetch:retries"] == 3
    assert len(srv.requests_for(WARC_2020)) == 4


def test_file_replaced_mid_read_is_not_spliced(tmp_path):
    # Serve a copy we can swap out between the first (dropped) request and the resume.
    (tmp_path / "f.bin").write_bytes(b"a" * 10000)
    with MirrorServer(tmp_path) as s:
        s.add_fault("f.bin", drop_after=(4000, 1))
        f = open_input(s.url + "f.bin", **FAST)
        assert f.read(4000) == b"a" * 4000
        (tmp_path / "f.bin").write_bytes(b"b" * 12000)
        with pytest.raises(RemoteReadError, match=r"f\.bin: size changed from 10000 to 12000 bytes"):
            f.read()
        f.close()


@pytest.mark.shared_data
def test_404_fails_at_once_without_retries(srv):
    c = Counters()
    with pytest.raises(SourceError, match=r"crawl-data/nope\.warc\.gz: HTTP 404") as e:
        open_input(srv.url + "crawl-data/nope.warc.gz", counters=c, **FAST)
    assert not isinstance(e.value, RemoteReadError)
    assert c.as_dict() == {}
    assert [r.status for r in srv.requests] == [404]


def test_unreachable_server_exhausts_retries(offline):
    with pytest.raises(RemoteReadError, match=r"collinfo\.json: read failed at byte 0 after 2 retries: cannot connect"):
        open_input(sources.COLLINFO_URL, retries=2, **FAST)


def test_local_and_s3_errors_are_one_line(monkeypatch, tmp_path):
    with pytest.raises(SourceError, match=r"cannot open .*nothing\.warc\.gz: No such file"):
        open_input(str(tmp_path / "nothing.warc.gz"))
    import builtins

    real_import = builtins.__import__

    def no_boto3(name, *a, **kw):
        if name == "boto3":
            raise ImportError("no boto3 here")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_boto3)
    with pytest.raises(SourceError, match=r"s3://commoncrawl/crawl-data/x\.warc\.gz: .*install boto3"):
        open_input("s3://commoncrawl/crawl-data/x.warc.gz")


@pytest.mark.shared_data
def test_mirror_layout_matches_common_crawl(mirror):
    info = json.loads((mirror["root"] / "collinfo.json").read_text())
    assert [c["id"] for c in info] == ["CC-MAIN-2024-22", "CC-MAIN-2020-34", "CC-MAIN-2014-35"]
    assert set(info[0]) == {"id", "name", "timegate", "cdx-api"}
    # the 2014 sample is plain WARC upstream; the mirror gzips it one member per record, as CC does
    rel14 = mirror["crawls"]["CC-MAIN-2014-35"]["warc"][0]
    assert rel14.endswith(".warc.gz")
    assert gzip.decompress((mirror["root"] / rel14).read_bytes()) == mirror["sources"][rel14].read_bytes()
