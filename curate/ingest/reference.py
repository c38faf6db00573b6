"""Reference corpora -> Documents: the positives of the quality classifier.

GPT-3 trained its quality classifier to tell its high-quality reference corpora
(WebText, Wikipedia, books) from raw Common Crawl. This module turns such corpora
into Documents so that training, evaluation and the pipeline all share one schema:

* ``read_wikipedia``: MediaWiki XML dumps (``.xml``, ``.xml.bz2``, ``.xml.gz``);
  markup removed, redirects and non-article namespaces skipped.
* ``read_wikitext``: WikiText-2/103 token files, split into articles and
  detokenized (see ``detokenize_wikitext`` for why).
* ``read_gutenberg``: Project Gutenberg plain text; licence header and footer
  removed, the book cut into page-sized documents at paragraph boundaries.
* ``read_jsonl``: JSONL(.gz) or Parquet with a configurable text field.

Ids are stable: ``<source>:<file stem>:<index>`` (or the record's own id), never
run order, so the Pareto draw and the train/test split seeded from them repeat.

>>> docs = list(read_wikitext_lines([" = Foo = ", " Foo is a bar @-@ like thing , said <unk> . "], "w"))
>>> docs[0].text
'Foo\\n\\nFoo is a bar-like thing, said.'
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, Iterator

from curate.core.document import MAX_LINE_CHARS, Document, DocumentFormatError, read_documents

KINDS = ("wikipedia", "wikitext", "gutenberg", "jsonl")

# Default ``source`` per kind: the classifier's report groups scores by source.
DEFAULT_SOURCE = {"wikipedia": "wikipedia", "wikitext": "wikipedia", "gutenberg": "books", "jsonl": ""}


def _stem(path: str | os.PathLike) -> str:
    name = Path(path).name
    for suffix in (".gz", ".bz2", ".xml", ".txt", ".jsonl", ".json", ".parquet", ".tokens"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    p = str(path).lower()
    if p.endswith(".bz2"):
        return io.TextIOWrapper(bz2.open(path, "rb"), encoding="utf-8", errors="replace")
    if p.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


# --------------------------------------------------------------------------- WikiText

# WikiText marks intra-word punctuation as " @-@ ", " @,@ ", " @.@ ", puts spaces
# around every punctuation mark and writes rare words as <unk>. Left as is, those
# artefacts would be the easiest thing for a classifier to learn ("<unk>" and
# "@-@" never occur on the web) and would say nothing about quality, so the text
# is put back into ordinary written form and <unk> is dropped.
_WT_RULES = [
    (re.compile(r" @(.)@ "), r"\1"),
    (re.compile(r"\s*<unk>"), ""),
    (re.compile(r" ([.,;:!?%)\]}])"), r"\1"),
    (re.compile(r"([(\[{$]) "), r"\1"),
    (re.compile(r" (n't|'s|'re|'ve|'m|'ll|'d)\b"), r"\1"),
    (re.compile(r'" (.*?) "'), r'"\1"'),
    (re.compile(r"[ \t]{2,}"), " "),
]
_WT_TITLE = re.compile(r"^ ?= ([^=].*?) = ?$")
_WT_HEADING = re.compile(r"^ ?(?:= ){2,}(.*?)(?: =){2,} ?$")


def detokenize_wikitext(line: str) -> str:
    """WikiText's tokenized form back to ordinary text.

    >>> detokenize_wikitext(' It weighs 0 @.@ 7 kg ( 1 @,@ 500 g ) , " mostly " . ')
    'It weighs 0.7 kg (1,500 g), "mostly".'
    """
    for rx, repl in _WT_RULES:
        line = rx.sub(repl, line)
    return line.strip()


def read_wikitext_lines(lines: Iterable[str], name: str, source: str = "wikipedia") -> Iterator[Document]:
    """Articles from WikiText lines (`` = Title = `` starts an article)."""
    title, parts, index = None, [], 0

    def emit():
        body = "\n\n".join(p for p in parts if p)
        return Document(id=f"{source}:{name}:{index}", text=body, source=source,
                        metadata={"reference_file": name, "title": title or ""})

    for raw in lines:
        line = raw.rstrip("\n")
        m = _WT_TITLE.match(line)
        if m and not _WT_HEADING.match(line):
            if title is not None and len(parts) > 1:
                yield emit()
                index += 1
            title = detokenize_wikitext(m.group(1))
            parts = [title]
            continue
        h = _WT_HEADING.match(line)
        text = detokenize_wikitext(h.group(1) if h else line)
        if text and title is not None:
            parts.append(text)
    if title is not None and len(parts) > 1:
        yield emit()


def read_wikitext(path: str | os.PathLike, source: str = "wikipedia") -> Iterator[Document]:
    """Articles of one WikiText file (``wiki.valid.tokens``, ``valid.txt(.gz)``)."""
    with _open_text(path) as fh:
        yield from read_wikitext_lines(fh, _stem(path), source)


# --------------------------------------------------------------------------- Wikipedia XML

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)
_DROP_TAGS = re.compile(r"<(math|gallery|timeline|score|syntaxhighlight|source|pre)[^>]*>.*?</\1>", re.S | re.I)
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_TABLE = re.compile(r"^\{\|.*?^\|\}", re.S | re.M)
_FILE_LINK = re.compile(r"\[\[(?:File|Image|Category|Datei|Fichier|Kategorie|Media):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", re.I)
_INTERWIKI = re.compile(r"^\[\[[a-z\-]{2,12}:[^\]]*\]\]\s*$", re.M)
_LINK = re.compile(r"\[\[([^\[\]|]*)\|?([^\[\]]*)\]\]")
_EXT_LINK = re.compile(r"\[(?:https?|ftp)://[^\s\]]+\s*([^\]]*)\]")
_BOLD_ITALIC = re.compile(r"'{2,5}")
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$", re.M)
_LIST = re.compile(r"^[*#:;]+\s*", re.M)
_ENTITIES = {"&nbsp;": " ", "&ndash;": "–", "&mdash;": "—", "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"'}


def _strip_templates(text: str) -> str:
    """Remove ``{{...}}`` templates, nested ones included (a regex cannot count)."""
    out, depth, i = [], 0, 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair == "{{":
            depth += 1
            i += 2
        elif pair == "}}" and depth:
            depth -= 1
            i += 2
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def strip_wikitext(markup: str) -> str:
    """MediaWiki markup -> plain text (templates, refs, tables, files, categories dropped).

    >>> strip_wikitext("'''Foo''' is a [[bar (thing)|bar]].{{cite|x={{y}}}}<ref>r</ref>\\n== History ==\\n* [[Baz]]")
    'Foo is a bar.\\n\\nHistory\\n\\nBaz'
    """
    t = _COMMENT.sub("", markup)
    t = _REF.sub("", t)
    t = _DROP_TAGS.sub("", t)
    t = _strip_templates(t)
    t = _TABLE.sub("", t)
    t = _FILE_LINK.sub("", t)
    t = _INTERWIKI.sub("", t)
    t = _LINK.sub(lambda m: m.group(2) or m.group(1), t)
    t = _EXT_LINK.sub(r"\1", t)
    t = _BOLD_ITALIC.sub("", t)
    t = _HEADING.sub(lambda m: "\n" + m.group(2) + "\n", t)
    t = _LIST.sub("", t)
    t = _TAG.sub("", t)
    for k, v in _ENTITIES.items():
        t = t.replace(k, v)
    lines = [ln.strip() for ln in t.splitlines()]
    paras, cur = [], []
    for ln in lines + [""]:
        if ln:
            cur.append(ln)
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    return "\n\n".join(paras)


def read_wikipedia(path: str | os.PathLike, source: str = "wikipedia", min_chars: int = 1,
                   errors: list | None = None, max_chars: int = MAX_LINE_CHARS) -> Iterator[Document]:
    """Articles of a MediaWiki XML dump; redirects and namespaces other than 0 skipped."""
    name = _stem(path)
    opener = bz2.open if str(path).lower().endswith(".bz2") else (
        gzip.open if str(path).lower().endswith(".gz") else open)
    with opener(path, "rb") as fh:
        try:
            for _, el in ET.iterparse(fh, events=("end",)):
                if el.tag.rsplit("}", 1)[-1] != "page":
                    continue
                fields = {c.tag.rsplit("}", 1)[-1]: c for c in el}
                ns = (fields["ns"].text or "0").strip() if "ns" in fields else "0"
                title = fields["title"].text if "title" in fields else ""
                page_id = fields["id"].text if "id" in fields else title
                rev = fields.get("revision")
                markup = ""
                if rev is not None:
                    for c in rev:
                        if c.tag.rsplit("}", 1)[-1] == "text":
                            markup = c.text or ""
                el.clear()
                if ns != "0" or "redirect" in fields or markup.lstrip()[:9].upper() == "#REDIRECT":
                    continue
                if len(markup) > max_chars:
                    # no article is this long; the markup cleaner's cost grows with it
                    if errors is not None:
                        errors.append({"file": str(path), "line": 0,
                                       "reason": f"page {page_id}: markup longer than {max_chars} characters; skipped"})
                    continue
                text = strip_wikitext(markup)
                if len(text) < min_chars:
                    continue
                body = f"{title}\n\n{text}" if title else text
                yield Document(id=f"{source}:{name}:{page_id}", text=body, source=source,
                               metadata={"reference_file": Path(path).name, "title": title or ""})
        except ET.ParseError as exc:
            raise DocumentFormatError(f"{path}: not a readable MediaWiki XML dump ({exc})") from exc


# --------------------------------------------------------------------------- Gutenberg

_PG_START = re.compile(r"^\*{3} ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_PG_END = re.compile(r"^(\*{3} ?END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg)", re.M | re.I)
_PARA_SPLIT = re.compile(r"\n[ \t]*\n+")
# The volunteers' credit paragraph PG puts before the title ("Produced by Judith
# Boss", "E-text prepared by ...", "... Distributed Proofreading Team at
# http://www.pgdp.net (This file was produced from images ...)"): transcription
# metadata, not the book, and a URL-bearing line that makes a book's first page
# look like a web page to the quality classifier.
_PG_CREDIT = re.compile(r"\A\s*(Produced by|E-?text prepared by|Transcribed (from|by)|This (e-?)?(book|text) was "
                        r"(produced|prepared))\b.*?(\n[ \t]*\n|\Z)", re.I | re.S)
# "[Illustration]", "[Illustration: colophon]": the place of a picture the text does not have
# (a marker alone in its paragraph goes with the blank line before it)
_PG_ILLUSTRATION = re.compile(r"\n[ \t]*\n[ \t]*\[Illustration(:[^\]]*)?\][ \t]*(?=\n|\Z)|\[Illustration(:[^\]]*)?\]",
                              re.I)


def strip_gutenberg(text: str) -> str:
    """The book without Project Gutenberg's licence header and footer, credit line and picture markers.

    >>> strip_gutenberg("Licence blah\\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\\nChapter 1\\nEnd of Project Gutenberg's X\\nlicence")
    'Chapter 1'
    >>> strip_gutenberg("Produced by A. Volunteer\\nand the PG team\\n\\nTITLE\\n\\n[Illustration: a cat]\\n\\nChapter 1")
    'TITLE\\n\\nChapter 1'
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    m = _PG_START.search(text)
    if m:
        text = text[m.end():]
    m = _PG_END.search(text)
    if m:
        text = text[: m.start()]
    text = _PG_CREDIT.sub("", text, count=1)
    text = _PG_ILLUSTRATION.sub("", text)
    return text.strip()


