"""HTTP decoding, charsets and records -> Documents on real archives."""

from __future__ import annotations

import gzip

import pytest

from curate.core.counters import Counters
from curate.core.document import Document, read_documents, write_documents
from curate.ingest.charset import decode_html
from curate.ingest.http import dechunk, parse_response
from curate.ingest.records import read_archive
from tests.common import SAMPLE, shared

# ------------------------------------------------------------------ HTTP

def test_missing_reason_phrase_and_lf_only():
    r = parse_response(b"HTTP/1.0 200\nContent-Type: text/html; charset=ISO-8859-1\n\n<p>x</p>")
    assert (r.status, r.content_type, r.charset, r.body) == (200, "text/html", "ISO-8859-1", b"<p>x</p>")


def test_not_http():
    assert parse_response(b"<html>no status line</html>") is None


def test_chunked_and_broken_chunks():
    assert dechunk(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n") == b"Wikipedia"
    problems = []
    assert dechunk(b"4\r\nWiki\r\nzz\r\nrest", problems) == b"Wikizz\r\nrest"
    assert problems and "broken chunked" in problems[0]
    problems = []
    assert dechunk(b"10\r\nshort", problems) == b"short"
    assert problems == ["chunked body truncated"]


def test_gzip_body_truncated_is_reported():
    body = gzip.compress(b"<html><body>hello world " + " ".join(str(i * 7919 % 10007) for i in range(3000)).encode() + b"</body></html>")
    block = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: text/html\r\n\r\n" + body[: len(body) // 2]
    r = parse_response(block)
    assert r.body.startswith(b"<html><body>hello world")
    assert r.problems == ["gzip body truncated"]


def test_crawler_already_decoded_body_is_left_alone():
    # Common Crawl stores decoded bodies but may keep 'Content-Encoding: gzip'
    r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n<html>ok</html>")
    assert r.body == b"<html>ok</html>" and r.problems == []


@pytest.mark.shared_data
def test_gzip_members_not_aligned_with_records():
    # gzip members split mid-record ("wrong chunks"): warcio refuses the file,
    # a stream-level reader loses nothing
    c, errs = Counters(), []
    docs = list(read_archive(shared("bad", "warcio_example-wrong-chunks.warc.gz"), errs, c))
    assert c["read:records"] == 2 and errs == []
    assert len(docs) == 1 and "illustrative examples" in docs[0].text


# ------------------------------------------------------------------ charset

def test_charset_order():
    assert decode_html("<p>café</p>".encode("cp1252"), "windows-1252")[1:] == ("cp1252", "http")
    assert decode_html(b"<meta charset=koi8-r><p>\xf0\xd2\xc9\xd7\xc5\xd4</p>")[0].endswith("Привет</p>")
    assert decode_html("\ufeff<p>x</p>".encode("utf-8"))[2] == "bom"
    # a server claiming latin-1 for a UTF-8 page: the bytes win
    assert decode_html("<p>Größe</p>".encode("utf-8"), "iso-8859-1")[:2] == ("<p>Größe</p>", "utf-8")
    # no label at all: detection
    text, enc, how = decode_html(("<p>" + "Съешь же ещё этих мягких французских булок. " * 5 + "</p>").encode("cp1251"))
    assert how == "detected" and "французских" in text


@pytest.mark.shared_data
def test_real_charsets_from_http_and_meta():
    docs = {d.url: d for d in read_archive(shared("warc", "cc-main-2020-34_resiliparse-warcfile.part1.warc.gz"))}
    ru = docs["http://01spb.ru/company/"]
    assert ru.metadata["charset"] == "cp1251" and "пожарной безопасности" in ru.text


# ------------------------------------------------------------------ records -> documents

@pytest.mark.shared_data
def test_counters_add_up_on_every_real_file():
    files = sorted(p for p in (shared("warc").iterdir()) if not p.name.endswith(".jsonl.gz"))
    files += sorted(shared("bad").iterdir())
    for path in files:
        c, errs = Counters(), []
        docs = list(read_archive(path, errs, c))
        skipped = sum(v for k, v in c.as_dict().items() if k.startswith("skipped:"))
        assert c["read:records"] == len(docs) + skipped, (path.name, c.as_dict())
        assert c["docs"] == len(docs)
        assert all(d.text.strip() and d.id for d in docs)


@pytest.mark.shared_data
def test_wet_wat_revisit_and_pdf_are_counted():
    c = Counters()
    wet = list(read_archive(shared("warc", "cc-main-2024-22_whirlwind.warc.wet.gz"), [], c))
    assert len(wet) == 1 and "Escopete" in wet[0].text and wet[0].metadata["record_type"] == "conversion"
    list(read_archive(shared("warc", "cc-main-2024-22_whirlwind.warc.wat.gz"), [], c))
    assert c["skipped:wat"] == 1
    list(read_archive(shared("warc", "liveweb-2014_pywb-iana.warc.gz"), [], c))
    assert c["skipped:revisit"] == 123
    list(read_archive(shared("warc", "cc-2008_arc-small-sample-1213893279526_0.arc"), [], c))
    assert c["skipped:mime:application/pdf"] == 6


def test_ids_are_stable_and_unique():
    path = SAMPLE / "CC-2008-excerpt.arc.gz"
    a = [d.id for d in read_archive(path)]
    b = [d.id for d in read_archive(path)]
    assert a == b and len(set(a)) == len(a)
    assert a[0] == "CC-2008-excerpt.arc.gz:1"
    warc = [d.id for d in read_archive(SAMPLE / "CC-MAIN-2020-34-excerpt.warc.gz")]
    assert warc[0] == "urn:uuid:c4c112a5-3503-4483-abf8-51a0dd86dd53"


@pytest.mark.shared_data
def test_truncated_record_is_marked():
    docs = list(read_archive(shared("bad", "resiliparse_clipped.warc.gz"), []))
    assert len(docs) == 1 and docs[0].metadata["truncated"] == "length"


# ------------------------------------------------------------------ document files

@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".jsonl.gz"])
def test_document_roundtrip(tmp_path, suffix):
    docs = [Document(id=str(i), text=f"text {i} é", source="web", url=f"http://x/{i}",
                     created="2020-01-01T00:00:00Z", metadata={"n": i, "lang": "en"}) for i in range(5000)]
    path = tmp_path / f"docs{suffix}"
    assert write_documents(path, docs) == 5000
    assert list(read_documents(path)) == docs
    # a rerun writes byte-identical files
    first = path.read_bytes()
    write_documents(path, docs)
    assert path.read_bytes() == first


