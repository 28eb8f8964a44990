"""Global sensitivity (Morris, Sobol) over the runs of a declared experiment, through SALib.

The experiment's design is rebuilt from its declared spec (SALib's sampling is seeded, so the
same spec gives the same unit-hypercube sample), each scored run is mapped by its run id to its
sample row, seeds are averaged per row, and the outputs go to `SALib.analyze` together with the
design's own problem and sample. Bootstrap confidence intervals are seeded too, so the same
inputs give the same numbers bit for bit. Pure: no Context, no I/O.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from events.canonical import canonical_json
from events.models import JSONScalar
from services.core.errors import BadInput
from services.experiments.design import Design, PlannedRun, build_design
from services.experiments.spec import GLOBAL_METHODS, validate_spec
from services.ranking.analysis.noise import NoiseScale, pooled_seed_noise
from services.ranking.analysis.ofat import MISSING, Observation, ValueStats, mean_and_ci, mean_costs

GsaMethod = Literal["morris", "sobol"]
MORRIS_INDICES = ("mu", "mu_star", "sigma", "mu_star_conf")
SOBOL_INDICES = ("S1", "S1_conf", "ST", "ST_conf")
MAX_LEVELS = 8
MAX_NAMED = 10  # run ids / rows named in an error message before "... and N more"


@dataclass(frozen=True)
class GsaResult:
    """SALib's indices per factor (SALib's own names), and exactly which runs gave them."""

    method: GsaMethod
    names: tuple[str, ...]
    """The factors, in the problem's (sorted) order."""
    indices: dict[str, dict[str, float | None]]
    """Per factor: mu, mu_star, sigma, mu_star_conf (morris) or S1, S1_conf, ST, ST_conf (sobol)."""
    s2: dict[str, dict[str, float | None]]
    """Sobol second order, s2[a][b] == s2[b][a]; empty unless the design computed it."""
    s2_conf: dict[str, dict[str, float | None]]
    used_runs: tuple[str, ...]
    """Runs whose scores are in `y`."""
    excluded_runs: tuple[str, ...]
    """Scored runs that are not part of the design: ignored."""
    dropped_runs: tuple[str, ...]
    """Scored runs of the design left out because their Morris trajectory is incomplete."""
    dropped_trajectories: int
    rows: int
    """Sample rows analysed (len(y))."""
    sample_rows: tuple[int, ...]
    """Which rows of `Design.samples` were analysed, in order."""
    seeds_per_row: tuple[int, ...]
    """How many runs (seeds) were averaged into each analysed row."""
    y: tuple[float, ...]
    """The outputs handed to SALib: per row, the mean score over its seeds."""
    noise: NoiseScale | None
    """Pooled seed-to-seed spread over rows with two or more seeds (None if none)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Every choice that changes the numbers: seed, num_resamples, conf_level, n, levels, ..."""
    notes: tuple[str, ...] = ()

    def statistic(self, name: str) -> float | None:
        """What factors rank by: mu_star (morris) or ST (sobol)."""
        return self.indices[name]["mu_star" if self.method == "morris" else "ST"]

    @property
    def noise_sd(self) -> float | None:
        return self.noise.sd if self.noise is not None else None

    @property
    def noise_variance_fraction(self) -> float | None:
        """The share of Var(y) that seed noise alone would give: mean(noise_sd^2 / seeds) / Var(y).

        Each y is a mean over that row's seeds, so its noise variance is noise_sd^2 divided by
        the row's seed count. Capped at 1; None without a noise estimate, with fewer than two
        outputs, or when y does not vary. A factor whose ST is about this size may be noise only.
        """
        if self.noise_sd is None or len(self.y) < 2:
            return None
        var = statistics.variance(self.y)
        if not var > 0:
            return None
        noise = statistics.fmean(self.noise_sd**2 / k for k in self.seeds_per_row)
        return min(1.0, noise / var)


def design_from_spec(spec: dict[str, Any]) -> Design:
    """The Design of a declared experiment, rebuilt from `ExperimentDeclared.spec`.

    The declared spec is canonical and has its defaults resolved, and SALib's samplers are
    seeded by `design.seed`, so this reproduces the runs (and unit sample) that were requested.
    """
    source = f"experiment {spec.get('name', '?')!r} (declared spec)"
    return build_design(validate_spec(spec, source=source), source=source)


