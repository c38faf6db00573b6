"""The run report as one self-contained HTML page (inline CSS and SVG, no script, no network).

Every count that a stats file holds is printed from it and carries where it
came from: ``data-src`` (the file, relative to the run folder), ``data-key``
(the path inside it, ``/``-separated, list items by index) and ``data-value``
(the exact value), so a test, or a curious reader, can check the page against
the files. Figures computed here (documents per input after dedup, tokens
trained on) carry ``data-derived`` instead and name their inputs in the text.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone

from curate.report.svg import PALETTE, histogram, hbars, lines

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f2937;background:#f8fafc}
main{max-width:1100px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:18px;margin:30px 0 8px;border-bottom:2px solid #e5e7eb;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:#6b7280}.chips span{display:inline-block;padding:3px 10px;margin:4px 6px 4px 0;border-radius:12px;
font-size:12px;background:#e5e7eb}.chips .ok{background:#d1fae5;color:#065f46}.chips .no{background:#fee2e2;
color:#991b1b}
table{border-collapse:collapse;margin:6px 0 12px;background:#fff;font-size:13px}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.chart{display:block;margin:4px 0 10px;font-size:11px}.chart text{fill:#374151}.chart .v{fill:#6b7280}
.chart .axis{stroke:#9ca3af}.cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid
#e5e7eb;border-radius:8px;padding:10px 14px;min-width:140px}.card b{display:block;font-size:20px}
.ex{display:grid;grid-template-columns:1fr 1fr;gap:12px}.doc{background:#fff;border:1px solid #e5e7eb;
border-left:4px solid #059669;border-radius:4px;padding:6px 10px;margin:6px 0;font-size:12.5px}
.doc.drop{border-left-color:#dc2626}.doc .meta{color:#6b7280;font-size:11.5px;word-break:break-all}
.tag{display:inline-block;background:#fee2e2;color:#991b1b;border-radius:3px;padding:0 5px;font-size:11px}
details{margin:6px 0}pre{background:#fff;border:1px solid #e5e7eb;padding:8px;overflow:auto;font-size:12px;
max-height:420px}nav a{margin-right:12px;color:#2563eb;text-decoration:none;font-size:13px}
.note{color:#6b7280;font-size:12.5px;margin:2px 0 8px}
"""


def esc(s) -> str:
    return html.escape("" if s is None else str(s), quote=True)


def fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def num(value, src: str | None = None, key: str | None = None) -> str:
    """A number cell; with ``src``/``key`` it names the stats file entry it shows."""
    if src is None:
        attrs = ' data-derived="1"' if value is not None else ""
    else:
        attrs = f' data-src="{esc(src)}" data-key="{esc(key)}" data-value="{esc(json.dumps(value))}"'
    return f'<td class="n"{attrs}>{esc(fmt(value))}</td>'


def ptr(*parts) -> str:
    """A JSON-pointer-like path (RFC 6901 escapes: ``~`` is ``~0``, ``/`` is ``~1``).

    >>> ptr("counters", "skipped:mime:application/pdf")
    'counters/skipped:mime:application~1pdf'
    """
    return "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def entry(obj: dict | None, key: str, src: str, path: str) -> str:
    """The number cell for ``obj[key]`` from file ``src`` at ``path``; a counter the file
    does not hold is a zero that names no source (nothing was counted)."""
    if obj is not None and key in obj:
        return num(obj[key], src, path)
    return num(0 if obj is not None else None)


def table(head: list[str], rows: list[str], numeric_from: int = 1) -> str:
    ths = "".join(f'<th class="{"n" if i >= numeric_from else ""}">{esc(h)}</th>' for i, h in enumerate(head))
    return f"<table><tr>{ths}</tr>{''.join(rows)}</table>"


def doc_box(d: dict, dropped: bool = False, reason: str | None = None) -> str:
    meta = " · ".join(esc(x) for x in (d.get("input"), d.get("url"),
                                         f"lang {d['language']}" if d.get("language") else None,
                                         f"quality {d['quality']:.3f}" if isinstance(d.get("quality"), float)
                                         else None) if x)
    tag = f'<span class="tag">{esc(reason)}</span> ' if reason else ""
    return (f'<div class="doc{" drop" if dropped else ""}"><div class="meta">{tag}{meta}</div>'
            f'{esc(d.get("text"))}</div>')


