"""The training mixture: sources, weights, the epochs table, and building the token set.

GPT-3 (Table 2.2) does not train on the corpora in proportion to their size: it
draws a fixed share of training examples from each source, so small high-quality
sources are seen several times and Common Crawl less than once. The weights here
are those shares (normalised to sum to 1), and the epochs a source is repeated
for a token budget is ``weight * budget / tokens(source)``.

>>> m = MixtureConfig.preset("gpt3")
>>> round(m.normalized_weights()["common_crawl"], 4)
0.5941
>>> rows = epochs_table({"a": 100, "b": 50}, {"a": 3, "b": 1}, budget=200)
>>> [(r["source"], r["weight"], r["epochs"]) for r in rows]
[('a', 0.75, 1.5), ('b', 0.25, 1.0)]
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

from curate.core.document import Document, read_documents
from curate.core.files import sha256_file, write_json
from curate.core.ids import id_fraction
from curate.core.progress import Progress
from curate.mixture.shards import SPLITS, ShardFile, read_header, write_source_shards
from curate.mixture.tokenizer import (
    Tokenizer,
    TokenizerConfig,
    tokenizer_info,
    train_tokenizer,
)

# GPT-3 Table 2.2: share of training examples drawn from each source (sums to 1.01
# as printed in the paper; we normalise).
GPT3_WEIGHTS = {
    "common_crawl": 0.60,
    "webtext2": 0.22,
    "books1": 0.08,
    "books2": 0.08,
    "wikipedia": 0.03,
}
GPT3_BUDGET = 300_000_000_000  # tokens GPT-3 was trained for

MANIFEST_FORMAT = "curate-token-shards"
MANIFEST_VERSION = 1


@dataclass
class SourceConfig:
    """One source: its name, document files (paths or globs) and raw weight."""

    name: str
    paths: list[str] = field(default_factory=list)
    weight: float = 0.0
    text_field: str = "text"

    def files(self) -> list[str]:
        """The input files, globs expanded and sorted so order never depends on the file system."""
        out: list[str] = []
        for p in self.paths:
            matches = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
            if not matches:
                raise FileNotFoundError(f"source {self.name}: no file matches {p!r}")
            out.extend(matches)
        for f in out:
            if not os.path.isfile(f):
                raise FileNotFoundError(f"source {self.name}: {f}: no such file")
        return out


@dataclass
class MixtureConfig:
    """Everything that decides the token set; saved, resolved, into the manifest.

    ``max_epochs`` is the repetition above which a warning is printed: GPT-3's own
    mixture peaks at 3.4 epochs (Wikipedia), so 4 flags only the unusual.
    """

    sources: list[SourceConfig] = field(default_factory=list)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    val_fraction: float = 0.005
    budget_tokens: int = GPT3_BUDGET
    max_epochs: float = 4.0
    shard_tokens: int = 1 << 30  # 2 GB of uint16 per .bin
    batch_docs: int = 1024

    @classmethod
    def preset(cls, name: str) -> "MixtureConfig":
        """``gpt3``: Table 2.2 sources and weights (paths to fill in); ``tiny``: small vocab."""
        if name == "gpt3":
            return cls(sources=[SourceConfig(n, [], w) for n, w in GPT3_WEIGHTS.items()])
        if name == "tiny":
            return cls(tokenizer=TokenizerConfig.preset("tiny"), budget_tokens=1_000_000,
                       shard_tokens=1 << 20, batch_docs=256)
        raise ValueError(f"unknown mixture preset {name!r} (gpt3, tiny)")

    @classmethod
    def from_json(cls, obj: dict) -> "MixtureConfig":
        """From a config JSON: ``{"preset": "gpt3", "sources": [{"name", "paths", "weight"}], ...}``.

        A source named like a GPT-3 one and given no weight takes GPT-3's weight.
        """
        obj = dict(obj)
        base = cls.preset(obj.pop("preset", "gpt3"))
        tok = obj.pop("tokenizer", None)
        if isinstance(tok, str):
            base = replace(base, tokenizer=TokenizerConfig.preset(tok))
        elif isinstance(tok, dict):
            tok = dict(tok)
            preset = TokenizerConfig.preset(tok.pop("preset", "gpt3"))
            base = replace(base, tokenizer=replace(preset, **tok))
        srcs = obj.pop("sources", None)
        if srcs is not None:
            sources = []
            for s in srcs:
                paths = s.get("paths", [])
                sources.append(SourceConfig(
                    name=s["name"], paths=[paths] if isinstance(paths, str) else list(paths),
                    weight=float(s.get("weight", GPT3_WEIGHTS.get(s["name"], 0.0))),
                    text_field=s.get("text_field", "text")))
            base = replace(base, sources=sources)
        unknown = set(obj) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown mixture config fields: {', '.join(sorted(unknown))}")
        return replace(base, **obj)

    def to_json(self) -> dict:
        return asdict(self)

    def normalized_weights(self) -> dict[str, float]:
        return normalize({s.name: s.weight for s in self.sources})


def normalize(weights: dict[str, float]) -> dict[str, float]:
    """Weights scaled to sum to 1 (ValueError when none is positive or one is negative)."""
    if any(w < 0 for w in weights.values()):
        raise ValueError("source weights must be >= 0")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("at least one source needs a positive weight")
    return {k: w / total for k, w in weights.items()}


def parse_source(spec: str) -> SourceConfig:
    """``NAME=GLOB[,GLOB...][:WEIGHT]`` from the command line.

    >>> parse_source("books=data/*.jsonl:0.08")
    SourceConfig(name='books', paths=['data/*.jsonl'], weight=0.08, text_field='text')
    """
    if "=" not in spec:
        raise ValueError(f"--source {spec!r}: expected NAME=GLOB[:WEIGHT]")
    name, rest = spec.split("=", 1)
    weight = GPT3_WEIGHTS.get(name, 1.0)
    head, sep, tail = rest.rpartition(":")
    if sep:
        try:
            weight = float(tail)
            rest = head
        except ValueError:
            pass  # a ':' inside the path, not a weight
    return SourceConfig(name=name, paths=[p for p in rest.split(",") if p], weight=weight)


# --------------------------------------------------------------------------- epochs table

def epochs_table(tokens: dict[str, int], weights: dict[str, float], budget: int) -> list[dict]:
    """GPT-3's Table 2.2: per source tokens, normalised weight and epochs elapsed for ``budget``."""
    norm = normalize(weights)
    rows = []
    for name, n in tokens.items():
        w = norm[name]
        epochs = w * budget / n if n else None  # None: a weighted source with no tokens
        rows.append({"source": name, "tokens": n, "weight": w, "epochs": epochs})
    return rows


