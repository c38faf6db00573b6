"""HTML -> main-content text, for every kind of page.

``html_to_text`` keeps what a page is about: an article's body, every post of
a forum thread, the items of a listing or collection, all sections of a
service page, a product's description and specifications (tabbed panels
included), documentation without its sidebars. It drops navigation,
headers/footers, share widgets, cookie banners and teaser lists.

How it works (one parse, one linear pass in Python, then array arithmetic):

1. Parse with Lexbor (via ``selectolax``), a fast C HTML5 parser that never
   rejects input.
2. Walk the DOM once and flatten it into *blocks*: runs of text delimited by
   block-level tags. Each block remembers its length, its link text, the tag
   that opened it, the page regions around it (<article>, <main>, <form>,
   hidden panels, <noscript>...) and the class/id vocabulary of its ancestors;
   each element remembers its parent, its tag+class signature and the range
   of blocks it spans. Page-level <nav>, <aside>, <footer>, <menu> and a
   <header> outside <article>/<main> are cut with their subtree.
3. The *article rule*: give every block a value (prose length minus link
   text minus a fixed cost) and pick the element whose blocks sum highest;
   an element's blocks are a contiguous range, so this is prefix sums. Its
   blocks minus junk are what a news-article extractor would return.
4. The *block model*: per block, 64 features (FEATURE_NAMES: the rule's
   verdict, whether the block sits in the rule's container or one or two
   levels above it, link density, length, tag, regions, class vocabulary,
   how often its ancestors' signature repeats among siblings and on the page
   (posts, cards, rows), neighbours, schema.org types the page declares).
   Gradient-boosted trees, trained by ``benchmarks/extraction_train.py`` on
   the tuning part of WCXB dev and the article benchmark and stored as plain
   JSON in ``curate/data/extract_weights.json``, give each block the log-odds
   that it is main content; blocks above the threshold are kept.
5. Kept blocks are emitted in document order: headings, list items and table
   rows on their own lines, paragraphs separated by a blank line.

The rules and features are generic (tag semantics, text/link statistics,
repetition, common class-name vocabulary, schema.org types); nothing is keyed
on a site or URL, and the URL is not used at all. Cost per page: one Lexbor
parse, one Python visit per DOM node, O(blocks + elements) feature work and a
numpy walk of the trees (about a millisecond for a few hundred blocks).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path

import ahocorasick
import numpy as np

try:  # selectolax >= 1.0 ships only the Lexbor backend
    from selectolax.lexbor import LexborHTMLParser as _Parser
except ImportError:  # pragma: no cover - exercised only without the dependency
    _Parser = None

__all__ = ["html_to_text"]

# --------------------------------------------------------------------------- tag classes

# Removed together with their content: never visible article text (code,
# media, form controls) or, by HTML semantics, navigation/side content.
_SKIP_TAGS = frozenset(
    """script style template svg math iframe object embed canvas video audio
    picture img figcaption source track map button input select option optgroup textarea label
    head title meta link base dialog""".split()
)

# Tags that start a new block of text. Everything else is inline and its text
# is glued to the surrounding run.
_BLOCK_TAGS = frozenset(
    """p div section article main h1 h2 h3 h4 h5 h6 ul ol li dl dt dd table thead tbody
    tfoot tr caption blockquote pre figure figcaption address hr center details summary
    fieldset legend body html form""".split()
)
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
# Table cells are separated by a space, not a block break, so that a table row
# reads as one line ("1 Kyle Busch 5040 ...").
_CELL_TAGS = frozenset(("td", "th"))

# --------------------------------------------------------------------------- class/id hints

# class/id words that mark page furniture, matched against the lower-cased
# class and id attribute values. Class names are free text, so these are only
# *hints*: they are applied to elements inside the chosen content container
# (see _extract), and an element whose subtree holds a large share of the
# container's prose is kept anyway ("field-label-hidden", "content-with-sidebar"
# and "elementor-widget" all wrap real article bodies in the benchmark data).
#
# Each vocabulary is a list of words found anywhere inside a class/id token
# ("comment" in "td-comments-list"); a "|" at a word's start or end asks for a
# word boundary there, as the regex \b would: "|ad|" finds "ad" in "top-ad" and
# "ad-slot" but not in "header", "adverb" or "ad_slot" (letters, digits and "_"
# are word characters). One Aho-Corasick automaton matches all vocabularies at
# once (see _classify_hint).
#
# Strong: almost never wraps article prose; dropped unless it is nearly the
# whole container.
_NEG_STRONG_WORDS = """comment share sharing social related recommend newsletter subscri signup sign-up
    cookie promo advert sponsor outbrain taboola popup modal breadcrumb |ad| |ads| |ad- -ad| -ads|
    most-popular trending more-stories read-more readmore"""
# Weak: often furniture (captions, datelines, widgets, labels) but the same
# words appear in generic layout classes; dropped only when small.
_NEG_WEAK_WORDS = """sidebar widget footer |nav menu |tag| |tags| byline author |meta| -meta| |meta-
    masthead banner disclaimer hidden |sr-only visually-hidden print-only toolbar skip
    pagination caption credit timestamp dateline |date|"""
# Explicit article-body markup; the container search gives these a bonus.
_POS_WORDS = """article-body articlebody article-content article__body entry-content post-content
    post-body postbody story-body storybody story-content main-content body-text articletext
    article-text content-body page-content rich-text"""

# Block scoring weights (see _block_value): penalty per linked character and
# fixed cost per block, in characters.
LINK_WEIGHT = 1.0
BLOCK_COST = 25.0
# Share of the best container's score an explicitly marked article element
# inside it needs in order to be preferred (see _select).
HINT_SHARE = 0.5
# Consecutive blocks of these kinds are joined by a single newline.
_LINE_KINDS = frozenset(("li", "tr", "dt", "dd"))
# Embedded posts (tweets, Instagram, ...) are quotations the author chose to
# show inline, so they stay even when wrapped in "social-media-embed" or similar.
_EMBED_WORDS = "embed tweet instagram tiktok"
# Page-level or explicitly semantic containers whose class names (e.g.
# <body class="has-sidebar">) say nothing about their own content.
_NEVER_NEG_TAGS = frozenset(("html", "body", "article", "main", "blockquote"))

# Stand-in for <br> inside a text run (a private-use character, which HTML
# text practically never contains), turned into "\n" when the block is built.
_BR = "\ue000"

_HIDDEN_STYLE_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")


# Further class/id vocabularies, used only as features of the block model
# (each sets one bit; see _classify_hint): none decides anything on its own.
_COMMENT_WORDS = "comment reply replies respon"
_POST_WORDS = "post message thread topic forum review answer question |msg"
_ITEM_WORDS = "item card product result listing entry tile grid teaser |list"
_DESC_WORDS = "descr detail spec |tab| |tabs| tab- panel accordion feature summary overview faq"
_META_WORDS = "author byline |date time meta user avatar profile signature rating"

_HINT_CACHE_MAX = 100_000

# bits of an element's hint mask
H_POS, H_NEG2, H_NEG1, H_COMMENT, H_POST, H_ITEM, H_DESC, H_META = (1 << k for k in range(8))
N_HINTS = 8


H_EMBED = 1 << N_HINTS  # internal: an embedded post, never boilerplate (see _EMBED_WORDS)


def _hint_automaton():
    """One Aho-Corasick automaton over every vocabulary word: word -> list of
    (bit, needs a boundary before, needs a boundary after).

    Class names are mostly unique per site (hashed names, ids such as
    "post-32536879"), so on a crawl nearly every class string is new, and
    matching nine regular-expression alternations of literals against each one
    took a fifth to a third of the extractor's time; the automaton finds every word
    of every vocabulary in one C pass over the string.
    """
    automaton = ahocorasick.Automaton()
    entries: dict[str, list[tuple[int, bool, bool]]] = {}
    for words, bit in ((_POS_WORDS, H_POS), (_EMBED_WORDS, H_EMBED), (_NEG_STRONG_WORDS, H_NEG2),
                       (_NEG_WEAK_WORDS, H_NEG1), (_COMMENT_WORDS, H_COMMENT), (_POST_WORDS, H_POST),
                       (_ITEM_WORDS, H_ITEM), (_DESC_WORDS, H_DESC), (_META_WORDS, H_META)):
        for word in words.split():
            entries.setdefault(word.strip("|"), []).append((bit, word[0] == "|", word[-1] == "|"))
    for word, rules in entries.items():
        automaton.add_word(word, (len(word), tuple(rules)))
    automaton.make_automaton()
    return automaton


def _is_word_char(ch: str) -> bool:
    r"""What the regex \b calls a word character."""
    return ch.isalnum() or ch == "_"


def _classify_hint(hint: str) -> int:
    """class/id string -> hint bitmask (H_*). H_POS: explicit article markup;
    H_NEG2/H_NEG1: strong/weak boilerplate vocabulary (article markup and
    embedded posts are never boilerplate); the rest only feed the block model.

    No vocabulary word holds whitespace and whitespace is a word boundary, so
    one pass over the whole string gives the same bits as one per token."""
    text = hint.lower()
    m = 0
    last = len(text) - 1
    for end, (length, rules) in _HINT_WORDS.iter(text):
        start = end - length + 1
        for bit, before, after in rules:
            if before and start > 0 and _is_word_char(text[start - 1]):
                continue
            if after and end < last and _is_word_char(text[end + 1]):
                continue
            m |= bit
    if m & (H_POS | H_EMBED):
        m &= ~(H_NEG1 | H_NEG2)
    elif m & H_NEG2:
        m &= ~H_NEG1
    return m & ~H_EMBED


_HINT_WORDS = _hint_automaton()


# Whole class/id strings repeat within a page ("menu-item", "col-md-6"), so
# their verdicts are memoised. Bounded so a long-running worker cannot grow
# it without limit; the memo never changes results, only speed.
_hint_cache: dict[str, int] = {}


# Ancestor contexts recorded per block (bit k set when an element of that kind
# encloses the block). HTML's own region tags used to be cut outright; on
# forums, listings and product pages they also wrap content (a post's
# <header> holds its author and date, a crawler-facing <noscript> holds the
# whole thread), so the block model weighs them instead.
_CTX_TAGS = {"header": 0, "footer": 1, "nav": 2, "aside": 3, "noscript": 4, "form": 5,
             "ul": 6, "ol": 6, "table": 7, "article": 8, "main": 9, "menu": 2}
_BODY_REGION = (1 << 8) | (1 << 9)  # article, main
C_HIDDEN = 10  # inside a hidden element (closed tab panels, collapsed sections, screen-reader text)
C_LINK = 11  # inside a link (the whole block is a link's text)
C_ITEMPROP = 12  # inside microdata text a page marks as content (itemprop=description, reviewBody, text...)
N_CTX = 13
_CONTENT_ITEMPROPS = frozenset(("description", "articlebody", "reviewbody", "text", "suggestedanswer",
                                "acceptedanswer", "comment", "review"))


class _Flat:
    """DOM flattened into blocks plus per-element block ranges."""

    __slots__ = ("texts", "links", "kinds", "negs", "ctx", "hints", "blk_el", "el_start", "el_end",
                 "el_pos", "el_tag", "el_neg", "el_parent", "el_sig")

    def __init__(self) -> None:
        self.texts: list[str] = []  # block text (whitespace-normalised)
        self.links: list[int] = []  # characters of link text in the block
        self.kinds: list[str] = []  # tag that opened the block (p, li, h2, ...)
        self.negs: list[tuple] = []  # indices of boilerplate-classed ancestors
        self.ctx: list[int] = []  # bitmask of enclosing _CTX_TAGS / C_HIDDEN / C_LINK
        self.hints: list[int] = []  # OR of the hint masks (H_*) of enclosing elements
        self.blk_el: list[int] = []  # innermost element enclosing the block
        self.el_start: list[int] = []  # first block index of each element
        self.el_end: list[int] = []  # one past its last block
        self.el_pos: list[int] = []  # explicit article markup?
        self.el_tag: list[str] = []
        self.el_neg: list[int] = []  # 0, or 1/2 for weak/strong boilerplate class/id
        self.el_parent: list[int] = []  # parent element (-1 for the root)
        self.el_sig: list[str] = []  # tag + class: repeated signatures mark posts, items, rows


def _remember(memo: dict, key: str, value: int) -> int:
    """Store ``value`` under ``key`` in the class-name memo; returns it.

    A full memo starts again empty rather than refusing new entries: a
    long-running worker soon fills it with the class names of sites it has
    passed, and a memo that then stops learning misses every repeat of the
    current page's own class names ("menu-item" fifty times on one page),
    which cost the extractor about a third of its speed. Clearing keeps the
    memo bounded and about the pages at hand."""
    if len(memo) >= _HINT_CACHE_MAX:
        memo.clear()
    memo[key] = value
    return value


def _element_hints(tag: str, attrs: dict) -> int:
    """Hint mask (H_*) of one element: its class/id vocabulary (memoised),
    overruled by what its tag or microdata says."""
    if tag == "article" or attrs.get("itemprop") == "articleBody":
        return H_POS
    cls = attrs.get("class")
    ident = attrs.get("id")
    if cls or ident:
        hint = f"{cls or ''} {ident or ''}"
        verdict = _hint_cache.get(hint)
        if verdict is None:
            verdict = _remember(_hint_cache, hint, _classify_hint(hint))
        if tag in _NEVER_NEG_TAGS:
            return verdict & ~(H_NEG1 | H_NEG2)
        return verdict
    return 0


def _is_hidden(attrs: dict) -> bool:
    """Invisible to readers: the ``hidden`` attribute, ``aria-hidden``, or an
    inline ``display: none`` / ``visibility: hidden``."""
    if "hidden" in attrs:
        return True
    style = attrs.get("style")
    if style and _HIDDEN_STYLE_RE.search(style.lower()):
        return True
    return attrs.get("aria-hidden") == "true"


def _run_text(raw: str) -> str:
    """The text of an inline run: whitespace collapsed, <br> kept as line breaks."""
    if _BR in raw:
        return "\n".join(filter(None, (" ".join(part.split()) for part in raw.split(_BR))))
    return " ".join(raw.split())


# Page regions cut with their subtree: they hold under 2% of the main-content
# words of the tuning pages at a content rate under 20%, yet a third of the
# elements. A <header> is cut only outside <article>/<main>: inside, it is a
# post's or item's own header (author, date, name), which forums keep.
_REGION_TAGS = frozenset(("nav", "aside", "footer", "menu", "header"))

_LINK_BIT = 1 << C_LINK
_HIDDEN_BIT = 1 << C_HIDDEN
_ITEMPROP_BIT = 1 << C_ITEMPROP


def _tag_traits(tag: str) -> tuple[bool, bool, int]:
    """(starts a block, is a table cell, context bits it sets) of a tag."""
    bit = _CTX_TAGS.get(tag, -1)
    ctx = (1 << bit) if bit >= 0 else 0
    if tag == "a":
        ctx |= _LINK_BIT
    return tag in _BLOCK_TAGS, tag in _CELL_TAGS, ctx


_TAG_TRAITS: dict[str, tuple[bool, bool, int]] = {}


def _add_block(flat: _Flat, run: list[str], run_link: int, kind: str, negs: tuple, ctx: int, hint: int,
               el: int) -> None:
    """The inline run becomes a block, if it holds any text once whitespace is collapsed."""
    text = _run_text("".join(run))
    if text:
        flat.texts.append(text)
        flat.links.append(min(run_link, len(text)))
        flat.kinds.append(kind)
        flat.negs.append(negs)
        flat.ctx.append(ctx)
        flat.hints.append(hint)
        flat.blk_el.append(el)


def _flatten(root) -> _Flat:
    """Flatten the DOM under ``root`` into blocks, in one iterative pre-order
    walk (no recursion: deep junk markup must not hit Python's recursion limit).

    Text is gathered into the current inline *run*; a block-level element (or a
    boilerplate-classed or hidden inline one, so that its words land in a block
    of their own that can be dropped) opening or closing ends the run, which
    then becomes a block. Each element records the range of blocks its subtree
    produced.

    This loop runs once per DOM node, about half of the extractor's time, so it
    is written for speed: the state a block records (innermost block tag,
    boilerplate ancestors, context and hint bits, innermost element) is kept in
    locals, saved in a frame when an element is entered and restored from it
    when the element is left, instead of counting depths per bit; the frame
    also holds the node, because asking Lexbor for a node's parent costs more
    than a tuple.
    """
    flat = _Flat()
    texts, el_tag, el_start, el_end = flat.texts, flat.el_tag, flat.el_start, flat.el_end
    el_pos, el_neg, el_parent, el_sig = flat.el_pos, flat.el_neg, flat.el_parent, flat.el_sig
    # The root (<body>) is element 0, so text sitting directly in it (plain
    # text passed in as "HTML", minimal pages) still has a container.
    el_tag.append("body"), el_start.append(0), el_end.append(-1), el_pos.append(0)
    el_neg.append(0), el_parent.append(-1), el_sig.append("body")
    traits = _TAG_TRAITS
    run: list[str] = []  # pieces of the current inline run
    has_text = False  # does the run hold more than whitespace and <br>s?
    run_link = 0  # characters of link text in the run
    cur_el, cur_kind, cur_negs, cur_ctx, cur_hint = 0, "body", (), 0, 0
    # ((element, breaks the run, is a cell, the five saved cur_* values), node)
    # for the open elements whose children are being walked
    walking: list[tuple] = []
    node = root.first_child
    while node is not None:
        tag = node.tag
        if tag == "-text":  # about half of all nodes
            t = node.text_content
            if t:
                run.append(t)
                if not has_text and not t.isspace():
                    has_text = True
                if cur_ctx & _LINK_BIT:
                    run_link += len(t.strip())
        elif tag == "br":
            run.append(_BR)
        # comments, doctype and nameless nodes (Lexbor gives some no tag) are
        # passed over; skipped tags and page regions are left out with their subtree
        elif tag and tag[0] not in "-_!" and tag not in _SKIP_TAGS and not (
            tag in _REGION_TAGS and (tag != "header" or not cur_ctx & _BODY_REGION)
        ):
            is_block, is_cell, bits = traits.get(tag) or traits.setdefault(tag, _tag_traits(tag))
            ctx = cur_ctx | bits
            attrs = node.attributes
            if attrs:
                hidden = _is_hidden(attrs)
                hint = _element_hints(tag, attrs)
                strength = 2 if hint & H_NEG2 else (1 if hint & H_NEG1 else 0)
                if hidden:
                    ctx |= _HIDDEN_BIT
                itemprop = attrs.get("itemprop")
                if itemprop and itemprop.lower() in _CONTENT_ITEMPROPS:
                    ctx |= _ITEMPROP_BIT
                cls = attrs.get("class")
                sig = f"{tag}.{cls}" if cls else tag
                breaks = is_block or strength > 0 or hidden
            else:
                hint = strength = 0
                sig = tag
                breaks = is_block
            if breaks and run:
                if has_text:
                    _add_block(flat, run, run_link, cur_kind, cur_negs, cur_ctx, cur_hint, cur_el)
                    has_text = False
                run.clear()
                run_link = 0
            if is_cell:  # a space either side keeps a row's cells apart on one line
                run.append(" ")
            idx = len(el_tag)
            el_tag.append(tag)
            el_start.append(len(texts))
            el_end.append(-1)  # set when the element is left
            el_pos.append(1 if hint & H_POS else 0)
            el_neg.append(strength)
            el_parent.append(cur_el)
            el_sig.append(sig)
            saved = (cur_el, cur_kind, cur_negs, cur_ctx, cur_hint)
            cur_el, cur_ctx, cur_hint = idx, ctx, cur_hint | hint
            if is_block:
                cur_kind = tag
            if strength:
                cur_negs = cur_negs + (idx,)
            walking.append(((idx, breaks, is_cell, saved), node))
            child = node.first_child
            if child is not None:
                node = child
                continue
            node = None  # an element without children: the climb below leaves it at once
        # climb until a next sibling exists, leaving elements on the way
        while True:
            if node is not None:
                nxt = node.next
                if nxt is not None:
                    node = nxt
                    break
            if not walking:
                node = None
                break
            (idx, breaks, is_cell, saved), node = walking.pop()
            if breaks and run:
                if has_text:
                    _add_block(flat, run, run_link, cur_kind, cur_negs, cur_ctx, cur_hint, cur_el)
                    has_text = False
                run.clear()
                run_link = 0
            if is_cell:
                run.append(" ")
            cur_el, cur_kind, cur_negs, cur_ctx, cur_hint = saved
            el_end[idx] = len(texts)
    if has_text:
        _add_block(flat, run, run_link, cur_kind, cur_negs, cur_ctx, cur_hint, cur_el)
    el_end[0] = len(texts)
    return flat


# Stand-alone interface labels: ad slot markers, widget titles and buttons
# that survive as one-block fragments inside article bodies, often under
# obfuscated class names that the class/id hints cannot see. Compared after
# lower-casing and trimming punctuation; only whole-block matches are dropped.
_UI_LABELS = frozenset(
    (
        "advert", "advertisement", "advertising", "ad", "ads", "sponsored",
        "sponsored content", "paid content", "story continues below advertisement",
        "article continues below advertisement", "continue reading below",
        "continue reading", "read more", "more", "scroll to continue with content",
        "comments", "comment", "share", "share this", "share this article",
        "share this story", "share on facebook", "share on twitter", "tweet", "email",
        "print", "related", "related articles", "related stories", "related content",
        "recommended", "recommended for you", "don't miss", "don\u2019t miss",
        "most popular", "most read", "trending", "trending now", "you may also like",
        "loading", "this slideshow requires javascript", "subscribe", "sign up",
        "skip advertisement", "skip ad", "close", "x",
    )
)
_LABEL_STRIP = " \t\n.,:;!?-\u2013\u2014|\u2022*>\u00bb\u203a\u2026()[]\"'"


def _is_ui_label(text: str) -> bool:
    return len(text) <= 50 and text.strip(_LABEL_STRIP).lower() in _UI_LABELS


_ELLIPSES = ("...", "\u2026")


def _looks_like_code(text: str) -> bool:
    """Script source leaking into visible text (a stray "</script>" inside a
    JS string ends the element early in every HTML5 parser, browsers included).
    Prose almost never has one brace/paren/semicolon/equals sign per 15 characters."""
    n = text.count("{") + text.count("}") + text.count(";") + text.count("=")
    if n == 0:
        return False
    return (n + text.count("(") + text.count(")")) * 15 > len(text)


def _junk_flags(texts: list[str], links: list[int], kinds: list[str]) -> list[bool]:
    """Mark navigation-like blocks: mostly link text, or truncated teasers.

    * link text over half the block: menus, tag lists, "Read more" buttons;
    * leaked script source (see _looks_like_code), outside <pre>;
    * a block ending in an ellipsis that carries a link, or is directly
      followed by a short all-link block ("First words of a story...  Read
      More"): a truncated summary of another page, the staple of tickers and
      "more stories" lists. Article paragraphs rarely end in an ellipsis, and
      when they do they are not followed by a bare link.
    """
    n = len(texts)
    junk = [False] * n
    for i in range(n):
        t, l = texts[i], links[i]
        if l * 2 > len(t) or _is_ui_label(t):
            junk[i] = True
        elif len(t) > 40 and kinds[i] != "pre" and _looks_like_code(t):
            junk[i] = True
        elif t.endswith(_ELLIPSES):
            if l > 0:
                junk[i] = True
            elif i + 1 < n and links[i + 1] * 10 >= len(texts[i + 1]) * 9 and len(texts[i + 1]) <= 40:
                junk[i] = True
    return junk


def _block_value(n: int, link: int, junk: bool, heading: bool) -> float:
    """Contribution of one block (``n`` chars, ``link`` of them linked) to the
    content score of every element containing it.

    Prose is worth its non-link length; link text counts against the
    container (menus, teaser lists); every block costs a constant so that
    swarms of tiny fragments (bylines, labels, buttons) net out negative. A
    junk block's unlinked text (a teaser's summary) earns nothing. Headings
    are neutral: short by nature, they belong to whatever they head, and a
    title at the top of an <article> should not push the choice down to the
    first paragraph of a short story.
    """
    if junk:
        return -LINK_WEIGHT * link - BLOCK_COST
    if heading:
        return 0.0
    return (n - link) - LINK_WEIGHT * link - BLOCK_COST


def _select(flat: _Flat, junk: list[bool], absent: list[int]) -> tuple[int, list[float], float]:
    """The element whose subtree has the best content score (or -1), every
    element's score, and the best score.

    An element's blocks are the contiguous range [el_start, el_end), so its
    total is a difference of prefix sums: O(blocks + elements) overall. The
    maximum naturally lands on the tightest element that holds all the prose
    while leaving out link-heavy surroundings. Explicit article markup
    (<article>, itemprop=articleBody, "entry-content"...) gets a 10% bonus so
    it wins near-ties against a slightly larger anonymous wrapper. Blocks in
    ``absent`` (page header/footer/nav/aside, hidden, noscript) weigh nothing here:
    the container is an article-style guess that the block model then widens.
    """
    texts, links, kinds = flat.texts, flat.links, flat.kinds
    n = len(texts)
    el_start, el_end, el_pos = flat.el_start, flat.el_end, flat.el_pos
    scores = [0.0] * len(el_start)
    if n == 0 or not flat.el_tag:
        return -1, scores, 0.0
    prefix = [0.0] * (n + 1)
    acc = 0.0
    for i in range(n):
        if not absent[i]:
            acc += _block_value(len(texts[i]), links[i], junk[i], kinds[i] in _HEADINGS)
        prefix[i + 1] = acc
    best, best_score = -1, float("-inf")
    for i in range(len(el_start)):
        s, e = el_start[i], el_end[i]
        if e <= s:
            scores[i] = float("-inf")
            continue
        score = prefix[e] - prefix[s]
        if el_pos[i] and score > 0:
            score *= 1.1
        scores[i] = score
        if score > best_score:
            best, best_score = i, score
    if best < 0 or best_score <= 0:
        return best, scores, best_score
    # Explicit article markup nested inside the winner takes over when it
    # holds a fair share of the winner's score: the winner then only adds
    # loosely attached teasers/cards (which can out-score a short article),
    # while the page itself told us where its body is.
    lo, hi = el_start[best], el_end[best]
    hinted, hinted_score = -1, HINT_SHARE * best_score
    for i in range(best + 1, len(el_start)):
        if el_start[i] >= hi:
            break  # pre-order: past the winner's subtree
        if el_pos[i] and scores[i] >= hinted_score and el_end[i] <= hi and el_start[i] >= lo:
            hinted, hinted_score = i, scores[i]
    return (hinted if hinted >= 0 else best), scores, best_score


# Blocks the article-style container search does not see (see _select).
_ABSENT = sum(1 << _CTX_TAGS[t] for t in ("header", "footer", "nav", "aside", "noscript")) | (1 << C_HIDDEN)
_KIND_INDEX = {"h1": 0, "h2": 1, "h3": 1, "h4": 1, "h5": 1, "h6": 1, "li": 2, "tr": 3, "caption": 3,
               "thead": 3, "tbody": 3, "table": 3, "p": 4, "pre": 5, "dt": 6, "dd": 6, "blockquote": 7,
               "summary": 7, "details": 7}
_N_KINDS = 8
_DIGIT_RE = re.compile(r"\d")
_SENTENCE_END = tuple(".!?:\"')\u201d")

FEATURE_NAMES = (
    ["article_rule_keeps", "in_container", "in_container_up1", "in_container_up2", "best_ancestor_score",
     "log_chars", "link_density", "junk", "ui_label", "code_like", "sentence_end", "digit_share",
     "in_boilerplate_inside_container", "strong_boilerplate_inside_container",
     "sibling_repeats", "page_repeats", "repeat_link_density", "position", "before_container", "after_container",
     "container_page_share", "log_blocks", "prev_link_density", "next_link_density", "prev_log_chars",
     "next_log_chars", "prev_rule_keeps", "next_rule_keeps", "parent_log_chars", "parent_link_density"]
    + [f"kind_{k}" for k in ("h1", "h2_6", "li", "table", "p", "pre", "dl", "quote")]
    + [f"ctx_{k}" for k in ("header", "footer", "nav", "aside", "noscript", "form", "list", "table",
                            "article", "main", "hidden", "link", "itemprop")]
    + [f"page_{k}" for k in ("schema_product", "schema_discussion", "schema_list", "schema_article",
                             "log_articles")]
    + [f"hint_{k}" for k in ("pos", "neg_strong", "neg_weak", "comment", "post", "item", "desc", "meta")]
)
N_FEATURES = len(FEATURE_NAMES)


# schema.org types a page declares (JSON-LD "@type" or microdata itemtype),
# grouped into what they say about the page: a product, a discussion, a list
# of things, an article. Generic vocabulary, the same on every site.
# Two patterns, each opening with a literal. str.find looks for the literal
# (1.6x faster than re's own literal scan on WCXB's large, mostly non-ASCII
# pages) and the pattern is tried only where it occurs.
_LD_TYPE_RE = re.compile(r'"@type"\s*:\s*\[?\s*"(?:https?://schema\.org/)?([A-Za-z]+)"')
_ITEMTYPE_RE = re.compile(r'itemtype=["\']?https?://schema\.org/([A-Za-z]+)')
_SCHEMA_PATTERNS = (('"@type"', _LD_TYPE_RE), ("itemtype=", _ITEMTYPE_RE))
_SCHEMA_GROUPS = {
    "Product": 0, "Offer": 0, "AggregateOffer": 0, "ProductGroup": 0, "IndividualProduct": 0,
    "DiscussionForumPosting": 1, "QAPage": 1, "Question": 1, "Answer": 1, "Comment": 1, "SocialMediaPosting": 1,
    "ItemList": 2, "CollectionPage": 2, "SearchResultsPage": 2, "OfferCatalog": 2, "ListItem": 2,
    "Article": 3, "NewsArticle": 3, "BlogPosting": 3, "Report": 3, "TechArticle": 3, "ScholarlyArticle": 3,
}


def _page_schema(html: str) -> list[float]:
    """Four 0/1 flags: the page declares a product, a discussion, a list, an article."""
    flags = [0.0, 0.0, 0.0, 0.0]
    for literal, pattern in _SCHEMA_PATTERNS:
        at = html.find(literal)
        while at >= 0:
            m = pattern.match(html, at)
            if m is None:
                at = html.find(literal, at + 1)
                continue
            g = _SCHEMA_GROUPS.get(m.group(1))
            if g is not None:
                flags[g] = 1.0
            at = html.find(literal, m.end())
    return flags


def _features(flat: _Flat, schema: list[float] | None = None):
    """Feature matrix (blocks x FEATURE_NAMES, float32) and the article rule's own keep/drop per block.

    Everything is O(blocks + elements), with short fixed climbs (at most four
    ancestors) per block."""
    texts, links, kinds, negs, ctxs = flat.texts, flat.links, flat.kinds, flat.negs, flat.ctx
    n = len(texts)
    junk = _junk_flags(texts, links, kinds)
    absent = [c & _ABSENT for c in ctxs]
    c, scores, best_score = _select(flat, junk, absent)
    el_start, el_end, el_parent, el_sig = flat.el_start, flat.el_end, flat.el_parent, flat.el_sig
    n_el = len(el_start)
    s, e = (el_start[c], el_end[c]) if c >= 0 else (0, 0)

    # prose[i]: non-link characters in blocks [0, i) -- "how much of the
    # container's text is this element", used to overrule class-name hints.
    prose = [0] * (n + 1)
    acc = 0
    for i in range(n):
        if not absent[i]:
            acc += len(texts[i]) - links[i]
        prose[i + 1] = acc
    total = max(prose[e] - prose[s], 1)
    verdict: dict[int, bool] = {}

    def dropped(j: int) -> bool:
        r = verdict.get(j)
        if r is None:
            share = (prose[el_end[j]] - prose[el_start[j]]) / total
            r = share < (0.8 if flat.el_neg[j] == 2 else 0.3)
            verdict[j] = r
        return r

    # The article rule (the extractor this model grew from): the container's
    # blocks minus junk, dropped boilerplate-classed parts and the <h1> title.
    rule = [False] * n
    neg_in = [0] * n
    for i in range(s, e):
        if absent[i] or junk[i] or kinds[i] == "h1":
            continue
        neg = negs[i]
        if neg:
            inside = [j for j in neg if j > c]
            if inside:
                neg_in[i] = max(flat.el_neg[j] for j in inside)
                if any(dropped(j) for j in inside):
                    continue
        rule[i] = True

    # The container widened one and two levels: the nearest ancestors whose
    # block range is strictly larger (forum threads and listings often sit in
    # siblings of the best-scoring post or card).
    ups = []
    j = c
    for _ in range(2 if c >= 0 else 0):
        while j > 0 and el_start[el_parent[j]] == el_start[j] and el_end[el_parent[j]] == el_end[j]:
            j = el_parent[j]
        if j > 0:
            j = el_parent[j]
        ups.append((el_start[j], el_end[j]) if j >= 0 else (0, 0))
    while len(ups) < 2:
        ups.append((0, 0))

    # Best subtree score among each element's ancestors (pre-order: a parent
    # precedes its children), relative to the best on the page.
    norm = best_score if best_score > 0 else 1.0
    anc = [0.0] * n_el
    for k in range(n_el):
        sc = scores[k] / norm if scores[k] != float("-inf") else -1.0
        p = el_parent[k]
        anc[k] = max(anc[p], sc) if p >= 0 else sc
    # Repetition: how many siblings share an element's tag+class, and how
    # often that signature occurs on the page (posts, cards, rows repeat).
    sib: dict = {}
    glob: dict = {}
    keys = list(zip(el_parent, el_sig))
    for k in range(1, n_el):
        if el_end[k] > el_start[k]:
            sib[keys[k]] = sib.get(keys[k], 0) + 1
            glob[el_sig[k]] = glob.get(el_sig[k], 0) + 1
    sib_el = np.array([sib.get(key, 0) for key in keys], dtype=np.float64)
    glob_el = np.array([glob.get(g, 0) for g in el_sig], dtype=np.float64)
    sib_el[0] = glob_el[0] = 0  # the root repeats nothing
    parent = np.maximum(np.array(el_parent, dtype=np.intp), 0)
    starts = np.array(el_start, dtype=np.intp)
    ends = np.array(el_end, dtype=np.intp)
    allc = np.zeros(n + 1)
    linkc = np.zeros(n + 1)
    lens = np.array([len(t) for t in texts], dtype=np.float64)
    lnk = np.array(links, dtype=np.float64)
    np.cumsum(lens, out=allc[1:])
    np.cumsum(lnk, out=linkc[1:])

    blk = np.array(flat.blk_el, dtype=np.intp)
    # climb up to four ancestors: the most repeated one (and its link density)
    srep = np.zeros(n)
    grep = np.zeros(n)
    rep_el = np.zeros(n, dtype=np.intp)
    k = blk.copy()
    for _ in range(4):
        cs = np.where(k > 0, sib_el[k], 0.0)
        better = cs > srep
        srep = np.where(better, cs, srep)
        rep_el = np.where(better, k, rep_el)
        grep = np.maximum(grep, np.where(k > 0, glob_el[k], 0.0))
        k = parent[k]
    rs, re_ = starts[rep_el], ends[rep_el]
    rep_ld = np.where(srep > 0, (linkc[re_] - linkc[rs]) / np.maximum(1, allc[re_] - allc[rs]), 0.0)
    pe = parent[blk]
    pchars = allc[ends[pe]] - allc[starts[pe]]
    plinks = linkc[ends[pe]] - linkc[starts[pe]]

    page_prose = max(prose[n], 1)
    share_c = (prose[e] - prose[s]) / page_prose
    idx = np.arange(n)
    lchars = np.log1p(lens) / 8
    ldens = lnk / lens
    (u1s, u1e), (u2s, u2e) = ups
    rule_a = np.array(rule, dtype=np.float64)
    F = np.zeros((n, N_FEATURES), dtype=np.float32)
    cols = [
        rule_a, (idx >= s) & (idx < e), (idx >= u1s) & (idx < u1e), (idx >= u2s) & (idx < u2e),
        np.array(anc)[blk], lchars, ldens, np.array(junk, dtype=np.float64),
        [_is_ui_label(t) for t in texts], [len(t) > 40 and _looks_like_code(t) for t in texts],
        [t.endswith(_SENTENCE_END) for t in texts],
        np.array([len(_DIGIT_RE.findall(t, 0, 200)) for t in texts]) / np.minimum(lens, 200),
        np.array(neg_in) > 0, np.array(neg_in) == 2,
        np.log1p(srep) / 4, np.log1p(grep) / 6, rep_ld, idx / max(n, 1), idx < s, idx >= e, share_c,
        math.log1p(n) / 8,
        np.concatenate(([1.0], ldens[:-1])), np.concatenate((ldens[1:], [1.0])),
        np.concatenate(([0.0], lchars[:-1])), np.concatenate((lchars[1:], [0.0])),
        np.concatenate(([0.0], rule_a[:-1])), np.concatenate((rule_a[1:], [0.0])),
        np.log1p(pchars) / 10, plinks / np.maximum(1, pchars),
    ]
    for j, col in enumerate(cols):
        F[:, j] = col
    base = len(cols)
    kind_ix = np.array([_KIND_INDEX.get(kd, -1) for kd in kinds], dtype=np.intp)
    has = kind_ix >= 0
    F[idx[has], base + kind_ix[has]] = 1.0
    base += _N_KINDS
    F[:, base:base + N_CTX] = (np.array(ctxs, dtype=np.int64)[:, None] >> np.arange(N_CTX)) & 1
    base += N_CTX
    F[:, base:base + N_HINTS] = (np.array(flat.hints, dtype=np.int64)[:, None] >> np.arange(N_HINTS)) & 1
    base += N_HINTS
    F[:, base:base + 4] = schema or [0.0, 0.0, 0.0, 0.0]
    F[:, base + 4] = math.log1p(flat.el_tag.count("article")) / 4
    # Ranges for the second stage: the enclosing element's blocks and the
    # blocks of the list that holds the repeated item (the item's parent).
    grp = np.where(srep > 1, parent[rep_el], pe)
    ranges = (starts[pe], ends[pe], starts[grp], ends[grp])
    return F, rule, ranges


# Second stage: a block's first-stage probability beside those of its
# neighbours, of its enclosing element and of the list it is an item of.
# Posts, cards and rows are judged together this way: a listing whose items
# mostly look like content keeps the few that look thin, and a menu whose
# entries mostly look like navigation loses the one long entry.
CONTEXT_NAMES = ["p", "prev_p", "next_p", "window_p", "parent_p", "group_p", "page_p", "group_size"]
_STAGE2_RAW = ("log_chars", "link_density", "kind_h1", "kind_h2_6", "article_rule_keeps", "in_container")
_STAGE2_RAW_IX = [FEATURE_NAMES.index(name) for name in _STAGE2_RAW]
STAGE2_NAMES = CONTEXT_NAMES + list(_STAGE2_RAW)


def _context(F, z, ranges):
    """Second-stage features (STAGE2_NAMES) from first-stage log-odds ``z``."""
    n = len(z)
    p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    cum = np.zeros(n + 1)
    np.cumsum(p, out=cum[1:])
    ps, pe, gs, ge = ranges

    def mean(a, b):
        return (cum[b] - cum[a]) / np.maximum(b - a, 1)

    idx = np.arange(n)
    lo, hi = np.maximum(idx - 2, 0), np.minimum(idx + 3, n)
    C = np.empty((n, len(STAGE2_NAMES)), dtype=np.float32)
    C[:, 0] = p
    C[:, 1] = np.concatenate(([0.0], p[:-1]))
    C[:, 2] = np.concatenate((p[1:], [0.0]))
    C[:, 3] = mean(lo, hi)
    C[:, 4] = mean(ps, pe)
    C[:, 5] = mean(gs, ge)
    C[:, 6] = cum[n] / n
    C[:, 7] = np.log1p(ge - gs) / 6
    C[:, len(CONTEXT_NAMES):] = F[:, _STAGE2_RAW_IX]
    return C


def _emit(flat: _Flat, keep) -> str:
    """Kept blocks in document order: headings, list items and table rows on
    their own lines; consecutive list items / rows / definition terms joined by
    one newline, everything else by a blank line."""
    texts, kinds = flat.texts, flat.kinds
    out: list[str] = []
    prev_kind = ""
    for i in range(len(texts)):
        if not keep[i]:
            continue
        kind = kinds[i]
        if out:
            out.append("\n" if (kind == prev_kind and kind in _LINE_KINDS) else "\n\n")
        out.append(texts[i])
        prev_kind = kind
    return "".join(out)


WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "extract_weights.json"
FALLBACK_MARGIN = 1.0  # log-odds; see _extract


class _Trees:
    """Boosted decision trees read from JSON: each tree is parallel lists
    (feature, threshold, left, right, value); a leaf has feature -1. The sum of
    the trees' leaf values plus ``base`` is the log-odds that a block is main
    content.

    All trees are walked at once with numpy: a leaf points to itself, so
    ``depth`` rounds of "go left or right" bring every (block, tree) pair to
    its leaf, about a millisecond for a few hundred blocks."""

    def __init__(self, spec: dict, names: list[str]) -> None:
        if list(spec.get("features", ())) != list(names):
            raise ValueError(f"{WEIGHTS}: weights were trained for other features; retrain them")
        self.base = float(spec["base"])
        trees = spec["trees"]
        width = max(len(t["feature"]) for t in trees)
        n_trees = len(trees)
        feat = np.zeros((n_trees, width), dtype=np.intp)
        thr = np.zeros((n_trees, width))
        left = np.zeros((n_trees, width), dtype=np.intp)
        right = np.zeros((n_trees, width), dtype=np.intp)
        value = np.zeros((n_trees, width))
        depth = 1
        for k, t in enumerate(trees):
            d = [0] * len(t["feature"])
            for j, f in enumerate(t["feature"]):
                value[k, j] = t["value"][j]
                if f < 0:  # leaf: stays where it is
                    left[k, j] = right[k, j] = j
                else:
                    feat[k, j], thr[k, j] = f, t["threshold"][j]
                    left[k, j], right[k, j] = t["left"][j], t["right"][j]
                    d[t["left"][j]] = d[t["right"][j]] = d[j] + 1
            depth = max(depth, max(d))
        self.feat, self.thr, self.left, self.right, self.value = feat, thr, left, right, value
        self.depth = depth
        # flat offsets: node j of tree k lives at k * width + j
        self.offset = (np.arange(n_trees) * width)[None, :]

    # Rows walked at once: the walk holds several (rows, trees) index arrays, so
    # a page of 50,000 blocks would otherwise take ~150 MB for scoring alone.
    CHUNK = 2048

    def scores(self, x):
        """Log-odds per row of ``x`` (blocks, features), float32 as in training."""
        if x.shape[0] > self.CHUNK:
            return np.concatenate([self.scores(x[i:i + self.CHUNK]) for i in range(0, x.shape[0], self.CHUNK)])
        n = x.shape[0]
        node = np.zeros((n, len(self.feat)), dtype=np.intp)  # (blocks, trees)
        feat, thr, left, right = (a.ravel() for a in (self.feat, self.thr, self.left, self.right))
        off = self.offset
        rows_ix = np.arange(n)[:, None]
        for _ in range(self.depth):
            flat = node + off
            go_left = x[rows_ix, feat[flat]] <= thr[flat]
            node = np.where(go_left, left[flat], right[flat])
        return self.value.ravel()[node + off].sum(axis=1) + self.base


@lru_cache(maxsize=1)
def _model():
    """(stage 1, stage 2 or None, (keep threshold, threshold of linked blocks)) from
    WEIGHTS; None when the file is absent (then the article rule alone decides)."""
    if not WEIGHTS.exists():
        return None
    spec = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    stage1 = _Trees(spec["stage1"], FEATURE_NAMES)
    stage2 = _Trees(spec["stage2"], STAGE2_NAMES) if spec.get("stage2") else None
    threshold = float(spec["threshold"])
    return stage1, stage2, (threshold, float(spec.get("linked_threshold", threshold)))


# A block whose text is all link text (link density >= LINKED) is held to the
# linked threshold instead. The keep threshold is chosen for every page type
# (benchmarks/extraction_train.py), and below 0 it lets in the borderline prose
# blocks of service and product pages; a wholly linked block is a pointer to
# text elsewhere, and on the tuning part the lower bar gained nothing on such
# blocks (out-of-fold: listing -0.010, article benchmark +0.001, overall equal)
# while a bare menu of links beside an article came through.
LINKED = 0.99
_LINK_IX = FEATURE_NAMES.index("link_density")


def keep_blocks(z: np.ndarray, F: np.ndarray, thresholds: tuple[float, float]) -> np.ndarray:
    """Which blocks are kept: log-odds ``z`` above the keep threshold, or for wholly
    linked blocks above the linked threshold where that is the higher bar
    (``thresholds``: (keep, linked), as :func:`_model` gives)."""
    threshold, linked = thresholds
    linked = max(threshold, linked)
    if linked == threshold:
        return z > threshold
    return z > np.where(F[:, _LINK_IX] >= LINKED, linked, threshold)


# Nesting depth. The HTML parser checks its stack of open elements at each
# block-level tag, so tens of thousands of nested elements (a fuzz case, a
# broken generator, or a hostile page) cost seconds, growing with the square
# of the depth: 30,000 nested <div>s took 2-6 s, and a 4 MiB record can hold
# 700,000. Real pages stay under a few hundred levels, so elements deeper than
# _MAX_DEPTH are taken out before parsing (their tags only: no text is lost).
_MAX_DEPTH = 256
# Pages whose estimated depth is under this are parsed as they are: at 1,000
# levels the parser's extra work is a few milliseconds.
_DEPTH_CHECK = 1000
# The estimate trusts closing tags, and a closing tag naming no open element
# ("<div></x>" repeated) lowers it without lowering the real depth; so a page
# with more tags than this (2 of WCXB's 1,497) gets the exact pass whatever
# its estimate. Under it, such a page reaches 10,000 levels at most (~0.3 s).
_TAGS_CHECK = 20_000
_VOID_TAGS = frozenset(("area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta",
                        "param", "source", "track", "wbr"))
# elements a new one of the same kind closes (an unclosed <p> or <li> is no nesting)
_SELF_CLOSING_KINDS = frozenset(("p", "li", "dt", "dd", "option", "tr", "td", "th"))
_TAG_TOKEN = re.compile(r"<(/?)([A-Za-z][^\s/<>]{0,40})[^<>]{0,2000}?(/?)>")


def _depth_estimate(html: str) -> int:
    """The largest rise of (opening tags - closing tags) over the page: the
    depth the parser reaches when closing tags match, at numpy speed. Void and
    implicitly closed elements make it an overestimate, which only sends a page
    to the exact check in _cut_deep_nesting."""
    b = np.frombuffer(html.encode("utf-8", "surrogatepass"), np.uint8)
    lt = np.flatnonzero(b[:-1] == 60)  # "<"
    if not len(lt):
        return 0
    nxt = b[lt + 1] | 32
    step = ((nxt >= 97) & (nxt <= 122)).astype(np.int32) - (b[lt + 1] == 47)  # letter: opens, "/": closes
    depth = np.cumsum(step)
    return int((depth - np.minimum.accumulate(np.minimum(depth, 0))).max())


def _cut_deep_nesting(html: str) -> str:
    """``html`` with the tags of elements nested deeper than _MAX_DEPTH taken out.

    Cheap for the pages that need nothing (two C-speed scans); a page whose
    estimate is deep gets one pass over its tags that keeps a stack of open
    element names as a parser would (void elements, self-closing tags and the
    implicit end of <p>, <li>, ... understood; a closing tag is looked for
    among the eight innermost open elements only, so this pass stays linear).
    """
    tags = html.count("<")
    if tags < _DEPTH_CHECK or (tags <= _TAGS_CHECK and _depth_estimate(html) < _DEPTH_CHECK):
        return html
    stack: list[list] = []  # [name, dropped]
    out: list[str] = []
    last = 0
    for m in _TAG_TOKEN.finditer(html):
        closing, name, selfclose = m.group(1), m.group(2).lower(), m.group(3)
        drop = False
        if closing:
            for k in range(len(stack) - 1, max(len(stack) - 9, -1), -1):
                if stack[k][0] == name:
                    drop = stack[k][1]
                    del stack[k:]
                    break
        elif name not in _VOID_TAGS and not selfclose:
            if name in _SELF_CLOSING_KINDS and stack and stack[-1][0] == name:
                stack.pop()
            drop = len(stack) >= _MAX_DEPTH
            stack.append([name, drop])
        if drop:
            out.append(html[last:m.start()])
            last = m.end()
    if last == 0:
        return html
    out.append(html[last:])
    return "".join(out)


def _extract(html: str) -> str:
    tree = _Parser(_cut_deep_nesting(html))
    body = tree.body
    if body is None:
        return ""
    flat = _flatten(body)
    if not flat.texts:
        return ""
    F, rule, ranges = _features(flat, _page_schema(html))
    model = _model()
    if model is None:
        return _emit(flat, rule)
    stage1, stage2, thresholds = model
    z = stage1.scores(F)
    if stage2 is not None:
        z = stage2.scores(_context(F, z, ranges))
    keep = keep_blocks(z, F, thresholds)
    if not keep.any():
        # Nothing cleared the bar (thin product or collection pages, a thread
        # of short replies): the blocks the model found nearly good enough,
        # else the article rule's pick (a bare text snippet), beat nothing.
        # The margin was chosen on the tuning part (11 such pages of 1,026).
        keep = z > thresholds[0] - FALLBACK_MARGIN
        if not keep.any():
            return _emit(flat, rule)
    return _emit(flat, keep.tolist())


def html_to_text(html: str, *, on_error=None) -> str:
    """Return the main-content text of an HTML page ("" if there is none).

    Paragraphs are separated by a blank line; headings, list items and table
    rows sit on their own lines. Navigation, headers/footers, share widgets and
    teaser lists are left out; a forum's posts, a listing's items and a product's
    description panels are kept (see the module docstring). Never raises: malformed, empty or
    non-HTML input gives "" (or whatever text can be recovered); an exception
    inside the extractor is passed to ``on_error`` (if given) and gives "".
    The page's URL plays no part: the rules are generic, never keyed on a site.

    >>> html_to_text(
    ...     "<html><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
    ...     "<article><h1>Title</h1><p>The first paragraph of the story, long "
    ...     "enough to count as prose.</p><p>A second paragraph follows it.</p>"
    ...     "</article><footer>(c) 2024 Example Corp</footer></body></html>")
    'The first paragraph of the story, long enough to count as prose.\\n\\nA second paragraph follows it.'
    """
    if not isinstance(html, str):
        if isinstance(html, (bytes, bytearray, memoryview)):
            html = bytes(html).decode("utf-8", errors="replace")
        else:
            return ""
    if not html:
        return ""
    try:
        if _Parser is None:  # pragma: no cover - selectolax missing: coarser C fallback
            return _fallback(html)
        return _extract(html)
    except Exception as exc:
        # Never let one bad page take down a pipeline worker, and never lose it
        # silently either: the caller counts and records it through on_error.
        if on_error is not None:
            on_error(exc)
        return ""


def _fallback(html: str) -> str:  # pragma: no cover
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True, list_bullets=False).strip()