# --------------------------------------------------------------------------- sections

def _header(data: dict) -> str:
    chips = []
    for stage, m in data["stages"].items():
        if m:
            chips.append(f'<span class="ok">{stage} ✓ {m.get("seconds", 0):.1f}s</span>')
        else:
            chips.append(f'<span class="no">{stage}: not done</span>')
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("funnel", "Funnel"), ("filter", "Filter"), ("dist", "Distributions"), ("dedup", "Dedup"),
        ("decontam", "Decontamination"), ("mixture", "Mixture"), ("train", "Training"), ("errors", "Errors"),
        ("time", "Time"), ("config", "Configuration")))
    return (f"<h1>Run report: {esc(data['run'])}</h1><div class='sub'>{esc(data['path'])} · built {now}</div>"
            f"<div class='chips'>{''.join(chips)}</div><nav>{nav}</nav>")


def _filter_steps(c: dict) -> list[tuple[str, int | None, str | None]]:
    """(step, documents after it, counter key) for the filter's decisions, from its counters."""
    docs = c.get("docs")
    if docs is None:
        return []
    lang = c.get("dropped:language", 0) + c.get("dropped:language_score", 0)
    heur = sum(v for k, v in c.items() if k.startswith("dropped:") and k not in (
        "dropped:language", "dropped:language_score", "dropped:quality"))
    return [("documents with text", docs, "docs"),
            ("after language id", docs - lang, None),
            ("after heuristic filters", docs - lang - heur, None),
            ("kept (quality, Pareto rule)", c.get("kept", 0), "kept")]


def _funnel(data: dict) -> str:
    f, crawl = data["filter"], data["crawl_source"]
    if not f:
        return "<h2 id='funnel'>Funnel</h2><p>The filter stage has not run.</p>"
    c = f["stats"].get("counters", {})
    src = "filter/stats.json"
    rows, bars = [], []

    def add(label, cell, value):
        rows.append(f"<tr><td>{esc(label)}</td>{cell}</tr>")
        if value is not None:
            bars.append((label, value))

    add("records read", entry(c, "read:records", src, ptr("counters", "read:records")), c.get("read:records", 0))
    for label, value, key in _filter_steps(c):
        add(label, entry(c, key, src, ptr("counters", key)) if key else num(value), value)
    dd = data["dedup"].get(crawl) if crawl else None
    if dd:
        add("after near-duplicate removal", entry(dd["stats"], "kept", f"dedup/{crawl}/stats.json", "kept"),
            dd["stats"].get("kept", 0))
    dc = data["decontam"].get(crawl) if crawl else None
    if dc:
        cn = dc["report"].get("counters", {})
        add("after decontamination", entry(cn, "kept", f"decontam/{crawl}/report.json", "counters/kept"),
            cn.get("kept", 0))
    tok_rows = []
    sh = data["shards"]
    if sh:
        for i, s in enumerate(sh["sources"]):
            if s["name"] == crawl:
                tok_rows.append(f"<tr><td>tokens in the shards (train split)</td>"
                                f"{num(s['tokens'].get('train'), 'shards/manifest.json', f'sources/{i}/tokens/train')}</tr>")
    tr = data["train"]
    if tr and crawl in tr["trained"]:
        tok_rows.append(f"<tr><td>tokens trained on (sequences × context)</td>"
                        f"{num(tr['trained'][crawl]['tokens'])}</tr>")
    out = [f"<h2 id='funnel'>Funnel: the crawl ({esc(crawl)}) from records read to tokens trained on</h2>",
           "<div class='ex'><div>", table(["step", "documents"], rows), table(["tokens", ""], tok_rows),
           "</div><div>", hbars(bars, width=520, label_w=200, log=True), "<p class='note'>bar lengths on a log scale"
           "</p></div></div>"]
    out.append(_funnel_by(data, "crawl"))
    out.append(_funnel_by(data, "input"))
    return "".join(out)


