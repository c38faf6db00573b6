"""Bytes -> text for web pages: charset from the HTTP header, the page, or detection.

The order follows what browsers do (WHATWG "encoding sniffing"): a byte-order
mark wins, then the HTTP ``Content-Type`` charset, then a ``<meta>`` charset in
the first 1024 bytes, then statistical detection (uchardet via resiliparse).
A declared charset that fails on the bytes (a server claiming UTF-8 for a
Windows-1252 page is common) is replaced by detection rather than decoded
into replacement characters.

>>> decode_html(b"<meta charset=windows-1252><p>caf\\xe9</p>")
('<meta charset=windows-1252><p>café</p>', 'cp1252', 'meta')
"""

from __future__ import annotations

import codecs
import re

from resiliparse.parse.encoding import detect_encoding

_META_RE = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# WHATWG maps these labels to supersets; decoding with the superset is what a browser shows.
_SUPERSETS = {
    "iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "us-ascii": "cp1252",
    "ascii": "cp1252", "iso8859-1": "cp1252", "iso-8859-9": "cp1254", "tis-620": "cp874",
    "gb2312": "gb18030", "gbk": "gb18030", "x-sjis": "shift_jis", "euc-kr": "cp949",
}


_SINGLE_BYTE = {"cp1252", "cp1254", "cp1250", "cp1251", "iso8859-15", "iso8859-2", "cp874"}


def normalise_charset(label: str) -> str | None:
    """A Python codec name for an HTTP/HTML charset label, or None if unknown."""
    label = label.strip().strip("\"'").lower()
    if not label:
        return None
    label = _SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        return None


def decode_html(body: bytes, http_charset: str = "") -> tuple[str, str, str]:
    """Decode an HTML (or text) body; returns (text, codec name, how it was chosen).

    ``how`` is one of 'bom', 'http', 'meta', 'detected', 'fallback'.
    """
    for bom, enc in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(enc, "replace"), enc, "bom"
    candidates: list[tuple[str, str]] = []
    if http_charset:
        enc = normalise_charset(http_charset)
        if enc:
            candidates.append((enc, "http"))
    m = _META_RE.search(body, 0, 1024) or _META_RE.search(body[:4096])
    if m:
        enc = normalise_charset(m.group(1).decode("ascii", "ignore"))
        if enc and enc not in ("utf-16", "utf-16-le", "utf-16-be"):  # meta can't truthfully say UTF-16
            candidates.append((enc, "meta"))
    if candidates and candidates[0][0] in _SINGLE_BYTE and not body.isascii():
        # A page that is valid UTF-8 with non-ASCII bytes is almost never really
        # in a single-byte charset (random high bytes rarely form valid UTF-8
        # sequences), while servers that default to ISO-8859-1 for UTF-8 pages
        # are common: trust the bytes over the label.
        try:
            return body.decode("utf-8"), "utf-8", "detected"
        except UnicodeDecodeError:
            pass
    for enc, how in candidates:
        try:
            return body.decode(enc), enc, how
        except UnicodeDecodeError:
            continue
    detected = normalise_charset(detect_encoding(body, max_len=16384) or "") or "utf-8"
    try:
        return body.decode(detected), detected, "detected"
    except UnicodeDecodeError:
        pass
    # nothing decodes cleanly: prefer the declared charset, else UTF-8, with replacement
    enc = candidates[0][0] if candidates else "utf-8"
    return body.decode(enc, "replace"), enc, "fallback"
