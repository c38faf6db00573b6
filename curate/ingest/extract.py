"""HTML -> main-content text.

``html_to_text`` keeps the body of an article (paragraphs, in-body headings,
lists, tables, quotes) and drops navigation, headers/footers, share widgets,
comment threads, "related" teasers and other page furniture.

How it works (one parse, one linear pass in Python, then O(1) arithmetic):

1. Parse with Lexbor (via ``selectolax``), a fast C HTML5 parser that never
   rejects input.
2. Walk the DOM once and flatten it into *blocks*: runs of text delimited by
   block-level tags. Each block remembers its length, how much of it is link
   text, and its position; each element remembers which range of blocks it
   spans and whether its class/id looks like boilerplate.
3. Give every block a value: positive for prose (long, few links), negative
   for link lists and tiny fragments. Because an element's blocks are a
   contiguous range, its subtree total is a difference of prefix sums, so the
   *content container* (the element maximising that total, with a bonus for
   explicit article markup) is found in one pass over the elements.
4. Emit the container's blocks, minus those inside boilerplate-looking
   sub-elements, link-dense or teaser fragments, interface labels and the
   <h1> title.

The rules are generic (tag semantics, text/link statistics, common class-name
vocabulary); nothing is keyed on a site or URL. Worst case, per page: one
Lexbor parse plus one Python visit per DOM node, about 2-4 ms for a typical
news page on one core.
"""

from __future__ import annotations

import re

try:  # selectolax >= 1.0 ships only the Lexbor backend
    from selectolax.lexbor import LexborHTMLParser as _Parser
except ImportError:  # pragma: no cover - exercised only without the dependency
    _Parser = None

__all__ = ["html_to_text"]

# --------------------------------------------------------------------------- tag classes