def format_table(rows: list[dict], budget: int, max_epochs: float | None = None) -> str:
    """The table as text, with a warning line for each source repeated over ``max_epochs``."""
    width = max([len("source")] + [len(r["source"]) for r in rows])
    lines = [f"{'source':<{width}}  {'tokens':>17}  {'weight':>7}  {'epochs @ ' + format(budget, ','):>22}"]
    for r in rows:
        ep = "no tokens" if r["epochs"] is None else f"{r['epochs']:.2f}"
        lines.append(f"{r['source']:<{width}}  {r['tokens']:>17,}  {r['weight']:>7.1%}  {ep:>22}")
    for r in rows:
        if r["epochs"] is None and r["weight"] > 0:
            lines.append(f"warning: {r['source']} has weight {r['weight']:.1%} but no tokens")
        elif max_epochs is not None and r["epochs"] is not None and r["epochs"] > max_epochs:
            lines.append(f"warning: {r['source']} would be repeated {r['epochs']:.2f} epochs "
                         f"(more than {max_epochs:g}); add data or lower its weight")
    return "\n".join(lines)


# --------------------------------------------------------------------------- build

def _source_docs(src: SourceConfig, files: list[str]) -> Iterator[Document]:
    for f in files:
        yield from read_documents(f, text_field=src.text_field)


