"""Declaring experiments into a real SQLite log, exporting designs, importing results back."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze

from events.canonical import canonical_json
from events.models import ExperimentDeclared, RunRecorded, RunRequested
from events.models.experiments import run_stream
from services.core.context import Context
from services.core.errors import BadInput, Conflict
from services.experiments.service import (
    declaration_events,
    declare,
    declared_experiment,
    export_design,
    plan,
    requested_runs,
)
from services.importing.results import import_results
from tests.services.experiments.specs import EXAMPLES, example, tiny_ofat

OFAT = EXAMPLES / "tiny-ofat.yaml"


def test_declare_appends_one_batch_the_declaration_and_a_request_per_run(ctx: Context) -> None:
    # Given the tiny OFAT spec (16 runs)
    p = plan(OFAT)
    # When it is declared
    done = declare(ctx, OFAT)
    # Then one ExperimentDeclared and 16 RunRequested are stored, in one gapless span
    assert (done.runs, done.new_events, done.already_stored) == (16, 17, 0)
    assert (done.first_position, done.last_position) == (1, 17)
    stored = ctx.store().read_all()
    assert [s.event_type for s in stored] == ["ExperimentDeclared"] + ["RunRequested"] * 16
    declared = declared_experiment(ctx, "tiny-ofat")
    assert isinstance(declared, ExperimentDeclared)
    assert declared.spec_sha256 == hashlib.sha256(canonical_json(declared.spec).encode()).hexdigest()
    assert declared.run_ids == [r.run_id for r in p.runs]
    assert declared.design == "ofat" and declared.benchmarks == ["qa_exact_match", "heldout_loss"]
    assert declared.estimated_cost["flops"] == pytest.approx(p.totals.flops)
    assert declared.estimated_cost["runs"] == 16
    runs = requested_runs(ctx, "tiny-ofat")
    assert [r.run_id for r in runs] == declared.run_ids
    lr = next(r for r in runs if r.run_id == "lr=0.0001-s1")
    assert lr.params["lr"] == 0.0001 and lr.varied == ["lr"] and lr.seed == 1
    assert lr.executor == "train" and lr.estimated_cost["parameters"] > 0
    assert all(s.stream_id == run_stream("tiny-ofat", s.data["run_id"]) for s in stored[1:])


def test_event_ids_and_keys_follow_from_content() -> None:
    a, b = declaration_events(plan(OFAT)), declaration_events(plan(OFAT))
    assert [e.event_id for e in a] == [e.event_id for e in b]
    assert [e.idempotency_key for e in a] == [e.idempotency_key for e in b]
    assert a[1].idempotency_key is not None
    assert a[1].idempotency_key.startswith("experiment:tiny-ofat:base-s0:RunRequested:")


def test_declaring_the_same_spec_twice_stores_nothing_new(ctx: Context) -> None:
    declare(ctx, OFAT)
    again = declare(ctx, OFAT)
    assert (again.new_events, again.already_stored) == (0, 17)
    # a different FLOP rate changes the estimates, not the experiment: still nothing new
    declare(ctx, OFAT, flops_per_second=1e12)
    assert ctx.store().head() == 17


def test_a_changed_spec_under_a_declared_name_is_refused(ctx: Context,
                                                          write_spec: Callable[..., Path]) -> None:
    declare(ctx, OFAT)
    changed = tiny_ofat()
    changed["factors"]["n_layer"] = {"values": [1, 2, 8]}
    with pytest.raises(Conflict) as err:
        declare(ctx, write_spec(changed))
    message = str(err.value)
    assert "'tiny-ofat' is already declared with a different spec" in message
    assert "differs in: factors" in message and "name: tiny-ofat-v2" in message
    assert ctx.store().head() == 17
    # Renamed, it is a new experiment
    changed["name"] = "tiny-ofat-v2"
    assert declare(ctx, write_spec(changed)).new_events == 17


def test_concurrent_first_declarations_store_it_once(home: Path) -> None:
    outcomes: list[Any] = []

    def one() -> None:
        with Context(home=home) as c:
            outcomes.append(declare(c, OFAT))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.new_events for o in outcomes) == [0, 0, 0, 17]
    with Context(home=home) as c:
        assert c.store().head() == 17


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_writes_the_run_table_with_every_parameter(tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    done = export_design(OFAT, out)
    rows = read_rows(out)
    assert done.runs == len(rows) == 16 and done.salib_path is None
    assert list(rows[0])[:4] == ["run", "seed", "param.model_family", "param.n_layer"]
    assert rows[0]["run"] == "base-s0" and rows[1]["seed"] == "1"
    assert all(v != "" for row in rows for v in row.values())
    with pytest.raises(BadInput, match="has no SALib problem"):
        export_design(OFAT, tmp_path / "x.csv", tmp_path / "x.json")


def test_export_then_import_links_results_to_the_requested_runs(ctx: Context, tmp_path: Path) -> None:
    # Given an external Morris experiment, declared, and its run table exported
    spec = EXAMPLES / "external-morris.yaml"
    declare(ctx, spec)
    out = tmp_path / "runs.csv"
    export_design(spec, out)
    # When someone runs it, fills in scores and imports the table under the experiment's name
    rows = read_rows(out)
    for i, row in enumerate(rows):
        row["score.arc_easy"] = str(0.5 + 0.001 * i)
        row["score.hellaswag"] = str(0.3 + 0.002 * i)
    filled = tmp_path / "results.csv"
    with filled.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    outcome = import_results(ctx, filled, "external-morris")
    assert outcome.runs == 60 and outcome.scores == 120
    # Then each run's stream holds its request, then its recorded run and scores
    for requested in requested_runs(ctx, "external-morris"):
        stream = ctx.store().read_stream(run_stream("external-morris", requested.run_id))
        assert [s.event_type for s in stream] == ["RunRequested", "RunRecorded", "BenchmarkScored",
                                                  "BenchmarkScored"]
        recorded = stream[1].decode()
        assert isinstance(recorded, RunRecorded) and isinstance(stream[0].decode(), RunRequested)
        # the CSV round trip keeps parameter values and their types
        assert recorded.params == requested.params
        assert {k: type(v) for k, v in recorded.params.items()} == \
            {k: type(v) for k, v in requested.params.items()}
        assert recorded.seed == requested.seed


def unit(value: float, factor: dict[str, Any]) -> float:
    """Invert the design's mapping of a range factor: a parameter value back to u in [0, 1]."""
    lo, hi = (float(b) for b in factor["range"])
    if factor.get("scale") == "log":
        return math.log(value / lo) / math.log(hi / lo)
    return (value - lo) / (hi - lo)


