"""Under-used high-leverage parameters: knobs that matter but were explored too little.

A parameter is high-leverage when its statistic (influence width, mu_star or ST), or its best
gain per unit of some cost, is in the top third of the ranking, and its effect is not
indistinguishable from noise. Only those get flags, each with its reason in words and numbers:

- narrow_range: its numeric values span less than NARROW_RATIO (max/min, all positive), or only
  two distinct numeric values were tried. Non-numeric knobs are never "narrow": their values
  are choices, not a range.
- few_runs: fewer than MIN_RUNS_PER_VALUE runs per non-baseline value on average, or its
  non-baseline runs are under MIN_RUN_SHARE of the experiment's runs.
- best_at_edge: the best mean (baseline included) is at the smallest or largest numeric value
  explored, so the optimum may lie beyond.
- baseline_far_from_best: the best value gains more than NOISE_MULTIPLE x the noise half-width
  over the baseline (or, with no noise known, more than WIDTH_SHARE of the influence width).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from events.models import CostEfficiency, Direction, LeverageFlag, NoiseVerdict
from services.ranking.analysis.direction import gain as gain_of
from services.ranking.analysis.efficiency import best_value
from services.ranking.analysis.ofat import ParameterResult, ValueStats

NARROW_RATIO = 4.0
MIN_RUNS_PER_VALUE = 3.0
MIN_RUN_SHARE = 0.05
NOISE_MULTIPLE = 2.0
WIDTH_SHARE = 0.25
TOP_SHARE = 1 / 3


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _g(x: float) -> str:
    return f"{x:.4g}"


def leverage_flags(
    param: ParameterResult,
    *,
    direction: Direction,
    high: bool,
    noise_half_width: float | None,
    total_runs: int,
) -> list[LeverageFlag]:
    """Why `param` looks under-explored; [] unless it is high-leverage (`high`)."""
    if not high:
        return []
    flags = [
        _narrow_range(param),
        _few_runs(param, total_runs),
        _best_at_edge(param, direction),
        _baseline_far_from_best(param, direction, noise_half_width),
    ]
    return [f for f in flags if f is not None]


def _numbers(param: ParameterResult) -> list[float]:
    return sorted({float(v.value) for v in param.values if is_number(v.value)})


def _narrow_range(param: ParameterResult) -> LeverageFlag | None:
    xs = _numbers(param)
    if len(xs) < 2:
        return None
    lo, hi = xs[0], xs[-1]
    if lo > 0 and hi / lo < NARROW_RATIO:
        return LeverageFlag(kind="narrow_range", reason=(
            f"explored only {_g(lo)}..{_g(hi)} ({len(xs)} values, a factor of {hi / lo:.3g}, "
            f"under x{NARROW_RATIO:g})"))
    if len(xs) == 2:
        return LeverageFlag(kind="narrow_range", reason=f"only two values explored: {_g(lo)} and {_g(hi)}")
    return None


def _few_runs(param: ParameterResult, total_runs: int) -> LeverageFlag | None:
    tried = [v for v in param.values if not v.is_baseline]
    if not tried:
        return None
    runs = sum(v.n for v in tried)
    per_value = runs / len(tried)
    reasons = []
    if per_value < MIN_RUNS_PER_VALUE:
        word = "run" if per_value == 1 else "runs"
        reasons.append(f"{per_value:.3g} {word} per value tried on average (under {MIN_RUNS_PER_VALUE:g})")
    if total_runs > 0 and runs / total_runs < MIN_RUN_SHARE:
        reasons.append(f"its {runs} runs are {100 * runs / total_runs:.3g}% of the experiment's "
                       f"{total_runs} (under {100 * MIN_RUN_SHARE:g}%)")
    return LeverageFlag(kind="few_runs", reason="; ".join(reasons)) if reasons else None


def best_overall(param: ParameterResult, direction: Direction) -> ValueStats | None:
    """The value with the best mean, the baseline included (first one on ties)."""
    if not param.values:
        return None
    return max(param.values, key=lambda v: gain_of(v.effect, direction))


def _best_at_edge(param: ParameterResult, direction: Direction) -> LeverageFlag | None:
    numeric = [v for v in param.values if is_number(v.value)]
    xs = _numbers(param)
    if len(xs) < 2:
        return None
    gains = [gain_of(v.effect, direction) for v in numeric]
    if max(gains) == min(gains):
        return None  # no value is better than another: no optimum to look for
    best = max(numeric, key=lambda v: gain_of(v.effect, direction))
    x = float(best.value)
    if x not in (xs[0], xs[-1]):
        return None
    side, beyond = ("smallest", "below") if x == xs[0] else ("largest", "above")
    who = "the baseline " if best.is_baseline else ""
    return LeverageFlag(kind="best_at_edge", reason=(
        f"the best mean ({_g(best.mean)} at {who}{param.name}={best.value}) is at the {side} value "
        f"explored ({_g(xs[0])}..{_g(xs[-1])}): the optimum may lie {beyond} {best.value}"))


def _baseline_far_from_best(param: ParameterResult, direction: Direction,
                            noise_half_width: float | None) -> LeverageFlag | None:
    best = best_value(param, direction)
    if best is None:
        return None
    base = next((v for v in param.values if v.is_baseline), None)
    if base is None:
        return None
    # Against the baseline's own effect (Morris and Sobol effects are from the overall mean).
    gain = gain_of(best.effect - base.effect, direction)
    if gain <= 0:
        return None
    baseline = base.value
    if noise_half_width is not None:
        bar = NOISE_MULTIPLE * noise_half_width
        basis = f"{NOISE_MULTIPLE:g} x the noise half-width {_g(noise_half_width)}"
    else:
        bar = WIDTH_SHARE * param.width
        basis = f"{100 * WIDTH_SHARE:g}% of the influence width {_g(param.width)} (noise unknown)"
    if gain <= bar:
        return None
    return LeverageFlag(kind="baseline_far_from_best", reason=(
        f"{param.name}={best.value} beats the baseline {param.name}={baseline} by {_g(gain)}, "
        f"more than {basis} = {_g(bar)}"))


def is_high_leverage(
    statistics: Mapping[str, float | None],
    *,
    per_cost: Mapping[str, Sequence[CostEfficiency]] | None = None,
    noise: Mapping[str, NoiseVerdict | None] | None = None,
) -> dict[str, bool]:
    """Which parameters are high-leverage, by name (every name in `statistics` is answered).

    High: in the top third of all parameters by statistic (a positive one), or in the top
    third by gain per unit of any one cost kind (free gains first, only gains > 0 count),
    and not labelled indistinguishable from noise. The thirds are taken over every parameter
    (rounded up), before the noisy ones are removed, so a weak knob is not promoted because
    stronger ones were noise.
    """
    ordered = sorted((name for name, s in statistics.items() if s is not None and s > 0),
                     key=lambda name: (-(statistics[name] or 0.0), name))
    known = [name for name, s in statistics.items() if s is not None]
    high = set(ordered[: math.ceil(len(known) * TOP_SHARE)])
    by_kind: dict[str, list[tuple[str, CostEfficiency]]] = {}
    for name, effs in (per_cost or {}).items():
        for e in effs:
            by_kind.setdefault(e.kind, []).append((name, e))
    for rows in by_kind.values():
        gaining = sorted(
            (r for r in rows if r[1].gain > 0),
            key=lambda r: (0 if r[1].per_unit is None else 1, -(r[1].per_unit or r[1].gain), r[0]))
        high |= set(name for name, _ in gaining[: math.ceil(len(rows) * TOP_SHARE)])
    noisy = {name for name, v in (noise or {}).items() if v is not None and v.label == "indistinguishable"}
    return {name: name in high and name not in noisy for name in statistics}
