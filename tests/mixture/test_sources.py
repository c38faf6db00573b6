"""The mixture file: the bundled ones parse, and every mistake is one error naming file and source."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.core.fields import SettingsError
from curate.mixture.build import GPT3_WEIGHTS
from curate.mixture.sources import load_mixture, parse_mixture

REPO = Path(__file__).resolve().parents[2]


def test_the_bundled_mixture_names_the_crawl_and_the_books():
    m = load_mixture(REPO / "mixtures" / "sample.toml")
    assert m.crawl.name == "cc" and [s.name for s in m.references] == ["books"]
    assert [Path(f).name for f in m.references[0].files(REPO)] == sorted(
        p.name for p in (REPO / "sample" / "reference").glob("*.txt.gz"))


def test_gpt3_mixture_is_table_2_2():
    m = load_mixture(REPO / "mixtures" / "gpt3.toml")
    assert m.weights() == GPT3_WEIGHTS
    assert m.crawl.name == "common_crawl"


CRAWL = '[[source]]\nname = "cc"\nkind = "crawl"\nweight = 0.6\n'


@pytest.mark.parametrize("text, message", [
    ("", "no \\[\\[source\\]\\] declared"),
    ("[[source]\n", "not valid TOML"),
    (CRAWL + '[[source]]\nname = "b"\nkind = "novel"\npath = "x"\nweight = 1\n', "source 2 \\(b\\): kind 'novel'"),
    (CRAWL + '[[source]]\nname = "b"\nkind = "jsonl"\nweight = 1\n', "source 2 \\(b\\): kind jsonl needs a path"),
    (CRAWL + '[[source]]\nname = "b"\nkind = "jsonl"\npath = "x"\nweight = 0\n', "weight must be a number above 0"),
    (CRAWL + '[[source]]\nname = "cc"\nkind = "jsonl"\npath = "x"\nweight = 1\n', "name 'cc' declared twice"),
    (CRAWL + '[[source]]\nname = "b"\nkind = "jsonl"\npath = "x"\nweight = 1\nwieght = 2\n', "unknown keys \\['wieght'\\]"),
    ('[[source]]\nname = "b"\nkind = "jsonl"\npath = "x"\nweight = 1\n', "exactly one source must be kind = \"crawl\""),
    ('[[source]]\nname = "cc"\nkind = "crawl"\npath = "x"\nweight = 1\n', "the crawl has no path"),
    ('[[source]]\nname = "../x"\nkind = "crawl"\nweight = 1\n', "name '../x' must be"),
])
def test_mistakes_are_settings_errors_naming_file_and_source(text, message):
    with pytest.raises(SettingsError, match=message) as exc:
        parse_mixture(text, "m.toml")
    assert str(exc.value).startswith("m.toml")


def test_a_path_that_matches_nothing_names_the_source(tmp_path):
    m = parse_mixture(CRAWL + '[[source]]\nname = "b"\nkind = "jsonl"\npath = "none/*.jsonl"\nweight = 1\n')
    with pytest.raises(SettingsError, match="source b: no file matches 'none/\\*.jsonl'"):
        m.references[0].files(tmp_path)
