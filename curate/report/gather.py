"""Everything a run folder holds, read into one dict for the report.

Only the files the stages write are read (stats, markers, reports, manifests,
logs, and the documents for distributions and examples); nothing is
recomputed that a stage already counted, so the report's counters are the
stats files' own. Where a figure is derived here (documents per input after
dedup, say), the stats file it must agree with is named beside it
(``tests/report`` checks both).

>>> gather("/nonexistent/run")["stages"]["filter"] is None
True
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from curate.core.document import DocumentFormatError, read_documents
from curate.core.layout import input_key
from curate.mixture.sources import parse_mixture

STAGES = ("filter", "dedup", "decontam", "shards", "train")
EXAMPLES = 3        # examples shown per reason
SNIPPET = 400       # characters of an example's text
QUALITY_BINS = 20
_CRAWL = re.compile(r"CC-MAIN-\d{4}-\d{2}|CC-\d{4}(?=[-_.])")


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _jsonl(path: Path, limit: int | None = None) -> tuple[int, list[dict]]:
    """(lines, the first ``limit`` records) of a JSONL file; a bad line is counted, not kept."""
    n, rows = 0, []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                n += 1
                if limit is None or len(rows) < limit:
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        rows.append({"reason": f"(unreadable line {n})"})
    except OSError:
        pass
    return n, rows


def _docs(paths: list[Path]):
    for p in paths:
        try:
            yield from read_documents(p, errors=[])
        except (DocumentFormatError, OSError):
            continue


def crawl_of(location: str) -> str:
    """The crawl an input belongs to, from its name or path.

    >>> crawl_of("https://x/crawl-data/CC-MAIN-2020-34/segments/1/warc/a.warc.gz")
    'CC-MAIN-2020-34'
    >>> crawl_of("sample/CC-2008-excerpt.arc.gz"), crawl_of("mine.warc.gz")
    ('CC-2008', 'other')
    """
    m = _CRAWL.search(location)
    return m.group(0) if m else "other"


def snippet(text: str, n: int = SNIPPET) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[:n] + " …"


# --------------------------------------------------------------------------- filter

def _filter(folder: Path) -> dict | None:
    stats = _json(folder / "stats.json")
    config = _json(folder / "config.json")
    if stats is None and config is None:
        return None
    locations = (config or {}).get("inputs", [])
    inputs = []
    languages: dict[str, Counter] = {"kept": Counter(), "dropped (sample)": Counter()}
    lang_scores: list[float] = []
    quality: list[float] = []
    kept_examples: list[dict] = []
    dropped: dict[str, list[dict]] = {}
    dropped_sampled = 0
    for loc in locations:
        key = input_key(loc)
        n_err, errors = _jsonl(folder / "errors" / f"{key}.jsonl", EXAMPLES)
        n_rej, rejected = _jsonl(folder / "rejected" / f"{key}.jsonl")
        dropped_sampled += n_rej
        for r in rejected:
            languages["dropped (sample)"][r.get("language") or "?"] += 1
            rows = dropped.setdefault(r.get("reason", "?"), [])
            if len(rows) < EXAMPLES:
                rows.append({"input": key, "url": r.get("url"), "text": snippet(r.get("text", "")),
                             "language": r.get("language"), "language_score": r.get("language_score")})
        kept = 0
        for d in _docs([folder / "docs" / f"{key}.parquet"]):
            kept += 1
            languages["kept"][d.metadata.get("language") or "?"] += 1
            if d.metadata.get("language_score") is not None:
                lang_scores.append(float(d.metadata["language_score"]))
            if d.metadata.get("quality") is not None:
                quality.append(float(d.metadata["quality"]))
            if len(kept_examples) < EXAMPLES:
                kept_examples.append({"input": key, "url": d.url, "text": snippet(d.text),
                                      "language": d.metadata.get("language"),
                                      "quality": d.metadata.get("quality")})
        inputs.append({"key": key, "location": loc, "crawl": crawl_of(loc),
                       "counters": _json(folder / "stats" / f"{key}.json"),
                       "done": _json(folder / "done" / f"{key}.json"),
                       "errors": n_err, "error_examples": errors, "kept_documents": kept})
    return {"stats": stats or {}, "config": config or {}, "inputs": inputs,
            "languages": {k: dict(v.most_common()) for k, v in languages.items()},
            "language_scores": lang_scores, "quality": quality,
            "kept_examples": kept_examples, "dropped_examples": dropped, "dropped_sampled": dropped_sampled,
            "rejected_rate": (config or {}).get("rejected_rate")}


# --------------------------------------------------------------------------- dedup, decontam

def _by_input(paths: list[Path], keys: dict[str, str]) -> Counter:
    """Documents per filter input (by the archive each came from)."""
    out: Counter = Counter()
    for d in _docs(paths):
        loc = d.metadata.get("warc_file") or ""
        out[keys.get(loc) or input_key(loc) if loc else "(no input)"] += 1
    return out


def _dedup(folder: Path, keys: dict[str, str]) -> dict | None:
    stats = _json(folder / "stats.json")
    if stats is None:
        return None
    reasons: Counter = Counter()
    chosen: dict[str, list] = {}
    files = sorted((folder / "docs").glob("*.parquet"))
    for d in _docs(files):
        reason = d.metadata.get("duplicate")
        if reason:
            reasons[reason] += 1
            if len(chosen.setdefault(reason, [])) < EXAMPLES:
                chosen[reason].append(d)
    # a second pass for the few representatives shown beside them (a cluster is
    # named by its representative's id), instead of holding every text
    wanted = {d.metadata.get("cluster") for docs in chosen.values() for d in docs}
    texts = {d.id: d.text for d in _docs(files) if d.id in wanted}
    shown = {reason: [{"id": d.id, "url": d.url, "text": snippet(d.text), "cluster": d.metadata.get("cluster"),
                       "representative": snippet(texts[d.metadata["cluster"]])
                       if d.metadata.get("cluster") in texts else None} for d in docs]
             for reason, docs in chosen.items()}
    kept_files = sorted((folder / "kept").glob("*.parquet"))
    return {"stats": stats, "removed_by_reason": dict(reasons.most_common()), "examples": shown,
            "kept_by_input": dict(_by_input(kept_files, keys)) if keys else {},
            "step": _json(folder / "step.json")}


def _decontam(folder: Path, keys: dict[str, str]) -> dict | None:
    report = _json(folder / "report.json")
    if report is None:
        return None
    docs = sorted((folder / "docs").glob("*.parquet"))
    return {"report": report, "kept_by_input": dict(_by_input(docs, keys)) if keys else {}}


# --------------------------------------------------------------------------- shards, train

def _shards(folder: Path) -> dict | None:
    m = _json(folder / "manifest.json")
    if m is None:
        return None
    sources = [{"name": s["name"], "weight": s.get("weight"), "tokens": s.get("tokens", {}),
                "documents": s.get("documents", {}), "inputs": s.get("inputs", [])} for s in m.get("sources", [])]
    return {"epochs_table": m.get("epochs_table", []), "sources": sources, "config": m.get("config", {}),
            "tokenizer": {k: v for k, v in (m.get("tokenizer") or {}).items() if k != "merges"}}


def _train(folder: Path) -> dict | None:
    summary = _json(folder / "summary.json")
    log = folder / "log.jsonl"
    if summary is None and not log.exists():
        return None
    train_curve, val_curve = [], {}
    _, rows = _jsonl(log)
    for r in rows:
        if r.get("kind") == "train" and isinstance(r.get("loss"), (int, float)):
            train_curve.append((r["step"], r["loss"]))
        elif r.get("kind") == "val" and isinstance(r.get("loss"), dict):
            for src, v in r["loss"].items():
                val_curve.setdefault(src, []).append((r["step"], v))
    config = _json(folder / "config.json") or {}
    block = (config.get("model") or {}).get("block_size")
    trained = {}
    for src, m in ((summary or {}).get("mixture") or {}).items():
        trained[src] = {"sequences": m.get("sequences"), "epochs": m.get("epochs"),
                        "realised_share": m.get("realised_share"), "target_share": m.get("target_share"),
                        "tokens": m["sequences"] * block if block and m.get("sequences") is not None else None}
    return {"summary": summary or {}, "config": config, "train_curve": train_curve, "val_curve": val_curve,
            "trained": trained, "eval": _json(folder / "eval" / "eval.json")}


# --------------------------------------------------------------------------- the run

def gather(run: str | os.PathLike) -> dict:
    """Everything the report shows, from the run folder ``run``."""
    run = Path(run)
    stages = {s: _json(run / s / "stage.json") for s in STAGES}
    settings = {}
    if (run / "settings").is_dir():
        settings = {p.name: p.read_text(encoding="utf-8").strip() for p in sorted((run / "settings").iterdir())
                    if p.is_file() and not p.name.endswith(".new")}
    flt = _filter(run / "filter")
    keys = {i["location"]: i["key"] for i in (flt or {}).get("inputs", [])}
    dedup, decontam = {}, {}
    for name in sorted(p.name for p in (run / "dedup").iterdir()) if (run / "dedup").is_dir() else []:
        d = _dedup(run / "dedup" / name, keys)
        if d is not None:
            dedup[name] = d
    for name in sorted(p.name for p in (run / "decontam").iterdir()) if (run / "decontam").is_dir() else []:
        d = _decontam(run / "decontam" / name, keys)
        if d is not None:
            decontam[name] = d
    mixture = next((m["mixture"] for m in stages.values() if m and m.get("mixture")), None)
    crawl = _crawl_source(mixture, dedup)
    return {"run": run.name, "path": str(run), "stages": stages, "settings": settings, "mixture": mixture,
            "crawl_source": crawl, "filter": flt, "dedup": dedup, "decontam": decontam,
            "shards": _shards(run / "shards"), "train": _train(run / "train")}


def _crawl_source(mixture: dict | None, dedup: dict) -> str | None:
    """The crawl's source name, from the mixture text the stages recorded."""
    if mixture and mixture.get("text"):
        try:
            return parse_mixture(mixture["text"], mixture.get("path", "")).crawl.name
        except ValueError:
            pass
    return next(iter(dedup), None)
