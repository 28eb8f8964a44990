"""Designs: turn a validated spec into the runs to request (ofat, grid, Morris, Sobol).

Every design is a list of points (factor settings) crossed with the spec's seeds. For Morris
and Sobol, SALib samples the unit hypercube, one column per factor in sorted name order, and
each column is mapped to a factor's values here: a `range` linearly or on a log scale, a
`values` list by level index floor(u * k). The unit matrix is kept (`Design.samples`) so the
analysis can hand it, with the outputs, to `SALib.analyze` unchanged.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.models import JSONScalar
from services.core.errors import BadInput
from services.experiments import knobs
from services.experiments.spec import GLOBAL_METHODS, ExperimentSpec, FactorSpec, report

MAX_INVALID_SHOWN = 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")
Point = tuple[str, dict[str, JSONScalar]]  # (label, the factor settings of that design point)


@dataclass(frozen=True)
class PlannedRun:
    """One run to request: `params` is the full resolved parameter set (base overridden)."""

    run_id: str
    point: str  # the design point without the seed: "base", "n_layer=4", "morris-0007"
    seed: int
    params: dict[str, JSONScalar]
    varied: tuple[str, ...]  # names whose value differs from the base run's
    row: int | None = None  # row of `Design.samples` (morris, sobol), else None


@dataclass(frozen=True)
class Design:
    """The runs of a spec and, for Morris and Sobol, SALib's problem and unit-hypercube sample."""

    spec: ExperimentSpec
    runs: list[PlannedRun]
    base: dict[str, JSONScalar]  # the resolved base parameters
    problem: dict[str, Any] | None = None
    samples: NDArray[np.float64] | None = None  # shape (points, factors), values in [0, 1]

    @property
    def method(self) -> str:
        return self.spec.design.method

    @property
    def points(self) -> list[str]:
        """Point ids in sample-row order (each point is run once per seed)."""
        seen: dict[str, None] = {}
        for run in self.runs:
            seen.setdefault(run.point, None)
        return list(seen)

    def salib(self) -> dict[str, Any] | None:
        """Everything `SALib.analyze` needs besides the outputs, as JSON-able data."""
        if self.problem is None or self.samples is None:
            return None
        d = self.spec.design
        return {
            "experiment": self.spec.name,
            "method": d.method,
            "seed": d.seed,
            "n": d.n,
            **({"num_levels": d.levels} if d.method == "morris" else {}),
            **({"calc_second_order": d.calc_second_order} if d.method == "sobol" else {}),
            "problem": self.problem,
            "factors": {n: f.model_dump(mode="json", exclude_none=True)
                        for n, f in self.spec.factors.items()},
            "points": self.points,
            "X": self.samples.tolist(),
        }


# --- values of one factor -------------------------------------------------------------------


def _tidy(x: float) -> float:
    """Six significant digits: chosen levels read as people write them (no 0.30000000000000004)."""
    return float(f"{x:.6g}")


def _number(x: float, f: FactorSpec) -> JSONScalar:
    assert f.range is not None
    lo, hi = f.range
    x = min(max(x, lo), hi)
    # floor(x + 0.5), not round(): Python rounds halves to even, which would skew samples.
    return math.floor(x + 0.5) if f.integer else x


def factor_levels(f: FactorSpec) -> list[JSONScalar]:
    """The values ofat and grid try: the listed values, or `levels` points spanning a range."""
    if f.values is not None:
        return list(f.values)
    assert f.range is not None and f.levels is not None
    lo, hi = f.range
    k = f.levels
    if f.scale == "log":
        points = [math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (k - 1)) for i in range(k)]
    else:
        points = [lo + i * (hi - lo) / (k - 1) for i in range(k)]
    points[0], points[-1] = lo, hi  # the ends exactly as written
    out: list[JSONScalar] = []
    for p in points:
        value = _number(_tidy(p), f)
        if value not in out:  # integer rounding can merge neighbours
            out.append(value)
    return out


