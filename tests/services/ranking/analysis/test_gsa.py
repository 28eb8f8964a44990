"""Morris and Sobol over an experiment's design, on functions whose answer is known."""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from SALib.analyze import morris as salib_morris
from SALib.analyze import sobol as salib_sobol

from services.core.errors import BadInput
from services.experiments.design import Design, PlannedRun
from services.ranking.analysis.gsa import analyse_design, design_from_spec, level_values, morris_delta
from services.ranking.analysis.noise import pooled_seed_noise
from services.ranking.analysis.ofat import Observation
from services.ranking.analysis.selftest import ishigami, ishigami_indices


def spec(method: str, factors: dict[str, Any], n: int, seeds: list[int] | None = None,
         **design: Any) -> dict[str, Any]:
    return {
        "name": f"gsa-{method}", "executor": "external",
        "design": {"method": method, "n": n, "seed": 3, **design},
        "factors": factors, "benchmarks": ["score"], "seeds": seeds or [0],
        "budget": {"max_runs": 100_000},
    }


def observe(design: Design, f: Callable[[PlannedRun], float],
            skip: Callable[[PlannedRun], bool] = lambda r: False) -> list[Observation]:
    return [Observation(run_id=r.run_id, params=r.params, score=f(r), seed=r.seed,
                        costs={"flops": 10.0 * float(r.params.get("k", 1))})
            for r in design.runs if not skip(r)]


PI = math.pi
ISHIGAMI = {f"x{i}": {"range": [-PI, PI]} for i in (1, 2, 3)}


def ishigami_run(r: PlannedRun) -> float:
    return ishigami(*(float(r.params[f"x{i}"]) for i in (1, 2, 3)))


@pytest.fixture(scope="module")
def ishigami_design() -> Design:
    return design_from_spec(spec("sobol", ISHIGAMI, 1024, calc_second_order=True))


def test_sobol_ishigami_matches_the_analytic_indices(ishigami_design: Design) -> None:
    # Given Ishigami scored at every run of a Sobol design declared like any experiment
    result = analyse_design(ishigami_design, observe(ishigami_design, ishigami_run), seed=1)
    # Then S1, ST and S2 agree with the analytic values within SALib's test tolerance
    s1, st, s2 = ishigami_indices()
    got_s1 = [result.indices[n]["S1"] for n in ("x1", "x2", "x3")]
    got_st = [result.indices[n]["ST"] for n in ("x1", "x2", "x3")]
    np.testing.assert_allclose(got_s1, s1, atol=5e-2, rtol=1e-1)  # type: ignore[arg-type]
    np.testing.assert_allclose(got_st, st, atol=5e-2, rtol=1e-1)  # type: ignore[arg-type]
    assert result.s2["x1"]["x3"] == result.s2["x3"]["x1"]
    assert result.s2["x1"]["x3"] == pytest.approx(s2[(0, 2)], abs=5e-2 + 0.1 * s2[(0, 2)])
    assert set(result.indices["x1"]) == {"S1", "S1_conf", "ST", "ST_conf"}
    assert result.method == "sobol" and result.rows == 1024 * 8 and len(result.y) == result.rows
    assert result.noise_sd is None and set(result.seeds_per_row) == {1}
    assert result.statistic("x1") == result.indices["x1"]["ST"]


def test_same_seed_same_intervals_bit_for_bit_even_seed_zero(ishigami_design: Design) -> None:
    # SALib seeds its Sobol bootstrap only for a truthy seed; 0 must be reproducible too.
    obs = observe(ishigami_design, ishigami_run)
    for seed in (0, 7):
        a = analyse_design(ishigami_design, obs, seed=seed, num_resamples=200)
        b = analyse_design(ishigami_design, obs, seed=seed, num_resamples=200)
        assert a.indices == b.indices and a.s2_conf == b.s2_conf
    other = analyse_design(ishigami_design, obs, seed=8, num_resamples=200)
    assert other.indices["x1"]["S1_conf"] != a.indices["x1"]["S1_conf"]
    # And a nonzero seed gives exactly what SALib gives for it on the same outputs
    assert ishigami_design.problem is not None
    direct = salib_sobol.analyze(copy.deepcopy(ishigami_design.problem), np.array(a.y), num_resamples=200,
                                 seed=7)
    assert [a.indices[n]["S1_conf"] for n in a.names] == list(direct["S1_conf"])
    assert [a.indices[n]["ST"] for n in a.names] == list(direct["ST"])


