"""Figures (services/figures/model.py) drawn with matplotlib, as PNG or SVG files for papers and notes.

One function per figure type, generic over the model: `tornado`, `curves`, `scatter`, `heatmap`,
`histogram`; `draw` picks one. Whatever builds a Tornado, Curves, Scatter, Heatmap or Histogram
(a ranking, a matrix, a volatility measurement, a cloud, the repetition report) is drawn by
these. Every figure has its title on top and, under it, a caption naming its data (experiment,
benchmark, ranking id, log position, code version: `Provenance.caption`) and the JSON it was
drawn from.

This module imports matplotlib and is itself imported only where a file is drawn (`knobs plot`,
`knobs export notes`), so `knobs --help` does not pay for it. It uses the object API (a `Figure`
and its own canvas: Agg for PNG), never pyplot: no global figure registry, no GUI backend.
SVG output is deterministic (a fixed hash salt for element ids, no date, text kept as text, so
the same figure gives the same bytes and a note's SVG can be searched).
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import NullFormatter

from services.core.errors import BadInput
from services.figures.model import Curves, Heatmap, Histogram, Provenance, Scatter, Tornado

FigureModel = Tornado | Curves | Scatter | Heatmap | Histogram

FORMATS: tuple[str, ...] = ("png", "svg")
WIDTH_IN = 7.2
DPI = 150  # PNG resolution: sharp in a paper at column width
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
VERDICT_COLOURS = {"distinguishable": "#4e79a7", "indistinguishable": "#bab0ac", "unknown": "#d4a373"}
_RC: dict[str, Any] = {"svg.hashsalt": "knobs", "svg.fonttype": "none", "font.size": 9, "axes.titlesize": 11,
       "axes.spines.top": False, "axes.spines.right": False}


# ----------------------------------------------------------------------- the frame


def _figure(height_in: float) -> Figure:
    return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")


def _caption(fig: Figure, provenance: Provenance, note: str = "") -> None:
    """The figure's title above and what it shows (its data, its JSON) underneath."""
    fig.suptitle(provenance.title, fontsize=11, fontweight="bold")
    lines = textwrap.wrap(f"{provenance.caption()}; drawn from {provenance.json_url}", 110)
    if note:
        lines += textwrap.wrap(note, 110)
    fig.supxlabel("\n".join(lines), fontsize=7, color="#555555")


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


# ----------------------------------------------------------------------- one function per type


def tornado(model: Tornado) -> Figure:
    """One horizontal bar per parameter, rank 1 on top, spanning the effects its values gave
    around the centre; the grey band is the noise each was judged against; colour is the verdict.
    Each bar's SVG element has the id `bar-<rank>`."""
    fig = _figure(1.6 + 0.34 * max(1, len(model.bars)))
    ax = fig.add_subplot()
    _caption(fig, model.provenance)
    if not model.bars:
        _empty(ax, "no ranked parameters")
        return fig
    n = len(model.bars)
    for i, b in enumerate(model.bars):
        y = n - 1 - i  # rank 1 on top
        if b.noise:
            ax.add_patch(Rectangle((model.centre - b.noise / 2, y - 0.45), b.noise, 0.9,
                                   facecolor="#000000", alpha=0.08, linewidth=0, zorder=1))
        width = b.high - b.low
        bar = ax.barh(y, width if width > 0 else 0.0, left=b.low, height=0.56, zorder=2,
                      color=VERDICT_COLOURS.get(b.verdict, VERDICT_COLOURS["unknown"]))[0]
        bar.set_gid(f"bar-{b.rank}")
        if width <= 0:  # a parameter whose values all gave the same score: a tick, not nothing
            ax.plot([b.low, b.low], [y - 0.28, y + 0.28], color="#333333", linewidth=1.5, zorder=3)
        if b.low_label:
            ax.annotate(b.low_label, (b.low, y), xytext=(-3, 0), textcoords="offset points",
                        ha="right", va="center", fontsize=7, color="#444444")
        if b.high_label:
            ax.annotate(b.high_label, (b.high, y), xytext=(3, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=7, color="#444444")
    ax.axvline(model.centre, color="#333333", linewidth=0.8, zorder=3)
    ax.set_yticks(range(n), [f"{b.rank}. {b.label}" for b in reversed(model.bars)])
    ax.set_ylim(-0.7, n - 0.3)
    lo = min([b.low for b in model.bars] + [model.centre - (b.noise or 0) / 2 for b in model.bars])
    hi = max([b.high for b in model.bars] + [model.centre + (b.noise or 0) / 2 for b in model.bars])
    pad = (hi - lo) * 0.15 or 0.5
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(model.unit)
    verdicts = [v for v in VERDICT_COLOURS if any(b.verdict == v for b in model.bars)]
    handles = [Patch(color=VERDICT_COLOURS[v], label=v) for v in verdicts]
    if any(b.noise for b in model.bars):
        handles.append(Patch(facecolor="#000000", alpha=0.08, label="noise band"))
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=len(handles), fontsize=7,
              frameon=False)
    return fig


