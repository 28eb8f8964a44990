"""The compatibility verdict on synthetic data whose answer is known: a strong negative link of
volatility with learning is supported, the sign flipped is contradicted, noise is inconclusive."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.shift.verdict import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
    OutcomeSpec,
    bootstrap_interval,
    compare_orders,
    correlate,
    judge,
    judge_result,
    pearson,
    permutation_p,
    ranks,
    spearman,
)

ROOT = Path(__file__).resolve().parents[3]
VOLATILITY = {"a": 0.10, "b": 0.20, "c": 0.30, "d": 0.45, "e": 0.60, "f": 0.80}


def _runs(effect: float, noise: float, seeds: int = 4, rng_seed: int = 1) -> list[dict[str, Any]]:
    """learned_exact = 0.9 + effect * volatility + noise; losses and forgetting move the other way."""
    rng = random.Random(rng_seed)
    rows = []
    for seed in range(seeds):
        for name, v in VOLATILITY.items():
            jitter = [rng.gauss(0, noise) for _ in range(3)]
            rows.append({"candidate": name, "seed": seed, "outcomes": {
                "learned_exact": 0.9 + effect * v + jitter[0],
                "learned_loss": 1.0 - effect * v + jitter[1],
                "forgotten_loss": -0.5 * effect * v + jitter[2],
            }})
    return rows


def test_small_statistics_against_known_values() -> None:
    assert ranks([3.0, 1.0, 2.0, 1.0]) == [4.0, 1.5, 3.0, 1.5]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 1000]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(0.9933992677987828)  # numpy.corrcoef
    assert pearson([1, 2, 3], [5, 5, 5]) is None
    # Five candidates in the hypothesised order: one ordering of 120 is as extreme.
    assert permutation_p([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], -1, seed=0) == pytest.approx(1 / 120)
    assert permutation_p([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], +1, seed=0) == pytest.approx(1.0)


def test_strong_negative_link_with_learning_is_supported() -> None:
    verdict = judge(VOLATILITY, _runs(effect=-1.0, noise=0.02))
    by_name = {c.outcome: c for c in verdict.correlations}
    assert by_name["learned_exact"].verdict == SUPPORTED
    assert by_name["learned_exact"].spearman == pytest.approx(-1.0)
    assert by_name["learned_loss"].verdict == SUPPORTED  # losses rise with volatility: +1
    assert by_name["forgotten_loss"].verdict == SUPPORTED
    low, high = by_name["learned_exact"].spearman_interval or (0, 0)
    assert low <= high < 0
    assert by_name["learned_exact"].permutation_p == pytest.approx(1 / 720)
    assert verdict.overall == SUPPORTED


def test_the_sign_flipped_is_contradicted() -> None:
    verdict = judge(VOLATILITY, _runs(effect=+1.0, noise=0.02))
    assert {c.verdict for c in verdict.correlations} == {CONTRADICTED}
    assert verdict.overall == CONTRADICTED


def test_noise_alone_is_inconclusive() -> None:
    verdict = judge(VOLATILITY, _runs(effect=0.0, noise=0.3, seeds=5, rng_seed=7))
    assert all(c.verdict == INCONCLUSIVE for c in verdict.correlations), \
        [(c.outcome, c.spearman_interval) for c in verdict.correlations]
    assert verdict.overall == INCONCLUSIVE


def test_an_outcome_constant_across_candidates_is_inconclusive_not_an_error() -> None:
    rows = [{"candidate": n, "seed": s, "outcomes": {"learned_exact": 0.0}}
            for n in VOLATILITY for s in range(3)]
    (correlation,) = judge(VOLATILITY, rows).correlations
    assert correlation.spearman is None and correlation.verdict == INCONCLUSIVE


def test_bootstrap_is_deterministic_for_a_fixed_seed() -> None:
    runs = _runs(effect=-0.3, noise=0.2, seeds=5)
    spec = OutcomeSpec("learned_exact", -1)
    one = correlate(VOLATILITY, runs, spec, resamples=500, seed=3)
    two = correlate(VOLATILITY, runs, spec, resamples=500, seed=3)
    other = correlate(VOLATILITY, runs, spec, resamples=500, seed=4)
    assert one == two
    assert one.pearson_interval != other.pearson_interval
    values = [1.0, 2.0, 4.0]
    interval = bootstrap_interval(lambda p: sum(values[i] for i in p) / len(p), 3, resamples=1000, seed=0,
                                  level=0.9)
    assert interval is not None and 1.0 <= interval[0] < interval[1] <= 4.0


def test_candidates_must_share_their_seeds() -> None:
    runs = _runs(effect=-1.0, noise=0.0, seeds=2)
    runs.pop()  # the last candidate lacks seed 1
    with pytest.raises(ValueError, match="same seeds"):
        judge(VOLATILITY, runs)


def test_curriculum_means_and_ascending_minus_descending() -> None:
    rows = [{"order": order, "seed": s, "outcomes": {"learned_loss": base + 0.01 * s}}
            for s in range(4) for order, base in (("ascending", 1.0), ("descending", 1.5), ("random", 1.2))]
    comparison = compare_orders(rows, "learned_loss", resamples=300)
    means = {o.order: o.mean for o in comparison.orders}
    assert means == pytest.approx({"ascending": 1.015, "descending": 1.515, "random": 1.215})
    assert comparison.ascending_minus_descending == pytest.approx(-0.5)
    assert comparison.interval == pytest.approx((-0.5, -0.5))


def test_the_command_reads_a_hypothesis_result(tmp_path: Path) -> None:
    result = {"volatility": VOLATILITY, "runs": _runs(effect=-1.0, noise=0.02),
              "curriculum": [{"order": o, "seed": s, "outcomes": {"learned_loss": 1.0}}
                             for o in ("ascending", "descending") for s in range(2)]}
    assert judge_result(result).overall == SUPPORTED
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    done = subprocess.run([sys.executable, "-m", "services.shift.verdict", str(path), "--json",
                           "--resamples", "200"], cwd=ROOT, capture_output=True, text=True, check=True)
    printed = json.loads(done.stdout)
    assert printed["overall"] == SUPPORTED
    assert printed["curriculum"][0]["ascending_minus_descending"] == 0.0


def test_a_weak_correlation_that_seeds_do_not_move_needs_the_permutation_test() -> None:
    """No seed noise: the bootstrap interval is a point, and excludes 0 however weak the link."""
    weak = {"a": 0.3, "b": 0.1, "c": 0.4, "d": 0.2, "e": 0.5, "f": 0.6}  # rho -0.71, permutation p 0.068
    rows = [{"candidate": n, "seed": s, "outcomes": {"learned_exact": 1 - v}}
            for n, v in weak.items() for s in range(3)]
    strict = judge(VOLATILITY, rows).correlations[0]
    loose = judge(VOLATILITY, rows, alpha=None).correlations[0]
    assert strict.spearman_interval == loose.spearman_interval == pytest.approx((-0.7143, -0.7143), abs=1e-3)
    assert strict.permutation_p == pytest.approx(49 / 720)
    assert loose.verdict == SUPPORTED
    assert strict.verdict == INCONCLUSIVE