def _funnel_by(data: dict, by: str) -> str:
    f, crawl = data["filter"], data["crawl_source"]
    dd = data["dedup"].get(crawl, {}).get("kept_by_input", {}) if crawl in data["dedup"] else None
    dc = data["decontam"].get(crawl, {}).get("kept_by_input", {}) if crawl in data["decontam"] else None
    groups: dict[str, list[dict]] = {}
    for inp in f["inputs"]:
        groups.setdefault(inp["crawl"] if by == "crawl" else inp["key"], []).append(inp)
    rows = []
    for name, inps in groups.items():
        def total(key):
            return sum((i["counters"] or {}).get(key, 0) for i in inps)
        if by == "input":
            i = inps[0]
            c = i["counters"]
            s = f"filter/stats/{i['key']}.json" if c is not None else None  # None: no stats for it (yet)
            cells = "".join(entry(c, k, s, ptr(k)) for k in ("read:records", "docs", "kept"))
            label = f"{esc(name)}<div class='note'>{esc(i['location'])}</div>"
        else:
            cells = num(total("read:records")) + num(total("docs")) + num(total("kept"))
            label = esc(name)
        keys = [i["key"] for i in inps]
        after_d = sum(dd.get(k, 0) for k in keys) if dd is not None else None
        after_c = sum(dc.get(k, 0) for k in keys) if dc is not None else None
        errors = sum(i["errors"] for i in inps)
        rows.append(f"<tr><td>{label}</td>{cells}{num(after_d)}{num(after_c)}{num(errors)}</tr>")
    title = "per crawl" if by == "crawl" else "per input file"
    return (f"<h3>Funnel {title}</h3>" + table([by, "records read", "documents", "kept by filter", "after dedup",
                                                  "after decontam", "errors"], rows))


def _filter(data: dict) -> str:
    f = data["filter"]
    if not f:
        return ""
    c = f["stats"].get("counters", {})
    docs = c.get("docs") or 0
    groups = [("dropped", "Documents dropped (every reason)"), ("skipped", "Records skipped before extraction"),
              ("read", "Reading"), ("fetch", "Fetching"), ("quality", "Quality scoring")]
    out = ["<h2 id='filter'>Filter: every drop and skip reason</h2>"]
    named = {p for p, _ in groups}
    # any other counter, so that nothing the job counted is left off the page
    groups.append(("", "Other counters"))
    for prefix, title in groups:
        keys = sorted((k for k in c if (k.split(":")[0] == prefix if prefix else
                                         k.split(":")[0] not in named and k not in ("docs", "kept"))),
                      key=lambda k: (-c[k], k))
        if not keys:
            continue
        rows = []
        for k in keys:
            share = f"{100 * c[k] / docs:.1f}%" if prefix == "dropped" and docs else ""
            rows.append(f"<tr><td>{esc(k)}</td>{num(c[k], 'filter/stats.json', ptr('counters', k))}"
                        f"<td class='n'>{share}</td></tr>")
        out.append(f"<h3>{title}</h3>")
        out.append("<div class='ex'><div>" + table(["counter", "count", "of documents"], rows) + "</div><div>"
                   + (hbars([(k.split(':', 1)[1], c[k]) for k in keys], width=520, label_w=200,
                            color=PALETTE[1] if prefix == "dropped" else PALETTE[6]) if prefix in
                      ("dropped", "skipped") else "") + "</div></div>")
    rate = f["rejected_rate"]
    out.append("<h3>Kept and dropped, side by side</h3>")
    out.append(f"<p class='note'>Dropped examples come from the filter job's seeded sample of rejected documents "
               f"(rate {esc(rate)}; {f['dropped_sampled']:,} sampled); skipped records are not documents and have "
               f"no text to show.</p>")
    kept = "".join(doc_box(d) for d in f["kept_examples"]) or "<p class='note'>none kept</p>"
    dropped = "".join(doc_box(d, True, reason) for reason, ds in sorted(f["dropped_examples"].items())
                      for d in ds) or "<p class='note'>no dropped document in the sample</p>"
    out.append(f"<div class='ex'><div><h3>kept</h3>{kept}</div><div><h3>dropped, with the reason</h3>"
               f"{dropped}</div></div>")
    return "".join(out)