def morris_delta(design: Design) -> float:
    """The Morris step in the unit hypercube, as SALib computes it: levels / (2 (levels - 1))."""
    levels = design.spec.design.levels
    if design.method != "morris" or levels is None:
        raise BadInput(f"experiment {design.spec.name!r} has a {design.method} design; "
                       "only Morris designs have a step")
    return levels / (2.0 * (levels - 1))


# --- mapping scores to sample rows --------------------------------------------------------------


@dataclass(frozen=True)
class _Rows:
    by_row: dict[int, dict[str, list[float]]]  # row -> run id -> scores of that run
    excluded: tuple[str, ...]


def _planned(design: Design) -> dict[str, PlannedRun]:
    return {r.run_id: r for r in design.runs}


def _map_rows(design: Design, observations: Sequence[Observation]) -> _Rows:
    planned = _planned(design)
    by_row: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    excluded: list[str] = []
    bad: list[str] = []
    for o in observations:
        run = planned.get(o.run_id)
        if run is None or run.row is None:
            excluded.append(o.run_id)
            continue
        if not math.isfinite(o.score):
            bad.append(f"{o.run_id}={o.score}")
            continue
        by_row[run.row][o.run_id].append(float(o.score))
    if bad:
        raise BadInput(f"{len(bad)} score(s) are not finite numbers ({_named(bad)}); global sensitivity "
                       "needs a finite score for every run: fix or re-score those runs")
    return _Rows(by_row=by_row, excluded=tuple(sorted(set(excluded))))


def _row_mean(runs: dict[str, list[float]]) -> float:
    # A run scored twice on one benchmark counts once (its mean); seeds are then averaged.
    if len(runs) == 1:
        (scores,) = runs.values()
        if len(scores) == 1:
            return scores[0]  # the common case, kept cheap: Sobol designs have tens of thousands of rows
    return statistics.fmean(statistics.fmean(s) for s in runs.values())


