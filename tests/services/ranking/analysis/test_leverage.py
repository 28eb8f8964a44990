"""Leverage flags: each rule on a hand-built parameter, with its reason in numbers."""

from __future__ import annotations

import pytest

from events.models import CostEfficiency, Direction, NoiseVerdict
from services.ranking.analysis.leverage import is_high_leverage, leverage_flags
from services.ranking.analysis.ofat import ParameterResult, ValueStats


def stats(value: float | str, mean: float, base_mean: float, n: int = 3,
          baseline: bool = False) -> ValueStats:
    return ValueStats(value=value, mean=mean, effect=mean - base_mean, ci=None, n=n, runs=(),
                      is_baseline=baseline)


def param(name: str, *values: ValueStats) -> ParameterResult:
    effects = [v.effect for v in values]
    return ParameterResult(name, 1, (min(effects), max(effects)), tuple(values))


def kinds(p: ParameterResult, direction: Direction = "lower", noise: float | None = 1.0,
          total_runs: int = 30) -> dict[str, str]:
    flags = leverage_flags(p, direction=direction, high=True, noise_half_width=noise, total_runs=total_runs)
    return {f.kind: f.reason for f in flags}


def test_only_high_leverage_parameters_are_flagged() -> None:
    p = param("d_model", stats(64, 2.0, 2.0, n=1, baseline=True), stats(128, 1.0, 2.0, n=1))
    assert leverage_flags(p, direction="lower", high=False, noise_half_width=0.01, total_runs=2) == []
    assert set(kinds(p, noise=0.01, total_runs=2)) == {
        "narrow_range", "few_runs", "best_at_edge", "baseline_far_from_best"}


def test_narrow_range_is_under_a_factor_of_four_or_two_values() -> None:
    # 64..128 (x2) is narrow
    narrow = param("d_model", stats(64, 2.0, 2.0, baseline=True), stats(96, 2.1, 2.0), stats(128, 2.05, 2.0))
    assert "a factor of 2" in kinds(narrow)["narrow_range"] and "64..128" in kinds(narrow)["narrow_range"]
    # 1..16 over four values is wide
    wide = param("n_layer", stats(1, 2.0, 2.0, baseline=True), stats(2, 2.1, 2.0), stats(4, 2.05, 2.0),
                 stats(16, 2.02, 2.0))
    assert "narrow_range" not in kinds(wide)
    # two values, even far apart or through zero, are narrow
    two = param("dropout", stats(0.0, 2.0, 2.0, baseline=True), stats(0.1, 2.1, 2.0))
    assert kinds(two)["narrow_range"] == "only two values explored: 0 and 0.1"
    # choices are not a range
    choice = param("format", stats("mixed", 2.0, 2.0, baseline=True), stats("plain", 2.1, 2.0))
    assert "narrow_range" not in kinds(choice)


def test_few_runs_per_value_or_a_small_share_of_the_experiment() -> None:
    thin = param("lr", stats(1e-3, 2.0, 2.0, n=4, baseline=True), stats(3e-3, 2.1, 2.0, n=1),
                 stats(1e-2, 2.2, 2.0, n=2))
    assert "1.5 runs per value tried on average (under 3)" in kinds(thin)["few_runs"]
    rare = param("lr", stats(1e-3, 2.0, 2.0, n=4, baseline=True), stats(3e-3, 2.1, 2.0, n=3),
                 stats(1e-2, 2.2, 2.0, n=3))
    assert "few_runs" not in kinds(rare, total_runs=100)
    reason = kinds(rare, total_runs=1000)["few_runs"]
    assert reason == "its 6 runs are 0.6% of the experiment's 1000 (under 5%)"


def test_best_at_edge_when_the_best_mean_is_at_the_smallest_or_largest_value() -> None:
    up = param("d_model", stats(32, 2.5, 2.0), stats(64, 2.0, 2.0, baseline=True), stats(128, 1.7, 2.0))
    assert "largest value explored (32..128): the optimum may lie above 128" in kinds(up)["best_at_edge"]
    # higher is better: the same numbers make the smallest value best
    assert "may lie below 32" in kinds(up, direction="higher")["best_at_edge"]
    inside = param("d_model", stats(32, 2.5, 2.0), stats(64, 2.0, 2.0, baseline=True), stats(128, 2.2, 2.0))
    assert "best_at_edge" not in kinds(inside)
    base_edge = param("lr", stats(1e-3, 2.0, 2.0, baseline=True), stats(3e-3, 2.4, 2.0),
                      stats(1e-2, 2.9, 2.0))
    assert "at the baseline lr=0.001" in kinds(base_edge)["best_at_edge"]
    flat = param("lr", stats(1e-3, 2.0, 2.0, baseline=True), stats(3e-3, 2.0, 2.0))
    assert "best_at_edge" not in kinds(flat)


def test_baseline_far_from_best_against_noise_or_a_quarter_of_the_width() -> None:
    p = param("lr", stats(1e-3, 2.0, 2.0, baseline=True), stats(3e-3, 1.5, 2.0), stats(1e-2, 2.6, 2.0))
    reason = kinds(p, noise=0.2)["baseline_far_from_best"]
    assert reason == ("lr=0.003 beats the baseline lr=0.001 by 0.5, more than 2 x the noise half-width "
                      "0.2 = 0.4")
    assert "baseline_far_from_best" not in kinds(p, noise=0.3)
    # no noise known: 0.5 > 25% of the width 1.1
    assert "25% of the influence width 1.1 (noise unknown)" in kinds(p, noise=None)["baseline_far_from_best"]
    worse = param("lr", stats(1e-3, 2.0, 2.0, baseline=True), stats(3e-3, 2.5, 2.0))
    assert "baseline_far_from_best" not in kinds(worse, noise=None)


def verdict(label: str) -> NoiseVerdict:
    return NoiseVerdict(label=label, effect=1.0, noise=0.1, basis="seed spread")


def test_high_leverage_is_the_top_third_by_statistic_without_noise() -> None:
    statistics: dict[str, float | None] = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0, "f": 0.5,
                                           "g": None}
    high = is_high_leverage(statistics)
    # a third of 6 known statistics, rounded up: 2
    assert {n for n, h in high.items() if h} == {"a", "b"}
    assert set(high) == set(statistics)
    noisy = is_high_leverage(statistics, noise={"a": verdict("indistinguishable"), "b": verdict("unknown")})
    # a is noise and is not replaced by c: leverage is relative to every knob
    assert {n for n, h in noisy.items() if h} == {"b"}


def test_high_leverage_by_effect_per_cost() -> None:
    statistics: dict[str, float | None] = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0, "f": 0.5}

    def e(gain: float, extra: float) -> list[CostEfficiency]:
        per_unit = gain / extra if extra > 0 and gain > 0 else None
        return [CostEfficiency(kind="flops", source="flops", value=1, gain=gain, extra_cost=extra,
                               per_unit=per_unit)]

    per_cost = {"a": e(1.0, 100.0), "b": e(1.0, 50.0), "c": e(0.1, 0.0), "d": e(0.5, 1.0),
                "e": e(-1.0, 1.0), "f": e(0.01, 10.0)}
    high = is_high_leverage(statistics, per_cost=per_cost, noise={"c": verdict("distinguishable")})
    # c is free and d buys 0.5 per FLOP: the top two by effect per cost, beside a and b by statistic
    assert {n for n, h in high.items() if h} == {"a", "b", "c", "d"}


@pytest.mark.parametrize("statistic", [0.0, None])
def test_a_parameter_without_an_effect_is_not_high_leverage(statistic: float | None) -> None:
    assert is_high_leverage({"a": statistic}) == {"a": False}