def _inputs_digest(files: list[str]) -> str:
    """sha256 over the input files' bytes: the reuse key of a finished source."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode() + b"\0" + sha256_file(f).encode())
    return h.hexdigest()


@dataclass
class BuildPlan:
    """What ``build`` (and the Beam job) decided before writing any source.

    ``pending`` lists the sources whose shards must be (re)written; the others
    have a ``done.json`` matching their inputs, the tokenizer and the settings.
    """

    config: MixtureConfig
    out: Path
    weights: dict[str, float]
    files: dict[str, list[str]]
    keys: dict[str, dict]
    tokenizer_sha256: str
    pending: list[str]

    @property
    def tokenizer_path(self) -> Path:
        return self.out / "tokenizer.json"

    def source(self, name: str) -> SourceConfig:
        return next(s for s in self.config.sources if s.name == name)


def prepare(config: MixtureConfig, out: str | os.PathLike, tokenizer_path: str | os.PathLike | None = None,
            log=print) -> BuildPlan:
    """Check the config, train (or reuse) the tokenizer, and find the sources already written."""
    out = Path(out)
    if not config.sources:
        raise ValueError("the mixture has no sources")
    names = [s.name for s in config.sources]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate source names: {names}")
    weights = config.normalized_weights()
    files = {s.name: s.files() for s in config.sources}
    digests = {s.name: _inputs_digest(files[s.name]) for s in config.sources}
    out.mkdir(parents=True, exist_ok=True)  # only once the sources are known to exist

    tok_path = out / "tokenizer.json"
    if tokenizer_path is not None:
        tok = Tokenizer.load(tokenizer_path)  # a tokenizer.json, or GPT-2's files in a folder
        tok.save(tok_path)
    else:
        tok_key = {"config": config.tokenizer.to_json(), "inputs": digests}
        marker = out / "tokenizer.done.json"
        if tok_path.exists() and marker.exists() and json.loads(marker.read_text()) == {
                **tok_key, "sha256": sha256_file(tok_path)}:
            log(f"tokenizer: reusing {tok_path}")
        else:
            frac = config.tokenizer.train_fraction
            texts = (d.text for s in config.sources for d in _source_docs(s, files[s.name])
                     if frac >= 1.0 or id_fraction(d.id, "tokenizer") < frac)
            log(f"tokenizer: training byte-level BPE, vocab {config.tokenizer.vocab_size:,}")
            tok = train_tokenizer(texts, config.tokenizer)
            write_json(marker, {**tok_key, "sha256": tok.save(tok_path)})
    tok_sha = sha256_file(tok_path)

    keys, pending = {}, []
    for src in config.sources:
        keys[src.name] = key = {"inputs": digests[src.name], "tokenizer_sha256": tok_sha,
                                "val_fraction": config.val_fraction, "shard_tokens": config.shard_tokens}
        done = _done(out, src.name)
        if done is not None and done.get("key") == key and all(
                (out / f["bin"]).exists() and (out / f["idx"]).exists()
                for split in SPLITS for f in done["files"][split]):
            log(f"{src.name}: reusing shards ({sum(done['tokens'].values()):,} tokens)")
        else:
            (out / src.name / "done.json").unlink(missing_ok=True)
            pending.append(src.name)
    return BuildPlan(config, out, weights, files, keys, tok_sha, pending)


def _done(out: Path, name: str) -> dict | None:
    marker = out / name / "done.json"
    return json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else None


def finish_source(plan: BuildPlan, name: str, res, log=print) -> dict:
    """Record a written source (``done.json``) and delete shards left by an earlier, larger run."""
    result = {"key": plan.keys[name], "tokens": res.tokens, "documents": res.documents,
              "files": {s: [asdict(f) for f in res.files[s]] for s in SPLITS}}
    sdir = plan.out / name
    keep = {Path(f[k]).name for s in SPLITS for f in result["files"][s] for k in ("bin", "idx")}
    for stale in list(sdir.glob("*.bin")) + list(sdir.glob("*.idx")):
        if stale.name not in keep:
            stale.unlink()
    write_json(sdir / "done.json", result)
    log(f"{name}: {res.documents['train']:,} train / {res.documents['val']:,} val docs, "
        f"{res.tokens['train']:,} / {res.tokens['val']:,} tokens")
    return result


def write_manifest(plan: BuildPlan) -> dict:
    """``manifest.json`` from every source's ``done.json``; returns the manifest."""
    sources_out = []
    for src in plan.config.sources:
        result = _done(plan.out, src.name)
        if result is None or result.get("key") != plan.keys[src.name]:
            raise RuntimeError(f"{src.name}: shards not written (no matching {src.name}/done.json)")
        sources_out.append({
            "name": src.name, "weight": plan.weights[src.name], "weight_raw": src.weight,
            "inputs": plan.files[src.name], "tokens": result["tokens"], "documents": result["documents"],
            "files": result["files"],
        })
    train_tokens = {s["name"]: s["tokens"]["train"] for s in sources_out}
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "tokenizer": tokenizer_info(plan.tokenizer_path),
        "sources": sources_out,
        "epochs_table": epochs_table(train_tokens, {s.name: s.weight for s in plan.config.sources},
                                     plan.config.budget_tokens),
        "config": plan.config.to_json(),
    }
    write_json(plan.out / "manifest.json", manifest)
    return manifest