def test_sobol_with_missing_rows_says_how_many_and_what_to_do() -> None:
    design = design_from_spec(spec("sobol", {"a": {"range": [0, 1]}, "b": {"range": [0, 1]}}, 8,
                                   seeds=[0, 1], calc_second_order=False))
    # Given two sample points with no score in any seed, and one with only one seed
    gone = {design.runs[0].point, design.runs[6].point}
    obs = observe(design, lambda r: float(r.params["a"]),
                  skip=lambda r: r.point in gone or (r.row == 5 and r.seed == 1))
    with pytest.raises(BadInput) as err:
        analyse_design(design, obs, seed=0)
    text = str(err.value)
    assert "8 x (2 + 2) = 32 sample points" in text and "64 runs with 2 seed(s)" in text
    assert "2 point(s) have no score in any seed (4 runs)" in text
    assert "--method ofat" in text and "Re-run the failed runs" in text


def test_runs_outside_the_design_are_excluded_and_seeds_average() -> None:
    design = design_from_spec(spec("sobol", {"a": {"range": [0, 1]}, "b": {"range": [0, 1]}}, 16,
                                   seeds=[0, 1], calc_second_order=False))
    # Given each seed off by +-0.1 from 2a + b, and a run that is not in the design
    obs = observe(design, lambda r: 2 * r.params["a"] + r.params["b"] + (0.1 if r.seed else -0.1))  # type: ignore[operator]
    obs.append(Observation(run_id="stranger-s0", params={"a": 0.5}, score=99.0))
    result = analyse_design(design, obs, seed=0)
    assert result.excluded_runs == ("stranger-s0",)
    assert set(result.seeds_per_row) == {2}
    assert result.noise_sd == pytest.approx(0.2 / math.sqrt(2))
    assert len(result.used_runs) == 2 * result.rows
    # Seed noise on a mean of 2 seeds has variance sd^2 / 2 = 0.01: that share of Var(y)
    assert result.noise_variance_fraction == pytest.approx(0.01 / statistics.variance(result.y))
    # The analysed outputs are the seed means: exactly 2a + b at each row
    params = {r.row: r.params for r in design.runs}
    assert result.y == pytest.approx([2 * params[i]["a"] + params[i]["b"]  # type: ignore[operator]
                                      for i in result.sample_rows])


def test_non_finite_scores_are_refused(ishigami_design: Design) -> None:
    obs = observe(ishigami_design, ishigami_run)
    obs[3] = Observation(run_id=obs[3].run_id, params=obs[3].params, score=math.nan)
    with pytest.raises(BadInput, match="not finite"):
        analyse_design(ishigami_design, obs, seed=0)


def morris_design() -> Design:
    factors = {"a": {"range": [0, 1]}, "b": {"range": [0, 1]}, "c": {"range": [0, 1]}}
    return design_from_spec(spec("morris", factors, 10, levels=4))


def linear(r: PlannedRun) -> float:
    a, b, c = (float(r.params[n]) for n in "abc")
    return 4 * a + 1 * b + 0 * c


def test_morris_linear_effects_are_the_slopes_in_unit_space() -> None:
    design = morris_design()
    result = analyse_design(design, observe(design, linear), seed=0)
    # Elementary effects of a linear function are its slopes (per unit of each factor's range)
    assert result.indices["a"]["mu"] == pytest.approx(4.0)
    assert result.indices["a"]["mu_star"] == pytest.approx(4.0)
    assert result.indices["b"]["mu_star"] == pytest.approx(1.0)
    assert result.indices["c"]["mu_star"] == pytest.approx(0.0, abs=1e-12)
    assert result.indices["a"]["sigma"] == pytest.approx(0.0, abs=1e-9)
    assert set(result.indices["a"]) == {"mu", "mu_star", "sigma", "mu_star_conf"}
    assert result.dropped_trajectories == 0 and result.rows == 40
    assert result.noise_sd is None and result.noise_variance_fraction is None
    assert morris_delta(design) == pytest.approx(2 / 3)  # SALib: levels / (2 (levels - 1))


