"""`knobs repetition run|report` end to end: template rewrites, real students, the table, ranking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services.cli.test_main_job import event_count, knobs

SPEC = """\
kind: repetition
name: cli-rep
source: {people: 8}
conditions: [verbatim, lenses]
K: [1, 2]
protocols: [pretrain_finetune]
budget: {rule: tokens, train_tokens: 5120, finetune_tokens: 1024}
student: {n_layer: 1, n_head: 2, d_model: 32, context_length: 64, batch_size: 8, vocab_size: 300}
seeds: [0, 1]
benchmarks: [qa_answer_loss, qa_exact_match]
"""


@pytest.mark.slow
def test_run_distils_trains_reports_and_ranks_condition_and_k(
    knobs_env: dict[str, str], tmp_path: Path
) -> None:
    # Given a small repetition spec
    spec = tmp_path / "rep.yaml"
    spec.write_text(SPEC)

    # When it runs: rewrites by the template engine, then 2 conditions x 2 K x 2 seeds students
    out = knobs(knobs_env, "repetition", "run", str(spec)).stdout
    assert "rewrites: distillation" in out and "experiment cli-rep: 8 runs" in out
    assert "pretrain_finetune / qa_answer_loss" in out and "the paper's figures" in out

    # Then the report holds every cell with both seeds, and the difference against noise
    report = json.loads(knobs(knobs_env, "repetition", "report", "cli-rep", "--json").stdout)
    assert report["runs"] == 8 and report["conditions"] == ["lenses", "verbatim"] and report["ks"] == [1, 2]
    assert report["budget"].startswith("equal tokens: 5,120")
    loss = next(t for t in report["tables"] if t["benchmark"] == "qa_answer_loss")
    assert len(loss["cells"]) == 4 and all(c["seeds"] == 2 for c in loss["cells"])
    assert {d["K"] for d in loss["differences"]} == {1, 2} and all(d["noise_se"] is not None
                                                                  for d in loss["differences"])
    assert {f["condition"] for f in loss["fits"]} == {"lenses", "verbatim"}
    assert any(r["paper_condition"] == "bioS multi5+permute" for r in report["paper"])

    # And every student's data traces to the distillation: the runs' cloud is the rewrites' id
    distillations = json.loads(knobs(knobs_env, "distill", "list", "--json").stdout)
    assert report["cloud"] in {d["distillation_id"] for d in distillations}

    # And the machinery that ranks any knob ranks condition and K
    ranked = json.loads(knobs(knobs_env, "rank", "--experiment", "cli-rep", "--benchmark", "qa_answer_loss",
                              "--json").stdout)
    assert {p["name"] for p in ranked["parameters"]} >= {"condition", "K"}

    # And running it again distils and trains nothing
    before = event_count(knobs_env)
    knobs(knobs_env, "repetition", "run", str(spec), "--no-report")
    assert event_count(knobs_env) == before


def test_bad_input_is_one_clear_line_and_exit_2(knobs_env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.replace("K: [1, 2]", "K: [1, 1]"))
    bad = knobs(knobs_env, "repetition", "run", str(spec), check=False)
    assert bad.returncode == 2 and "listed more than once" in bad.stderr
    missing = knobs(knobs_env, "repetition", "report", "nope", check=False)
    assert missing.returncode != 0 and "no experiment 'nope'" in missing.stderr