def from_unit(u: float, f: FactorSpec) -> JSONScalar:
    """Map one SALib coordinate u in [0, 1] to a factor value."""
    if f.values is not None:
        k = len(f.values)
        # The epsilon keeps grid points such as u = 1/3 with k = 3 on level 1, not 0.99999 -> 0.
        return f.values[min(math.floor(u * k + 1e-9), k - 1)]
    assert f.range is not None
    lo, hi = f.range
    x = lo * (hi / lo) ** u if f.scale == "log" else lo + u * (hi - lo)
    return _number(x, f)


def salib_problem(spec: ExperimentSpec) -> dict[str, Any]:
    """SALib's problem: one unit interval per factor, names sorted so only the spec decides."""
    names = sorted(spec.factors)
    return {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0] for _ in names]}


# --- counting and building ----------------------------------------------------------------


def _resolved_base(spec: ExperimentSpec) -> dict[str, JSONScalar]:
    if spec.executor != "train":
        return dict(spec.base)
    resolved, problems = knobs.resolve(spec.base)
    if resolved is None:  # validate_spec already refused such a base
        raise BadInput("base: " + "; ".join(problems))
    return resolved


def _ofat_points(spec: ExperimentSpec, base: dict[str, JSONScalar]) -> list[Point]:
    points: list[Point] = [("base", {})]
    for name, f in spec.factors.items():
        for value in factor_levels(f):
            if name in base and _same(value, base[name]):
                continue
            points.append((f"{name}={_show(value)}", {name: value}))
    return points


def count_runs(spec: ExperimentSpec) -> int:
    """How many runs the design makes, computed without generating a large design."""
    d = spec.design
    k = len(spec.factors)
    if d.method == "ofat":
        points = len(_ofat_points(spec, _resolved_base(spec)))
    elif d.method == "grid":
        points = math.prod(len(factor_levels(f)) for f in spec.factors.values())
    elif d.method == "morris":
        assert d.n is not None
        points = (k + 1) * d.n
    else:
        assert d.n is not None
        points = d.n * (2 * k + 2 if d.calc_second_order else k + 2)
    return points * len(spec.seeds)


def _shrink_hint(spec: ExperimentSpec) -> str:
    d = spec.design
    k = len(spec.factors)
    seeds = len(spec.seeds)
    if d.method == "morris":
        how = f"(factors + 1) x n x seeds = {k + 1} x {d.n} x {seeds}; lower design.n"
    elif d.method == "sobol":
        per = "2 x factors + 2" if d.calc_second_order else "factors + 2"
        how = (f"n x ({per}) x seeds = {d.n} x {2 * k + 2 if d.calc_second_order else k + 2} x {seeds}; "
               "lower design.n" + ("" if not d.calc_second_order else " or set calc_second_order: false"))
    elif d.method == "grid":
        sizes = " x ".join(str(len(factor_levels(f))) for f in spec.factors.values())
        how = f"product of factor levels x seeds = {sizes} x {seeds}; list fewer values or levels"
    else:
        points = len(_ofat_points(spec, _resolved_base(spec)))
        how = (f"(1 base + {points - 1} values that differ from base) x seeds = {points} x {seeds}; "
               "list fewer values or levels")
    return f"{how}, use fewer factors or seeds, or raise budget.max_runs"


def build_design(spec: ExperimentSpec, source: str = "spec") -> Design:
    """The runs of a validated spec; BadInput when over budget or a run would be invalid."""
    total = count_runs(spec)
    if total > spec.budget.max_runs:
        raise BadInput(report(source, [
            f"budget.max_runs: the {spec.design.method} design would make {total} runs, more than "
            f"budget.max_runs = {spec.budget.max_runs}: {_shrink_hint(spec)}"
        ]))
    base = _resolved_base(spec)
    problem: dict[str, Any] | None = None
    samples: NDArray[np.float64] | None = None
    rows: list[int | None]
    method = spec.design.method
    if method == "ofat":
        named = _ofat_points(spec, base)
        rows = [None] * len(named)
    elif method == "grid":
        names = sorted(spec.factors)
        combos = list(itertools.product(*(factor_levels(spec.factors[n]) for n in names)))
        width = max(4, len(str(len(combos) - 1)))
        named = [(f"grid-{i:0{width}d}", dict(zip(names, c, strict=True))) for i, c in enumerate(combos)]
        rows = [None] * len(named)
    else:
        problem = salib_problem(spec)
        samples = _sample(spec, problem)
        names = problem["names"]
        width = max(4, len(str(len(samples) - 1)))
        named = [
            (f"{method}-{i:0{width}d}",
             {n: from_unit(float(u), spec.factors[n]) for n, u in zip(names, row, strict=True)})
            for i, row in enumerate(samples)
        ]
        rows = list(range(len(named)))
    runs = _runs(spec, base, named, rows, source)
    return Design(spec=spec, runs=runs, base=base, problem=problem, samples=samples)