def _named(items: Sequence[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:MAX_NAMED])
    return shown + (f", ... and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def _finite(x: Any) -> float | None:
    """A float, or None for NaN/inf/masked (SALib returns NaN where an index is undefined)."""
    if x is None or x is np.ma.masked:
        return None
    value = float(x)
    return value if math.isfinite(value) else None


# --- analysis ---------------------------------------------------------------------------------


def analyse_design(
    design: Design,
    observations: Sequence[Observation],
    *,
    seed: int,
    num_resamples: int = 1000,
    conf_level: float = 0.95,
) -> GsaResult:
    """Morris or Sobol indices (by the design's method) from the scores of the design's runs.

    Observations of runs outside the design are ignored and listed in `excluded_runs`. Sample rows
    without any score (failed runs): Morris drops the incomplete trajectories (BadInput when fewer
    than two complete ones remain); Sobol needs every row and raises BadInput naming what is missing.
    """
    method = design.method
    if method not in GLOBAL_METHODS or design.problem is None or design.samples is None:
        raise BadInput(f"experiment {design.spec.name!r} has a {method} design, which has no SALib sample; "
                       "rank it with --method ofat")
    if not 0 < conf_level < 1:
        raise BadInput(f"conf_level must lie strictly between 0 and 1, got {conf_level}")
    if num_resamples < 2:
        raise BadInput(f"num_resamples must be at least 2 for a bootstrap interval, got {num_resamples}")
    if not observations:
        raise BadInput(f"no runs of experiment {design.spec.name!r} have a score on this benchmark")
    mapped = _map_rows(design, observations)
    if not mapped.by_row:
        raise BadInput(f"none of the {len(observations)} scored runs belong to the {method} design of "
                       f"experiment {design.spec.name!r} (e.g. {_named(list(mapped.excluded))})")
    if method == "morris":
        return _morris(design, mapped, seed, num_resamples, conf_level)
    return _sobol(design, mapped, seed, num_resamples, conf_level)


def _outputs(mapped: _Rows, rows: Sequence[int]) -> tuple[NDArray[np.float64], tuple[int, ...],
                                                          tuple[str, ...], NoiseScale | None]:
    y = np.array([_row_mean(mapped.by_row[r]) for r in rows], dtype=np.float64)
    seeds = tuple(len(mapped.by_row[r]) for r in rows)
    used = tuple(sorted(run for r in rows for run in mapped.by_row[r]))
    noise = pooled_seed_noise([[statistics.fmean(s) for s in mapped.by_row[r].values()] for r in rows])
    return y, seeds, used, noise


def _morris(design: Design, mapped: _Rows, seed: int, num_resamples: int, conf_level: float) -> GsaResult:
    from SALib.analyze import morris

    assert design.problem is not None and design.samples is not None
    d = design.spec.design
    assert d.levels is not None
    names = tuple(design.problem["names"])
    size = len(names) + 1  # a trajectory: one start point and one step per factor (no groups)
    total = len(design.samples) // size
    complete = [t for t in range(total) if all(r in mapped.by_row for r in range(t * size, (t + 1) * size))]
    dropped = total - len(complete)
    if len(complete) < 2:
        raise BadInput(
            f"Morris needs at least 2 complete trajectories (each {size} runs: one per factor plus a "
            f"start); only {len(complete)} of {total} have a score at every point. Re-run the failed "
            "runs, or rank with --method ofat"
        )
    rows = [r for t in complete for r in range(t * size, (t + 1) * size)]
    y, seeds, used, noise = _outputs(mapped, rows)
    x = np.asarray(design.samples[rows], dtype=np.float64)
    si = morris.analyze(copy.deepcopy(design.problem), x, y, num_resamples=num_resamples,
                        conf_level=conf_level, num_levels=d.levels, seed=seed)
    indices = {n: {k: _finite(np.ma.asarray(si[k])[i]) for k in MORRIS_INDICES} for i, n in enumerate(names)}
    kept = set(rows)
    dropped_runs = tuple(sorted(run for r, runs in mapped.by_row.items() if r not in kept for run in runs))
    notes = ((f"dropped {dropped} of {total} Morris trajectories with a run that has no score "
              f"({len(dropped_runs)} scored runs in them left out)",) if dropped else ())
    return GsaResult(
        method="morris", names=names, indices=indices, s2={}, s2_conf={}, used_runs=used,
        excluded_runs=mapped.excluded, dropped_runs=dropped_runs, dropped_trajectories=dropped,
        rows=len(rows), sample_rows=tuple(rows), seeds_per_row=seeds, y=tuple(float(v) for v in y),
        noise=noise,
        settings={"method": "morris", "seed": seed, "num_resamples": num_resamples, "conf_level": conf_level,
                  "n": d.n, "num_levels": d.levels, "design_seed": d.seed, "trajectories": len(complete)},
        notes=notes,
    )


def _sobol(design: Design, mapped: _Rows, seed: int, num_resamples: int, conf_level: float) -> GsaResult:
    from SALib.analyze import sobol

    assert design.problem is not None and design.samples is not None
    d = design.spec.design
    names = tuple(design.problem["names"])
    k = len(names)
    second = bool(d.calc_second_order)
    total = len(design.samples)
    missing = [r for r in range(total) if r not in mapped.by_row]
    if missing:
        per = f"{d.n} x (2 x {k} + 2)" if second else f"{d.n} x ({k} + 2)"
        seeds = len(design.spec.seeds)
        runs_missing = len(missing) * seeds
        points = design.points
        raise BadInput(
            f"Sobol needs a score at every one of the N x ({'2D+2' if second else 'D+2'}) = {per} = {total} "
            f"sample points ({total * seeds} runs with {seeds} seed(s)); {len(missing)} point(s) have no "
            f"score in any seed ({runs_missing} runs), e.g. {_named([points[r] for r in missing])}. "
            "Re-run the failed runs, or rank with --method ofat"
        )
    rows = list(range(total))
    y, seeds_per_row, used, noise = _outputs(mapped, rows)
    # SALib seeds its bootstrap only when `seed` is truthy, so seed 0 would silently be unseeded;
    # a Generator is passed through unchanged by default_rng, which makes every seed reproducible
    # and gives exactly the numbers SALib gives for the same nonzero integer seed.
    si = sobol.analyze(copy.deepcopy(design.problem), y, calc_second_order=second,
                       num_resamples=num_resamples, conf_level=conf_level, seed=np.random.default_rng(seed))
    indices = {n: {key: _finite(si[key][i]) for key in SOBOL_INDICES} for i, n in enumerate(names)}
    s2: dict[str, dict[str, float | None]] = {}
    s2_conf: dict[str, dict[str, float | None]] = {}
    if second:
        s2 = {n: {} for n in names}
        s2_conf = {n: {} for n in names}
        for i, a in enumerate(names):
            for j in range(i + 1, k):
                b = names[j]
                s2[a][b] = s2[b][a] = _finite(si["S2"][i, j])
                s2_conf[a][b] = s2_conf[b][a] = _finite(si["S2_conf"][i, j])
    notes = (("all scores are equal: Sobol indices are 0 (no variance to apportion)",)
             if float(np.ptp(y)) == 0.0 else ())
    return GsaResult(
        method="sobol", names=names, indices=indices, s2=s2, s2_conf=s2_conf, used_runs=used,
        excluded_runs=mapped.excluded, dropped_runs=(), dropped_trajectories=0, rows=total,
        sample_rows=tuple(rows), seeds_per_row=seeds_per_row, y=tuple(float(v) for v in y), noise=noise,
        settings={"method": "sobol", "seed": seed, "num_resamples": num_resamples, "conf_level": conf_level,
                  "n": d.n, "calc_second_order": second, "design_seed": d.seed},
        notes=notes,
    )


# --- marginal means per value -------------------------------------------------------------------


def _numeric(v: JSONScalar) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def level_values(
    design: Design,
    observations: Sequence[Observation],
    name: str,
    overall_mean: float,
    *,
    max_levels: int = MAX_LEVELS,
) -> tuple[ValueStats, ...]:
    """The marginal mean score per value of one parameter, over every scored run of the design.

    Each run counts once per seed; `effect` is the value's mean minus `overall_mean` (a global
    design has no baseline run), with a 95% t-interval, the runs and their mean costs, so knees
    and effect per cost can be computed for Morris and Sobol designs as for one-at-a-time ones.
    A numeric `range` factor with more than `max_levels` distinct values (Sobol samples are
    continuous) is binned into at most `max_levels` quantile bins, equal values kept together;
    such a bin's `value` is the mean of the parameter's values in it, not a value that was run.
    Values are sorted numerically (others by their JSON text); `is_baseline` marks the value equal
    to the spec's base value, where there is one and values are not binned.
    """
    planned = _planned(design)
    factor = design.spec.factors.get(name)
    points: list[tuple[JSONScalar, Observation]] = []
    for o in observations:
        run = planned.get(o.run_id)
        if run is None or not math.isfinite(o.score):
            continue
        points.append((run.params.get(name, MISSING), o))
    if not points:
        return ()
    distinct = {canonical_json(v) for v, _ in points}
    numeric = all(_numeric(v) for v, _ in points)
    binned = factor is not None and factor.is_range and numeric and len(distinct) > max_levels
    groups = _bins(points, max_levels) if binned else _by_value(points)
    base = canonical_json(design.base[name]) if name in design.base and not binned else None
    out = []
    for value, group in groups:
        mean, ci = mean_and_ci([o.score for o in group])
        out.append(ValueStats(
            value=value, mean=mean, effect=mean - overall_mean, ci=ci, n=len(group),
            runs=tuple(sorted(o.run_id for o in group)),
            is_baseline=canonical_json(value) == base,
            cost=mean_costs(group),
        ))
    out.sort(key=_order)
    return tuple(out)


def _order(v: ValueStats) -> tuple[int, float, str]:
    """Numbers in numeric order, then everything else by its JSON text."""
    return (0, float(v.value), "") if _numeric(v.value) else (1, 0.0, canonical_json(v.value))


def _by_value(points: list[tuple[JSONScalar, Observation]]) -> list[tuple[JSONScalar, list[Observation]]]:
    groups: dict[str, tuple[JSONScalar, list[Observation]]] = {}
    for v, o in points:
        groups.setdefault(canonical_json(v), (v, []))[1].append(o)
    return list(groups.values())


def _bins(points: list[tuple[JSONScalar, Observation]],
          max_levels: int) -> list[tuple[JSONScalar, list[Observation]]]:
    """Quantile bins: close a bin once it holds its share of the points, never splitting a value."""
    ordered = sorted(points, key=lambda p: float(p[0]))
    n = len(ordered)
    bins: list[list[tuple[JSONScalar, Observation]]] = [[]]
    i = 0
    while i < n:
        j = i
        while j < n and ordered[j][0] == ordered[i][0]:
            j += 1
        bins[-1].extend(ordered[i:j])
        i = j
        if i < n and i >= len(bins) * n / max_levels:
            bins.append([])
    return [(statistics.fmean(float(v) for v, _ in b), [o for _, o in b])
            for b in bins if b]