def test_morris_drops_incomplete_trajectories() -> None:
    design = morris_design()
    assert design.samples is not None and design.problem is not None
    # Given trajectory 1 (rows 4..7) missing its third point
    obs = observe(design, lambda r: math.sin(6 * float(r.params["a"])) * float(r.params["b"]),
                  skip=lambda r: r.row == 6)
    result = analyse_design(design, obs, seed=5)
    # Then that whole trajectory is dropped, said so, and the rest is SALib's answer on the subset
    assert result.dropped_trajectories == 1 and result.rows == 36
    assert 6 not in result.sample_rows and 4 not in result.sample_rows
    assert sorted(result.dropped_runs) == sorted(r.run_id for r in design.runs if r.row in (4, 5, 7))
    assert result.notes and "dropped 1 of 10" in result.notes[0]
    rows = list(result.sample_rows)
    direct = salib_morris.analyze(copy.deepcopy(design.problem), design.samples[rows], np.array(result.y),
                                  num_resamples=1000, num_levels=4, seed=5)
    assert [result.indices[n]["mu_star_conf"] for n in result.names] == list(direct["mu_star_conf"])
    # And with fewer than two complete trajectories there is nothing to analyse
    with pytest.raises(BadInput, match="only 1 of 10"):
        starts = lambda r: r.row is not None and r.row >= 4 and r.row % 4 == 0  # noqa: E731
        analyse_design(design, observe(design, linear, skip=starts), seed=0)


def test_ofat_designs_are_refused() -> None:
    design = design_from_spec({"name": "o", "executor": "external", "design": {"method": "ofat"},
                               "base": {"a": 1}, "factors": {"a": {"values": [1, 2]}}, "benchmarks": ["s"]})
    with pytest.raises(BadInput, match="--method ofat"):
        analyse_design(design, [Observation(run_id=design.runs[0].run_id, params={}, score=1.0)], seed=0)
    with pytest.raises(BadInput, match="only Morris"):
        morris_delta(design)


def test_design_from_spec_rebuilds_the_declared_design() -> None:
    first = design_from_spec(spec("sobol", ISHIGAMI, 8))
    again = design_from_spec(first.spec.canonical())
    assert [r.run_id for r in again.runs] == [r.run_id for r in first.runs]
    assert first.samples is not None and again.samples is not None
    assert np.array_equal(first.samples, again.samples)


def test_pooled_sd() -> None:
    # The row noise comes from the same pooled estimate the one-at-a-time verdicts use
    assert pooled_seed_noise([[1.0], [2.0]]) is None
    pooled = pooled_seed_noise([[1.0, 3.0], [5.0, 5.0, 5.0], [9.0]])
    assert pooled is not None and pooled.sd == pytest.approx(math.sqrt(2 / 3))


def test_level_values_for_listed_and_binned_range_values() -> None:
    factors = {"k": {"values": [1, 2, 4]}, "x": {"range": [0, 1]}}
    raw = spec("sobol", factors, 64, calc_second_order=False)
    raw["base"] = {"k": 2}
    design = design_from_spec(raw)
    obs = observe(design, lambda r: float(r.params["k"]) + 10 * float(r.params["x"]))
    overall = sum(o.score for o in obs) / len(obs)
    # A listed factor: one entry per value, numeric order, effect against the overall mean
    ks = level_values(design, obs, "k", overall)
    assert [v.value for v in ks] == [1, 2, 4]
    assert sum(v.n for v in ks) == len(obs)
    assert [v.is_baseline for v in ks] == [False, True, False]
    for v in ks:
        scores = [o.score for o in obs if o.run_id in v.runs]
        assert v.mean == pytest.approx(sum(scores) / len(scores))
        assert v.effect == pytest.approx(v.mean - overall)
        assert v.ci is not None and v.ci[0] < v.mean < v.ci[1]
        assert v.cost == {"flops": pytest.approx(10.0 * float(v.value))}
    # A continuous range factor: at most 8 quantile bins, each valued at its mean x
    xs = level_values(design, obs, "x", overall)
    assert 2 <= len(xs) <= 8 and sum(v.n for v in xs) == len(obs)
    assert [v.value for v in xs] == sorted(v.value for v in xs)
    assert all(0 <= float(v.value) <= 1 for v in xs)
    assert [v.mean for v in xs] == sorted(v.mean for v in xs)  # the score rises 10 per unit of x
    first = xs[0]
    in_bin = [float(r.params["x"]) for r in design.runs if r.run_id in first.runs]
    assert first.value == pytest.approx(sum(in_bin) / len(in_bin))
    assert level_values(design, obs, "x", overall, max_levels=3)[0].n >= len(obs) // 3