def _distributions(data: dict) -> str:
    f = data["filter"]
    if not f:
        return ""
    out = ["<h2 id='dist'>Language and quality</h2><div class='ex'><div>"]
    for name, counts in f["languages"].items():
        rows = list(counts.items())[:15]
        if rows:
            out.append(f"<h3>languages: {esc(name)}</h3>" + hbars(rows, width=480, label_w=60,
                                                                   color=PALETTE[2 if name == 'kept' else 1]))
    out.append("</div><div><h3>scores of kept documents</h3>")
    out.append(histogram(f["language_scores"], label="language id score"))
    out.append(histogram(f["quality"], label="quality score (classifier)", color=PALETTE[4]))
    out.append("<p class='note'>The filter job records scores only on the documents it keeps (and language on the "
               "rejected sample), so dropped documents' quality scores are not shown.</p></div></div>")
    return "".join(out)


def _dedup(data: dict) -> str:
    if not data["dedup"]:
        return "<h2 id='dedup'>Dedup</h2><p>The dedup stage has not run.</p>"
    out = ["<h2 id='dedup'>Near-duplicate removal</h2>"]
    for name, d in data["dedup"].items():
        s = d["stats"]
        src = f"dedup/{name}/stats.json"
        against = "" if name == data["crawl_source"] else " (against the crawl's kept pages)"
        rows = [f"<tr><td>documents</td>{num(s.get('documents'), src, 'documents')}</tr>",
                f"<tr><td>kept</td>{num(s.get('kept'), src, 'kept')}</tr>"]
        rows += [f"<tr><td>removed: {esc(r)}</td>{num(n)}</tr>" for r, n in d["removed_by_reason"].items()]
        hist = s.get("cluster_size_histogram", {})
        out.append(f"<h3>{esc(name)}{against}</h3><div class='ex'><div>{table(['', 'count'], rows)}</div><div>"
                   + hbars([(f"size {k}", v) for k, v in hist.items()], width=480, label_w=90, log=True)
                   + "<p class='note'>clusters by size (log scale)</p></div></div>")
        for reason, exs in d["examples"].items():
            for e in exs:
                rep = (doc_box({"text": e["representative"], "url": f"kept: {e['cluster']}"})
                       if e["representative"] else "<p class='note'>representative outside this source "
                       f"({esc(e['cluster'])})</p>")
                out.append(f"<div class='ex'><div>{rep}</div><div>{doc_box(e, True, reason)}</div></div>")
    return "".join(out)


def _decontam(data: dict) -> str:
    if not data["decontam"]:
        return "<h2 id='decontam'>Decontamination</h2><p>The decontam stage has not run.</p>"
    rows, grams = [], []
    for name, d in data["decontam"].items():
        src = f"decontam/{name}/report.json"
        for bench, r in d["report"].get("benchmarks", {}).items():
            k = ptr("benchmarks", bench)
            rows.append(f"<tr><td>{esc(name)}</td><td>{esc(bench)}</td>{num(r.get('docs_touched'), src, k + '/docs_touched')}"
                        f"{num(r.get('docs_dropped'), src, k + '/docs_dropped')}"
                        f"{num(r.get('chars_removed'), src, k + '/chars_removed')}"
                        f"{num(r.get('distinct_ngrams'), src, k + '/distinct_ngrams')}</tr>")
            for g, n in list((r.get("ngrams") or {}).items())[:5]:
                grams.append(f"<tr><td>{esc(name)}</td><td>{esc(bench)}</td><td>{esc(g)}</td><td class='n'>{n}</td></tr>")
        cn = d["report"].get("counters", {})
        rows.append(f"<tr><td>{esc(name)}</td><td><i>documents in / kept</i></td>"
                    f"{entry(cn, 'docs', src, 'counters/docs')}{entry(cn, 'kept', src, 'counters/kept')}"
                    f"<td></td><td></td></tr>")
    out = ["<h2 id='decontam'>Decontamination (GPT-3 Appendix C: 13-gram overlaps)</h2>",
           table(["source", "benchmark", "documents touched", "dropped", "characters removed",
                  "colliding 13-grams"], rows, numeric_from=2)]
    if grams:
        out.append("<h3>most frequent colliding 13-grams</h3>"
                   + table(["source", "benchmark", "13-gram", "documents"], grams, numeric_from=3))
    return "".join(out)


