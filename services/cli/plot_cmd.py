"""`knobs plot ranking|knee|cost|matrix|volatility|cloud|repetition ... --out FILE.png|svg`: the
dashboard's figures as files.

Each figure is built from the recorded events by services/figures, exactly as its page draws it,
and drawn with matplotlib (services/figures/mpl.py, imported only here and only when a plot is
asked for). Its caption names its data: experiment, benchmark, ranking id, log position, code
version, the JSON it was drawn from. A file is written whole or not at all (a temporary file
renamed over it). Bad input (an unknown ranking, parameter, experiment or measurement, a suffix
other than .png or .svg, a folder that cannot be written) exits 2 and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from services.core.context import Context
from services.core.errors import BadInput, NotFound

if TYPE_CHECKING:
    from events.models.rankings import RankingDerived
    from services.figures.mpl import FigureModel

app = typer.Typer(help="Draw the dashboard's figures as PNG or SVG files, for papers and notes.",
                  no_args_is_help=True)

T = TypeVar("T")

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


def _known(read: Callable[[], T]) -> T:
    """What `read` finds; a NotFound (an unknown id or name) is bad input here: exit 2."""
    try:
        return read()
    except NotFound as exc:
        raise BadInput(str(exc)) from exc


@app.command("matrix")
def matrix(
    experiment: str = typer.Argument(..., help="The experiment whose current rankings to draw."),
    method: str = typer.Option(None, "--method", help="Only rankings of this method (ofat, morris, sobol)."),
    out: Path = _OUT,
) -> None:
    """The parameters x benchmarks heat map of an experiment's current rankings, disagreements outlined."""
    from services.figures.matrix import heatmap
    from services.ranking.matrix import ranking_disagreements
    from services.ranking.recorded import current_by_benchmark

    _check_out(out)
    with Context() as ctx:
        rankings = current_by_benchmark(ctx, experiment, method)
    if not rankings:
        of = f" of method {method}" if method else ""
        raise BadInput(f"experiment {experiment!r} has no current ranking{of}: rank it first with "
                       f"`knobs rank --experiment {experiment} --all-benchmarks`")
    _write(heatmap(experiment, rankings, ranking_disagreements(rankings), method), out)


@app.command("volatility")
def volatility(
    measurement: str = typer.Argument(..., help="A shift measurement id (`knobs shift list`)."),
    map_: bool = typer.Option(False, "--map", help="Draw the shift map (each example's loss drop "
                              "against its gradient norm) instead of the volatility histogram."),
    out: Path = _OUT,
) -> None:
    """The distribution of per-example volatility of one measured data set (or its shift map)."""
    from services.figures.shift import shift_map, volatility_histogram
    from services.shift.figures import read_measurement

    _check_out(out)
    with Context() as ctx:
        m = _known(lambda: read_measurement(ctx.store(), measurement))
    _write(shift_map(m) if map_ else volatility_histogram(m), out)


@app.command("cloud")
def cloud(
    distillation: str = typer.Argument(..., help="A distillation id."),
    pair: str = typer.Option(..., "--pair", help="The pair whose cloud of distillates to draw."),
    out: Path = _OUT,
) -> None:
    """One pair's distillates projected to 2D, coloured by lens, duplicates and rejections marked."""
    from services.distillation.report import read_report
    from services.figures.distillation import cloud_scatter, find_cloud, read_projection

    _check_out(out)
    with Context() as ctx:
        report = _known(lambda: read_report(ctx.store(), distillation))
        _known(lambda: find_cloud(report, pair))
        projection = _known(lambda: read_projection(ctx.store(), ctx.home, distillation, pair))
    _write(cloud_scatter(projection, [name.split("@")[0] for name in report.lenses]), out)


@app.command("repetition")
def repetition(
    experiment: str = typer.Argument(..., help="A repetition experiment (`knobs repetition run`)."),
    table: str = typer.Option(None, "--table", help="Which table, as PROTOCOL/BENCHMARK (default: the "
                              "first)."),
    out: Path = _OUT,
) -> None:
    """Score against K, verbatim repetition beside each lens, for one protocol and benchmark."""
    from services.figures.repetition import k_curves
    from services.repetition.report import read

    _check_out(out)
    with Context() as ctx:
        report = _known(lambda: read(ctx.store(), experiment))
    names = {f"{t.protocol}/{t.benchmark}": t for t in report.tables}
    if not names:
        raise BadInput(f"repetition experiment {experiment!r} has no finished runs to draw yet")
    chosen = names.get(table) if table else report.tables[0]
    if chosen is None:
        raise BadInput(f"no table {table!r} in {experiment!r}; choose one of: {', '.join(names)}")
    _write(k_curves(report, chosen), out)
