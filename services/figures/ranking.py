"""A recorded ranking (RankingDerived) as figures: the tornado of influence ranges, a knee
curve per numeric knob, and the gain per unit of cost. Read from the event, never recomputed,
so a figure shows exactly what the ranking recorded."""

from __future__ import annotations

from events.models.rankings import ParameterRanking, RankingDerived
from services.figures.model import Bar, Curves, Marker, Point, Provenance, Scatter, Series, Tornado


def ranking_json_url(ranking_id: str) -> str:
    return f"/v1/rankings/{ranking_id}"


def provenance(ranking: RankingDerived, title: str) -> Provenance:
    about = {"experiment": ranking.experiment, "benchmark": ranking.benchmark, "ranking": ranking.ranking_id,
             "as of": f"log position {ranking.as_of}", "code": ranking.code_version}
    return Provenance(title=title, json_url=ranking_json_url(ranking.ranking_id), about=about)


def _label(value: object) -> str:
    return "missing" if value is None else str(value)


def tornado(ranking: RankingDerived) -> Tornado:
    """One bar per ranked parameter, in rank order: the effects (score - baseline mean) its
    values spanned; the noise scale each was judged against is the shaded band."""
    bars = []
    for p in sorted(ranking.parameters, key=lambda q: q.rank):
        low, high = p.influence_range
        lowest = min(p.values, key=lambda v: v.effect, default=None)
        highest = max(p.values, key=lambda v: v.effect, default=None)
        bars.append(Bar(
            label=p.name, low=low, high=high, rank=p.rank,
            noise=p.noise.noise if p.noise is not None else None,
            verdict=p.noise.label if p.noise is not None else "unknown",
            low_label=_label(lowest.value) if lowest else "",
            high_label=_label(highest.value) if highest else ""))
    return Tornado(provenance=provenance(ranking, f"Which knobs move {ranking.benchmark}"),
                   centre=0.0, unit=f"{ranking.benchmark} - baseline ({ranking.baseline_mean:.4g})",
                   bars=bars)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numeric(p: ParameterRanking) -> bool:
    return sum(_is_number(v.value) for v in p.values) >= 2


def knee_curve(ranking: RankingDerived, p: ParameterRanking) -> Curves:
    """Score against the knob's value, with the seeds' intervals and the fitted knee."""
    points = [Point(x=float(v.value), y=v.mean, low=v.ci[0] if v.ci else None,
                    high=v.ci[1] if v.ci else None, label=_label(v.value),
                    note=f"n={v.n}" + (" (baseline)" if v.is_baseline else ""))
              for v in p.values if _is_number(v.value)]
    points.sort(key=lambda q: q.x)
    markers = []
    note = ""
    if p.knee is not None:
        if p.knee.status == "found" and p.knee.value is not None:
            ci = p.knee.ci
            markers.append(Marker(x=p.knee.value, label=f"knee {p.knee.value:.3g}",
                                  low=ci[0] if ci else None, high=ci[1] if ci else None))
        note = f"knee: {p.knee.status}" + (f" ({p.knee.detail})" if p.knee.detail else "")
    return Curves(provenance=provenance(ranking, f"{ranking.benchmark} against {p.name}"),
                  x_label=p.name, y_label=ranking.benchmark, series=[Series(p.name, points)],
                  log_x=all(q.x > 0 for q in points) and (p.knee is None or p.knee.axis == "log"),
                  markers=markers, note=note)


def knee_curves(ranking: RankingDerived) -> list[Curves]:
    return [knee_curve(ranking, p) for p in sorted(ranking.parameters, key=lambda q: q.rank) if numeric(p)]


def cost_view(ranking: RankingDerived, kind: str = "flops") -> Scatter:
    """Every value tried: its extra cost over the baseline against its gain (positive = better),
    so the cheap wins sit top left."""
    points = []
    sign = -1.0 if ranking.direction == "lower" else 1.0
    base_cost = next((v.cost.get(kind) for p in ranking.parameters for v in p.values if v.is_baseline
                      and kind in v.cost), None)
    for p in ranking.parameters:
        for v in p.values:
            if v.is_baseline or kind not in v.cost or base_cost is None:
                continue
            points.append(Point(x=v.cost[kind] - base_cost, y=sign * v.effect,
                                label=f"{p.name}={_label(v.value)}", group=p.name, note=f"n={v.n}"))
    return Scatter(provenance=provenance(ranking, f"Gain on {ranking.benchmark} per extra {kind}"),
                   x_label=f"extra {kind} over the baseline", y_label=f"gain on {ranking.benchmark}",
                   points=points, groups=sorted({q.group for q in points}))
