"""The ranking benchmark runs end to end at a tiny size; no timing is asserted, only that it
prints its table and ratios, that every side answered, and that they agree on the ranking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import rank

RUNS = 60  # 3 parameters x 4 values + the baseline = 13 configurations, 4 seeds each (12 at the baseline)
PARAMETERS = 3
BENCHMARKS = 2
TINY = [
    "--runs", str(RUNS), "--parameters", str(PARAMETERS), "--benchmarks", str(BENCHMARKS),
    "--api-colds", "2", "--api-repeats", "2", "--in-process-repeats", "1", "--cli-repeats", "1",
    "--pandas-repeats", "2",
    "--mlflow-repeats", "1", "--mlflow-runs", "30",
    "--sobol-n", "16", "--sobol-d", "4", "--sobol-resamples", "20", "--sobol-repeats", "2",
]


def test_generated_store_is_one_at_a_time_with_a_known_answer() -> None:
    # Given the default-shaped workload, scaled down
    workload = rank.generate(runs=410, parameters=10, benchmarks=5, seed=1)

    # Then it has exactly the runs asked for, each differing from the baseline in at most one
    # parameter, with every configuration seeded several times, and costs on every run
    rows = workload.rows
    assert len(rows) == 410 and len({r["run"] for r in rows}) == 410
    assert workload.configurations == 41 and workload.seeds_per_configuration == 10
    baseline = {f"param.{k.name}": k.baseline for k in workload.knobs}
    differing = [sum(r[c] != v for c, v in baseline.items()) for r in rows]
    assert set(differing) == {0, 1}
    assert differing.count(0) == workload.baseline_seeds == 410 - 40 * 10
    assert all(r["cost.flops"] > 0 and r["cost.weight_bytes_bf16"] > 0 for r in rows)
    # And losses go down where accuracies go up: the biggest model has a lower loss_a and a higher
    # mmlu_acc than the baseline, on average over its seeds
    big = [r for r in rows if r["param.model_params"] == 2_700_000_000]
    base = [r for r, d in zip(rows, differing, strict=True) if d == 0]

    def mean(rs: list[dict[str, float]], col: str) -> float:
        return sum(r[col] for r in rs) / len(rs)

    assert mean(big, "score.loss_a") < mean(base, "score.loss_a")
    assert mean(big, "score.mmlu_acc") > mean(base, "score.mmlu_acc")
    # And the same seed gives the same rows
    assert rank.generate(runs=410, parameters=10, benchmarks=5, seed=1).rows == rows


def test_pandas_floor_ranks_by_influence_width() -> None:
    import pandas as pd

    # Given a tiny table where knob a moves the score by 0.5 and knob b by 0.1
    df = pd.DataFrame({
        "a": [0, 0, 0, 1, 1, 0, 0],
        "b": [0, 0, 0, 0, 0, 1, 1],
        "y": [1.0, 1.0, 1.0, 1.5, 1.5, 1.1, 1.1],
    })

    # When the floor analysis runs
    result = rank.pandas_ofat(df, ["a", "b"], "y")

    # Then a ranks first with width 0.5, b second with 0.1
    assert [r["parameter"] for r in result] == ["a", "b"]
    assert result[0]["width"] == pytest.approx(0.5) and result[1]["width"] == pytest.approx(0.1)


@pytest.mark.slow
def test_rank_benchmark_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no Neo4j configured: the benchmark starts one of its own (and wipes nothing shared)
    for name in ("KNOBS_NEO4J_URI", "KNOBS_NEO4J_USER", "KNOBS_NEO4J_PASSWORD", "KNOBS_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "figures.json"

    # When the benchmark runs at a tiny size
    code = rank.main([*TINY, "--json", str(out), "--workdir", str(tmp_path / "work")])
    printed = capsys.readouterr().out

    # Then it succeeds and prints the latency table, the ratios, the Sobol comparison and the machine
    assert code == 0, printed
    for tool in ("knobs API cold: POST /v1/rankings", "knobs API repeat: POST /v1/rankings",
                 "knobs rank in process", "knobs CLI: knobs rank --json", "groupby (in memory)",
                 "search_runs + pandas"):
        assert tool in printed, tool
    for line in ("knobs API cold / pandas groupby (the floor)",
                 "MLflow search_runs + pandas / knobs API cold",
                 "MLflow search_runs + pandas / knobs API repeat", "knobs CLI / knobs API repeat",
                 "ratio analyse_design / SALib"):
        assert line in printed, line
    assert "CAPPED with --mlflow-runs" in printed and "30 of 60 runs" in printed
    assert "what each side computes:" in printed and "machine:" in printed
    assert "checks: ok" in printed

    # And the JSON holds the same figures: every side timed, the first ranking new and the
    # repeats duplicates of it, pandas ranking the knobs in knobs' order, Sobol's indices identical
    figures = json.loads(out.read_text())
    assert figures["runs"] == RUNS and figures["mlflow_runs"] == 30
    for key in ("api_cold", "api_linked", "api", "in_process", "cli", "pandas", "mlflow"):
        result = figures["results"][key]
        assert result["p50"] > 0 and result["p95"] >= result["p50"]
    assert figures["results"]["api_cold"]["cold_s"] > 0 and figures["results"]["cli"]["cold_s"] > 0
    assert set(figures["ratios"]) == {"api_cold_over_pandas", "mlflow_over_api_cold",
                                      "mlflow_over_api_linked", "mlflow_over_api_repeat", "api_over_pandas",
                                      "api_over_mlflow", "cli_over_api", "sobol_ours_over_salib"}
    assert all(v > 0 for v in figures["ratios"].values())
    assert figures["checks"]["ok"] is True
    assert figures["checks"]["first_api_ranking_new"] and figures["checks"]["api_repeats_duplicates"]
    # the cold rankings were new, and the read model held what the graph holds on this store
    assert figures["checks"]["api_colds_new"] and figures["checks"]["read_model_equals_graph"]
    assert figures["orders"]["pandas"] == figures["orders"]["knobs"]
    assert len(figures["orders"]["knobs"]) == PARAMETERS
    assert figures["sobol"]["runs"] == 16 * (2 * 4 + 2) and figures["sobol"]["same_indices"] is True
    assert figures["sobol"]["ratio"] > 0 and figures["sobol"]["ratio_of_p50s"] > 0
    assert figures["knobs_store"]["events"] == RUNS * (1 + BENCHMARKS)
    assert figures["machine"]["cores"] >= 1