def _sample(spec: ExperimentSpec, problem: dict[str, Any]) -> NDArray[np.float64]:
    # SALib pulls in scipy.stats (about a second); only the global designs pay for it.
    d = spec.design
    assert d.n is not None and d.method in GLOBAL_METHODS
    problem = copy.deepcopy(problem)  # SALib adds keys (groups, sample_scaled) to the dict it gets
    if d.method == "morris":
        from SALib.sample import morris

        assert d.levels is not None
        x = morris.sample(problem, d.n, num_levels=d.levels, seed=d.seed)
    else:
        from SALib.sample import sobol

        x = sobol.sample(problem, d.n, calc_second_order=bool(d.calc_second_order), seed=d.seed)
    return np.asarray(x, dtype=np.float64)


def _runs(spec: ExperimentSpec, base: dict[str, JSONScalar],
          named: list[Point], rows: list[int | None],
          source: str) -> list[PlannedRun]:
    invalid: list[str] = []
    seen: dict[str, str] = {}
    runs: list[PlannedRun] = []
    for (label, point), row in zip(named, rows, strict=True):
        point_id = _UNSAFE.sub("_", label)
        if point_id in seen:
            raise BadInput(report(source, [
                f"factors: points {seen[point_id]!r} and {label!r} get the same run id {point_id!r} "
                "(characters outside letters, digits and ._=+- become '_'); make the values differ more"
            ]))
        seen[point_id] = label
        params = _params(spec, point, invalid, label)
        if params is None:
            continue
        varied = tuple(n for n in _names(spec, params) if not _same(params.get(n), base.get(n)))
        runs.extend(
            PlannedRun(run_id=f"{point_id}-s{seed}", point=point_id, seed=seed, params=params,
                       varied=varied, row=row)
            for seed in spec.seeds
        )
    if invalid:
        shown = invalid[:MAX_INVALID_SHOWN]
        if len(invalid) > MAX_INVALID_SHOWN:
            shown.append(f"... and {len(invalid) - MAX_INVALID_SHOWN} more")
        bad_points = len({line.split(" (", 1)[0] for line in invalid})
        raise BadInput(report(source, [
            f"design: {bad_points} of {len(named)} design points are not valid training runs; "
            "narrow the factors (or fix base) so every combination is valid:\n    "
            + "\n    ".join(shown)
        ]))
    return runs


def _params(spec: ExperimentSpec, point: dict[str, JSONScalar], invalid: list[str],
            label: str) -> dict[str, JSONScalar] | None:
    merged = {**spec.base, **point}
    if spec.executor != "train":
        return merged
    resolved, problems = knobs.resolve(merged)
    if resolved is None:
        setting = ", ".join(f"{k}={_show(v)}" for k, v in point.items()) or "the base run"
        invalid.extend(f"{label} ({setting}): {p}" for p in problems)
    return resolved


def _names(spec: ExperimentSpec, params: dict[str, JSONScalar]) -> list[str]:
    """Factor names first (spec order), then any other parameter."""
    return list(spec.factors) + [n for n in params if n not in spec.factors]


def _same(a: JSONScalar | None, b: JSONScalar | None) -> bool:
    # 1 == 1.0 == True in Python; a boolean and a number are different settings.
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _show(value: JSONScalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
