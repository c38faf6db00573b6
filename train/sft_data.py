"""A supervised fine-tuning set from WikiText: write a Wikipedia section given its heading.

    python -m train.sft_data --out out/sft/wikitext_sections.jsonl [--wikitext FILE ...]

Each example's prompt is an article's title and a section's heading, in
Wikipedia's wikitext markup, and its completion is the first paragraph of that
section (the lead paragraph for the article's introduction)::

    {"prompt": "Homarus gammarus\\n\\n== Description ==\\n", "completion": "Homarus gammarus is a large ...",
     "group": "Homarus gammarus"}

It is a real conditional task (the paragraph depends on the title and the
heading) made from a reference corpus this project ships in ``../shared/data``
(WikiText-2's validation and test articles, Wikipedia Good and Featured
articles), not from a benchmark's test split. ``group`` is the article, so a
fine-tuning run holds out whole articles. WikiText's ``@-@``, ``@,@`` and
``@.@`` markers are turned back into the characters they stand for; its other
conventions (spaces around punctuation, ``<unk>``) are the corpus's own and stay.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path
from typing import Iterable, Iterator

REPO = Path(__file__).resolve().parents[1]
WIKITEXT = [REPO.parent / "shared" / "data" / "reference" / "wikipedia" / f"wikitext-2_{s}.txt.gz"
            for s in ("valid", "test")]
_HEADING = re.compile(r"^ ?(=(?: =)*) (.+?) \1 ?$")
_MARKERS = {" @-@ ": "-", " @,@ ": ",", " @.@ ": "."}


def detokenize(text: str) -> str:
    """WikiText's number and hyphen markers as plain characters.

    >>> detokenize("a 1 @,@ 000 @-@ year span of 2 @.@ 5 km")
    'a 1,000-year span of 2.5 km'
    """
    for k, v in _MARKERS.items():
        text = text.replace(k, v)
    return text.strip()


def section_pairs(lines: Iterable[str]) -> Iterator[dict]:
    """(title + heading -> first paragraph) examples of WikiText lines.

    >>> lines = [" = Cat = ", " ", " The cat is small . ", " = = Diet = = ", " Cats eat mice . ", " More . "]
    >>> [(r["prompt"], r["completion"]) for r in section_pairs(lines)]
    [('Cat\\n\\n', 'The cat is small .'), ('Cat\\n\\n== Diet ==\\n', 'Cats eat mice .')]
    """
    title, heading, waiting = None, None, False
    for raw in lines:
        line = raw.rstrip("\n")
        m = _HEADING.match(line)
        if m:
            level = m.group(1).count("=")
            name = detokenize(m.group(2))
            if level == 1:
                title, heading, waiting = name, None, True
            else:
                heading, waiting = f"{'=' * level} {name} {'=' * level}", True
            continue
        text = detokenize(line)
        if not text or not waiting or title is None:
            continue
        prompt = f"{title}\n\n" + (f"{heading}\n" if heading else "")
        yield {"prompt": prompt, "completion": text, "group": title}
        waiting = False


def build(paths: Iterable[str | Path]) -> list[dict]:
    """Every example of the WikiText files (gzip or plain), in file order."""
    out = []
    for path in paths:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            out.extend(section_pairs(fh))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.sft_data", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="JSONL to write")
    ap.add_argument("--wikitext", action="append", help="WikiText file (default: WikiText-2 valid + test "
                                                        "from ../shared/data)")
    args = ap.parse_args(argv)
    paths = [Path(p) for p in (args.wikitext or WIKITEXT)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"sft_data: error: {missing[0]}: no such file", file=sys.stderr)
        return 2
    rows = build(paths)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows):,} examples from {len({r['group'] for r in rows}):,} articles to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
