"""Figures (services/figures/model.py) drawn as inline SVG. Every mark carries data-*
attributes (what it stands for) and a <title> (its numbers on hover), so a person can read it
and a browser test can check it. Colours come from the stylesheet's classes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from services.figures.model import Curves, Heatmap, Histogram, Scatter, Tornado

WIDTH = 720
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")


def _num(x: float) -> str:
    return f"{x:.4g}"


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    """Map [lo, hi] onto [a, b] (a padded unit range when lo == hi)."""
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    return lambda v: a + (v - lo) * (b - a) / (hi - lo)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi == lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / count))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= count:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _svg(height: int, body: list[str], kind: str, label: str) -> str:
    return (f'<svg class="chart {kind}" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}" '
            f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>")


def tornado(fig: Tornado) -> str:
    """Horizontal bars around the baseline, largest span first; the grey band is the noise."""
    left, right, row = 170, WIDTH - 20, 26
    height = 50 + row * max(1, len(fig.bars))
    span = [v for b in fig.bars for v in (b.low, b.high)] + [0.0]
    span += [v for b in fig.bars if b.noise for v in (-b.noise / 2, b.noise / 2)]
    x = _scale(min(span), max(span), left, right)
    body = [f'<line class="axis" x1="{x(0):.1f}" y1="20" x2="{x(0):.1f}" y2="{height - 24}"/>']
    for t in _ticks(min(span), max(span)):
        body.append(f'<text class="tick" x="{x(t):.1f}" y="{height - 8}" text-anchor="middle">{_num(t)}</text>')
    for i, b in enumerate(fig.bars):
        y = 24 + i * row
        if b.noise:
            body.append(f'<rect class="noise" x="{x(-b.noise / 2):.1f}" y="{y - 2}" '
                        f'width="{x(b.noise / 2) - x(-b.noise / 2):.1f}" height="{row - 4}"/>')
        tip = (f"{b.label} (rank {b.rank}): {_num(b.low)} at {b.low_label} to {_num(b.high)} at "
               f"{b.high_label}; noise {_num(b.noise) if b.noise else 'unknown'}, {b.verdict}")
        body.append(
            f'<g class="bar {escape(b.verdict)}" data-param="{escape(b.label)}" data-rank="{b.rank}" '
            f'data-low="{b.low!r}" data-high="{b.high!r}"><title>{escape(tip)}</title>'
            f'<rect x="{x(b.low):.1f}" y="{y + 2}" width="{max(x(b.high) - x(b.low), 1.5):.1f}" '
            f'height="{row - 12}"/>'
            f'<text class="label" x="{left - 8}" y="{y + row / 2}" text-anchor="end">{escape(b.label)}</text></g>')
    body.append(f'<text class="unit" x="{(left + right) / 2}" y="12" text-anchor="middle">{escape(fig.unit)}</text>')
    return _svg(height, body, "tornado", fig.provenance.title)


def _frame(xs: Sequence[float], ys: Sequence[float], height: int, log_x: bool,
           x_label: str, y_label: str) -> tuple[Callable[[float], float], Callable[[float], float], list[str]]:
    left, right, top, bottom = 70, WIDTH - 20, 16, height - 40
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    sx = _scale(min(fx(v) for v in xs), max(fx(v) for v in xs), left, right)
    sy = _scale(min(ys), max(ys), bottom, top)
    body = [f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
            f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>',
            f'<text class="axis-label" x="{(left + right) / 2}" y="{height - 4}" text-anchor="middle">'
            f'{escape(x_label)}{" (log scale)" if log_x else ""}</text>',
            f'<text class="axis-label" x="12" y="{(top + bottom) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {(top + bottom) / 2})">{escape(y_label)}</text>']
    for t in _ticks(min(ys), max(ys)):
        body.append(f'<text class="tick" x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_num(t)}</text>')
    for v in sorted(set(xs)):
        body.append(f'<text class="tick" x="{sx(fx(v)):.1f}" y="{bottom + 16}" text-anchor="middle">{_num(v)}</text>')
    return (lambda v: sx(fx(v))), sy, body


def curves(fig: Curves, height: int = 280) -> str:
    """Lines through each series' points, the intervals as whiskers, the knee as a dashed line
    with its interval shaded."""
    points = [p for s in fig.series for p in s.points]
    if not points:
        return f'<p class="empty">{escape(fig.provenance.title)}: no numeric values to draw</p>'
    xs = [p.x for p in points] + [m.x for m in fig.markers]
    ys = [v for p in points for v in (p.y, p.low, p.high) if v is not None]
    log_x = fig.log_x and all(v > 0 for v in xs)
    sx, sy, body = _frame(xs, ys, height, log_x, fig.x_label, fig.y_label)
    for m in fig.markers:
        if m.low is not None and m.high is not None and (not log_x or m.low > 0):
            body.append(f'<rect class="knee-ci" x="{sx(m.low):.1f}" y="16" width="{max(sx(m.high) - sx(m.low), 1):.1f}" '
                        f'height="{height - 56}"/>')
        body.append(f'<g class="knee" data-x="{m.x!r}"><title>{escape(m.label)}</title>'
                    f'<line x1="{sx(m.x):.1f}" y1="16" x2="{sx(m.x):.1f}" y2="{height - 40}"/></g>')
    colours: dict[str, str] = {}
    for s in fig.series:
        if not s.fitted:
            colours[s.name] = PALETTE[len(colours) % len(PALETTE)]
    for i, s in enumerate(fig.series):
        colour = colours.get(s.name.removeprefix("fit: "), PALETTE[i % len(PALETTE)])
        path = " ".join(f"{'M' if j == 0 else 'L'}{sx(p.x):.1f},{sy(p.y):.1f}" for j, p in enumerate(s.points))
        if s.fitted:  # a fitted line: dashed, no points
            body.append(f'<g class="fit" data-series="{escape(s.name)}"><title>{escape(s.name)}</title>'
                        f'<path d="{path}" stroke="{colour}" stroke-dasharray="6 4"/></g>')
            continue
        body.append(f'<g class="series" data-series="{escape(s.name)}"><path d="{path}" stroke="{colour}"/>')
        for p in s.points:
            if p.low is not None and p.high is not None:
                body.append(f'<line class="ci" x1="{sx(p.x):.1f}" y1="{sy(p.low):.1f}" x2="{sx(p.x):.1f}" '
                            f'y2="{sy(p.high):.1f}" stroke="{colour}"/>')
            tip = f"{s.name} {p.label or _num(p.x)}: {_num(p.y)}" + (
                f" [{_num(p.low)}, {_num(p.high)}]" if p.low is not None and p.high is not None else "") + (
                f" {p.note}" if p.note else "")
            body.append(f'<circle class="point" cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="4" fill="{colour}" '
                        f'data-x="{p.x!r}" data-y="{p.y!r}"><title>{escape(tip)}</title></circle>')
        body.append("</g>")
    if len(colours) > 1:
        body.extend(_legend(list(colours)))
    return _svg(height, body, "curves", fig.provenance.title)


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = 20 + 16 * i
        out.append(f'<g class="legend"><rect x="{WIDTH - 160}" y="{y - 9}" width="10" height="10" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"/><text x="{WIDTH - 145}" y="{y}">{escape(name)}</text></g>')
    return out


def scatter(fig: Scatter, height: int = 320) -> str:
    if not fig.points:
        return f'<p class="empty">{escape(fig.provenance.title)}: nothing to draw</p>'
    xs = [p.x for p in fig.points]
    ys = [p.y for p in fig.points]
    sx, sy, body = _frame(xs, ys, height, False, fig.x_label, fig.y_label)
    colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(fig.groups)}
    for p in fig.points:
        tip = f"{p.label}: ({_num(p.x)}, {_num(p.y)})" + (f" {p.note}" if p.note else "")
        fill = colour.get(p.group, "#888")
        extra = (f' data-mark="{escape(p.mark)}"' if p.mark else "") + (
            f' data-note="{escape(p.note)}"' if p.note else "")
        body.append(f'<circle class="point {escape(p.group)}{" " + escape(p.mark) if p.mark else ""}" '
                    f'cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="{7 if p.mark == "source" else 4.5}" '
                    f'fill="{fill}" stroke="{fill}" data-group="{escape(p.group)}" '
                    f'data-label="{escape(p.label)}"{extra}><title>{escape(tip)}</title></circle>')
    if len(fig.groups) > 1:
        body.extend(_legend(fig.groups[:12]))
    return _svg(height, body, "scatter", fig.provenance.title)


def heatmap(fig: Heatmap) -> str:
    """Cells coloured by signed strength (blue helps, red hurts), outlined where marked."""
    left, top, cell_w, cell_h = 170, 90, max(60, min(120, (WIDTH - 190) // max(1, len(fig.columns)))), 28
    height = top + cell_h * len(fig.rows) + 10
    body = []
    for j, col in enumerate(fig.columns):
        cx = left + j * cell_w + cell_w / 2
        body.append(f'<text class="col-label" x="{cx:.1f}" y="{top - 8}" transform="rotate(-30 {cx:.1f} {top - 8})">'
                    f'{escape(col)}</text>')
    marked = set(fig.marked)
    for i, row in enumerate(fig.rows):
        y = top + i * cell_h
        body.append(f'<text class="label" x="{left - 8}" y="{y + cell_h / 2 + 4}" text-anchor="end">{escape(row)}</text>')
        for j, col in enumerate(fig.columns):
            v = fig.values[i][j]
            fill = "#eee" if v is None else (f"rgba(78,121,167,{abs(v):.2f})" if v >= 0 else f"rgba(225,87,89,{abs(v):.2f})")
            cls = "cell marked" if (i, j) in marked else "cell"
            body.append(f'<g class="{cls}" data-row="{escape(row)}" data-column="{escape(col)}">'
                        f'<title>{escape(row)} on {escape(col)}: {escape(fig.labels[i][j])}</title>'
                        f'<rect x="{left + j * cell_w}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"/>'
                        f'<text x="{left + j * cell_w + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4}" '
                        f'text-anchor="middle">{escape(fig.labels[i][j])}</text></g>')
    return _svg(height, body, "heatmap", fig.provenance.title)


def histogram(fig: Histogram, height: int = 240) -> str:
    left, right, top, bottom = 60, WIDTH - 20, 16, height - 40
    top_count = max(fig.counts) if fig.counts else 1
    sx = _scale(fig.edges[0], fig.edges[-1], left, right)
    sy = _scale(0, top_count, bottom, top)
    body = [f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
            f'<text class="axis-label" x="{(left + right) / 2}" y="{height - 4}" text-anchor="middle">'
            f'{escape(fig.x_label)}</text>']
    for t in _ticks(fig.edges[0], fig.edges[-1]):
        body.append(f'<text class="tick" x="{sx(t):.1f}" y="{bottom + 16}" text-anchor="middle">{_num(t)}</text>')
    for t in _ticks(0, top_count):
        body.append(f'<text class="tick" x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{_num(t)}</text>')
    for k, count in enumerate(fig.counts):
        a, b = fig.edges[k], fig.edges[k + 1]
        body.append(f'<rect class="hist" x="{sx(a):.1f}" y="{sy(count):.1f}" width="{max(sx(b) - sx(a) - 1, 1):.1f}" '
                    f'height="{bottom - sy(count):.1f}" data-count="{count}"><title>{_num(a)}-{_num(b)}: {count}'
                    '</title></rect>')
    return _svg(height, body, "histogram", fig.provenance.title)
