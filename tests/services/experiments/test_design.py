"""Designs: run counts, SALib sample sizes, the mapping from the unit cube, determinism."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from services.experiments.design import build_design, count_runs, factor_levels, from_unit
from services.experiments.spec import FactorSpec, validate_spec
from tests.services.experiments.specs import example, tiny_ofat


def design_of(raw: dict[str, Any]) -> Any:
    spec = validate_spec(raw)
    design = build_design(spec)
    assert count_runs(spec) == len(design.runs)
    return design


def big(**changes: Any) -> dict[str, Any]:
    return {**tiny_ofat(), "budget": {"max_runs": 10_000}, **changes}


def test_ofat_is_the_base_run_and_each_value_that_differs_from_base_times_seeds() -> None:
    design = design_of(tiny_ofat())
    # base + n_layer {1, 4} + lr {1e-4, 1e-3, 1e-2} + format {qa, mixed} = 8 points, x 2 seeds
    assert len(design.runs) == 16
    assert [r.run_id for r in design.runs if r.seed == 0] == [
        "base-s0", "n_layer=1-s0", "n_layer=4-s0", "lr=0.0001-s0", "lr=0.001-s0", "lr=0.01-s0",
        "format=qa-s0", "format=mixed-s0",
    ]
    base = design.runs[0]
    assert base.varied == () and base.params["n_layer"] == 2 and base.params["format"] == "plain"
    # params are the full resolved training parameters: base overridden, defaults filled in
    assert base.params["batch_size"] == 16 and "d_ff" not in base.params
    for run in design.runs[2:]:
        assert len(run.varied) == 1
        name = run.varied[0]
        assert {k: v for k, v in run.params.items() if k != name} == \
            {k: v for k, v in base.params.items() if k != name}


def test_ofat_range_levels_are_evenly_spaced_on_their_scale_ends_included() -> None:
    log = FactorSpec(range=[1e-4, 1e-2], scale="log", levels=5, integer=False)
    assert factor_levels(log) == [1e-4, 0.000316228, 0.001, 0.00316228, 0.01]
    linear = FactorSpec(range=[0.0, 0.3], scale="linear", levels=4, integer=False)
    assert factor_levels(linear) == [0.0, 0.1, 0.2, 0.3]
    # integer knobs are rounded, and neighbours that round alike merge
    ints = FactorSpec(range=[1, 3], scale="linear", levels=5, integer=True)
    assert factor_levels(ints) == [1, 2, 3]


def test_grid_is_the_full_factorial_times_seeds() -> None:
    design = design_of(big(design={"method": "grid"}))
    assert len(design.runs) == 3 * 3 * 3 * 2
    combos = {(r.params["n_layer"], r.params["lr"], r.params["format"]) for r in design.runs}
    assert len(combos) == 27
    assert design.runs[0].run_id == "grid-0000-s0"


@pytest.mark.parametrize("n", [2, 5])
def test_morris_makes_factors_plus_one_times_n_points(n: int) -> None:
    design = design_of(big(design={"method": "morris", "n": n}))
    d = len(tiny_ofat()["factors"])
    assert design.samples is not None and design.samples.shape == ((d + 1) * n, d)
    assert len(design.runs) == (d + 1) * n * 2
    assert design.problem == {"num_vars": 3, "names": ["format", "lr", "n_layer"],
                              "bounds": [[0.0, 1.0]] * 3}
    assert design.runs[0].run_id == "morris-0000-s0" and design.runs[1].run_id == "morris-0000-s1"
    assert {r.row for r in design.runs} == set(range((d + 1) * n))


@pytest.mark.parametrize("second_order", [True, False])
def test_sobol_makes_the_saltelli_number_of_points(second_order: bool) -> None:
    design = design_of(big(design={"method": "sobol", "n": 8, "calc_second_order": second_order}))
    d = 3
    points = 8 * (2 * d + 2) if second_order else 8 * (d + 2)
    assert design.samples is not None and design.samples.shape == (points, d)
    assert len(design.runs) == points * 2
    assert design.runs[-1].run_id == f"sobol-{points - 1:04d}-s1"


def test_categorical_values_map_by_level_index_and_all_are_sampled() -> None:
    f = FactorSpec(values=["a", "b", "c"])
    assert [from_unit(u, f) for u in (0.0, 0.33, 1 / 3, 0.66, 2 / 3, 0.999, 1.0)] == \
        ["a", "a", "b", "b", "c", "c", "c"]
    morris = design_of(big(design={"method": "morris", "n": 6}))
    assert {r.params["format"] for r in morris.runs} == {"plain", "qa", "mixed"}
    sobol = design_of(big(design={"method": "sobol", "n": 8}))
    assert {r.params["format"] for r in sobol.runs} == {"plain", "qa", "mixed"}
    assert {r.params["n_layer"] for r in sobol.runs} == {1, 2, 4}


def test_log_ranges_stay_in_range_and_are_log_uniform() -> None:
    design = design_of(big(design={"method": "sobol", "n": 256, "calc_second_order": False}))
    lrs = np.array([r.params["lr"] for r in design.runs])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-2
    # log-uniform: about half the samples below the geometric midpoint 1e-3
    assert 0.4 < float(np.mean(lrs < 1e-3)) < 0.6
    f = FactorSpec(range=[1e-4, 1e-2], scale="log", integer=False)
    assert from_unit(0.0, f) == pytest.approx(1e-4) and from_unit(1.0, f) == pytest.approx(1e-2)
    assert from_unit(0.5, f) == pytest.approx(1e-3)


def test_integer_knobs_sampled_continuously_are_rounded() -> None:
    raw = example("tiny-morris")
    design = design_of(raw)
    layers = {r.params["n_layer"] for r in design.runs}
    assert layers <= {1, 2, 3, 4} and all(isinstance(v, int) for v in layers)
    f = FactorSpec(range=[1, 4], scale="linear", integer=True)
    assert [from_unit(u, f) for u in (0.0, 0.49, 0.5, 1.0)] == [1, 2, 3, 4]


@pytest.mark.parametrize("method", ["morris", "sobol"])
def test_designs_are_deterministic_given_the_seed(method: str) -> None:
    raw = big(design={"method": method, "n": 4, "seed": 3})
    a, b = design_of(raw), design_of(raw)
    assert a.samples is not None and b.samples is not None
    assert np.array_equal(a.samples, b.samples)
    assert [(r.run_id, r.params) for r in a.runs] == [(r.run_id, r.params) for r in b.runs]
    other = design_of(big(design={"method": method, "n": 4, "seed": 4}))
    assert other.samples is not None and not np.array_equal(a.samples, other.samples)


def test_the_factor_order_in_the_file_does_not_change_a_global_design() -> None:
    raw = big(design={"method": "sobol", "n": 4})
    reordered = {**raw, "factors": dict(reversed(list(raw["factors"].items())))}
    a, b = validate_spec(raw), validate_spec(reordered)
    assert a.sha256() == b.sha256()
    assert [r.params for r in build_design(a).runs] == [r.params for r in build_design(b).runs]


def test_salib_export_holds_problem_points_and_the_unit_sample() -> None:
    design = design_of(example("tiny-morris"))
    salib = design.salib()
    assert salib is not None
    assert salib["problem"]["names"] == ["format", "lr", "n_layer", "warmup_fraction"]
    assert salib["num_levels"] == 4 and len(salib["points"]) == len(salib["X"]) == 20
    assert all(0.0 <= u <= 1.0 for row in salib["X"] for u in row)
    assert design_of(tiny_ofat()).salib() is None


def test_external_params_are_base_overridden_with_free_names() -> None:
    design = design_of(example("external-morris"))
    run = design.runs[0]
    assert set(run.params) == {"model", "tokens_b", "params_b", "heads", "tokenizer", "mix"}
    heads = {r.params["heads"] for r in design.runs}
    assert all(isinstance(h, int) and 4 <= h <= 32 for h in heads)
    assert all(0.1 <= float(r.params["params_b"]) <= 7.0 + 1e-9 for r in design.runs)
    assert math.isclose(min(float(r.params["params_b"]) for r in design.runs), 0.1)
