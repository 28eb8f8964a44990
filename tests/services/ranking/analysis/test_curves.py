"""Knees on synthetic curves whose gain per doubling is known analytically."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from services.core.errors import BadInput
from services.ranking.analysis.curves import CurvePoint, is_size_like, knee, not_numeric

DOUBLINGS = [2.0**i for i in range(8)]  # 1 .. 128: eight values, seven doublings


def sampled(f: Callable[[float], float], xs: Sequence[float] = DOUBLINGS, sd: float = 0.005, seeds: int = 3,
            rng_seed: int = 0) -> list[CurvePoint]:
    """Scores of `f` at each x, one per seed, with Gaussian noise of sd `sd`."""
    rng = np.random.default_rng(rng_seed)
    return [CurvePoint(x, tuple(float(f(x)) + rng.normal(0.0, sd, seeds))) for x in xs]


def power_loss(x: float) -> float:
    return 2 + 5 / math.sqrt(x)


def analytic_gain(x: float) -> float:
    """L(x) - L(2x) for L = 2 + 5 x^-0.5."""
    return 5 / math.sqrt(x) * (1 - 1 / math.sqrt(2))


def test_power_law_knee_matches_the_analytic_crossing() -> None:
    # Given L = 2 + 5 x^-0.5 at eight doublings with small noise
    result = knee(sampled(power_loss), direction="lower", size_like=True, name="tokens")
    # Then the gain per doubling falls under 10% of its largest (at x = 1) where x^-0.5 = 0.1
    expected = 100.0
    assert (result.status, result.model, result.axis) == ("found", "power_law", "log")
    assert result.threshold == pytest.approx(0.1 * analytic_gain(1.0), rel=0.05)
    assert result.value == pytest.approx(expected, rel=0.1)
    assert result.ci is not None and result.ci[0] <= expected <= result.ci[1]
    assert result.explored == (1.0, 128.0)
    lead = f"gain per doubling falls under {result.threshold:.3g} (10% of the largest, "
    assert result.detail.startswith(lead)
    assert f"at {result.value:.3g} tokens; 95% CI" in result.detail


def test_explicit_threshold_gives_its_own_crossing_or_not_reached() -> None:
    points = sampled(power_loss)
    # gain(x) = 0.3 at x = (5 (1 - 2^-0.5) / 0.3)^2 ~ 23.8, inside 1..128
    expected = (5 * (1 - 2**-0.5) / 0.3) ** 2
    found = knee(points, direction="lower", size_like=True, threshold=0.3)
    assert found.status == "found" and found.threshold == 0.3
    assert found.value == pytest.approx(expected, rel=0.1)
    assert "(given)" in found.detail
    # gain(x) = 0.05 only at x ~ 858, past the explored 128
    beyond = knee(points, direction="lower", size_like=True, threshold=0.05)
    assert beyond.status == "not_reached" and beyond.value is None
    assert beyond.explored == (1.0, 128.0)


def test_accuracy_rising_to_a_ceiling_uses_direction_higher() -> None:
    def accuracy(x: float) -> float:
        return 0.8 - 0.6 / math.sqrt(x)

    points = sampled(accuracy, sd=0.002)
    up = knee(points, direction="higher", size_like=True)
    assert up.status == "found"
    assert up.value == pytest.approx(100.0, rel=0.1)
    # Read as a loss, the same curve only gets worse
    assert knee(points, direction="lower", size_like=True).status == "no_gain"


def test_linear_in_log_curve_never_saturates() -> None:
    def loss(x: float) -> float:
        return 5 - 0.3 * math.log2(x)

    for size_like in (True, False):
        result = knee(sampled(loss), direction="lower", size_like=size_like)
        assert result.status == "not_reached", result
        assert result.value is None and result.ci is None
        assert result.explored == (1.0, 128.0)
        assert "knee not reached" in result.detail


def test_two_values_are_too_few() -> None:
    result = knee(sampled(power_loss, xs=[1.0, 2.0]), direction="lower", size_like=True)
    assert result.status == "too_few_values"
    assert result.explored == (1.0, 2.0)
    assert "2 distinct positive values" in result.detail


def test_flat_noise_has_no_gain() -> None:
    for rng_seed in range(5):
        points = sampled(lambda x: 3.0, sd=0.05, rng_seed=rng_seed)
        result = knee(points, direction="lower", size_like=True)
        assert result.status == "no_gain", result
        assert result.value is None


def test_interpolated_knee_for_a_knob_that_is_not_size_like() -> None:
    # Given accuracy against warmup steps that levels off at 800 (values span 16x: log axis)
    means = {100: 0.50, 200: 0.60, 400: 0.65, 800: 0.66, 1600: 0.66}
    points = [CurvePoint(float(x), (m - 0.001, m + 0.001)) for x, m in means.items()]
    result = knee(points, direction="higher", size_like=False, name="warmup")
    # Then the gains per doubling are 0.10, 0.05, 0.01 and 0 from 100, 200, 400 and 800: the
    # threshold is 0.01, reached just past 400 and kept from there
    assert (result.status, result.model, result.axis) == ("found", "interpolation", "log")
    assert result.threshold == pytest.approx(0.01)
    assert 400 <= result.value <= 450  # type: ignore[operator]


def test_axis_is_linear_for_a_narrow_range_that_is_not_size_like() -> None:
    points = [CurvePoint(x, (s,)) for x, s in [(1.0, 1.0), (2.0, 0.8), (4.0, 0.75), (6.0, 0.74)]]
    assert knee(points, direction="lower", size_like=False).axis == "linear"
    assert knee(points, direction="lower", size_like=True).axis == "log"


def test_few_sizes_fall_back_to_log_linear() -> None:
    result = knee(sampled(power_loss, xs=[1.0, 4.0, 16.0]), direction="lower", size_like=True)
    assert result.model == "log_linear"
    assert result.status == "not_reached"  # a straight line in log x gains the same at every doubling


def test_same_inputs_and_seed_give_the_same_knee() -> None:
    points = sampled(power_loss, sd=0.05)
    first = knee(points, direction="lower", size_like=True, seed=7)
    assert knee(list(reversed(points)), direction="lower", size_like=True, seed=7) == first
    assert first.ci is not None


def test_one_score_per_value_has_no_interval() -> None:
    result = knee(sampled(power_loss, seeds=1), direction="lower", size_like=True)
    assert result.status == "found" and result.ci is None
    assert "no interval" in result.detail


def test_non_positive_values_are_left_out_and_said_so() -> None:
    points = [CurvePoint(0.0, (1.0,)), *sampled(power_loss)]
    result = knee(points, direction="lower", size_like=True)
    assert result.status == "found"
    assert "1 point at x <= 0 left out" in result.detail


def test_cost_doubling_is_labelled_as_cost() -> None:
    # x is each value's cost: 1e15 .. 1.28e17 FLOPs
    costs = [CurvePoint(x * 1e15, p.scores) for x, p in zip(DOUBLINGS, sampled(power_loss), strict=True)]
    result = knee(costs, direction="lower", size_like=True, per="cost_doubling")
    assert result.per == "cost_doubling"
    assert result.value == pytest.approx(1e17, rel=0.1)
    assert "gain per cost doubling falls under" in result.detail and "at a cost of 9" in result.detail


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(BadInput):
        knee(sampled(power_loss), direction="lower", size_like=True, fraction=1.5)
    with pytest.raises(BadInput):
        knee(sampled(power_loss), direction="lower", size_like=True, threshold=-1.0)


def test_not_numeric_knee() -> None:
    result = not_numeric("optimizer is categorical (adamw, sgd)")
    assert result.status == "not_numeric" and result.value is None
    assert result.detail == "optimizer is categorical (adamw, sgd)"


@pytest.mark.parametrize("name", ["params", "n_params", "model.n_params", "parameters", "model_size",
                                  "d_model", "n_layer", "num_layers", "width", "depth", "train_tokens",
                                  "tokens", "data_size", "max_steps", "non_embedding_params"])
def test_size_like_names(name: str) -> None:
    assert is_size_like(name)


@pytest.mark.parametrize("name", ["repetitions", "epochs", "batch_size", "lr", "dropout", "seq_len",
                                  "vocab_size", "n_head", "seed", "warmup"])
def test_names_that_are_not_size_like(name: str) -> None:
    assert not is_size_like(name)


def test_a_fit_that_overflows_is_a_failed_fit_not_a_crash() -> None:
    # Levenberg-Marquardt wandered to exp(g) overflow on these points (found by review).
    points = [CurvePoint(x, (y,)) for x, y in zip([16, 256, 1024, 2048], [4.639, 2.075, 3.922, 2.811],
                                                  strict=True)]
    k = knee(points, direction="lower", size_like=True)
    assert k.status in ("found", "not_reached", "no_gain")