def paginate(text: str, page_chars: int = 3000) -> list[str]:
    """Cut text into pages of about ``page_chars`` at paragraph boundaries.

    A page closes at the first paragraph end past ``page_chars``, so pages are
    never cut mid-paragraph (a paragraph longer than a page is a page).

    >>> [len(p) for p in paginate("a" * 10 + "\\n\\n" + "b" * 10 + "\\n\\n" + "c" * 5, page_chars=15)]
    [22, 5]
    """
    pages, cur, size = [], [], 0
    for para in _PARA_SPLIT.split(text):
        para = para.strip()
        if not para:
            continue
        cur.append(para)
        size += len(para) + 2
        if size >= page_chars:
            pages.append("\n\n".join(cur))
            cur, size = [], 0
    if cur:
        pages.append("\n\n".join(cur))
    return pages


def read_gutenberg(path: str | os.PathLike, source: str = "books", page_chars: int = 3000,
                   errors: list | None = None, max_chars: int = MAX_LINE_CHARS) -> Iterator[Document]:
    """Page-sized documents of one Project Gutenberg plain-text book.

    A book longer than ``max_chars`` keeps its first ``max_chars`` (reported
    to ``errors``): the largest books are a few MB, so more is not a book.
    """
    with _open_text(path) as fh:
        text = fh.read(max_chars + 1)
        if len(text) > max_chars:
            text = text[:max_chars]
            if errors is not None:
                errors.append({"file": str(path), "line": 0, "reason": f"longer than {max_chars} characters; cut there"})
        body = strip_gutenberg(text)
    name = _stem(path)
    for i, page in enumerate(paginate(body, page_chars)):
        yield Document(id=f"{source}:{name}:{i}", text=page, source=source,
                       metadata={"reference_file": Path(path).name, "page": i})