def _mixture(data: dict) -> str:
    sh, tr = data["shards"], data["train"]
    if not sh:
        return "<h2 id='mixture'>Mixture</h2><p>The shards stage has not run.</p>"
    trained = tr["trained"] if tr else {}
    rows = []
    for i, r in enumerate(sh["epochs_table"]):
        t = trained.get(r["source"], {})
        rows.append(f"<tr><td>{esc(r['source'])}</td>{num(r['tokens'], 'shards/manifest.json', f'epochs_table/{i}/tokens')}"
                    f"{num(r['weight'], 'shards/manifest.json', f'epochs_table/{i}/weight')}"
                    f"{num(r['epochs'], 'shards/manifest.json', f'epochs_table/{i}/epochs')}"
                    f"{num(t.get('tokens'))}{num(t.get('realised_share'))}{num(t.get('epochs'))}</tr>")
    budget = sh["config"].get("budget_tokens")
    inputs = "".join(f"<tr><td>{esc(s['name'])}</td><td>{'<br>'.join(esc(p) for p in s['inputs'])}</td></tr>"
                     for s in sh["sources"])
    return ("<h2 id='mixture'>Mixture</h2>"
            + table(["source", "tokens (train)", "weight", f"epochs at {fmt(budget)} tokens", "tokens trained on",
                     "realised share", "epochs trained"], rows)
            + hbars([(r["source"], r["weight"], f"{r['weight']:.2f}") for r in sh["epochs_table"]], width=480,
                    label_w=120, color=PALETTE[3])
            + "<h3>what each source was built from</h3>" + table(["source", "inputs"], inputs and [inputs]))


def _train(data: dict) -> str:
    tr = data["train"]
    if not tr:
        return "<h2 id='train'>Training</h2><p>The train stage has not run.</p>"
    s = tr["summary"]
    cards = "".join(f"<div class='card'>{esc(k)}<b>{esc(fmt(v))}</b></div>" for k, v in (
        ("steps", s.get("step")), ("tokens", s.get("tokens")), ("parameters", s.get("parameters")),
        ("final train loss", s.get("final_train_loss")), ("tokens/s (median)", s.get("tokens_per_s_median")),
        ("device", s.get("device"))))
    series = {"train": tr["train_curve"], **{f"val {k}": v for k, v in tr["val_curve"].items()}}
    out = [f"<h2 id='train'>Training</h2><div class='cards'>{cards}</div>", lines(series)]
    ev = tr["eval"]
    if ev:
        rows = []
        lam = ev.get("lambada", {})
        if "skipped" in lam:
            rows.append(f"<tr><td>LAMBADA</td><td colspan=4>skipped: {esc(lam['skipped'])}</td></tr>")
        for setting, r in lam.items():
            if isinstance(r, dict):
                k = ptr("lambada", setting)
                rows.append(f"<tr><td>LAMBADA {esc(setting)} (k={r.get('shots')})</td>"
                            f"{num(r.get('items'), 'train/eval/eval.json', k + '/items')}"
                            f"{num(r.get('accuracy'), 'train/eval/eval.json', k + '/accuracy')}"
                            f"{num(r.get('perplexity'), 'train/eval/eval.json', k + '/perplexity')}<td></td></tr>")
        g = ev.get("gsm8k", {})
        if "skipped" in g:
            rows.append(f"<tr><td>GSM8K</td><td colspan=4>skipped: {esc(g['skipped'])}</td></tr>")
        elif g:
            rows.append(f"<tr><td>GSM8K (k={g.get('shots')})</td>"
                        f"{num(g.get('items'), 'train/eval/eval.json', 'gsm8k/items')}"
                        f"{num(g.get('exact_match'), 'train/eval/eval.json', 'gsm8k/exact_match')}<td></td>"
                        f"{num(g.get('exact_match_strict'), 'train/eval/eval.json', 'gsm8k/exact_match_strict')}</tr>")
        out.append("<h3>evaluation</h3>" + table(["benchmark", "items", "accuracy / exact match", "perplexity",
                                                   "strict match"], rows))
        val = ev.get("validation") or ev.get("val_loss")
        if isinstance(val, dict):
            out.append("<details><summary>validation</summary><pre>" + esc(json.dumps(val, indent=1)[:4000])
                       + "</pre></details>")
    return "".join(out)


