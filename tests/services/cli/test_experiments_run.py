"""The training main job from the command line: declare, train for real, rank with cost, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services.cli.test_main_job import event_count, knobs

SPEC = """\
name: cli-train
executor: train
design: {method: ofat, seed: 0}
base: {n_layer: 1, d_model: 32, context_length: 64, n_people: 20, train_tokens: 20000, batch_size: 8,
       tokenizer: char, format: mixed}
factors:
  n_layer: {values: [1, 2]}
  format: {values: [mixed, plain]}
seeds: [0]
benchmarks: [heldout_loss, qa_answer_loss_seen]
"""


@pytest.mark.slow
def test_run_trains_every_run_then_ranks_the_knobs_with_their_cost(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    # Given a one-at-a-time spec with two knobs
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)

    # When it is run on the embedded worker
    done = json.loads(knobs(knobs_env, "experiment", "run", str(spec), "--json").stdout)

    # Then every run trained and ended once
    assert done["total"] == 3 and done["counts"] == {"completed": 3}
    assert {r["run_id"] for r in done["runs"]} == {"base-s0", "n_layer=2-s0", "format=plain-s0"}
    status = json.loads(knobs(knobs_env, "experiment", "status", "cli-train", "--json").stdout)
    assert status["counts"] == {"completed": 3} and status["eta_s"] == 0.0

    # And the knobs rank on held-out loss, each value with the cost its runs recorded
    ranked = json.loads(knobs(knobs_env, "rank", "--experiment", "cli-train", "--benchmark",
                              "heldout_loss", "--json").stdout)
    assert {p["name"] for p in ranked["parameters"]} == {"n_layer", "format"}
    n_layer = next(p for p in ranked["parameters"] if p["name"] == "n_layer")
    one, two = sorted(n_layer["values"], key=lambda v: v["value"])
    assert two["cost"]["params_total"] > one["cost"]["params_total"] > 0
    assert two["cost"]["flops_6nd"] > one["cost"]["flops_6nd"]
    assert one["cost"]["wall_s"] > 0 and one["cost"]["bytes_bf16"] == 2 * one["cost"]["params_total"]
    audit = knobs(knobs_env, "audit", ranked["ranking_id"])
    assert "hash chain: verified" in audit.stdout

    # And the graph holds each run's ending
    rows = json.loads(knobs(knobs_env, "query", "MATCH (o:Outcome)-[:ENDED]->(r:Run) "
                            "RETURN o.status AS status, count(r) AS n", "--json").stdout)
    assert rows["rows"] == [["completed", 3]]

    # And running the spec again trains nothing: every run has ended
    before = event_count(knobs_env)
    again = json.loads(knobs(knobs_env, "experiment", "run", str(spec), "--json").stdout)
    assert again["counts"] == {"completed": 3}
    assert event_count(knobs_env) == before


def test_a_malformed_spec_is_refused_and_nothing_is_appended(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    # Given a spec with an unknown knob and a bad design method
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("n_layer: {values", "n_layers: {values").replace("ofat", "ofta"))

    # When it is run
    proc = knobs(knobs_env, "experiment", "run", str(spec), check=False)

    # Then it exits 2, naming both problems, and the log stays empty
    assert proc.returncode == 2
    assert "n_layers" in proc.stderr and "design.method" in proc.stderr
    assert event_count(knobs_env) == 0


@pytest.mark.slow
def test_run_exits_3_and_names_the_failed_runs_when_any_run_failed(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    # Given a spec whose variant starts from a base model that was never trained
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("name: cli-train", "name: cli-fails").replace("20000", "5000").replace(
        "  format: {values: [mixed, plain]}\n", "  base_run: {values: [never-trained/base-s0]}\n").replace(
        "  n_layer: {values: [1, 2]}\n", ""))

    # When it is run on the embedded worker
    proc = knobs(knobs_env, "experiment", "run", str(spec), "--json", check=False)

    # Then the base run completes, the variant fails, and the command exits 3 naming the failure
    assert proc.returncode == 3, proc.stderr
    done = json.loads(proc.stdout)
    assert done["counts"] == {"completed": 1, "failed": 1}
    assert "1 of 2 run(s) failed (exit 3)" in proc.stderr
    failed = next(r for r in done["runs"] if r["state"] == "failed")
    assert f"  {failed['run_id']}: invalid: base_run 'never-trained/base-s0' has no RunCompleted" \
        in proc.stderr
