"""`knobs plot ranking|knee|cost ... --out FILE.png|svg`: the dashboard's figures as files.

The figure is built from the recorded event (services/figures), exactly as the ranking page
draws it, and drawn with matplotlib (services/figures/mpl.py, imported only here and only when a
plot is asked for). Its caption names its data: experiment, benchmark, ranking id, log position,
code version. A file is written whole or not at all (a temporary file renamed over it).
Bad input (an unknown ranking or parameter, a suffix other than .png or .svg, a folder that
cannot be written) exits 2 and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from services.core.context import Context
from services.core.errors import BadInput, NotFound

if TYPE_CHECKING:
    from events.models.rankings import RankingDerived
    from services.figures.mpl import FigureModel

app = typer.Typer(help="Draw the dashboard's figures as PNG or SVG files, for papers and notes.",
                  no_args_is_help=True)

_OUT = typer.Option(..., "--out", help="The file to write: .png or .svg (replaced whole if it exists).")
_RANKING = typer.Argument(..., help="A ranking id (or a unique prefix of one, e.g. the 8 characters "
                          "notes and tables show).")


def _check_out(out: Path) -> None:
    """Refuse a bad --out before any work: wrong suffix, a folder, a missing parent folder."""
    from services.figures.mpl import format_of

    format_of(out)
    if out.is_dir():
        raise BadInput(f"--out {out} is a folder: give a file name ending in .png or .svg")
    parent = out.parent
    if not parent.is_dir():
        raise BadInput(f"cannot write {out}: folder {parent} does not exist")


def load_ranking(ctx: Context, ranking_id: str) -> RankingDerived:
    """The recorded ranking with this id, or the only one whose id starts with it."""
    from services.ranking.recorded import recorded_ranking

    try:
        return recorded_ranking(ctx, ranking_id)[1]
    except NotFound:
        pass
    matches = sorted({str(e.data["ranking_id"]) for e in ctx.store().read_all(types=["RankingDerived"])
                      if str(e.data.get("ranking_id", "")).startswith(ranking_id)}) if ranking_id else []
    if len(matches) == 1:
        return recorded_ranking(ctx, matches[0])[1]
    if matches:
        raise BadInput(f"ranking id {ranking_id!r} is ambiguous: it starts {len(matches)} rankings "
                       f"({', '.join(matches[:5])}{', ...' if len(matches) > 5 else ''}); give more of it")
    raise BadInput(f"no ranking {ranking_id!r} in the log; list rankings with `knobs events --type "
                   "RankingDerived` or `knobs rankings`")


def _write(model: FigureModel, out: Path) -> None:
    from services.figures.mpl import write

    size = write(model, out)
    typer.echo(f"wrote {out} ({size:,} bytes): {model.provenance.title}; {model.provenance.caption()}")


@app.command("ranking")
def ranking(ranking_id: str = _RANKING, out: Path = _OUT) -> None:
    """The tornado chart of a recorded ranking: one bar per parameter, in rank order, spanning the
    effects its values gave around the baseline, with the noise each was judged against."""
    from services.figures.ranking import tornado

    _check_out(out)
    with Context() as ctx:
        recorded = load_ranking(ctx, ranking_id)
    _write(tornado(recorded), out)


@app.command("knee")
def knee(
    ranking_id: str = _RANKING,
    param: str = typer.Option(..., "--param", help="The numeric parameter whose curve to draw."),
    out: Path = _OUT,
) -> None:
    """The score against one numeric parameter's values, with intervals and the fitted knee."""
    from services.figures.ranking import knee_curve, numeric

    _check_out(out)
    with Context() as ctx:
        recorded = load_ranking(ctx, ranking_id)
    numbers = [p.name for p in sorted(recorded.parameters, key=lambda q: q.rank) if numeric(p)]
    found = next((p for p in recorded.parameters if p.name == param), None)
    listed = ", ".join(numbers) or "none"
    if found is None:
        raise BadInput(f"ranking {recorded.ranking_id} has no parameter {param!r}; its numeric parameters: "
                       f"{listed}")
    if not numeric(found):
        raise BadInput(f"parameter {param!r} has fewer than two numeric values in ranking "
                       f"{recorded.ranking_id}: no curve to draw; its numeric parameters: {listed}")
    _write(knee_curve(recorded, found), out)


@app.command("cost")
def cost(
    ranking_id: str = _RANKING,
    kind: str = typer.Option(None, "--kind", help="The cost on the x axis (default flops when recorded, "
                             "else the first recorded kind)."),
    out: Path = _OUT,
) -> None:
    """Every value tried: its gain over the baseline against its extra cost (cheap wins top left)."""
    from services.figures.ranking import cost_view

    _check_out(out)
    with Context() as ctx:
        recorded = load_ranking(ctx, ranking_id)
    kinds = sorted({k for p in recorded.parameters for v in p.values if v.is_baseline for k in v.cost})
    if not kinds:
        raise BadInput(f"ranking {recorded.ranking_id} recorded no cost for its baseline: nothing to "
                       "plot against")
    chosen = kind or ("flops" if "flops" in kinds else kinds[0])
    if chosen not in kinds:
        raise BadInput(f"ranking {recorded.ranking_id} has no {chosen!r} cost for its baseline; "
                       f"choose one of: {', '.join(kinds)}")
    _write(cost_view(recorded, chosen), out)
