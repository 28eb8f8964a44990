"""Repetition specs: validated whole, compiled into an ordinary train experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.core.errors import BadInput
from services.experiments.spec import validate_spec
from services.repetition.spec import DEMO_SPEC, experiment_spec, load, parse

GOOD: dict[str, Any] = {"kind": "repetition", "name": "rep", "conditions": ["verbatim", "lenses"],
                        "K": [1, 2, 5],
                        "protocols": ["pretrain_finetune", "mixed"], "seeds": [0, 1],
                        "benchmarks": ["qa_exact_match", "qa_answer_loss"]}


def test_a_spec_compiles_to_a_grid_whose_runs_carry_condition_k_and_protocol() -> None:
    spec = parse(GOOD, "t")
    compiled = experiment_spec(spec, "cloud-id", "t")
    assert compiled.executor == "train" and compiled.design.method == "grid"
    assert set(compiled.factors) == {"condition", "K", "protocol"}
    assert compiled.base["cloud"] == "cloud-id" and compiled.base["epochs"] == 20.0  # exposures by default
    assert compiled.base["n_people"] == 40 and compiled.base["qa_fraction"] == 0.5
    # K=5 with one lens: five samples per fact, so every person has five rewrites
    assert spec.samples() == 5


def test_one_valued_lists_go_in_the_base_and_the_tokens_rule_fixes_train_tokens() -> None:
    spec = parse({**GOOD, "protocols": ["mixed"], "budget": {"rule": "tokens", "train_tokens": 50_000}}, "t")
    compiled = experiment_spec(spec, "c", "t")
    assert "protocol" not in compiled.factors and compiled.base["protocol"] == "mixed"
    assert compiled.base["train_tokens"] == 50_000 and "epochs" not in compiled.base


def test_verbatim_only_needs_no_distillation_and_mix_needs_half_the_rewrites() -> None:
    assert not parse({**GOOD, "conditions": ["verbatim"]}, "t").needs_cloud
    assert parse({**GOOD, "conditions": ["verbatim", "mix"], "K": [10]}, "t").samples() == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"conditions": ["verbatim"], "K": [2]}, "nothing to compare"),
        ({"conditions": ["echo"]}, "conditions.0"),
        ({"K": [0, 2]}, "K"),
        ({"K": [2, 2]}, "listed more than once"),
        ({"student": {"train_tokens": 5}}, "set by the experiment"),
        ({"student": {"depth": 3}}, "not training knobs"),
        ({"budget": {"rule": "tokens", "epochs": 3}}, "use rule: exposures"),
        ({"budget": {"rule": "exposures", "train_tokens": 3000}}, "use rule: tokens"),
        ({"distill": {"lenses": ["template-bio"]}}, "whole biography"),
        ({"distill": {"engine": "template", "model": "x"}}, "asks no model"),
        ({"benchmarks": ["mmlu"]}, "mmlu unknown"),
        ({"protocols": ["mixed"], "budget": {"finetune_tokens": 5000}}, "only the pretrain_finetune"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_specs_name_every_problem(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse({**GOOD, **change}, "t")


def test_a_repetition_spec_given_to_experiment_run_says_which_command_runs_it() -> None:
    with pytest.raises(BadInput, match="knobs repetition run"):
        validate_spec(GOOD, "rep.yaml")


def test_the_bundled_demo_spec_loads(tmp_path: Path) -> None:
    spec = load(DEMO_SPEC)
    assert spec.kind == "repetition" and spec.needs_cloud
    other = tmp_path / "plain.yaml"
    other.write_text("name: x\nexecutor: train\n")
    with pytest.raises(BadInput, match="needs `kind: repetition`"):
        load(other)
