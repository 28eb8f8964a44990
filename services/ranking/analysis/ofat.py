"""One-at-a-time (OFAT) analysis: what does changing one knob, and only it, do to a score?

The baseline is the most common value of each parameter (or one named run's parameters).
For each parameter, the runs that differ from the baseline in that parameter alone give,
per value, the mean score over seeds, a 95% t-interval with two or more seeds, and the
effect (mean minus the baseline's mean). The influence range is [min, max] of the effects
with the baseline counting as 0; parameters rank by its width.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from events.canonical import canonical_json
from events.models import JSONScalar
from services.core.errors import BadInput

MISSING = "<missing>"


@dataclass(frozen=True)
class Observation:
    """One run's score on the benchmark, with the log events it came from."""

    run_id: str
    params: dict[str, JSONScalar]
    score: float
    seed: int | None = None
    positions: tuple[int, ...] = ()
    costs: dict[str, float] = field(default_factory=dict)
    stderr: float | None = None
    """The standard error the source reported for this score (papers, lm-eval), if any."""


@dataclass(frozen=True)
class ValueStats:
    value: JSONScalar
    mean: float
    effect: float
    ci: tuple[float, float] | None
    n: int
    runs: tuple[str, ...]
    is_baseline: bool = False
    cost: dict[str, float] = field(default_factory=dict)
    """Mean of each cost kind over the value's runs (kinds every one of them recorded)."""


@dataclass(frozen=True)
class ParameterResult:
    name: str
    rank: int
    influence_range: tuple[float, float]
    values: tuple[ValueStats, ...]

    @property
    def width(self) -> float:
        return self.influence_range[1] - self.influence_range[0]


@dataclass(frozen=True)
class OfatResult:
    baseline: dict[str, JSONScalar]
    baseline_runs: tuple[str, ...]
    baseline_mean: float
    baseline_ci: tuple[float, float] | None
    parameters: tuple[ParameterResult, ...]
    not_varied_alone: tuple[str, ...]
    excluded_runs: tuple[str, ...]
    used_runs: tuple[str, ...]


def _key(value: Any) -> str:
    return canonical_json(value)


def value_key(value: Any) -> Hashable:
    """Equal exactly when the canonical forms are (1, 1.0 and True apart; 0.0 and -0.0 apart), at
    the cost of a tuple, not of a json.dumps: a 10k-run ranking makes ~100k of them."""
    kind = value.__class__
    if kind is float:
        return (kind, repr(value))
    if kind in (str, int, bool) or value is None:
        return (kind, value)
    return (str, _key(value))


@dataclass(frozen=True)
class Coded:
    """The observations' parameters as a matrix of small integers, one column per parameter name.

    Equal codes in a column mean equal canonical forms (`value_key`); a run without the
    parameter holds the code of MISSING, as `differing` compares it. Built once per analysis,
    so finding the baseline, each run's differing parameters and the replicate groups are array
    operations instead of 100k dictionary comparisons at 10k runs.
    """

    names: tuple[str, ...]
    codes: np.ndarray
    """(runs, names), int32."""
    present: np.ndarray
    """(runs, names), bool: the run names the parameter."""
    first: tuple[tuple[JSONScalar, ...], ...]
    """Per name, per code, the value first seen with that code."""
    index: tuple[dict[Hashable, int], ...]
    """Per name, value_key -> code."""

    def code(self, column: int, value: JSONScalar) -> int:
        """The code of `value` in a column, or -1 if no run has it."""
        return self.index[column].get(value_key(value), -1)


def encode(observations: Sequence[Observation]) -> Coded:
    names = tuple(sorted({name for o in observations for name in o.params}))
    codes = np.empty((len(observations), len(names)), dtype=np.int32)
    present = np.empty((len(observations), len(names)), dtype=bool)
    index: list[dict[Hashable, int]] = []
    first: list[list[JSONScalar]] = []
    absent = object()
    for j, name in enumerate(names):
        seen: dict[Hashable, int] = {}
        values: list[JSONScalar] = []
        column: list[int] = []
        here: list[bool] = []
        for o in observations:
            found = o.params.get(name, absent)
            here.append(found is not absent)
            value: JSONScalar = MISSING if found is absent else found  # type: ignore[assignment]
            # value_key, inlined: this loop runs once per run and parameter
            kind = value.__class__
            key = (kind, repr(value)) if kind is float else (kind, value) if kind in _SCALARS \
                else value_key(value)
            code = seen.get(key)
            if code is None:
                code = seen[key] = len(values)
                values.append(value)
            column.append(code)
        codes[:, j] = column
        present[:, j] = here
        index.append(seen)
        first.append(values)
    return Coded(names, codes, present, tuple(tuple(v) for v in first), tuple(index))


def mode_baseline(observations: Sequence[Observation], coded: Coded | None = None) -> dict[str, JSONScalar]:
    """The most common value of each parameter; ties go to the smallest canonical form."""
    coded = coded or encode(observations)
    baseline: dict[str, JSONScalar] = {}
    for j, name in enumerate(coded.names):
        counts = np.bincount(coded.codes[coded.present[:, j], j], minlength=len(coded.first[j]))
        tied = np.flatnonzero(counts == counts.max())
        best = min(tied, key=lambda code: _key(coded.first[j][code]))
        baseline[name] = coded.first[j][best]
    return baseline


def replicate_groups(observations: Sequence[Observation], coded: Coded | None = None) -> list[list[float]]:
    """Scores of runs with identical parameters (seeds apart), in the order groups are first seen."""
    coded = coded or encode(observations)
    rows = np.concatenate([coded.codes, coded.present], axis=1, dtype=np.int32)
    groups: dict[bytes, list[float]] = {}
    for row, o in zip(rows, observations, strict=True):
        groups.setdefault(row.tobytes(), []).append(o.score)
    return list(groups.values())