def build(config: MixtureConfig, out: str | os.PathLike, tokenizer_path: str | os.PathLike | None = None,
          log=print, progress: bool = False) -> dict:
    """Train (or reuse) the tokenizer, write every source's shards and ``manifest.json``.

    Finished work is reused: the tokenizer when ``tokenizer.done.json`` matches its
    inputs and config, a source when its ``done.json`` matches its inputs and the
    tokenizer's hash, so a rerun with the same inputs rewrites nothing and the
    manifest comes out byte-identical. Returns the manifest.
    """
    plan = prepare(config, out, tokenizer_path, log)
    tok = Tokenizer.load(plan.tokenizer_path)
    if plan.pending:
        log(f"encoder: {tok.backend}")
    for name in plan.pending:
        src = plan.source(name)
        bar = Progress(f"shards {name}", enabled=progress, show_kept=False)
        res = write_source_shards(_source_docs(src, plan.files[name]), tok, plan.out / name, root=plan.out,
                                  val_fraction=config.val_fraction, shard_tokens=config.shard_tokens,
                                  batch_docs=config.batch_docs, progress=bar.update)
        if progress:
            log(bar.done_line())
        finish_source(plan, name, res, log)
    return write_manifest(plan)


# --------------------------------------------------------------------------- reading back

def load_manifest(path: str | os.PathLike) -> dict:
    manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: not a {MANIFEST_FORMAT} manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: manifest version {manifest.get('version')}, expected {MANIFEST_VERSION}")
    return manifest


def verify_manifest(path: str | os.PathLike) -> list[str]:
    """Problems found checking every file's sha256, header and counts (empty: all good)."""
    root = Path(path).parent
    manifest = load_manifest(path)
    problems = []
    tok = manifest["tokenizer"]
    if sha256_file(root / tok["path"]) != tok["sha256"]:
        problems.append(f"{tok['path']}: sha256 differs from the manifest")
    for src in manifest["sources"]:
        for split in SPLITS:
            for f in src["files"][split]:
                for kind, count in (("bin", f["tokens"]), ("idx", f["documents"])):
                    p = root / f[kind]
                    if not p.exists():
                        problems.append(f"{f[kind]}: missing")
                        continue
                    if sha256_file(p) != f[f"{kind}_sha256"]:
                        problems.append(f"{f[kind]}: sha256 differs from the manifest")
                    try:
                        if read_header(p)[3] != count:
                            problems.append(f"{f[kind]}: header count differs from the manifest")
                    except ValueError as exc:
                        problems.append(str(exc))
    return problems


def shard_files(manifest: dict, source: str, split: str = "train") -> list[ShardFile]:
    """The shards of one source and split, as ShardFile records."""
    for s in manifest["sources"]:
        if s["name"] == source:
            return [ShardFile(**f) for f in s["files"][split]]
    raise KeyError(source)

