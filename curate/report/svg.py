"""Small inline SVG charts for the run report: no script, no network, opens from disk.

>>> "<svg" in hbars([("kept", 2), ("dropped", 5)])
True
>>> "polyline" in lines({"train": [(1, 8.0), (2, 7.5)]})
True
"""

from __future__ import annotations

import html
import math

PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d"]


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _fmt(v) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{int(v):,}"


def hbars(rows: list[tuple], width: int = 720, label_w: int = 230, bar_h: int = 20, log: bool = False,
          color: str = PALETTE[0]) -> str:
    """Horizontal bars, one per ``(label, value[, note])``; ``log`` scales lengths by log10(1 + value)."""
    if not rows:
        return ""
    scale = (lambda v: math.log10(1 + v)) if log else (lambda v: v)
    top = max(scale(max(r[1], 0)) for r in rows) or 1
    area = width - label_w - 90
    h = bar_h * len(rows) + 6
    out = [f'<svg class="chart" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img">']
    for i, row in enumerate(rows):
        label, value = row[0], row[1]
        note = row[2] if len(row) > 2 else _fmt(value)
        y = 3 + i * bar_h
        w = max(scale(max(value, 0)) / top * area, 1 if value else 0)
        out.append(f'<text x="{label_w - 6}" y="{y + bar_h * 0.68:.1f}" text-anchor="end">{_esc(label)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 5}" rx="2" fill="{color}">'
                   f'<title>{_esc(label)}: {_esc(note)}</title></rect>')
        out.append(f'<text x="{label_w + w + 5:.1f}" y="{y + bar_h * 0.68:.1f}" class="v">{_esc(note)}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram(values: list[float], bins: int = 20, lo: float = 0.0, hi: float = 1.0, width: int = 360,
              height: int = 150, color: str = PALETTE[0], label: str = "") -> str:
    """Vertical bars of ``values`` counted in ``bins`` equal bins over [lo, hi]."""
    counts = [0] * bins
    for v in values:
        i = min(max(int((v - lo) / (hi - lo) * bins), 0), bins - 1)
        counts[i] += 1
    top = max(counts) or 1
    pad_l, pad_b, pad_t = 30, 22, 14
    bw = (width - pad_l - 6) / bins
    ph = height - pad_b - pad_t
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
           f'<text x="{pad_l}" y="10" class="v">{_esc(label)} (n={len(values):,})</text>']
    for i, c in enumerate(counts):
        bh = c / top * ph
        x = pad_l + i * bw
        a, b = lo + (hi - lo) * i / bins, lo + (hi - lo) * (i + 1) / bins
        out.append(f'<rect x="{x + 1:.1f}" y="{pad_t + ph - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                   f'fill="{color}"><title>{a:.2f}-{b:.2f}: {c}</title></rect>')
    y0 = pad_t + ph
    out.append(f'<line x1="{pad_l}" y1="{y0}" x2="{width - 6}" y2="{y0}" class="axis"/>')
    out.append(f'<text x="{pad_l}" y="{height - 6}" class="v">{lo:g}</text>'
               f'<text x="{width - 6}" y="{height - 6}" class="v" text-anchor="end">{hi:g}</text>'
               f'<text x="{pad_l - 4}" y="{pad_t + 8}" class="v" text-anchor="end">{top}</text>')
    out.append("</svg>")
    return "".join(out)


def lines(series: dict[str, list[tuple[float, float]]], width: int = 720, height: int = 260,
          xlabel: str = "step", ylabel: str = "loss") -> str:
    """Line chart of named ``(x, y)`` series with axes and a legend (a single point is a dot)."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    pl, pr, pt, pb = 48, 140, 10, 30
    pw, ph = width - pl - pr, height - pt - pb

    def X(x):
        return pl + (x - x0) / (x1 - x0) * pw

    def Y(y):
        return pt + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
           f'<line x1="{pl}" y1="{pt + ph}" x2="{pl + pw}" y2="{pt + ph}" class="axis"/>',
           f'<line x1="{pl}" y1="{pt}" x2="{pl}" y2="{pt + ph}" class="axis"/>']
    for frac in (0, 0.5, 1):
        y = y0 + (y1 - y0) * frac
        out.append(f'<text x="{pl - 4}" y="{Y(y) + 4:.1f}" class="v" text-anchor="end">{y:.3g}</text>')
    out.append(f'<text x="{pl}" y="{height - 8}" class="v">{_fmt(x0)}</text>'
               f'<text x="{pl + pw}" y="{height - 8}" class="v" text-anchor="end">{_fmt(x1)} {_esc(xlabel)}</text>'
               f'<text x="{pl + 4}" y="{pt + 10}" class="v">{_esc(ylabel)}</text>')
    for i, (name, s) in enumerate(series.items()):
        c = PALETTE[i % len(PALETTE)]
        if len(s) == 1:
            out.append(f'<circle cx="{X(s[0][0]):.1f}" cy="{Y(s[0][1]):.1f}" r="3.5" fill="{c}"/>')
        else:
            path = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in s)
            out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.8"/>')
        ly = pt + 14 + 18 * i
        out.append(f'<rect x="{pl + pw + 12}" y="{ly - 9}" width="12" height="4" fill="{c}"/>'
                   f'<text x="{pl + pw + 30}" y="{ly - 4}" class="v">{_esc(name)} ({s[-1][1]:.3g})</text>')
    out.append("</svg>")
    return "".join(out)
