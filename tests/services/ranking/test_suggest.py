"""`knobs suggest`: follow-up specs from hand-built rankings, and the command end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from events.models import LeverageFlag, ParameterRanking, RankingDerived, ValueEffect
from services.core.errors import BadInput
from services.experiments.service import plan
from services.experiments.spec import load_spec, read_yaml, validate_spec
from services.ranking.suggest import followup_name, log_axis, suggest_spec

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "services" / "data" / "demo-ofat.yaml"
BENCH = "qa_answer_loss"


def demo_spec() -> dict[str, Any]:
    """The demo's spec as an ExperimentDeclared event stores it."""
    return validate_spec(read_yaml(DEMO)).canonical()


def v(value: Any, mean: float, base_mean: float, n: int = 2, baseline: bool = False) -> ValueEffect:
    return ValueEffect(value=value, mean=mean, effect=mean - base_mean, n=n, is_baseline=baseline)


def flags(*kinds: str) -> list[LeverageFlag]:
    return [LeverageFlag(kind=k, reason=f"because {k}") for k in kinds]


def ranking(parameters: list[ParameterRanking], baseline: dict[str, Any], *, experiment: str = "demo-ofat",
            benchmark: str = BENCH, direction: str = "lower", base_mean: float = 2.0) -> RankingDerived:
    return RankingDerived(
        ranking_id="5b1f0a52-7d0e-5c1c-9d55-0f1e2d3c4b5a", experiment=experiment, benchmark=benchmark,
        method="ofat", direction=direction, baseline=baseline, baseline_runs=["base-s0", "base-s1"],
        baseline_mean=base_mean, code_version="test", as_of=42, used_events=[], parameters=parameters,
    )


def demo_ranking(*extra: ParameterRanking) -> RankingDerived:
    base = demo_spec()["base"]
    bm = 2.0
    return ranking([
        # d_model: 128 beats the baseline 64 and is the largest tried, two values, two runs each
        ParameterRanking(name="d_model", rank=1, influence_range=(-0.5, 0.0), statistic=0.5,
                         values=[v(64, bm, bm, baseline=True), v(128, 1.5, bm)],
                         flags=flags("narrow_range", "few_runs", "best_at_edge", "baseline_far_from_best")),
        # lr: the smaller value is better and at the edge
        ParameterRanking(name="lr", rank=2, influence_range=(-0.3, 0.0), statistic=0.3,
                         values=[v(0.001, 1.7, bm), v(0.003, bm, bm, baseline=True)],
                         flags=flags("best_at_edge")),
        ParameterRanking(name="n_layer", rank=3, influence_range=(0.0, 0.1), statistic=0.1,
                         values=[v(2, bm, bm, baseline=True), v(4, 2.1, bm)]),
        *extra,
    ], base)