def curves(model: Curves) -> Figure:
    """Each series' points joined, with their intervals as whiskers; knees as dashed lines with
    their intervals shaded."""
    fig = _figure(3.8)
    ax = fig.add_subplot()
    _caption(fig, model.provenance, model.note)
    points = [p for s in model.series for p in s.points]
    if not points:
        _empty(ax, "no numeric values to draw")
        return fig
    log_x = model.log_x and all(p.x > 0 for p in points) and all(m.x > 0 for m in model.markers)
    for i, s in enumerate(model.series):
        colour = PALETTE[i % len(PALETTE)]
        xs, ys = [p.x for p in s.points], [p.y for p in s.points]
        lower = [p.y - p.low if p.low is not None and p.high is not None else 0.0 for p in s.points]
        upper = [p.high - p.y if p.low is not None and p.high is not None else 0.0 for p in s.points]
        ax.errorbar(xs, ys, yerr=[lower, upper], color=colour, marker="o", markersize=4, capsize=3,
                    linewidth=1.2, label=s.name)
    for m in model.markers:
        if m.low is not None and m.high is not None and (not log_x or m.low > 0):
            ax.axvspan(m.low, m.high, color="#e15759", alpha=0.12, linewidth=0)
        ax.axvline(m.x, color="#e15759", linestyle="--", linewidth=1, label=m.label)
    if log_x:  # ticks at the values tried, written plainly (not 3x10^2)
        ax.set_xscale("log")
        ticks = sorted({p.x for p in points})
        ax.set_xticks(ticks, [f"{x:.4g}" for x in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(model.x_label + (" (log scale)" if log_x else ""))
    ax.set_ylabel(model.y_label)
    if len(model.series) > 1 or model.markers:
        ax.legend(fontsize=7, frameon=False)
    return fig


def scatter(model: Scatter) -> Figure:
    """Points coloured by group (legend in the model's order); labelled when there are few."""
    fig = _figure(4.2)
    ax = fig.add_subplot()
    _caption(fig, model.provenance)
    if not model.points:
        _empty(ax, "nothing to draw")
        return fig
    groups = list(model.groups) + sorted({p.group for p in model.points} - set(model.groups))
    for i, g in enumerate(groups):
        pts = [p for p in model.points if p.group == g]
        if pts:
            ax.scatter([p.x for p in pts], [p.y for p in pts], s=22, color=PALETTE[i % len(PALETTE)],
                       label=g or None, zorder=2)
    if len(model.points) <= 30:
        for p in model.points:
            if p.label:
                ax.annotate(p.label, (p.x, p.y), xytext=(3, 3), textcoords="offset points", fontsize=6,
                            color="#444444")
    ax.axhline(0, color="#999999", linewidth=0.6, zorder=1)
    ax.set_xlabel(model.x_label)
    ax.set_ylabel(model.y_label)
    if len(groups) > 1:
        ax.legend(fontsize=7, frameon=False, loc="best", ncols=2 if len(groups) > 8 else 1)
    return fig


def heatmap(model: Heatmap) -> Figure:
    """Cells coloured by signed strength (blue helps, red hurts, grey nothing), labelled, the
    marked cells (disagreements) outlined."""
    fig = _figure(1.8 + 0.32 * max(1, len(model.rows)))
    ax = fig.add_subplot()
    _caption(fig, model.provenance, model.note)
    if not model.rows or not model.columns:
        _empty(ax, "nothing to draw")
        return fig
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#eeeeee")
    grid = [[math.nan if v is None else v for v in row] for row in model.values]
    ax.imshow(grid, cmap=cmap, vmin=-1, vmax=1, aspect="auto")
    for i, row in enumerate(model.labels):
        for j, text in enumerate(row):
            v = model.values[i][j]
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if v is not None and abs(v) > 0.6 else "black")
    for i, j in model.marked:
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    ax.set_xticks(range(len(model.columns)), model.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(model.rows)), model.rows)
    ax.spines[:].set_visible(False)
    return fig


def histogram(model: Histogram) -> Figure:
    fig = _figure(3.2)
    ax = fig.add_subplot()
    _caption(fig, model.provenance, model.note)
    if not model.counts or len(model.edges) != len(model.counts) + 1:
        _empty(ax, "nothing to draw")
        return fig
    ax.stairs(model.counts, model.edges, fill=True, color=PALETTE[0])
    ax.set_xlabel(model.x_label)
    ax.set_ylabel("count")
    return fig


def draw(model: FigureModel) -> Figure:
    if isinstance(model, Tornado):
        return tornado(model)
    if isinstance(model, Curves):
        return curves(model)
    if isinstance(model, Scatter):
        return scatter(model)
    if isinstance(model, Heatmap):
        return heatmap(model)
    return histogram(model)


# ----------------------------------------------------------------------- files


def format_of(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise BadInput(f"{path}: unsupported file type {path.suffix or '(none)'!r}; name the file "
                       ".png or .svg")
    return fmt


def render(model: FigureModel, fmt: str) -> bytes:
    """The figure as PNG or SVG bytes (SVG: the same model gives the same bytes)."""
    if fmt not in FORMATS:
        raise BadInput(f"unsupported format {fmt!r}: png or svg")
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]  # its stubs list every key as a Literal
        fig = draw(model)
        buf = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def svg_text(model: FigureModel) -> str:
    return render(model, "svg").decode("utf-8")


def write(model: FigureModel, path: Path) -> int:
    """Draw `model` into `path` (.png or .svg) whole or not at all: a temporary file beside it,
    renamed over it. Returns the bytes written; BadInput when the path cannot be written."""
    fmt = format_of(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise BadInput(f"{path} is a folder: give a file name ending in .{fmt}")
    if not parent.is_dir():
        raise BadInput(f"cannot write {path}: folder {parent} does not exist")
    data = render(model, fmt)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(data)