# --------------------------------------------------------------------------- JSONL / Parquet

def read_jsonl(path: str | os.PathLike, text_field: str = "text", source: str = "",
               errors: list | None = None) -> Iterator[Document]:
    """Documents from JSONL(.gz)/Parquet with the text in ``text_field``.

    A record without an ``id`` gets ``<file stem>:<line>``; the source is
    ``source`` (or the record's own, or the file stem) and ids are prefixed with
    it so ids from different corpora never collide.
    """
    name = _stem(path)
    docs = read_documents(path, errors=errors, text_field=text_field, missing_id=lambda line: f"{name}:{line}")
    for doc in docs:
        src = source or doc.source or name
        meta = {k: v for k, v in doc.metadata.items() if k == "url"}
        meta["reference_file"] = Path(path).name
        yield Document(id=f"{src}:{doc.id}", text=doc.text.replace("\r\n", "\n").strip(),
                       source=src, url=doc.url, metadata=meta)


def read_reference(kind: str, path: str | os.PathLike, *, source: str = "", text_field: str = "text",
                   page_chars: int = 3000, errors: list | None = None) -> Iterator[Document]:
    """Documents of one reference file of the given ``kind`` (see ``KINDS``)."""
    src = source or DEFAULT_SOURCE.get(kind, "")
    if kind == "wikipedia":
        return read_wikipedia(path, source=src, errors=errors)
    if kind == "wikitext":
        return read_wikitext(path, source=src)
    if kind == "gutenberg":
        return read_gutenberg(path, source=src, page_chars=page_chars, errors=errors)
    if kind == "jsonl":
        return read_jsonl(path, text_field=text_field, source=src, errors=errors)
    raise ValueError(f"unknown reference kind {kind!r} (one of {', '.join(KINDS)})")
