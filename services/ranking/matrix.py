"""Several benchmarks at once: a parameters x benchmarks matrix, an aggregate rank, and the
places where benchmarks disagree about a knob.

Each benchmark gets its own recorded ranking (so each stays auditable on its own); the
matrix is a view over them. The aggregate rank orders parameters by their mean rank, a
parameter a benchmark could not rank counting as one past that benchmark's last. Flagged:
- opposite effects: one value of a knob improves one benchmark and worsens another, both by
  more than the noise (or by anything, when the noise is unknown);
- different best values: the benchmarks prefer different values of the knob (unless the knob
  is indistinguishable from noise on one of them);
- rank spread: the knob is near the top for one benchmark and near the bottom for another.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from events.canonical import canonical_json
from events.models import Direction, ParameterRanking, RankingDerived
from services.core.context import Context
from services.core.errors import BadInput
from services.ranking import evidence
from services.ranking.analysis.direction import gain
from services.ranking.rank import RankingOutcome, RankOptions, rank


@dataclass(frozen=True)
class Disagreement:
    parameter: str
    kind: str  # "opposite_effects" | "different_best" | "rank_spread"
    reason: str
    benchmarks: tuple[str, ...] = ()  # the benchmarks that disagree (in the reason's order)


@dataclass(frozen=True)
class MatrixRow:
    parameter: str
    aggregate_rank: int
    mean_rank: float
    ranks: dict[str, int | None]
    statistics: dict[str, float | None]
    noise: dict[str, str | None]


@dataclass(frozen=True)
class MatrixOutcome:
    experiment: str
    benchmarks: list[str]
    outcomes: dict[str, RankingOutcome]
    rows: list[MatrixRow]
    disagreements: list[Disagreement]

    def public(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "benchmarks": self.benchmarks,
            "rankings": {b: o.public() for b, o in self.outcomes.items()},
            "matrix": [vars(r) for r in self.rows],
            "disagreements": [vars(d) for d in self.disagreements],
        }


def rank_matrix(ctx: Context, experiment: str, benchmarks: Sequence[str] | None,
                options: RankOptions) -> MatrixOutcome:
    names = list(dict.fromkeys(benchmarks)) if benchmarks else evidence.experiment_benchmarks(ctx, experiment)
    if options.direction is not None and len(names) > 1:
        raise BadInput("--lower-is-better/--higher-is-better would apply to every benchmark of the "
                       "matrix; rank a benchmark whose name does not say its direction on its own")
    outcomes = {b: rank(ctx, experiment, b, options=options) for b in names}
    rows = matrix_rows({b: o.ranking for b, o in outcomes.items()})
    return MatrixOutcome(experiment, names, outcomes, rows, disagreements(outcomes))


def matrix_rows(rankings: Mapping[str, RankingDerived]) -> list[MatrixRow]:
    """One row per parameter any ranking ranks, in aggregate order (mean rank, then name)."""
    by_bench = {b: {p.name: p for p in r.parameters} for b, r in rankings.items()}
    names = sorted({n for params in by_bench.values() for n in params})
    mean_ranks = {
        n: statistics.fmean(params[n].rank if n in params else len(params) + 1
                            for params in by_bench.values())
        for n in names
    }
    order = sorted(names, key=lambda n: (mean_ranks[n], n))
    return [
        MatrixRow(
            parameter=n, aggregate_rank=i, mean_rank=round(mean_ranks[n], 6),
            ranks={b: params[n].rank if n in params else None for b, params in by_bench.items()},
            statistics={b: params[n].statistic if n in params else None for b, params in by_bench.items()},
            noise={b: _noise_label(params.get(n)) for b, params in by_bench.items()},
        )
        for i, n in enumerate(order, start=1)
    ]


def _noise_label(p: ParameterRanking | None) -> str | None:
    return p.noise.label if p is not None and p.noise is not None else None


def disagreements(outcomes: dict[str, RankingOutcome]) -> list[Disagreement]:
    return ranking_disagreements({b: o.ranking for b, o in outcomes.items()})


def ranking_disagreements(rankings: Mapping[str, RankingDerived]) -> list[Disagreement]:
    """Where the benchmarks' rankings disagree about a knob (the kinds in the module's docstring)."""
    found: list[Disagreement] = []
    by_bench = {b: {p.name: p for p in r.parameters} for b, r in rankings.items()}
    directions: dict[str, Direction] = {b: r.direction or "higher" for b, r in rankings.items()}
    methods = {b: r.method for b, r in rankings.items()}
    names = sorted({n for params in by_bench.values() for n in params})
    for name in names:
        ranked = {b: params[name] for b, params in by_bench.items() if name in params}
        if len(ranked) < 2:
            continue
        found.extend(_opposite(name, ranked, directions, methods))
        best = {b: _best_value(p, directions[b]) for b, p in ranked.items()}
        noisy = any(p.noise is not None and p.noise.label == "indistinguishable" for p in ranked.values())
        if not noisy and len({canonical_json(v) for v in best.values()}) > 1:
            shown = ", ".join(f"{v} on {b}" for b, v in best.items())
            found.append(Disagreement(name, "different_best", f"best value differs: {shown}", tuple(best)))
        ranks = {b: p.rank for b, p in ranked.items()}
        size = max(len(by_bench[b]) for b in ranked)
        if max(ranks.values()) - min(ranks.values()) >= max(2, size // 2):
            shown = ", ".join(f"#{r} on {b}" for b, r in ranks.items())
            found.append(Disagreement(name, "rank_spread", f"ranked {shown}", tuple(ranks)))
    return found


def _opposite(name: str, ranked: dict[str, ParameterRanking], directions: dict[str, Direction],
              methods: dict[str, str]) -> list[Disagreement]:
    """Values that help one benchmark and hurt another, each beyond that benchmark's noise."""
    effects: dict[str, dict[str, float]] = {}
    for b, p in ranked.items():
        # One at a time, the verdict's noise is in score units; Morris and Sobol verdicts are
        # in index units, so there any change of sign counts.
        ofat = methods[b] == "ofat"
        half = p.noise.noise if ofat and p.noise and p.noise.noise is not None else 0.0
        for v in p.values:
            g = gain(v.effect, directions[b])
            if not v.is_baseline and abs(g) > half:
                effects.setdefault(canonical_json(v.value), {})[b] = g
    out = []
    for value, gains in sorted(effects.items()):
        helps = sorted(b for b, g in gains.items() if g > 0)
        hurts = sorted(b for b, g in gains.items() if g < 0)
        if helps and hurts:
            out.append(Disagreement(name, "opposite_effects", (
                f"{name}={value} improves {', '.join(f'{b} ({gains[b]:+.3g})' for b in helps)} but worsens "
                f"{', '.join(f'{b} ({gains[b]:+.3g})' for b in hurts)}"), tuple(helps + hurts)))
    return out


def _best_value(p: ParameterRanking, direction: Direction) -> Any:
    best = max(p.values, key=lambda v: (gain(v.effect, direction), v.is_baseline))
    return best.value
