"""Reference corpus readers: WikiText, Wikipedia XML, Gutenberg, JSONL; and `curate reference`."""

from __future__ import annotations

import bz2
import gzip
import json

import pytest

from cli import main as cli_main
from curate.core.document import DocumentFormatError, read_documents
from curate.ingest.reference import (
    detokenize_wikitext,
    paginate,
    read_gutenberg,
    read_jsonl,
    read_wikipedia,
    read_wikitext,
    strip_gutenberg,
)
from tests.common import shared

WIKITEXT = """ 
 = Homarus gammarus = 
 
 Homarus gammarus is a species of <unk> lobster , 0 @.@ 7 kg ( 1 @,@ 500 g ) . 
 
 = = Description = = 
 
 It is " blue " and well @-@ known . 
 
 = Second Article = 
 
 Text of the second article . 
"""

DUMP = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">
<page><title>Lobster</title><ns>0</ns><id>1</id><revision><text>'''Lobsters''' are [[crustacean|crustaceans]].{{Infobox|a={{b}}}}&lt;ref&gt;cite&lt;/ref&gt;
== Anatomy ==
* They have [[claw]]s.
[[Category:Animals]]</text></revision></page>
<page><title>Crayfish</title><ns>0</ns><id>2</id><redirect title="Lobster"/><revision><text>#REDIRECT [[Lobster]]</text></revision></page>
<page><title>Talk:Lobster</title><ns>1</ns><id>3</id><revision><text>Discussion</text></revision></page>
</mediawiki>
"""


def test_wikitext_split_and_detokenized(tmp_path):
    path = tmp_path / "wiki.valid.tokens"
    path.write_text(WIKITEXT)
    docs = list(read_wikitext(path))
    assert [d.metadata["title"] for d in docs] == ["Homarus gammarus", "Second Article"]
    assert docs[0].text == ("Homarus gammarus\n\nHomarus gammarus is a species of lobster, 0.7 kg (1,500 g).\n\n"
                            "Description\n\nIt is \"blue\" and well-known.")
    assert "<unk>" not in docs[0].text and "@" not in docs[0].text
    assert docs[0].id == "wikipedia:wiki.valid:0" and docs[0].source == "wikipedia"


def test_wikitext_detokenize_contractions():
    assert detokenize_wikitext(" he did n't say it 's fine ; ok ") == "he didn't say it's fine; ok"


def test_wikipedia_dump_skips_redirects_and_namespaces(tmp_path):
    path = tmp_path / "dump.xml.bz2"
    path.write_bytes(bz2.compress(DUMP.encode()))
    docs = list(read_wikipedia(path))
    assert [d.metadata["title"] for d in docs] == ["Lobster"]
    assert docs[0].text == "Lobster\n\nLobsters are crustaceans.\n\nAnatomy\n\nThey have claws."
    assert docs[0].id == "wikipedia:dump:1"


def test_wikipedia_dump_not_xml(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("<mediawiki><page><title>x</title>")
    with pytest.raises(DocumentFormatError, match="bad.xml"):
        list(read_wikipedia(path))


def test_gutenberg_header_footer_and_pages(tmp_path):
    body = "\n\n".join(f"Paragraph {i} " + ("word " * 40).strip() for i in range(20))
    text = ("\ufeffThe Project Gutenberg EBook of X\nLicence text\n"
            "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\n" + body +
            "\n\nEnd of the Project Gutenberg EBook of X\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nmore licence")
    path = tmp_path / "pg1.txt.gz"
    path.write_bytes(gzip.compress(text.encode()))
    docs = list(read_gutenberg(path, page_chars=1000))
    joined = "\n\n".join(d.text for d in docs)
    assert joined == body  # nothing of the licence, nothing of the book lost
    assert all(d.text.startswith("Paragraph") for d in docs)  # cut at paragraph boundaries
    assert all(len(d.text) >= 1000 for d in docs[:-1]) and len(docs) == 4
    assert docs[1].id == "books:pg1:1" and docs[1].source == "books"


def test_strip_gutenberg_without_markers_keeps_text():
    assert strip_gutenberg("Just a text.\r\n") == "Just a text."
    assert paginate("") == []


def test_jsonl_text_field_ids_and_bad_line(tmp_path):
    path = tmp_path / "arts.jsonl"
    path.write_text(json.dumps({"id": 7, "article": "A\r\nB"}) + "\n" + json.dumps({"article": "C"}) + "\n{bad\n")
    errors: list = []
    docs = list(read_jsonl(path, text_field="article", source="dragnet", errors=errors))
    assert [(d.id, d.text) for d in docs] == [("dragnet:7", "A\nB"), ("dragnet:arts:2", "C")]
    assert len(errors) == 1 and errors[0]["line"] == 3
    with pytest.raises(DocumentFormatError, match="arts.jsonl:3"):
        list(read_jsonl(path, text_field="article"))


def test_cli_reference_writes_documents_and_reports_missing(tmp_path, capsys):
    src = tmp_path / "w.tokens"
    src.write_text(WIKITEXT)
    out = tmp_path / "ref.parquet"
    assert cli_main(["reference", "--kind", "wikitext", str(src), "-o", str(out), "-q"]) == 0
    assert [d.source for d in read_documents(out)] == ["wikipedia", "wikipedia"]
    rc = cli_main(["reference", "--kind", "gutenberg", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "x.jsonl"), "-q"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "nope.txt" in err and "Traceback" not in err


@pytest.mark.shared_data
def test_real_reference_corpora():
    books = list(read_gutenberg(shared("reference", "books", "pg35_The-Time-Machine.txt.gz")))
    assert 40 < len(books) < 70
    assert "Gutenberg" not in books[0].text and "Gutenberg" not in books[-1].text
    # the volunteers' credit line and picture markers are not the book
    dracula = list(read_gutenberg(shared("reference", "books", "pg345_Dracula.txt.gz")))
    assert not dracula[0].text.startswith("Produced by") and "pgdp.net" not in dracula[0].text
    assert not any("[Illustration" in d.text for d in dracula)
    wiki = list(read_wikitext(shared("reference", "wikipedia", "wikitext-2_test.txt.gz")))
    assert len(wiki) >= 60 and not any("@-@" in d.text or "<unk>" in d.text for d in wiki)