def _errors(data: dict) -> str:
    f = data["filter"]
    out = ["<h2 id='errors'>Errors</h2>"]
    if f:
        rows = []
        for i in f["inputs"]:
            ex = "<br>".join(esc(f"@{e.get('offset', '?')}: {e.get('reason', '')}"[:200]) for e in i["error_examples"])
            complete = (i["done"] or {}).get("complete")
            rows.append(f"<tr><td>{esc(i['key'])}</td>{num(i['errors'])}<td>{'yes' if complete else 'NO'}</td>"
                        f"<td>{ex}</td></tr>")
        inc = f["stats"].get("incomplete_inputs", [])
        out.append(table(["input", "errors", "complete", "first errors"], rows, numeric_from=1))
        out.append(f"<p class='note'>incomplete inputs: {esc(', '.join(inc)) if inc else 'none'}</p>")
    failed = [(st, s) for st, m in data["stages"].items() if m for s in m.get("steps", []) if s.get("status")]
    if failed:
        out.append(table(["stage", "failed step"], [f"<tr><td>{esc(st)}</td><td>{esc(s['name'])}</td></tr>"
                                                    for st, s in failed]))
    return "".join(out)


def _stage_items(data: dict, stage: str) -> tuple[float | None, str]:
    """(work items, unit) of a stage, for its throughput."""
    if stage == "filter" and data["filter"]:
        return data["filter"]["stats"].get("counters", {}).get("read:records"), "records"
    if stage == "dedup" and data["dedup"]:
        return sum(d["stats"].get("documents", 0) for d in data["dedup"].values()), "documents"
    if stage == "decontam" and data["decontam"]:
        return sum(d["report"].get("counters", {}).get("docs", 0) for d in data["decontam"].values()), "documents"
    if stage == "shards" and data["shards"]:
        return sum(sum(s["tokens"].values()) for s in data["shards"]["sources"]), "tokens"
    if stage == "train" and data["train"]:
        return data["train"]["summary"].get("tokens"), "tokens"
    return None, ""


def _time(data: dict) -> str:
    rows = []
    for stage, m in data["stages"].items():
        if not m:
            rows.append(f"<tr><td>{stage}</td><td colspan=4>not done</td></tr>")
            continue
        items, unit = _stage_items(data, stage)
        secs = m.get("seconds") or 0
        rate = f"{items / secs:,.1f} {unit}/s" if items and secs else ""
        steps = ", ".join(f"{s['name']} {s['seconds']:.1f}s" for s in m.get("steps", []))
        rows.append(f"<tr><td>{stage}</td>{num(secs, f'{stage}/stage.json', 'seconds')}"
                    f"<td class='n'>{esc(fmt(items))} {unit}</td><td class='n'>{rate}</td><td>{esc(steps)}</td></tr>")
    return "<h2 id='time'>Wall time and throughput</h2>" + table(["stage", "seconds", "work", "throughput",
                                                                   "steps"], rows)


def _config(data: dict) -> str:
    out = ["<h2 id='config'>Configuration</h2>"]
    if data["settings"]:
        out.append(table(["stage", "settings (make variables)"],
                         [f"<tr><td>{esc(k)}</td><td><code>{esc(v)}</code></td></tr>" for k, v in
                          data["settings"].items()], numeric_from=9))
    for stage, m in data["stages"].items():
        if m:
            cmds = "\n".join(" ".join(s["command"]) for s in m.get("steps", []))
            out.append(f"<details><summary>{stage}: commands</summary><pre>{esc(cmds)}</pre></details>")
    if data["mixture"]:
        out.append(f"<details><summary>mixture ({esc(data['mixture'].get('path'))})</summary>"
                   f"<pre>{esc(data['mixture'].get('text'))}</pre></details>")
    blocks = [("filter", (data["filter"] or {}).get("config")),
              *((f"dedup {k}", v["stats"].get("config")) for k, v in data["dedup"].items()),
              ("shards", (data["shards"] or {}).get("config")), ("tokenizer", (data["shards"] or {}).get("tokenizer")),
              ("train", (data["train"] or {}).get("config"))]
    for name, obj in blocks:
        if obj:
            out.append(f"<details><summary>{esc(name)} (resolved)</summary><pre>"
                       f"{esc(json.dumps(obj, indent=1, sort_keys=True))}</pre></details>")
    return "".join(out)


def render(data: dict) -> str:
    """The whole page."""
    body = "".join(section(data) for section in (_header, _funnel, _filter, _distributions, _dedup, _decontam,
                                                  _mixture, _train, _errors, _time, _config))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Run report: {esc(data['run'])}"
            f"</title><style>{CSS}</style></head><body><main>{body}</main></body></html>\n")
