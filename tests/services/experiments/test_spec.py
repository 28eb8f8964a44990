"""Spec validation: every class of problem is named by its key path, all at once, nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.core.context import Context
from services.core.errors import BadInput
from services.experiments.service import declare, plan
from services.experiments.spec import load_spec, validate_spec
from tests.services.experiments.specs import EXAMPLES, tiny_ofat


def problems_of(raw: Any) -> str:
    with pytest.raises(BadInput) as err:
        validate_spec(raw, source="s.yaml")
    return str(err.value)


def with_(**changes: Any) -> dict[str, Any]:
    return {**tiny_ofat(), **changes}


@pytest.mark.parametrize("name", ["tiny-ofat", "tiny-morris", "tiny-sobol", "external-morris"])
def test_the_examples_are_valid(name: str) -> None:
    spec = load_spec(EXAMPLES / f"{name}.yaml")
    assert spec.name == name
    assert len(plan(EXAMPLES / f"{name}.yaml").runs) <= spec.budget.max_runs


def test_defaults_are_resolved_into_the_spec_so_its_hash_pins_the_design() -> None:
    spec = validate_spec(tiny_ofat())
    lr = spec.factors["lr"]
    assert (lr.scale, lr.levels, lr.integer) == ("log", 3, False)
    morris = validate_spec(with_(design={"method": "morris", "n": 2}))
    assert morris.design.levels == 4
    sobol = validate_spec(with_(design={"method": "sobol", "n": 4}))
    assert sobol.design.calc_second_order is True
    # The same spec written differently (1 vs 1.0 for a float knob) hashes the same.
    a = tiny_ofat()
    b = tiny_ofat()
    b["base"]["lr"] = "3.0e-3"  # a quoted number, coerced by TrainingParams
    assert validate_spec(a).sha256() == validate_spec(b).sha256()


def test_structure_errors_name_their_key_and_what_is_allowed() -> None:
    raw = with_(
        extra_key=1,
        design={"method": "anneal", "sede": 1},
        factors={"lr": {"range": [1e-4, 1e-2], "scale": "cubic"}, "n_layer": {"value": [1]}},
        seeds=[0, -1],
        budget={"max_runs": "many"},
    )
    message = problems_of(raw)
    assert "extra_key: unknown key; allowed: name, description, executor" in message
    assert "design.method: must be 'ofat', 'grid', 'morris' or 'sobol' (got 'anneal')" in message
    assert "design.sede: unknown key; allowed: method, seed, n, levels, calc_second_order" in message
    assert "factors.lr.scale: must be 'linear' or 'log' (got 'cubic')" in message
    assert "factors.n_layer.value: unknown key; allowed: values, range, scale, levels, integer" in message
    assert "seeds[1]: must be greater than or equal to 0" in message
    assert "budget.max_runs: must be a valid integer" in message


def test_missing_sections_say_what_they_are_for() -> None:
    message = problems_of({"name": "x"})
    for key in ("executor", "design", "factors", "benchmarks"):
        assert f"{key}: required: " in message
    assert "'train' (our workers run it) or 'external'" in message


def test_train_names_values_and_benchmarks_follow_the_training_contract() -> None:
    raw = with_(
        base={"n_layer": 200, "seed": 1, "d_model": 64, "n_head": 2},
        factors={
            "n_layers": {"values": [1, 2]},
            "format": {"range": [0, 1]},
            "n_head": {"values": [2, "two", True, 4, 4]},
            "d_model": {"range": [32.5, 128]},
            "lr": {"range": [0.0, 1e-2], "scale": "log"},
            "batch_size": {"values": [8], "range": [8, 16]},
        },
        benchmarks=["mmlu", "heldout_loss"],
    )
    message = problems_of(raw)
    assert "base.n_layer: 200: must be less than or equal to 96 (n_layer takes an integer >= 1" in message
    assert "base.seed: not a training knob; seeds go in `seeds`; allowed: model_family, n_layer" in message
    assert "factors.n_layers: not a training knob; allowed: model_family, n_layer, n_head" in message
    assert ("factors.format.range: format is not numeric (one of 'plain', 'qa', 'mixed'); "
            "list its values instead") in message
    assert "factors.n_head.values[1]: 'two': must be a valid integer" in message
    assert "factors.n_head.values[2]: True is a boolean" in message
    assert "factors.n_head.values[4]: 4 is listed twice" in message
    assert "factors.d_model.range: d_model takes integers; give integer bounds" in message
    assert "factors.lr.range: `scale: log` needs positive bounds, got [0, 0.01]" in message
    assert "factors.batch_size: give exactly one of `values: [...]` or `range: [low, high]`" in message
    assert ("benchmarks[0]: 'mmlu' is not a benchmark the trainer knows; allowed: qa_exact_match, "
            "qa_exact_match_seen, qa_answer_loss, qa_answer_loss_seen, heldout_loss") in message


def test_a_base_that_trainparams_refuses_as_a_whole_is_named() -> None:
    message = problems_of(with_(base={"d_model": 64, "n_head": 3}))
    assert "base: d_model (64) must be divisible by n_head (3)" in message


def test_design_options_belong_to_their_methods() -> None:
    assert "design.n: only morris and sobol take n" in problems_of(with_(design={"method": "ofat", "n": 3}))
    assert "design.n: required for morris" in problems_of(with_(design={"method": "morris"}))
    odd = problems_of(with_(design={"method": "morris", "n": 2, "levels": 3}))
    assert "design.levels: Morris needs an even number of levels" in odd
    sobol = problems_of(with_(design={"method": "sobol", "n": 10, "levels": 4}))
    assert "design.n: sobol needs a power of two" in sobol and "try 8 or 16" in sobol
    assert "design.levels: only morris takes levels" in sobol
    few = problems_of(with_(design={"method": "morris", "n": 2, "levels": 2}))
    assert "factors.n_layer.values: 3 values but Morris samples only design.levels = 2" in few


def test_external_specs_take_any_names_but_ofat_needs_base_values() -> None:
    raw: dict[str, Any] = {
        "name": "ext", "executor": "external", "design": {"method": "ofat"},
        "base": {"width": 1024},
        "factors": {"width": {"values": [512, 2048]}, "mix": {"values": ["web", "code"]}},
        "benchmarks": ["anything_goes"],
    }
    message = problems_of(raw)
    assert "factors.mix: ofat varies one parameter away from its base value: add base.mix" in message
    assert "width" not in message
    raw["base"]["mix"] = "web"
    spec = validate_spec(raw)
    assert spec.benchmarks == ["anything_goes"]


def test_every_problem_is_listed_at_once_even_across_sections() -> None:
    raw = with_(design={"method": "ofat", "bogus": 1}, benchmarks=["nope"],
                factors={"lr": {"range": [1, 2], "scale": "cubic"}, "nope": {"values": [1]}})
    message = problems_of(raw)
    assert message.startswith("s.yaml: 4 problem(s) in the spec:")
    for key in ("design.bogus", "factors.lr.scale", "factors.nope", "benchmarks[0]"):
        assert f"\n  {key}: " in message


def test_name_is_checked_because_it_becomes_part_of_stream_ids() -> None:
    assert "name: 'a/b' is not a usable name" in problems_of(with_(name="a/b"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "not valid YAML at line 2"),
        ("", "the file is empty"),
        ("- a\n- b\n", "a spec must be a YAML mapping"),
        ("name: a\nname: b\n", "duplicate key 'name' (first given on line 1)"),
    ],
)
def test_yaml_problems_get_clear_messages(write_spec: Callable[..., Path], text: str, expected: str) -> None:
    with pytest.raises(BadInput, match=r".*") as err:
        load_spec(write_spec(text))
    assert expected in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(BadInput, match="is a directory"):
        load_spec(tmp_path)


def test_yaml_1_2_floats_are_numbers(write_spec: Callable[..., Path]) -> None:
    text = (EXAMPLES / "tiny-ofat.yaml").read_text().replace("lr: 3.0e-3", "lr: 3e-3")
    assert "lr: 3e-3" in text
    assert load_spec(write_spec(text)).base["lr"] == 0.003


def test_over_budget_designs_say_how_many_runs_and_how_to_shrink(write_spec: Callable[..., Path]) -> None:
    with pytest.raises(BadInput) as err:
        plan(write_spec(with_(budget={"max_runs": 10})))
    message = str(err.value)
    assert "budget.max_runs: the ofat design would make 16 runs, more than budget.max_runs = 10" in message
    assert "(1 base + 7 values that differ from base) x seeds = 8 x 2" in message
    morris = with_(design={"method": "morris", "n": 10}, budget={"max_runs": 50})
    with pytest.raises(BadInput, match=r"would make 80 runs.*= 4 x 10 x 2; lower design.n"):
        plan(write_spec(morris))


def test_combinations_trainparams_refuses_are_named_per_design_point(write_spec: Callable[..., Path]) -> None:
    # Each factor is fine on its own; only some combinations break d_model % n_head == 0.
    raw = with_(design={"method": "grid"},
                factors={"n_head": {"values": [2, 3]}, "d_model": {"values": [64, 96]}})
    with pytest.raises(BadInput) as err:
        plan(write_spec(raw))
    message = str(err.value)
    assert "design: 1 of 4 design points are not valid training runs" in message
    assert "(d_model=64, n_head=3): d_model (64) must be divisible by n_head (3)" in message


def test_bad_specs_append_nothing(ctx: Context, write_spec: Callable[..., Path]) -> None:
    for raw in (with_(factors={"nope": {"values": [1]}}), with_(budget={"max_runs": 1}),
                with_(design={"method": "grid"},
                      factors={"n_head": {"values": [2, 3]}, "d_model": {"values": [64, 96]}})):
        with pytest.raises(BadInput):
            declare(ctx, write_spec(raw))
    assert ctx.store().head() == 0


def test_benchmarks_recorded_in_training_need_influence_every() -> None:
    message = problems_of(with_(benchmarks=["heldout_loss", "train_volatility"]))
    assert ("benchmarks[1]: 'train_volatility' is recorded during training; set base.influence_every "
            "(record every N optimizer steps), e.g. influence_every: 10") in message
    base = {**tiny_ofat()["base"], "influence_every": 10, "influence_examples": 16}
    spec = validate_spec(with_(base=base, benchmarks=["train_volatility", "train_forgetting"]))
    assert spec.base["influence_every"] == 10


def test_influence_knobs_are_checked_like_any_other() -> None:
    message = problems_of(with_(base={**tiny_ofat()["base"], "influence_every": 0}))
    assert "base.influence_every: 0: must be greater than or equal to 1" in message
    message = problems_of(with_(base={**tiny_ofat()["base"], "influence_examples": 8}))
    assert "base: influence_examples needs influence_every" in message
