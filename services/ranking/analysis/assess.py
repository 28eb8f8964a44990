"""Turn per-parameter effects into the judgements a researcher acts on.

Given each parameter's values (mean score, effect, cost, runs) and the statistic it ranks
by, this adds, in order:
1. the noise verdict (computed by the caller, which knows the method);
2. knees along numeric knobs, per doubling of the knob and per doubling of its cost;
3. effect per unit of FLOPs, device-hours and weight bytes;
4. leverage flags for high-leverage parameters that look under-explored;
and returns the `ParameterRanking`s a `RankingDerived` event records, ranked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from events.models import Direction, Knee, NoiseVerdict, ParameterRanking, ValueEffect
from services.ranking.analysis import curves, efficiency, leverage
from services.ranking.analysis.ofat import Observation, ParameterResult, ValueStats


@dataclass(frozen=True)
class Candidate:
    """One parameter before ranking: its values and the statistic that orders it."""

    result: ParameterResult
    statistic: float
    noise: NoiseVerdict
    indices: Mapping[str, float | None] = field(default_factory=dict)
    s2: Mapping[str, float | None] = field(default_factory=dict)
    noise_half_width: float | None = None
    """The noise of a difference of two values' means, in the score's units (one at a time);
    None for Morris and Sobol, whose noise verdicts are in index units."""


def assess(
    candidates: Sequence[Candidate],
    observations: Sequence[Observation],
    *,
    direction: Direction,
    seed: int,
    knee_fraction: float,
) -> list[ParameterRanking]:
    scores = {o.run_id: o.score for o in observations}
    ordered = sorted(candidates, key=lambda c: (-c.statistic, c.result.name))
    per_cost = {c.result.name: efficiency.per_cost(c.result, direction) for c in ordered}
    high = leverage.is_high_leverage({c.result.name: c.statistic for c in ordered}, per_cost=per_cost,
                                     noise={c.result.name: c.noise for c in ordered})
    rankings = []
    for rank, c in enumerate(ordered, start=1):
        p = c.result
        flags = leverage.leverage_flags(
            p, direction=direction, high=high[p.name],
            noise_half_width=c.noise_half_width, total_runs=len(observations),
        )
        rankings.append(ParameterRanking(
            name=p.name, rank=rank, influence_range=p.influence_range,
            values=[_value(v) for v in p.values],
            statistic=c.statistic,
            indices=dict(c.indices or {}),
            s2=dict(c.s2 or {}),
            noise=c.noise,
            knee=_knee(p, scores, direction, seed, knee_fraction),
            knee_cost=_cost_knee(p, scores, direction, seed, knee_fraction),
            per_cost=per_cost[p.name],
            flags=flags,
        ))
    return rankings


def _value(v: ValueStats) -> ValueEffect:
    return ValueEffect(value=v.value, mean=v.mean, effect=v.effect, ci=v.ci, n=v.n,
                       runs=list(v.runs), is_baseline=v.is_baseline, cost=dict(v.cost))


def _numeric(values: Sequence[ValueStats]) -> bool:
    return all(isinstance(v.value, int | float) and not isinstance(v.value, bool) for v in values)


def _points(p: ParameterResult, scores: Mapping[str, float],
            x_of: Mapping[int, float]) -> list[curves.CurvePoint]:
    return [curves.CurvePoint(x=x_of[i], scores=tuple(scores[r] for r in v.runs if r in scores))
            for i, v in enumerate(p.values) if i in x_of]


def _knee(p: ParameterResult, scores: Mapping[str, float], direction: Direction,
          seed: int, fraction: float) -> Knee:
    if not _numeric(p.values):
        return curves.not_numeric(f"{p.name} takes non-numeric values; no curve to fit")
    x_of = {i: float(v.value) for i, v in enumerate(p.values)}
    return curves.knee(_points(p, scores, x_of), direction=direction,
                       size_like=curves.is_size_like(p.name), fraction=fraction,
                       per="doubling", seed=seed, name=p.name)


def _cost_knee(p: ParameterResult, scores: Mapping[str, float], direction: Direction,
               seed: int, fraction: float) -> Knee | None:
    """The knee along the compute a knob costs, when the knob changes its cost at all."""
    # The same recorded kind effect-per-FLOP reads, so a knee and a gain per FLOP agree.
    source = efficiency.source_for("flops", *(v.cost for v in p.values))
    if source is None:
        return None
    kind = source.name
    x_of = {i: v.cost[kind] for i, v in enumerate(p.values) if v.cost[kind] > 0}
    costs = sorted(x_of.values())
    if len(costs) < 2 or costs[-1] / costs[0] < 1.01:
        return None  # the knob does not move its cost: effect per cost says it all
    return curves.knee(_points(p, scores, x_of), direction=direction, size_like=True,
                       fraction=fraction, per="cost_doubling", seed=seed, name=kind)
