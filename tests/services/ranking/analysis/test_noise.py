"""Noise verdicts on effects whose size relative to the noise is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample
from scipy import stats

from services.core.errors import BadInput
from services.ranking.analysis.noise import (
    NoiseScale,
    morris_verdict,
    ofat_verdict,
    pooled_seed_noise,
    sobol_verdict,
)
from services.ranking.analysis.ofat import ParameterResult, ValueStats


def vs(value: float, mean: float, effect: float, runs: tuple[str, ...], baseline: bool = False) -> ValueStats:
    return ValueStats(value=value, mean=mean, effect=effect, ci=None, n=len(runs), runs=runs,
                      is_baseline=baseline)


def lr_param(effect_small: float, effect_large: float) -> ParameterResult:
    """lr with a baseline of three seeds and two one-run values; the larger effect is negative."""
    values = (
        vs(0.001, 10.0, 0.0, ("b0", "b1", "b2"), baseline=True),
        vs(0.01, 10.0 + effect_small, effect_small, ("v1",)),
        vs(0.1, 10.0 - effect_large, -effect_large, ("v2",)),
    )
    effects = [v.effect for v in values]
    return ParameterResult("lr", 1, (min(effects), max(effects)), values)


def test_pooled_noise_weights_groups_by_degrees_of_freedom() -> None:
    # Given two repeated configurations and one single run
    noise = pooled_seed_noise([[1.0, 2.0, 3.0], [4.0, 6.0], [9.0]])
    # Then the pooled variance is (2 + 2) / (2 + 1) and the single run is ignored
    assert noise is not None
    assert noise.sd == pytest.approx(math.sqrt(4 / 3))
    assert (noise.df, noise.groups) == (3, 2)
    assert "pooled sd 1.15 from 2 repeated configurations (df 3)" in noise.basis
    assert pooled_seed_noise([[1.0], [2.0]]) is None
    assert pooled_seed_noise([]) is None


def test_ofat_effect_beyond_seed_noise_is_distinguishable() -> None:
    noise = NoiseScale(sd=0.5, df=4, groups=2, basis="seed spread: pooled sd 0.5 (df 4)")
    # The half-width of a difference between one run and a mean of three, Bonferroni-corrected
    # for the two values compared with the baseline (each at 97.5%)
    half = float(stats.t.ppf(0.9875, 4)) * 0.5 * math.sqrt(1 + 1 / 3)
    verdict = ofat_verdict(lr_param(0.2, 5.0), noise)
    assert verdict.label == "distinguishable"
    assert verdict.effect == pytest.approx(5.0)
    assert verdict.noise == pytest.approx(half)
    assert "pooled sd 0.5" in verdict.basis
    assert f"97.5% (Bonferroni over 2 values) half-width of a difference {half:.3g}" in verdict.basis
    assert "lr=0.1" in verdict.basis


def test_ofat_effect_within_seed_noise_is_indistinguishable() -> None:
    noise = NoiseScale(sd=0.5, df=4, groups=2, basis="seed spread")
    verdict = ofat_verdict(lr_param(0.2, 1.0), noise)
    assert verdict.label == "indistinguishable"
    assert verdict.effect == pytest.approx(1.0)
    # A wider level widens the interval
    assert ofat_verdict(lr_param(0.2, 1.0), noise, level=0.5).noise < verdict.noise  # type: ignore[operator]


def test_ofat_uses_reported_standard_errors_without_seeds() -> None:
    se = {"b0": 0.02, "b1": 0.02, "b2": 0.02, "v1": 0.02, "v2": 0.02}
    # se of the baseline mean sqrt(0.02^2 / 3); of a one-run value 0.02; normal interval at
    # 97.5% (Bonferroni over the two values)
    half = float(stats.norm.ppf(0.9875)) * math.sqrt(0.02**2 / 3 + 0.02**2)
    near = ofat_verdict(lr_param(0.01, 0.03), None, stderr=se)
    assert near.label == "indistinguishable"
    assert near.noise == pytest.approx(half, rel=1e-5)
    assert "reported standard errors" in near.basis
    far = ofat_verdict(lr_param(0.01, 0.1), None, stderr=se)
    assert far.label == "distinguishable"
    # Seed noise, when there is some, is preferred to reported errors
    seeded = ofat_verdict(lr_param(0.01, 0.1), NoiseScale(1.0, 5, 2, "seed spread"), stderr=se)
    assert seeded.label == "indistinguishable" and seeded.basis.startswith("seed spread")


def test_ofat_without_any_noise_is_unknown() -> None:
    # Given one run per value and no standard errors
    single = ParameterResult("lr", 1, (-0.1, 0.0), (vs(0.001, 10.0, 0.0, ("b0",), baseline=True),
                                                    vs(0.1, 9.9, -0.1, ("v2",))))
    verdict = ofat_verdict(single, None)
    assert verdict.label == "unknown"
    assert verdict.noise is None
    assert verdict.effect == pytest.approx(0.1)
    assert verdict.basis.startswith("one run per value and no reported standard errors")
    # A caller that has seeds but passes no spread is told so
    assert ofat_verdict(lr_param(0.01, 0.1), None).basis.startswith("no seed spread supplied")
    # Standard errors for other runs only do not help
    partial = ofat_verdict(lr_param(0.01, 0.1), None, stderr={"b0": 0.01})
    assert partial.label == "unknown" and "lr=0.1" in partial.basis


def test_ofat_needs_a_baseline() -> None:
    values = (vs(1.0, 1.0, 0.0, ("a",)), vs(2.0, 2.0, 1.0, ("b",)))
    with pytest.raises(BadInput, match="no baseline"):
        ofat_verdict(ParameterResult("x", 1, (0.0, 1.0), values), None)


def test_mu_star_of_pure_noise_matches_the_derivation() -> None:
    # Given a model that ignores x2 and has seed noise of sd 0.1, sampled with SALib's Morris design
    sd, levels = 0.1, 4
    delta = levels / (2 * (levels - 1))
    problem = {"num_vars": 2, "names": ["x1", "x2"], "bounds": [[0.0, 1.0], [0.0, 1.0]]}
    x = morris_sample.sample(problem, 2000, num_levels=levels, seed=1)
    y = 3.0 * x[:, 0] + np.random.default_rng(2).normal(0.0, sd, len(x))
    res = morris_analyze.analyze(problem, x, y, num_levels=levels, seed=3)
    # Then x2's mu_star is 2 sd / (delta sqrt(pi)), as the docstring derives
    assert res["mu_star"][1] == pytest.approx(2 * sd / (delta * math.sqrt(math.pi)), rel=0.05)
    # And the verdicts tell the parameter that matters from the one that does not
    noise = NoiseScale(sd=sd, df=20, groups=5, basis="seed spread: pooled sd 0.1")
    verdicts = [
        morris_verdict({"mu_star": float(res["mu_star"][i]), "mu_star_conf": float(res["mu_star_conf"][i])},
                       noise, delta)
        for i in range(2)
    ]
    assert [v.label for v in verdicts] == ["distinguishable", "indistinguishable"]
    assert "mu_star of noise is 0.169" in verdicts[1].basis
    # Outputs that average four seeds each have half the noise
    averaged = morris_verdict({"mu_star": 0.1, "mu_star_conf": 0.0}, noise, delta, seeds_per_row=4)
    assert averaged.noise == pytest.approx(2 * sd / 2 / (delta * math.sqrt(math.pi)))


def test_morris_verdict_without_seed_noise_uses_the_bootstrap_interval() -> None:
    assert morris_verdict({"mu_star": 0.05, "mu_star_conf": 0.08}, None, 2 / 3).label == "indistinguishable"
    clear = morris_verdict({"mu_star": 0.5, "mu_star_conf": 0.08}, None, 2 / 3)
    assert (clear.label, clear.effect, clear.noise) == ("distinguishable", 0.5, 0.08)
    assert morris_verdict({"mu_star": 0.5, "mu_star_conf": None}, None, 2 / 3).label == "unknown"
    assert morris_verdict({"mu_star": float("nan")}, None, 2 / 3).label == "unknown"


def test_total_index_of_pure_noise_is_the_noise_variance_fraction() -> None:
    # Given y = x1 + noise, where x2 does nothing, sampled with SALib's Saltelli design
    sd = 0.2
    problem = {"num_vars": 2, "names": ["x1", "x2"], "bounds": [[0.0, 1.0], [0.0, 1.0]]}
    x = sobol_sample.sample(problem, 4096, calc_second_order=False, seed=1)
    y = x[:, 0] + np.random.default_rng(2).normal(0.0, sd, len(x))
    res = sobol_analyze.analyze(problem, y, calc_second_order=False, seed=3)
    # Then x2's ST is about the share of Var(y) that the noise explains, sd^2 / (1/12 + sd^2)
    frac = sd**2 / (1 / 12 + sd**2)
    assert res["ST"][1] == pytest.approx(frac, abs=2 * res["ST_conf"][1])
    verdicts = [sobol_verdict({"ST": float(res["ST"][i]), "ST_conf": float(res["ST_conf"][i])}, frac)
                for i in range(2)]
    assert [v.label for v in verdicts] == ["distinguishable", "indistinguishable"]


def test_sobol_verdicts_on_chosen_numbers() -> None:
    assert sobol_verdict({"ST": 0.01, "ST_conf": 0.02}, None).label == "indistinguishable"
    big = sobol_verdict({"ST": 0.5, "ST_conf": 0.05}, 0.1)
    assert (big.label, big.effect) == ("distinguishable", 0.5)
    assert big.noise == pytest.approx(0.15)
    # Above the noise floor, but not by more than the estimate's own uncertainty
    assert sobol_verdict({"ST": 0.12, "ST_conf": 0.03}, 0.1).label == "indistinguishable"
    assert sobol_verdict({"ST": 0.14, "ST_conf": 0.03}, 0.1).label == "distinguishable"
    assert sobol_verdict({"ST": 0.08}, 0.1).label == "indistinguishable"
    assert sobol_verdict({"ST": 0.08}, None).label == "unknown"
    assert sobol_verdict({"ST": 0.08, "ST_conf": float("nan")}, None).label == "unknown"
    assert sobol_verdict({}, 0.1).label == "unknown"


def test_a_knob_with_no_effect_is_called_real_about_as_rarely_as_the_level_promises() -> None:
    # Given a knob with six values that change nothing, three seeds each, sd 1
    rng = np.random.default_rng(0)
    false_alarms = 0
    trials = 400
    for _ in range(trials):
        groups = [rng.normal(0.0, 1.0, 3) for _ in range(7)]
        base_mean = float(groups[0].mean())
        values = (vs(0, base_mean, 0.0, ("b0", "b1", "b2"), baseline=True),
                  *(vs(i, float(g.mean()), float(g.mean()) - base_mean, tuple(f"r{i}{j}" for j in range(3)))
                    for i, g in enumerate(groups[1:], start=1)))
        effects = [v.effect for v in values]
        param = ParameterResult("knob", 1, (min(effects), max(effects)), values)
        noise = pooled_seed_noise([list(g) for g in groups])
        false_alarms += ofat_verdict(param, noise).label == "distinguishable"
    # Then the largest of six differences passes the 95% test about 5% of the time, not ~25%
    assert false_alarms / trials < 0.08