def outputs_in_sample_order(csv_path: Path, salib: dict[str, Any], f: Callable[[dict[str, str]], float],
                            seed: int = 0) -> np.ndarray:
    by_point = {row["run"].rsplit("-s", 1)[0]: f(row) for row in read_rows(csv_path)
                if row["seed"] == str(seed)}
    return np.array([by_point[p] for p in salib["points"]])


def test_morris_export_is_accepted_by_salib_and_ranks_a_known_function(tmp_path: Path) -> None:
    out = tmp_path / "morris.csv"
    done = export_design(EXAMPLES / "tiny-morris.yaml", out)
    assert done.salib_path == tmp_path / "morris.salib.json"
    salib = json.loads(done.salib_path.read_text())
    factors = salib["factors"]

    def y(row: dict[str, str]) -> float:
        # 10 per unit of log-lr range, 2 per unit of warmup range, 5 for qa, nothing for n_layer
        return (10 * unit(float(row["param.lr"]), factors["lr"])
                + 2 * unit(float(row["param.warmup_fraction"]), factors["warmup_fraction"])
                + 5 * (row["param.format"] == "qa"))

    x = np.array(salib["X"])
    result = morris_analyze.analyze(salib["problem"], x, outputs_in_sample_order(out, salib, y),
                                    num_levels=salib["num_levels"], seed=0)
    mu_star = dict(zip(result["names"], result["mu_star"], strict=True))
    assert mu_star["lr"] == pytest.approx(10.0)
    assert mu_star["warmup_fraction"] == pytest.approx(2.0)
    assert mu_star["n_layer"] == pytest.approx(0.0)
    assert max(mu_star, key=lambda k: mu_star[k]) == "lr"


def ishigami(x1: float, x2: float, x3: float) -> float:
    return math.sin(x1) + 7 * math.sin(x2) ** 2 + 0.1 * x3**4 * math.sin(x1)


@pytest.mark.parametrize("n", [4, 1024])
def test_sobol_export_recovers_the_ishigami_indices(tmp_path: Path, write_spec: Callable[..., Path],
                                                    n: int) -> None:
    # Given the tiny Sobol example (three continuous knobs), at its own n and at a larger one
    raw = example("tiny-sobol")
    raw["design"]["n"] = n
    raw["budget"]["max_runs"] = 10_000
    out = tmp_path / "sobol.csv"
    done = export_design(write_spec(raw), out)
    assert done.salib_path is not None
    salib = json.loads(done.salib_path.read_text())
    names, factors = salib["problem"]["names"], salib["factors"]
    assert names == ["lr", "qa_fraction", "weight_decay"]

    def y(row: dict[str, str]) -> float:
        # each knob's position in its range, mapped onto Ishigami's [-pi, pi]
        xs = [-math.pi + 2 * math.pi * unit(float(row[f"param.{k}"]), factors[k]) for k in names]
        return ishigami(*xs)

    outputs = outputs_in_sample_order(out, salib, y)
    assert len(outputs) == n * (2 * 3 + 2)
    result = sobol_analyze.analyze(salib["problem"], outputs, calc_second_order=True, seed=0)
    if n < 64:
        return  # accepted by SALib; too few samples for the indices to mean anything
    # Analytic Ishigami (a=7, b=0.1): S1 = .314, .442, 0; ST = .558, .442, .244
    assert result["S1"] == pytest.approx([0.314, 0.442, 0.0], abs=0.06)
    assert result["ST"] == pytest.approx([0.558, 0.442, 0.244], abs=0.06)
