"""`knobs estimate` and `knobs estimate --check` from the command line, over real tiny training runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services.cli.test_main_job import event_count, knobs

SPEC = """\
name: est-train
executor: train
design: {method: ofat, seed: 0}
base: {n_layer: 1, d_model: 32, context_length: 64, n_people: 20, train_tokens: 20000, batch_size: 8,
       tokenizer: char, format: mixed}
factors:
  n_layer: {values: [1, 2]}
seeds: [0, 1]
benchmarks: [heldout_loss]
"""


@pytest.fixture
def env(knobs_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The estimate's worker entry points (page_tokens, torch_devices) declared for the subprocess,
    pointing at the real worker functions, until the installed metadata carries them."""
    info = tmp_path / "ep" / "knobs_estimate_ep-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: knobs-estimate-ep\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[knobs.executors]\npage_tokens = workers.embedded:page_tokens\n"
                                           "torch_devices = workers.embedded:torch_devices\n")
    path = ":".join(p for p in (knobs_env.get("PYTHONPATH", ""), str(info.parent)) if p)
    return {**knobs_env, "PYTHONPATH": path}


def test_bad_input_exits_2_with_what_to_do(env: dict[str, str]) -> None:
    proc = knobs(env, "estimate", "--pages", "1,0", check=False)
    assert proc.returncode == 2 and "positive integers" in proc.stderr
    proc = knobs(env, "estimate", "--gpu", "Voodoo 3", check=False)
    assert proc.returncode == 2 and "known GPUs" in proc.stderr and "RTX PRO 6000" in proc.stderr


def test_check_with_no_runs_says_so(env: dict[str, str]) -> None:
    proc = knobs(env, "estimate", "--check", check=False)
    assert proc.returncode == 2 and "no finished runs" in proc.stderr


@pytest.mark.slow
def test_estimate_and_check_over_real_runs(env: dict[str, str], tmp_path: Path) -> None:
    # Given four tiny runs trained on this CPU
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    trained = knobs(env, "experiment", "run", str(spec), "--json")
    done = json.loads(trained.stdout)
    assert done["counts"] == {"completed": 4}
    # and each finished run already a check of the estimator, recorded when the runs ended
    assert "estimator checked against 4 finished runs (4 new checks)" in trained.stderr

    # When the estimate is asked for this machine
    result = json.loads(knobs(env, "estimate", "--pages", "1,10", "--json").stdout)

    # Then it is calibrated on those runs, one row per page count
    assert [r["pages"] for r in result["estimates"]] == [1, 10]
    flops = result["inputs"]["training_flops_per_s"]
    print(f"CPU achieved {flops['value']:.3g} FLOP/s ({flops['low']:.3g}-{flops['high']:.3g})")
    assert flops["source"].startswith("measured: 4 CPU runs") and flops["value"] > 1e6
    assert 550 <= result["inputs"]["tokens_per_page"]["tokens_per_page_mean"] <= 850

    # And the check predicts each run from the other three, recorded once
    checks = json.loads(knobs(env, "estimate", "--check", "--json").stdout)
    assert set(checks) == {"checks"} and len(checks["checks"]) == 4
    for c in checks["checks"]:
        assert set(c) == {"run", "predicted_s", "measured_s", "relative_error"}
        assert c["measured_s"] > 0 and abs(c["relative_error"]) < 5
    errors = sorted(abs(c["relative_error"]) for c in checks["checks"])
    print(f"leave-one-out |relative error|: {errors}")
    before = event_count(env)
    text = knobs(env, "estimate", "--check").stdout
    assert "median |relative error|" in text and "0 new EstimateChecked" in text
    assert event_count(env) == before