def mean_and_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, tuple[float, float] | None]:
    """Mean and a Student-t confidence interval (None with fewer than two values)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    sem = statistics.stdev(values) / math.sqrt(len(values))
    from scipy import stats  # here, not at the top: scipy.stats costs every CLI command ~1.5 s

    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)) * sem
    return mean, (mean - half, mean + half)


def differing(params: dict[str, JSONScalar], baseline: dict[str, JSONScalar]) -> list[str]:
    # Walks the two dicts instead of building their union: called once per run.
    names = [n for n, b in baseline.items() if not _same(params.get(n, MISSING), b)]
    names += [n for n, v in params.items() if n not in baseline and not _same(v, MISSING)]
    return sorted(names) if len(names) > 1 else names


def _same(a: JSONScalar, b: JSONScalar) -> bool:
    # Values of one type that compare equal are the same value; anything else (1 vs 1.0 vs
    # True) is settled by the canonical form. The fast path spares ~300k json.dumps calls
    # in a 10k-run ranking.
    # Two scalars of one type that differ have different canonical forms too.
    if type(a) is type(b):
        if a == b:
            return True
        if a.__class__ in _SCALARS:
            return False
    return _key(a) == _key(b)


_SCALARS = (str, int, float, bool)


def analyse(
    observations: Sequence[Observation], baseline: dict[str, JSONScalar] | None = None,
    coded: Coded | None = None,
) -> OfatResult:
    """Run the one-at-a-time analysis; raise BadInput when there is nothing to compare."""
    if not observations:
        raise BadInput("no runs have a score on this benchmark in this experiment")
    coded = coded or encode(observations)
    base = dict(baseline) if baseline is not None else mode_baseline(observations, coded)
    extra = sorted(n for n in base if n not in coded.names and not _same(base[n], MISSING))
    base_codes = np.array([coded.code(j, base.get(n, MISSING)) for j, n in enumerate(coded.names)],
                          dtype=np.int32)
    mismatch = coded.codes != base_codes
    count = mismatch.sum(axis=1) + len(extra)  # a baseline parameter no run names differs everywhere
    which = mismatch.argmax(axis=1)
    base_obs = [observations[i] for i in np.flatnonzero(count == 0).tolist()]
    single: dict[str, list[Observation]] = defaultdict(list)
    for i in np.flatnonzero(count == 1).tolist():
        single[extra[0] if extra else coded.names[which[i]]].append(observations[i])
    excluded = [observations[i].run_id for i in np.flatnonzero(count > 1).tolist()]
    if not base_obs:
        raise BadInput(
            "no run has exactly the baseline configuration "
            f"{canonical_json(base)}; name a run to use as the baseline with --baseline RUN"
        )
    base_mean, base_ci = mean_and_ci([o.score for o in base_obs])
    results = [
        _parameter(name, base.get(name, MISSING), base_mean, base_ci, base_obs, obs)
        for name, obs in single.items()
    ]
    results.sort(key=lambda r: (-(r.influence_range[1] - r.influence_range[0]), r.name))
    ranked = tuple(
        ParameterResult(r.name, i, r.influence_range, r.values) for i, r in enumerate(results, start=1)
    )
    used = sorted({o.run_id for o in base_obs} | {o.run_id for obs in single.values() for o in obs})
    return OfatResult(
        baseline=base,
        baseline_runs=tuple(sorted(o.run_id for o in base_obs)),
        baseline_mean=base_mean,
        baseline_ci=base_ci,
        parameters=ranked,
        not_varied_alone=tuple(sorted(set(base) - set(single))),
        excluded_runs=tuple(sorted(excluded)),
        used_runs=tuple(used),
    )


def _parameter(
    name: str,
    base_value: JSONScalar,
    base_mean: float,
    base_ci: tuple[float, float] | None,
    base_obs: list[Observation],
    obs: list[Observation],
) -> ParameterResult:
    by_value: dict[Hashable, list[Observation]] = defaultdict(list)
    for o in obs:
        by_value[value_key(o.params.get(name, MISSING))].append(o)
    values = [ValueStats(
        value=base_value, mean=base_mean, effect=0.0, ci=base_ci, n=len(base_obs),
        runs=tuple(sorted(o.run_id for o in base_obs)), is_baseline=True, cost=mean_costs(base_obs),
    )]
    for group in by_value.values():
        mean, ci = mean_and_ci([o.score for o in group])
        values.append(ValueStats(
            value=group[0].params.get(name, MISSING), mean=mean, effect=mean - base_mean, ci=ci,
            n=len(group), runs=tuple(sorted(o.run_id for o in group)), cost=mean_costs(group),
        ))
    values.sort(key=_value_order)
    effects = [v.effect for v in values]
    return ParameterResult(name, 0, (min(effects), max(effects)), tuple(values))


def mean_costs(group: Sequence[Observation]) -> dict[str, float]:
    """Each cost kind's mean over the runs, for the kinds every run of the group recorded."""
    kinds = set.intersection(*(set(o.costs) for o in group)) if group else set()
    return {k: statistics.fmean(float(o.costs[k]) for o in group) for k in sorted(kinds)}


def _value_order(v: ValueStats) -> tuple[int, float, str]:
    """Numbers in numeric order, then everything else by its text."""
    if isinstance(v.value, int | float) and not isinstance(v.value, bool):
        return (0, float(v.value), "")
    return (1, 0.0, _key(v.value))
