"""The first main job from the command line, as a person runs it: real processes, real Neo4j."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUNDLED = ROOT / "services" / "data" / "vaswani2017_table3.csv"
EXPERIMENT = "vaswani"


def knobs(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"knobs {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def event_count(env: dict[str, str]) -> int:
    out = knobs(env, "events", "--json").stdout
    return len(out.splitlines())


@pytest.mark.slow
def test_import_rank_audit_round_trip(knobs_env: dict[str, str]) -> None:
    # Given the published Table 3 imported twice
    first = knobs(knobs_env, "import", "results", str(BUNDLED), "--experiment", EXPERIMENT, "--json")
    assert json.loads(first.stdout)["new_events"] == 61
    again = knobs(knobs_env, "import", "results", str(BUNDLED), "--experiment", EXPERIMENT, "--json")
    assert json.loads(again.stdout)["new_events"] == 0
    assert event_count(knobs_env) == 61

    # When the knobs are ranked on BLEU
    ranked = json.loads(knobs(knobs_env, "rank", "--experiment", EXPERIMENT, "--benchmark", "bleu_dev",
                              "--json").stdout)

    # Then the number of layers matters most (BLEU 23.7 with 2 layers vs 25.8 with 6)
    assert set(ranked) >= {"ranking_id", "experiment", "benchmark", "parameters"}
    top = ranked["parameters"][0]
    assert top["name"] == "n_layer" and top["rank"] == 1
    assert top["influence_range"] == pytest.approx([-2.1, 0.0])
    two = next(v for v in top["values"] if v["value"] == 2)
    assert two["effect"] == pytest.approx(-2.1) and two["n"] == 1 and two["ci"] is None
    assert ranked["excluded_runs"] == ["big"]
    # 19 runs used (all but "big"), each with its RunRecorded and BenchmarkScored event
    assert ranked["used_events"] == 38

    # Ranking the same evidence again stores nothing new
    again_ranked = json.loads(knobs(knobs_env, "rank", "--experiment", EXPERIMENT, "--benchmark",
                                    "bleu_dev", "--json").stdout)
    assert again_ranked["ranking_id"] == ranked["ranking_id"]
    assert event_count(knobs_env) == 62
    lines = knobs(knobs_env, "events", "--type", "RankingDerived", "--json").stdout.splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["RankingDerived"]

    # The audit leads to the events, their hashes and the citation
    trail = json.loads(knobs(knobs_env, "audit", ranked["ranking_id"], "--json").stdout)
    assert trail["events_used"] == 38 and trail["problems"] == []
    assert trail["chain"]["ok"] and trail["graph"]["consistent"]
    assert len(trail["evidence"]) == 19
    assert all("Vaswani et al. 2017" in run["source"]["citation"] for run in trail["evidence"])
    human = knobs(knobs_env, "audit", ranked["ranking_id"]).stdout
    assert "Attention Is All You Need" in human and "hash chain: verified" in human


@pytest.mark.slow
def test_bad_input_is_refused_and_nothing_is_written(knobs_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("run,param.x,score.acc\nr1,1,0.5\nr2,2,oops\n")
    proc = knobs(knobs_env, "import", "results", str(bad), "--experiment", "e", check=False)
    assert proc.returncode == 2
    assert "line 3: score.acc 'oops' is not a finite number" in proc.stderr
    assert "nothing was imported" in proc.stderr
    assert event_count(knobs_env) == 0

    missing = knobs(knobs_env, "rank", "--experiment", "nope", "--benchmark", "b", check=False)
    assert missing.returncode == 1 and "no experiment named 'nope'" in missing.stderr

    knobs(knobs_env, "import", "results", str(BUNDLED), "--experiment", EXPERIMENT)
    no_bench = knobs(knobs_env, "rank", "--experiment", EXPERIMENT, "--benchmark", "mmlu", check=False)
    assert no_bench.returncode == 1 and "its benchmarks: bleu_dev, ppl_dev" in no_bench.stderr
    no_run = knobs(knobs_env, "rank", "--experiment", EXPERIMENT, "--benchmark", "bleu_dev",
                   "--baseline", "zzz", check=False)
    assert no_run.returncode == 1 and "run 'zzz' has no 'bleu_dev' score" in no_run.stderr
    usage = knobs(knobs_env, "rank", "--experiment", EXPERIMENT, check=False)
    assert usage.returncode == 2 and "--benchmark" in usage.stderr


@pytest.mark.slow
def test_verify_names_the_first_tampered_position(knobs_env: dict[str, str]) -> None:
    knobs(knobs_env, "import", "results", str(BUNDLED), "--experiment", EXPERIMENT)
    assert "ok: 61 events" in knobs(knobs_env, "verify").stdout
    db = Path(knobs_env["KNOBS_HOME"]) / "events.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE events SET data = replace(data, '25.8', '29.9') WHERE position = 3")
    proc = knobs(knobs_env, "verify", check=False)
    assert proc.returncode == 1
    assert "BROKEN at position 3" in proc.stderr


@pytest.mark.slow
def test_incremental_graph_equals_the_rebuilt_one(knobs_env: dict[str, str]) -> None:
    knobs(knobs_env, "import", "results", str(BUNDLED), "--experiment", EXPERIMENT)
    knobs(knobs_env, "rank", "--experiment", EXPERIMENT, "--benchmark", "ppl_dev")
    incremental = knobs(knobs_env, "graph", "dump", "--canonical").stdout
    knobs(knobs_env, "graph", "rebuild")
    rebuilt = knobs(knobs_env, "graph", "dump", "--canonical").stdout
    assert incremental == rebuilt
    assert '"Ranking"' in incremental and incremental.count("\n") > 100


@pytest.mark.slow
def test_query_is_read_only(knobs_env: dict[str, str]) -> None:
    knobs(knobs_env, "import", "results", str(BUNDLED), "--experiment", EXPERIMENT)
    out = json.loads(knobs(knobs_env, "query", "MATCH (p:Parameter) RETURN p.name AS name ORDER BY name",
                           "--json").stdout)
    assert "n_layer" in json.dumps(out["rows"])
    refused = knobs(knobs_env, "query", "MATCH (p:Parameter) DETACH DELETE p", check=False)
    assert refused.returncode == 1 and "read-only" in refused.stderr
    named = knobs(knobs_env, "query", "--name", "runs_for_benchmark", "-p", f"experiment={EXPERIMENT}",
                  "-p", "benchmark=bleu_dev", "--json")
    assert len(json.loads(named.stdout)["rows"]) == 20
