"""One-at-a-time analysis on data whose answer is known."""

from __future__ import annotations

import pytest

from services.core.errors import BadInput
from services.ranking.analysis.ofat import Observation, analyse, mean_and_ci, mode_baseline


def obs(run: str, score: float, **params: object) -> Observation:
    base: dict[str, object] = {"layers": 4, "lr": 0.001, "fmt": "plain"}
    base.update(params)
    return Observation(run_id=run, params=base, score=score)  # type: ignore[arg-type]


def test_known_effects_rank_by_influence_width() -> None:
    # Given a baseline with three seeds and one-at-a-time variations with known effects
    runs = [obs("b0", 10.0), obs("b1", 11.0), obs("b2", 12.0)]
    runs += [obs("l2", 6.0, layers=2), obs("l8", 13.0, layers=8)]        # layers: -5 .. +2
    runs += [obs("lr1", 10.0, lr=0.01), obs("lr2", 12.0, lr=0.01)]       # lr: 0 (mean 11)
    runs += [obs("qa", 14.0, fmt="qa")]                                 # fmt: +3
    runs += [obs("both", 0.0, layers=2, lr=0.01)]                       # differs in two: left out
    # When the analysis runs
    result = analyse(runs)
    # Then the baseline is the most common configuration and effects are mean differences
    assert result.baseline == {"layers": 4, "lr": 0.001, "fmt": "plain"}
    assert result.baseline_runs == ("b0", "b1", "b2")
    assert result.baseline_mean == pytest.approx(11.0)
    names = [p.name for p in result.parameters]
    assert names == ["layers", "fmt", "lr"]
    layers = result.parameters[0]
    assert layers.influence_range == pytest.approx((-5.0, 2.0))
    assert [v.value for v in layers.values] == [2, 4, 8]
    assert [v.effect for v in layers.values] == pytest.approx([-5.0, 0.0, 2.0])
    assert layers.values[1].is_baseline
    lr = result.parameters[2]
    assert lr.values[1].n == 2 and lr.values[1].ci is not None
    assert lr.influence_range == pytest.approx((0.0, 0.0))
    assert result.excluded_runs == ("both",)
    assert "both" not in result.used_runs


def test_ci_is_a_student_t_interval() -> None:
    mean, ci = mean_and_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert ci is not None
    # t(0.975, 2) = 4.302653; sem = 1/sqrt(3)
    assert ci[1] - mean == pytest.approx(4.302653 / 3**0.5, rel=1e-5)
    assert mean_and_ci([5.0]) == (5.0, None)


def test_named_baseline_replaces_the_mode() -> None:
    runs = [obs("b", 1.0), obs("b2", 1.0), obs("x", 3.0, layers=8), obs("x2", 5.0, layers=8, lr=0.1)]
    result = analyse(runs, baseline=dict(runs[2].params))
    assert result.baseline_runs == ("x",)
    assert {p.name for p in result.parameters} == {"layers", "lr"}


def test_no_baseline_run_is_a_clear_error() -> None:
    runs = [obs("a", 1.0, layers=1), obs("b", 2.0, layers=2, lr=0.1), obs("c", 1.0, fmt="qa", lr=0.5)]
    with pytest.raises(BadInput, match="--baseline RUN"):
        analyse(runs, baseline={"layers": 99, "lr": 0.001, "fmt": "plain"})


def test_mode_ties_break_deterministically() -> None:
    runs = [obs("a", 1.0, layers=2), obs("b", 1.0, layers=1)]
    assert mode_baseline(runs)["layers"] == 1
    assert mode_baseline(list(reversed(runs)))["layers"] == 1


def test_nothing_to_rank() -> None:
    with pytest.raises(BadInput, match="no runs"):
        analyse([])


def test_the_coded_analysis_splits_runs_as_comparing_them_one_by_one_does() -> None:
    """encode() turns values into codes; 1, 1.0, True and "1" must stay four values, and a
    missing parameter must differ from every value but a missing one, as `differing` says."""
    import random

    from services.ranking.analysis.ofat import differing, encode, replicate_groups

    rng = random.Random(3)
    choices: list[object] = [1, 1.0, True, "1", None, 2, 0.5, "a"]
    runs = []
    for i in range(400):
        params = {name: rng.choice(choices) for name in ("a", "b", "c") if rng.random() < 0.9}
        if rng.random() < 0.6:  # most runs sit at or next to a common configuration
            params = {"a": 1, "b": "a", "c": None}
            if rng.random() < 0.5:
                params["b"] = rng.choice(choices)
        runs.append(Observation(f"r{i}", params, rng.random(), seed=i))  # type: ignore[arg-type]
    result = analyse(runs)
    base = result.baseline
    assert set(result.baseline_runs) == {o.run_id for o in runs if not differing(o.params, base)}
    assert set(result.excluded_runs) == {o.run_id for o in runs if len(differing(o.params, base)) > 1}
    for p in result.parameters:
        expected = {o.run_id for o in runs if differing(o.params, base) == [p.name]}
        assert {r for v in p.values if not v.is_baseline for r in v.runs} == expected
    # replicate groups: runs with the same canonical parameters, first-seen order
    from events.canonical import canonical_json

    by_json: dict[str, list[float]] = {}
    for o in runs:
        by_json.setdefault(canonical_json(o.params), []).append(o.score)
    assert replicate_groups(runs, encode(runs)) == list(by_json.values())