# Removed together with their content: never visible article text (code,
# media, form controls) or, by HTML semantics, navigation/side content.
_SKIP_TAGS = frozenset(
    """script style noscript template svg math iframe object embed canvas video audio
    picture img figcaption source track map button input select option optgroup textarea label
    nav aside footer header head title meta link base dialog menu""".split()
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
# Strong: almost never wraps article prose; dropped unless it is nearly the
# whole container.
_NEG_STRONG_RE = re.compile(
    r"comment|share|sharing|social|related|recommend|newsletter|subscri|signup|sign-up|"
    r"cookie|promo|advert|sponsor|outbrain|taboola|popup|modal|breadcrumb|"
    r"\bads?\b|\bad-|-ad\b|-ads\b|most-popular|trending|more-stories|read-more|readmore"
)
# Weak: often furniture (captions, datelines, widgets, labels) but the same
# words appear in generic layout classes; dropped only when small.
_NEG_WEAK_RE = re.compile(
    r"sidebar|widget|footer|\bnav|menu|\btags?\b|byline|author|\bmeta\b|-meta\b|\bmeta-|"
    r"masthead|banner|disclaimer|hidden|\bsr-only|visually-hidden|print-only|toolbar|skip|"
    r"pagination|caption|credit|timestamp|dateline|\bdate\b"
)
# Explicit article-body markup; the container search gives these a bonus.
_POS_RE = re.compile(
    r"article-?body|articlebody|article-content|article__body|entry-content|post-content|"
    r"post-body|postbody|story-body|storybody|story-content|main-content|body-text|"
    r"articletext|article-text|content-body|page-content|td-post-content|rich-text"
)

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
_EMBED_RE = re.compile(r"embed|tweet|instagram|tiktok")
# Page-level or explicitly semantic containers whose class names (e.g.
# <body class="has-sidebar">) say nothing about their own content.
_NEVER_NEG_TAGS = frozenset(("html", "body", "article", "main", "blockquote"))

# Stand-in for <br> inside a text run (a private-use character, which HTML
# text practically never contains), turned into "\n" when the block is built.
_BR = "\ue000"

_HIDDEN_STYLE_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")


def _classify_hint(hint: str) -> tuple[bool, int]:
    """class/id string -> (explicit article markup?, boilerplate strength 0/1/2)."""
    hint = hint.lower()
    if _POS_RE.search(hint):
        return True, 0
    if _EMBED_RE.search(hint):
        return False, 0
    if _NEG_STRONG_RE.search(hint):
        return False, 2
    if _NEG_WEAK_RE.search(hint):
        return False, 1
    return False, 0


# class/id strings repeat heavily within and across pages ("menu-item", "col-md-6"),
# so their verdicts are memoised. Bounded so a long-running worker cannot grow it
# without limit; the cache never changes results, only speed.
_HINT_CACHE_MAX = 100_000
_hint_cache: dict[str, tuple[bool, int]] = {}


class _Flat:
    """DOM flattened into blocks plus per-element block ranges."""

    __slots__ = ("texts", "links", "kinds", "negs", "el_start", "el_end", "el_pos", "el_tag", "el_neg")

    def __init__(self) -> None:
        self.texts: list[str] = []  # block text (whitespace-normalised)
        self.links: list[int] = []  # characters of link text in the block
        self.kinds: list[str] = []  # tag that opened the block (p, li, h2, ...)
        self.negs: list[tuple] = []  # indices of boilerplate-classed ancestors
        self.el_start: list[int] = []  # first block index of each element
        self.el_end: list[int] = []  # one past its last block
        self.el_pos: list[int] = []  # explicit article markup?
        self.el_tag: list[str] = []
        self.el_neg: list[int] = []  # 0, or 1/2 for weak/strong boilerplate class/id

    def add_element(self, tag: str, pos: bool, strength: int) -> int:
        """Open an element whose blocks start at the next block; its index (pre-order)."""
        self.el_tag.append(tag)
        self.el_start.append(len(self.texts))
        self.el_end.append(-1)  # set when the element is closed
        self.el_pos.append(1 if pos else 0)
        self.el_neg.append(strength)
        return len(self.el_tag) - 1


def _remember_hint(hint: str) -> tuple[bool, int]:
    """_classify_hint, stored in the memo while it has room."""
    verdict = _classify_hint(hint)
    if len(_hint_cache) < _HINT_CACHE_MAX:
        _hint_cache[hint] = verdict
    return verdict


def _element_hints(tag: str, attrs: dict) -> tuple[bool, int]:
    """(explicit article markup?, boilerplate strength 0/1/2) of one element:
    its class/id hints (memoised), overruled by what its tag or microdata says."""
    if tag == "article" or attrs.get("itemprop") == "articleBody":
        return True, 0
    cls = attrs.get("class")
    ident = attrs.get("id")
    if cls or ident:
        hint = f"{cls or ''} {ident or ''}"
        verdict = _hint_cache.get(hint) or _remember_hint(hint)
        if tag in _NEVER_NEG_TAGS:
            return verdict[0], 0
        return verdict
    return False, 0


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


# An element being walked: (element index, is_block, is_link, is_boilerplate, is_cell).
_Open = tuple[int, bool, bool, bool, bool]


class _FlatBuilder(_Flat):
    """A _Flat under construction from the events of a pre-order DOM walk.

    Text is gathered into the current inline *run*; a block-level element (or
    a boilerplate-classed inline one) opening or closing ends the run, which
    then becomes a block. Each element records the range of blocks its
    subtree produced.
    """

    __slots__ = ("run", "run_link", "link_depth", "kind_stack", "neg_stack")

    def __init__(self) -> None:
        super().__init__()
        self.run: list[str] = []  # pieces of the current inline run
        self.run_link = 0  # characters of link text in it
        self.link_depth = 0  # open <a> elements
        self.kind_stack: list[str] = ["body"]  # open block tags; the innermost one names a new block
        self.neg_stack: list[int] = []  # element indices of open boilerplate elements
        # The root (<body>) is element 0, so text sitting directly in it (plain
        # text passed in as "HTML", minimal pages) still has a container.
        self.add_element("body", False, 0)

    def end_run(self) -> None:
        """The current run, if it holds any text, becomes a block."""
        run = self.run
        if run:
            text = _run_text("".join(run))
            if text:
                self.texts.append(text)
                self.links.append(min(self.run_link, len(text)))
                self.kinds.append(self.kind_stack[-1])
                self.negs.append(tuple(self.neg_stack))
            run.clear()
        self.run_link = 0

    def open(self, node, tag: str) -> _Open | None:
        """Enter an element; None if its subtree is not walked (hidden, <br>)."""
        attrs = node.attributes
        if attrs and _is_hidden(attrs):
            return None
        if tag == "br":
            self.run.append(_BR)
            return None
        pos, strength = _element_hints(tag, attrs)
        neg = strength > 0
        is_block = tag in _BLOCK_TAGS
        is_cell = tag in _CELL_TAGS
        # A boilerplate-classed inline element (<span class="caption">)
        # also breaks the text run, so that its words land in a block
        # of their own that can be dropped.
        if is_block or neg:
            self.end_run()
        if is_block:
            self.kind_stack.append(tag)
        elif is_cell:
            self.run.append(" ")
        idx = self.add_element(tag, pos, strength)
        if neg:
            self.neg_stack.append(idx)
        is_link = tag == "a"
        if is_link:
            self.link_depth += 1
        return idx, is_block, is_link, neg, is_cell

    def close(self, element: _Open) -> None:
        """Leave an element: its block range ends here."""
        idx, is_block, is_link, neg, is_cell = element
        if is_block or neg:
            self.end_run()
        if is_block:
            self.kind_stack.pop()
        elif is_cell:
            self.run.append(" ")  # a space either side keeps a row's cells apart on one line
        if is_link:
            self.link_depth -= 1
        if neg:
            self.neg_stack.pop()
        self.el_end[idx] = len(self.texts)

    def finish(self) -> _Flat:
        self.end_run()
        self.el_end[0] = len(self.texts)
        return self


def _flatten(root) -> _Flat:
    """One iterative pre-order walk producing blocks (no recursion: deep junk
    markup must not hit Python's recursion limit). The walk only decides which
    nodes are visited; _FlatBuilder says what entering and leaving each does."""
    builder = _FlatBuilder()
    # Text nodes are about half of all nodes, so their text joins the current
    # run here rather than through a method call.
    run = builder.run
    walking: list[_Open] = []  # the open elements whose children are being walked
    node = root.child
    while node is not None:
        tag = node.tag
        if tag == "-text":
            t = node.text_content
            if t:
                run.append(t)
                if builder.link_depth:
                    builder.run_link += len(t.strip())
        # comments, doctype and nameless nodes (Lexbor gives some no tag) are
        # passed over; skipped tags are left out with their subtree
        elif tag and tag[0] not in "-_!" and tag not in _SKIP_TAGS:
            element = builder.open(node, tag)
            if element is not None:
                if node.child is not None:
                    walking.append(element)
                    node = node.child
                    continue
                builder.close(element)
        # climb until a next sibling exists, closing elements on the way
        while True:
            nxt = node.next
            if nxt is not None:
                node = nxt
                break
            if not walking:
                node = None
                break
            builder.close(walking.pop())
            node = node.parent
            if node is None:
                break
    return builder.finish()


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


def _select(flat: _Flat, junk: list[bool]) -> int:
    """Index of the element whose subtree has the best content score, or -1.

    An element's blocks are the contiguous range [el_start, el_end), so its
    total is a difference of prefix sums: O(blocks + elements) overall. The
    maximum naturally lands on the tightest element that holds all the prose
    while leaving out link-heavy surroundings. Explicit article markup
    (<article>, itemprop=articleBody, "entry-content"...) gets a 10% bonus so
    it wins near-ties against a slightly larger anonymous wrapper.
    """
    texts, links, kinds = flat.texts, flat.links, flat.kinds
    n = len(texts)
    if n == 0 or not flat.el_tag:
        return -1
    prefix = [0.0] * (n + 1)
    acc = 0.0
    for i in range(n):
        acc += _block_value(len(texts[i]), links[i], junk[i], kinds[i] in _HEADINGS)
        prefix[i + 1] = acc
    best, best_score = -1, float("-inf")
    el_start, el_end, el_pos = flat.el_start, flat.el_end, flat.el_pos
    scores = [0.0] * len(el_start)
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
        return best
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
    return hinted if hinted >= 0 else best


def _extract(html: str) -> str:
    tree = _Parser(html)
    body = tree.body
    if body is None:
        return ""
    flat = _flatten(body)
    texts, links, kinds, negs = flat.texts, flat.links, flat.kinds, flat.negs
    junk = _junk_flags(texts, links, kinds)
    c = _select(flat, junk)
    if c < 0:
        return ""
    s, e = flat.el_start[c], flat.el_end[c]

    # prose[i]: non-link characters in blocks [0, i) -- "how much of the
    # container's text is this element", used to overrule class-name hints.
    prose = [0] * (len(texts) + 1)
    acc = 0
    for i in range(len(texts)):
        acc += len(texts[i]) - links[i]
        prose[i + 1] = acc
    total = max(prose[e] - prose[s], 1)
    verdict: dict[int, bool] = {}

    def dropped(j: int) -> bool:
        r = verdict.get(j)
        if r is None:
            share = (prose[flat.el_end[j]] - prose[flat.el_start[j]]) / total
            r = share < (0.8 if flat.el_neg[j] == 2 else 0.3)
            verdict[j] = r
        return r

    out: list[str] = []
    prev_kind = ""
    for i in range(s, e):
        neg = negs[i]
        # Element indices are pre-order, so a boilerplate ancestor with an
        # index above the container's is nested inside it.
        if neg and any(j > c and dropped(j) for j in neg):
            continue
        if junk[i]:
            continue
        kind = kinds[i]
        if kind == "h1":
            continue  # the page title: reported separately, not body text
        if out:
            out.append("\n" if (kind == prev_kind and kind in _LINE_KINDS) else "\n\n")
        out.append(texts[i])
        prev_kind = kind
    return "".join(out)


def html_to_text(html: str, *, on_error=None) -> str:
    """Return the main-content text of an HTML page ("" if there is none).

    Paragraphs are separated by a blank line; headings, list items and table
    rows sit on their own lines. Navigation, headers/footers, share and comment
    widgets and teaser lists are left out. Never raises: malformed, empty or
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
