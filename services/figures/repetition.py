"""The repetition report (verbatim against lenses, services/repetition/report.py) as figures: per
protocol and benchmark, the score against K for each condition, the seeds' 95% t-intervals as
whiskers and the fitted y = a + b ln K as a dashed line. Pure: the Report in, Curves out."""

from __future__ import annotations

import math

from services.figures.model import Curves, Point, Provenance, Series
from services.repetition.report import Cell, Difference, Report, Table


def repetition_json_url(experiment: str) -> str:
    return f"/v1/repetition/{experiment}"


def k_curves(report: Report, t: Table) -> Curves:
    """One series per condition (points at each K it ran), then one fitted line per condition."""
    series = []
    for condition in sorted({c.condition for c in t.cells}):
        cells = sorted((c for c in t.cells if c.condition == condition), key=lambda c: c.K)
        series.append(Series(condition, [
            Point(x=float(c.K), y=c.mean, low=c.low, high=c.high, label=f"K={c.K}", group=condition,
                  note=f"{c.seeds} seeds") for c in cells]))
    for fit in t.fits:
        ks = sorted({c.K for c in t.cells if c.condition == fit.condition})
        series.append(Series(f"fit: {fit.condition}", [
            Point(x=float(k), y=fit.intercept + fit.slope * math.log(k), group=fit.condition) for k in ks],
            fitted=True))
    fits = "; ".join(f"{f.condition}: {f.per_doubling:+.3g} per doubling of K"
                     + (f" (R² {f.r2:.2f})" if f.r2 is not None else "") for f in t.fits)
    about = {"experiment": report.experiment, "protocol": t.protocol, "benchmark": t.benchmark,
             "runs": str(report.runs)}
    return Curves(provenance=Provenance(title=f"{t.benchmark} against K ({t.protocol})", about=about,
                                        json_url=repetition_json_url(report.experiment)),
                  x_label="K (rewrites or repeats per fact)",
                  y_label=f"{t.benchmark} ({t.direction} is better)",
                  series=series, log_x=all(c.K > 0 for c in t.cells),
                  note=("Whiskers: 95% t-interval over seeds. Dashed: least squares a + b ln K over every "
                        "seed's score. " + fits).strip())


def k_grid(t: Table) -> tuple[list[str], list[tuple[int, list[Cell | None]]]]:
    """The K x condition table: the conditions (columns), then per K its cell in each (None where
    that condition did not run at that K)."""
    conditions = sorted({c.condition for c in t.cells}, key=lambda c: (c != "verbatim", c))
    by_key = {(c.condition, c.K): c for c in t.cells}
    return conditions, [(k, [by_key.get((c, k)) for c in conditions]) for k in sorted({c.K for c in t.cells})]


def differences(t: Table) -> dict[str, Difference]:
    """condition - verbatim at each K, keyed "condition@K" (for the table's cells)."""
    return {f"{d.condition}@{d.K}": d for d in t.differences}
