"""Effect per cost: which recorded cost stands for each kind, and what the best value buys."""

from __future__ import annotations

import pytest

from events.models import CostEfficiency, ParameterRanking
from services.ranking.analysis.efficiency import NOTE_FREE, NOTE_NO_GAIN, per_cost, rank_by_cost
from services.ranking.analysis.ofat import ParameterResult, ValueStats


def stats(value: float | str, mean: float, base_mean: float, cost: dict[str, float],
          baseline: bool = False) -> ValueStats:
    return ValueStats(value=value, mean=mean, effect=mean - base_mean, ci=None, n=2, runs=(),
                      is_baseline=baseline, cost=cost)


def param(*values: ValueStats) -> ParameterResult:
    effects = [v.effect for v in values]
    return ParameterResult("d_model", 1, (min(effects), max(effects)), tuple(values))


def by_kind(effs: list[CostEfficiency]) -> dict[str, CostEfficiency]:
    return {e.kind: e for e in effs}


def test_gain_per_flop_uses_the_best_value_and_prefers_flops_over_6nd() -> None:
    # Given a loss (lower is better) where 128 is better than 256, both dearer than the baseline
    p = param(
        stats(64, 2.0, 2.0, {"flops": 10.0, "flops_6nd": 1e9}, baseline=True),
        stats(128, 1.5, 2.0, {"flops": 30.0, "flops_6nd": 3e9}),
        stats(256, 1.8, 2.0, {"flops": 90.0, "flops_6nd": 9e9}),
    )
    # When
    effs = by_kind(per_cost(p, "lower"))
    # Then the best value (128) gains 0.5 for 20 more FLOPs, read from `flops`
    e = effs["flops"]
    assert (e.source, e.value, e.gain, e.extra_cost) == ("flops", 128, 0.5, 20.0)
    assert e.per_unit == pytest.approx(0.5 / 20.0)
    assert set(effs) == {"flops"}  # no time or size recorded: no other kind


def test_flops_6nd_stands_in_when_flops_is_missing_on_either_side() -> None:
    p = param(
        stats(1, 0.5, 0.5, {"flops": 1.0, "flops_6nd": 100.0}, baseline=True),
        stats(2, 0.6, 0.5, {"flops_6nd": 300.0}),
    )
    e = by_kind(per_cost(p, "higher"))["flops"]
    assert e.source == "flops_6nd" and e.extra_cost == 200.0
    assert e.per_unit == pytest.approx(0.1 / 200.0)


def test_gpu_hours_from_wall_seconds_says_it_is_device_hours() -> None:
    p = param(stats(1, 0.5, 0.5, {"wall_s": 3600.0}, baseline=True), stats(2, 0.7, 0.5, {"wall_s": 10800.0}))
    e = by_kind(per_cost(p, "higher"))["gpu_hours"]
    assert e.source == "wall_s" and e.extra_cost == pytest.approx(2.0)
    assert e.per_unit == pytest.approx(0.1) and "device-hours" in e.note


def test_weight_bytes_prefer_bf16_bytes_then_fall_back_to_parameters_times_two() -> None:
    recorded = param(stats(1, 0.5, 0.5, {"bytes_bf16": 20.0, "bytes_fp32": 40.0, "params_total": 10.0},
                           baseline=True),
                     stats(2, 0.6, 0.5, {"bytes_bf16": 40.0, "bytes_fp32": 80.0, "params_total": 20.0}))
    e = by_kind(per_cost(recorded, "higher"))["weight_bytes"]
    assert (e.source, e.extra_cost, e.note) == ("bytes_bf16", 20.0, "")
    imported = param(stats(1, 0.5, 0.5, {"parameters": 10.0}, baseline=True),
                     stats(2, 0.6, 0.5, {"parameters": 25.0}))
    e = by_kind(per_cost(imported, "higher"))["weight_bytes"]
    assert (e.source, e.extra_cost) == ("parameters", 30.0) and "x 2 bytes" in e.note


def test_a_better_value_that_costs_no_more_is_free() -> None:
    p = param(stats("gelu", 2.0, 2.0, {"flops": 10.0}, baseline=True),
              stats("relu", 1.9, 2.0, {"flops": 8.0}))
    e = by_kind(per_cost(p, "lower"))["flops"]
    assert e.gain == pytest.approx(0.1) and e.extra_cost == -2.0
    assert e.per_unit is None and e.note == NOTE_FREE


def test_when_nothing_beats_the_baseline_the_gain_is_not_positive_and_says_so() -> None:
    p = param(stats(1, 2.0, 2.0, {"flops": 10.0}, baseline=True), stats(2, 2.3, 2.0, {"flops": 20.0}),
              stats(3, 2.1, 2.0, {"flops": 30.0}))
    e = by_kind(per_cost(p, "lower"))["flops"]
    assert e.value == 3 and e.gain == pytest.approx(-0.1)  # the least bad value
    assert e.per_unit is None and e.note == NOTE_NO_GAIN


def test_no_baseline_or_no_other_value_gives_nothing() -> None:
    assert per_cost(param(stats(1, 2.0, 2.0, {"flops": 1.0}, baseline=True)), "lower") == []


def ranking(name: str, *effs: CostEfficiency) -> ParameterRanking:
    return ParameterRanking(name=name, rank=1, influence_range=(0.0, 1.0), values=[], per_cost=list(effs))


def eff(kind: str, gain: float, extra: float) -> CostEfficiency:
    per_unit = gain / extra if gain > 0 and extra > 0 else None
    return CostEfficiency(kind=kind, source=kind, value=1, gain=gain, extra_cost=extra, per_unit=per_unit)


def test_rank_by_cost_puts_free_gains_first_then_gain_per_unit_then_no_gain() -> None:
    params = [
        ranking("loses", eff("flops", -0.2, 5.0)),
        ranking("cheap", eff("flops", 0.1, 1.0)),          # 0.1 per FLOP
        ranking("dear", eff("flops", 0.9, 90.0)),          # 0.01 per FLOP
        ranking("free_small", eff("flops", 0.05, 0.0)),
        ranking("free_big", eff("flops", 0.3, -1.0)),
        ranking("untimed", eff("gpu_hours", 1.0, 1.0)),    # no flops: not in the flops ranking
        ranking("loses_less", eff("flops", -0.1, 5.0)),
    ]
    order = [name for name, _ in rank_by_cost(params, "flops")]
    assert order == ["free_big", "free_small", "cheap", "dear", "loses_less", "loses"]
    assert [name for name, _ in rank_by_cost(params, "gpu_hours")] == ["untimed"]


def test_rank_by_cost_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown cost kind 'joules'"):
        rank_by_cost([], "joules")


def test_gain_is_measured_from_the_baseline_when_effects_are_from_an_overall_mean() -> None:
    # Given Morris-style marginal means whose effects are against the design's mean (3.0)
    p = param(
        stats(64, 3.76, 3.0, {"flops": 10.0}, baseline=True),
        stats(128, 3.229, 3.0, {"flops": 30.0}),
    )
    # Then the gain is 3.76 - 3.229 (the baseline's own effect is not zero), not 3.0 - 3.229
    e = by_kind(per_cost(p, "higher"))["flops"]
    assert e.gain == pytest.approx(3.229 - 3.76)
    e = by_kind(per_cost(p, "lower"))["flops"]
    assert e.gain == pytest.approx(3.76 - 3.229) and e.per_unit == pytest.approx((3.76 - 3.229) / 20)
