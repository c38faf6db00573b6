"""Evaluation of a quality model on held-out documents, with plots.

``evaluate`` gives ROC AUC, precision/recall/F1 of the reference class at 0.5,
the expected (``mean((2 - s) ** -alpha)``) and realised (the seeded Pareto rule
applied) keep rates of positives and negatives, the same per source, and the
worst mistakes (lowest-scored reference documents, highest-scored crawl
documents) so the reasons for what fails can be read, not guessed.
``write_report`` saves ``report.json``, ``report.md`` and PNG plots (score
histograms per source, ROC curve).

>>> m = evaluate(np.array([0.9, 0.8, 0.2, 0.4]), np.array([1, 1, 0, 0]), ["a", "a", "b", "b"], ["1", "2", "3", "4"])
>>> m["auc"], m["f1"]
(1.0, 1.0)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from classifiers.keep import DEFAULT_ALPHA, keep_probability, pareto_keep


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(y.tolist())) < 2:
        return None
    return round(float(roc_auc_score(y, s)), 4)


def evaluate(scores: np.ndarray, labels: np.ndarray, groups: Sequence[str], ids: Sequence[str],
             alpha: float = DEFAULT_ALPHA, texts: Sequence[str] | None = None, worst: int = 5) -> dict:
    """Metrics of ``scores`` (P(reference)) against ``labels`` (1 reference, 0 crawl)."""
    from sklearn.metrics import precision_recall_fscore_support

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    pred = (s >= 0.5).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    kept = np.array([pareto_keep(sc, i, alpha) for sc, i in zip(s, ids)], dtype=bool)
    expected = keep_probability(s, alpha)

    def rates(m: np.ndarray) -> dict:
        if not m.any():
            return {"n": 0}
        return {"n": int(m.sum()), "mean_score": round(float(s[m].mean()), 4),
                "keep_expected": round(float(expected[m].mean()), 4),
                "keep_realised": round(float(kept[m].mean()), 4)}

    out = {
        "n": int(len(y)), "n_positive": int((y == 1).sum()), "n_negative": int((y == 0).sum()),
        "auc": _auc(y, s), "precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
        "accuracy": round(float((pred == y).mean()), 4) if len(y) else None, "alpha": alpha,
        "positive": rates(y == 1), "negative": rates(y == 0), "sources": {},
    }
    g = np.asarray(groups)
    for name in sorted(set(groups)):
        m = g == name
        row = rates(m)
        row["label"] = "positive" if y[m].mean() >= 0.5 else "negative"
        # AUC of this source against the whole other class: which source is hard
        other = y != (1 if row["label"] == "positive" else 0)
        row["auc_vs_other_class"] = _auc(y[m | other], s[m | other])
        out["sources"][name] = row
    if texts is not None and worst:
        def show(order):
            return [{"id": ids[i], "source": groups[i], "score": round(float(s[i]), 4),
                     "text": " ".join(texts[i][:300].split())} for i in order]
        pos, neg = np.where(y == 1)[0], np.where(y == 0)[0]
        out["worst_positives"] = show(pos[np.argsort(s[pos])][:worst])
        out["worst_negatives"] = show(neg[np.argsort(-s[neg])][:worst])
    return out


def plot_histograms(scores: np.ndarray, groups: Sequence[str], labels: np.ndarray, path: Path, title: str) -> None:
    """Score histogram per source (reference sources solid, crawl sources dashed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(0, 1, 41)
    g = np.asarray(groups)
    for name in sorted(set(groups)):
        m = g == name
        pos = labels[m].mean() >= 0.5
        ax.hist(scores[m], bins=bins, histtype="step", linewidth=1.6, density=True,
                linestyle="-" if pos else "--", label=f"{name} ({'ref' if pos else 'crawl'}, n={m.sum()})")
    ax.set_xlabel("quality score P(reference)")
    ax.set_ylabel("density")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (y, s) in curves.items():
        if len(set(np.asarray(y).tolist())) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {_auc(np.asarray(y), np.asarray(s))})")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
    ax.set_xlabel("false positive rate (crawl kept as reference)")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict) -> str:
    """A readable summary of ``report`` (the dict ``write_report`` saves)."""
    lines = [f"# Quality model report ({report.get('kind', '?')})", ""]
    for name, ev in report["evaluations"].items():
        lines += [f"## {name}", "",
                  f"documents: {ev['n_positive']} reference, {ev['n_negative']} crawl; "
                  f"ROC AUC **{ev['auc']}**; at 0.5: precision {ev['precision']}, recall {ev['recall']}, F1 {ev['f1']}",
                  "", f"Pareto rule (alpha={ev['alpha']}): keep rate expected / realised",
                  "", "| source | class | n | mean score | keep expected | keep realised | AUC vs other class |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for cls in ("positive", "negative"):
            r = ev[cls]
            if r["n"]:
                lines.append(f"| **all** | {cls} | {r['n']} | {r['mean_score']} | {r['keep_expected']} | {r['keep_realised']} | |")
        for src, r in ev["sources"].items():
            lines.append(f"| {src} | {r['label']} | {r['n']} | {r['mean_score']} | {r['keep_expected']} | "
                         f"{r['keep_realised']} | {r['auc_vs_other_class']} |")
        for key, title in (("worst_positives", "Lowest-scored reference documents"),
                           ("worst_negatives", "Highest-scored crawl documents")):
            if ev.get(key):
                lines += ["", f"{title}:", ""]
                lines += [f"- `{w['id']}` ({w['source']}, {w['score']}): {w['text'][:200]}" for w in ev[key]]
        lines.append("")
    if report.get("top_features"):
        tf = report["top_features"]
        lines += ["## Most weighted features", "",
                  "reference-like: " + "; ".join(f"{' / '.join(n) or '?'} ({w:+.2f})" for n, w in tf["positive"]),
                  "", "crawl-like: " + "; ".join(f"{' / '.join(n) or '?'} ({w:+.2f})" for n, w in tf["negative"]), ""]
    lines += ["Plots: " + ", ".join(f"`{p}`" for p in report.get("plots", [])), ""]
    return "\n".join(lines)


def top_features(model, texts: Sequence[str], k: int = 20) -> dict | None:
    """The most weighted features, as words.

    LR: the buckets with the largest / smallest weights, named by hashing the
    given texts again. fastText: words whose vectors push hardest towards either
    label (output row difference dotted with the word vector).
    """
    if model.kind == "lr":
        pos, neg = model.top_features(k)
        names = model.featurizer.feature_names(texts, list(pos) + list(neg))
        return {"positive": [(names[int(b)], float(model.coef[b])) for b in pos],
                "negative": [(names[int(b)], float(model.coef[b])) for b in neg]}
    ft = model.ft
    out = ft.get_output_matrix()  # (labels, dim)
    labels = list(ft.get_labels())
    if model.LABEL_POS not in labels or model.LABEL_NEG not in labels:
        return None
    direction = out[labels.index(model.LABEL_POS)] - out[labels.index(model.LABEL_NEG)]
    words = list(ft.get_words())[:50000]
    w = np.array([float(np.dot(ft.get_word_vector(x), direction)) for x in words])
    order = np.argsort(w)
    return {"positive": [([words[i]], float(w[i])) for i in order[::-1][:k]],
            "negative": [([words[i]], float(w[i])) for i in order[:k]]}


def write_report(directory: Path, kind: str, evaluations: dict[str, dict], plots_data: dict[str, tuple],
                 top: dict | None = None, extra: dict | None = None) -> dict:
    """Save report.json, report.md and the PNGs under ``directory``; returns the report.

    ``plots_data`` maps an evaluation name to (scores, labels, groups).
    """
    directory.mkdir(parents=True, exist_ok=True)
    plots = []
    for name, (s, y, g) in plots_data.items():
        fname = f"hist_{name}.png"
        plot_histograms(np.asarray(s), g, np.asarray(y), directory / fname, f"{kind}: scores on {name}")
        plots.append(fname)
    if plots_data:
        plot_roc({n: (y, s) for n, (s, y, g) in plots_data.items()}, directory / "roc.png")
        plots.append("roc.png")
    report = {"kind": kind, "evaluations": evaluations, "plots": plots, "top_features": top}
    report.update(extra or {})
    (directory / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    (directory / "report.md").write_text(markdown(report))
    return report