@pytest.mark.shared_data
def test_reads_dolma_jsonl_and_reports_bad_lines(tmp_path):
    docs = list(read_documents(shared("warc", "cc-main-2019-30_dolma-extracted-text.part1.jsonl.gz")))
    assert len(docs) == 464 and sum(1 for d in docs if d.text) > 400
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": "1", "text": "a"}\nnot json\n{"text": "no id"}\n{"id": "2", "text": "b"}\n')
    errors = []
    assert [d.id for d in read_documents(path, errors=errors)] == ["1", "2"]
    assert [(e["line"]) for e in errors] == [2, 3]


def test_unknown_suffix_is_a_clear_error(tmp_path):
    from curate.core.document import DocumentFormatError

    with pytest.raises(DocumentFormatError, match="docs.txt"):
        write_documents(tmp_path / "docs.txt", [])


@pytest.mark.shared_data
def test_extraction_failure_is_counted_and_recorded(monkeypatch):
    """A page the extractor chokes on is skipped with a counter and an error
    record naming the file and offset, and the pages around it are kept."""
    import curate.ingest.extract

    real = curate.ingest.extract._extract

    def flaky(html):
        if "пожарной" in html:
            raise RecursionError("too deep")
        return real(html)

    monkeypatch.setattr(curate.ingest.extract, "_extract", flaky)
    c, errs = Counters(), []
    docs = list(read_archive(shared("warc", "cc-main-2020-34_resiliparse-warcfile.part1.warc.gz"), errs, c))
    assert c["skipped:extract_error"] == 1 and len(docs) == 10
    assert len(errs) == 1 and "extraction failed (RecursionError" in errs[0].reason and errs[0].offset == 12685


# ------------------------------------------------------------------ counter names

def _warc_record(n: int, rtype: str, payload: bytes) -> bytes:
    head = (f"WARC/1.0\r\nWARC-Type: {rtype}\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-00000000000{n}>\r\n"
            f"WARC-Target-URI: http://example.org/{n}\r\nWARC-Date: 2020-01-01T00:00:00Z\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload + b"\r\n\r\n"


def _http(content_type: str, body: str) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n\r\n{body}".encode()


PAGE = "<html><body><p>" + "The river rose in the night and the village woke to water in the streets. " * 8 + "</p></body></html>"


def test_counter_names_come_from_a_closed_set(tmp_path):
    """Values from the file never become counter names: an unknown record type or a
    malformed media type is counted as `other`, and its raw value, cut short, goes
    to the errors with the file and offset; the pages around it are read."""
    garbage = "<html><body>" + "a page swallowed into a header " * 200
    data = (_warc_record(1, "response", _http("text/html", PAGE))
            + _warc_record(2, garbage, _http("text/html", PAGE))
            + _warc_record(3, "response", _http("<div>not a type</div>", PAGE.replace("<html>", "")))
            + _warc_record(4, "response", _http("image/avif", "\x00binary"))
            + _warc_record(5, "response", _http("text/html", PAGE)))
    path = tmp_path / "names.warc"
    path.write_bytes(data)
    c, errors = Counters(), []
    docs = list(read_archive(path, errors, c))
    assert [d.url for d in docs] == ["http://example.org/1", "http://example.org/5"]
    assert c["skipped:record:other"] == 1 and c["skipped:mime:other"] == 1 and c["skipped:mime:image/other"] == 1
    assert all(len(name) < 40 for name in c.as_dict()), c.as_dict()
    reasons = [e.reason for e in errors]
    assert len(reasons) == 2, reasons
    assert reasons[0].startswith("unknown WARC-Type '<html><body>a page") and "characters)" in reasons[0]
    assert len(reasons[0]) < 200
    assert reasons[1].startswith("malformed Content-Type '<div>not a type</div>'")
    assert all(e.file == str(path) and e.offset > 0 for e in errors)