def written(tmp_path: Path, text: str, name: str = "followup.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_followup_of_the_demo_moves_the_base_extends_the_edges_and_adds_seeds(tmp_path: Path) -> None:
    declared = demo_spec()
    r = demo_ranking()
    # When
    s = suggest_spec(r, declared)
    spec = s.spec
    # Then the executor, benchmarks and unflagged factors are the demo's
    assert spec["executor"] == "train" and spec["design"] == {"method": "ofat", "seed": 0}
    assert spec["benchmarks"] == declared["benchmarks"]
    for name in ("n_layer", "format", "train_tokens"):
        assert spec["factors"][name] == declared["factors"][name]
    # the best values become the base
    assert spec["base"]["d_model"] == 128 and spec["base"]["lr"] == 0.001
    assert spec["base"]["n_head"] == declared["base"]["n_head"]
    # d_model: two steps beyond 128 (x2), a midpoint and one step beyond each end; the old base stays
    assert set(spec["factors"]["d_model"]["values"]) >= {32, 64, 96, 128, 256, 512}
    assert spec["factors"]["d_model"]["values"] == sorted(spec["factors"]["d_model"]["values"])
    # lr: two steps below 0.001, halving
    assert set(spec["factors"]["lr"]["values"]) == {0.00025, 0.0005, 0.001, 0.003}
    # few runs: three seeds
    assert spec["seeds"] == [0, 1, 2]
    assert s.name == followup_name("demo-ofat", r.ranking_id) and s.name.startswith("demo-ofat-followup-")
    assert spec["budget"]["max_runs"] == s.runs
    # The header names the ranking and every reason
    header = [line for line in s.yaml.splitlines() if line.startswith("#")]
    assert any(r.ranking_id in line for line in header)
    for reason in s.reasons:
        assert any(" ".join(reason.split()) in line for line in header), reason
    assert any("because best_at_edge" in reason for reason in s.reasons)
    assert any(reason.startswith("base.d_model: 64 -> 128") for reason in s.reasons)
    # And the file loads as a spec, and `knobs experiment plan` accepts it with that many runs
    path = written(tmp_path, s.yaml)
    assert load_spec(path).canonical() == validate_spec(spec).canonical()
    assert len(plan(path).runs) == s.runs


def test_values_that_break_the_training_contract_are_dropped_with_the_reason(tmp_path: Path) -> None:
    # Given n_head best at 32, the largest tried: 64 divides d_model 64, 128 does not
    base = demo_spec()["base"]
    heads = ParameterRanking(name="n_head", rank=1, influence_range=(-0.4, 0.0), statistic=0.4,
                             values=[v(2, 2.0, 2.0, baseline=True), v(16, 1.8, 2.0), v(32, 1.6, 2.0)],
                             flags=flags("best_at_edge"))
    # and lr best at 0.5, the largest tried: 1.0 is allowed, 2.0 is not
    lr = ParameterRanking(name="lr", rank=2, influence_range=(-0.2, 0.0), statistic=0.2,
                          values=[v(0.003, 2.0, 2.0, baseline=True), v(0.5, 1.8, 2.0)],
                          flags=flags("best_at_edge"))
    s = suggest_spec(ranking([heads, lr], base), demo_spec())
    assert s.spec["base"]["n_head"] == 32
    assert s.spec["factors"]["n_head"]["values"] == [2, 16, 32, 64]
    assert any("drops 128" in r and "divisible by n_head (128)" in r for r in s.reasons)
    assert s.spec["factors"]["lr"]["values"] == [0.003, 0.5, 1.0]
    assert any(r.startswith("factors.lr: drops 2") for r in s.reasons)
    # every run of the follow-up is a valid training run
    assert len(plan(written(tmp_path, s.yaml)).runs) == s.runs


def test_an_imported_experiment_gets_an_external_spec_of_its_flagged_parameters(tmp_path: Path) -> None:
    # Given an imported experiment (no declared spec): BLEU, higher is better
    baseline = {"n_layer": 6, "d_model": 512, "attention_key_dim": "d_model/h", "dropout": 0.1,
                "schedule": "1e-3"}
    bm = 25.8
    r = ranking([
        ParameterRanking(name="n_layer", rank=1, influence_range=(-2.1, 0.0),
                         values=[v(2, 23.7, bm, n=1), v(4, 25.3, bm, n=1), v(6, bm, bm, n=1, baseline=True)],
                         flags=flags("few_runs", "best_at_edge")),
        ParameterRanking(name="dropout", rank=2, influence_range=(-1.2, 0.0),
                         values=[v(0.0, 24.6, bm, n=1), v(0.1, bm, bm, n=1, baseline=True),
                                 v(0.2, 25.5, bm, n=1)],
                         flags=flags("narrow_range")),
        ParameterRanking(name="attention_key_dim", rank=3, influence_range=(-0.1, 0.0),
                         values=[v("d_model/h", bm, bm, n=1, baseline=True), v("16", 25.7, bm, n=1)]),
    ], baseline, experiment="vaswani", benchmark="bleu_dev", direction="higher", base_mean=bm)
    # When
    s = suggest_spec(r, None, benchmarks=["bleu_dev", "ppl_dev"])
    spec = s.spec
    # Then the executor is external, the factors are the flagged parameters, the base is everything
    assert spec["executor"] == "external" and spec["benchmarks"] == ["bleu_dev", "ppl_dev"]
    assert list(spec["factors"]) == ["n_layer", "dropout"]
    assert spec["base"] == baseline  # 6 layers was already the best
    assert spec["factors"]["n_layer"]["values"] == [2, 4, 6, 12, 24]  # "n_" is size-like: x2 steps
    # dropout: midpoints and one step beyond each end, never below zero
    assert spec["factors"]["dropout"]["values"] == [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
    assert any("-0.1 left out" in reason for reason in s.reasons)
    assert spec["seeds"] == [0, 1, 2]
    # And the file loads with strings that look like numbers kept as strings
    path = written(tmp_path, s.yaml)
    loaded = load_spec(path)
    assert loaded.base["schedule"] == "1e-3" and loaded.executor == "external"
    assert len(plan(path).runs) == s.runs


def test_a_morris_experiment_is_followed_up_one_at_a_time(tmp_path: Path) -> None:
    # Given a Morris ranking: effects against the design's mean, n_layer binned (means, no baseline)
    declared = validate_spec(read_yaml(ROOT / "examples" / "specs" / "tiny-morris.yaml")).canonical()
    layers = ParameterRanking(name="n_layer", rank=1, influence_range=(-0.2, 0.3), statistic=0.3,
                              values=[v(1.4, 2.2, 2.0), v(2.6, 2.0, 2.0), v(3.8, 1.8, 2.0)],
                              flags=flags("best_at_edge"))
    r = ranking([layers], declared["base"], experiment="tiny-morris", benchmark="heldout_loss")
    # When
    s = suggest_spec(r, declared)
    # Then the bins become integer values, the best (about 4 layers) the base, and 8, 16 are added
    assert s.spec["design"] == {"method": "ofat", "seed": 0}
    assert s.spec["base"]["n_layer"] == 4 and s.spec["factors"]["n_layer"] == {"values": [1, 3, 4, 8, 16]}
    assert any("vs the design's mean 2" in reason for reason in s.reasons)
    # the unflagged range factors are kept as declared, and the spec plans
    assert s.spec["factors"]["lr"] == declared["factors"]["lr"]
    assert len(plan(written(tmp_path, s.yaml)).runs) == s.runs


def test_max_runs_drops_unflagged_factors_then_added_seeds_then_refuses() -> None:
    r = demo_ranking()
    full = suggest_spec(r, demo_spec())
    small = suggest_spec(r, demo_spec(), max_runs=full.runs - 1)
    assert small.runs <= full.runs - 1 and small.spec["budget"]["max_runs"] == full.runs - 1
    assert {"d_model", "lr"} <= set(small.spec["factors"])
    assert any("left out (not flagged)" in reason for reason in small.reasons)
    with pytest.raises(BadInput, match=r"needs \d+ runs, more than --max-runs 3; raise --max-runs"):
        suggest_spec(r, demo_spec(), max_runs=3)


def test_nothing_flagged_is_refused_with_the_reason() -> None:
    bare = ranking([ParameterRanking(name="lr", rank=1, influence_range=(-0.1, 0.0),
                                     values=[v(0.003, 2.0, 2.0, baseline=True), v(0.001, 1.9, 2.0)])],
                   demo_spec()["base"])
    with pytest.raises(BadInput, match=r"is flagged as under-used.*carries no leverage analysis"):
        suggest_spec(bare, demo_spec())
    analysed = ranking([ParameterRanking(name="lr", rank=1, influence_range=(-0.1, 0.0), statistic=0.1,
                                         values=[v(0.003, 2.0, 2.0, baseline=True), v(0.001, 1.9, 2.0)])],
                       demo_spec()["base"])
    wanted = r"no parameter \(1 ranked\) is both high-leverage.*\. Top parameters: lr"
    with pytest.raises(BadInput, match=wanted) as caught:
        suggest_spec(analysed, demo_spec())
    assert "re-run the experiment with more seeds" in str(caught.value)


def test_names_and_axes() -> None:
    long = followup_name("x" * 150 + "/weird name", "r")
    assert len(long) <= 100 and "-followup-" in long
    assert followup_name("a b/c", "r").startswith("a-b-c-followup-")
    assert log_axis("d_model", [64, 128]) and log_axis("x", [1, 2, 4]) and not log_axis("x", [1, 2, 3])
    assert not log_axis("d_model", [0, 64]) and log_axis("x", [1, 2]) and not log_axis("x", [1.0, 1.5])


# --- the command, end to end ----------------------------------------------------------------


def knobs(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_knobs_suggest_writes_a_spec_that_plans(knobs_env: dict[str, str], tmp_path: Path) -> None:
    # Given an imported experiment where x matters: 1 (base, three seeds) vs 2, one run
    table = tmp_path / "runs.csv"
    table.write_text(
        "run,seed,param.x,param.y,score.acc,score.f1,cost.flops\n"
        "b0,0,1,a,0.50,0.4,100\nb1,1,1,a,0.51,0.4,100\nb2,2,1,a,0.49,0.4,100\n"
        "x2,0,2,a,0.70,0.6,200\ny1,0,1,b,0.505,0.4,100\n"
    )
    imported = knobs(knobs_env, "import", "results", str(table), "--experiment", "toy")
    assert imported.returncode == 0, imported.stderr
    # When no benchmark is named for an experiment with two
    proc = knobs(knobs_env, "suggest", "--experiment", "toy")
    # Then it asks which one
    assert proc.returncode == 2 and "2 benchmarks" in proc.stderr and "acc, f1" in proc.stderr
    # When the benchmark is named
    out = tmp_path / "next.yaml"
    proc = knobs(knobs_env, "suggest", "--experiment", "toy", "--benchmark", "acc", "--out", str(out),
                 "--json")
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    # Then the flagged x is explored further from its new base 2, with more seeds
    assert done["path"] == str(out) and done["spec"]["executor"] == "external"
    spec = yaml.safe_load(out.read_text())
    assert spec["base"] == {"x": 2, "y": "a"} and spec["factors"]["x"]["values"][:2] == [1, 2]
    assert spec["seeds"] == [0, 1, 2]
    text = out.read_text()
    assert done["ranking_id"] in text and "# Why:" in text
    planned = knobs(knobs_env, "experiment", "plan", str(out))
    assert planned.returncode == 0, planned.stderr
    # And an existing file is not overwritten without --force
    again = knobs(knobs_env, "suggest", "--experiment", "toy", "--benchmark", "acc", "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    forced = knobs(knobs_env, "suggest", "--experiment", "toy", "--benchmark", "acc", "--out", str(out),
                   "--force")
    assert forced.returncode == 0 and f"written to {out}" in forced.stdout
