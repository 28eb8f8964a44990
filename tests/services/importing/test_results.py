"""Parsing and validation of results files: every problem named, nothing half-imported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.models import BenchmarkScored, RunRecorded, SourceCited
from services.core.context import Context
from services.core.errors import BadInput
from services.importing.batch import ImportOutcome
from services.importing.results import import_results, plan_import

BUNDLED = Path(__file__).resolve().parents[3] / "services" / "data" / "vaswani2017_table3.csv"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bundled_table_parses_into_runs_scores_and_one_source() -> None:
    plan = plan_import(BUNDLED, "vaswani")
    kinds = [type(e.event).__name__ for e in plan.events]
    assert kinds.count("SourceCited") == 1
    assert kinds.count("RunRecorded") == 20
    assert kinds.count("BenchmarkScored") == 40
    base = next(e.event for e in plan.events if isinstance(e.event, RunRecorded) and e.event.run_id == "base")
    assert base.params["n_layer"] == 6 and base.params["dropout"] == 0.1
    assert base.params["attention_key_dim"] == "d_model/h"
    assert base.costs == {"parameters": 65_000_000.0}


def test_event_ids_follow_from_content_so_a_reimport_is_recognised() -> None:
    first = plan_import(BUNDLED, "vaswani")
    second = plan_import(BUNDLED, "vaswani")
    assert [e.event_id for e in first.events] == [e.event_id for e in second.events]
    assert [e.idempotency_key for e in first.events] == [e.idempotency_key for e in second.events]


def test_import_and_reimport_report_the_same_outcome_as_the_adapters(ctx: Context) -> None:
    first = import_results(ctx, BUNDLED, "vaswani")
    assert first == ImportOutcome(experiment="vaswani", origin="results", runs=20, scores=40, events=61,
                                  new_events=61, first_position=1, last_position=61, skipped=0, notes=[])
    again = import_results(ctx, BUNDLED, "vaswani")
    assert (again.events, again.new_events, again.first_position, again.last_position) == (61, 0, None, None)
    assert len(ctx.store().read_all()) == 61


def test_a_corrected_value_is_a_new_fact(tmp_path: Path) -> None:
    a = plan_import(write(tmp_path, "a.csv", "run,param.x,score.acc\nr1,1,0.5\n"), "e")
    b = plan_import(write(tmp_path, "b.csv", "run,param.x,score.acc\nr1,1,0.6\n"), "e")
    assert a.events[0].event_id == b.events[0].event_id  # same run
    assert a.events[1].event_id != b.events[1].event_id  # different score


def test_jsonl_flat_and_nested_forms(tmp_path: Path) -> None:
    rows = [
        {"run": "r1", "seed": 0, "param.lr": 0.001, "score.acc": 0.5, "citation": "paper A"},
        {"run": "r2", "seed": 1, "params": {"lr": 0.01}, "scores": {"acc": 0.7}, "costs": {"flops": 1e18},
         "stderrs": {"acc": 0.01}},
    ]
    path = write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    plan = plan_import(path, "e")
    runs = [e.event for e in plan.events if isinstance(e.event, RunRecorded)]
    scores = [e.event for e in plan.events if isinstance(e.event, BenchmarkScored)]
    assert [r.params for r in runs] == [{"lr": 0.001}, {"lr": 0.01}]
    assert runs[1].costs == {"flops": 1e18}
    assert scores[1].stderr == 0.01
    assert sum(isinstance(e.event, SourceCited) for e in plan.events) == 1


def test_every_problem_is_named_with_its_line(tmp_path: Path) -> None:
    text = (
        "run,param.x,score.acc,cost.flops\n"
        "r1,1,0.5,10\n"
        ",2,0.5,10\n"
        "r3,,abc,-1\n"
        "r1,3,0.1,1\n"
    )
    with pytest.raises(BadInput) as err:
        plan_import(write(tmp_path, "bad.csv", text), "e")
    message = str(err.value)
    assert "nothing was imported" in message
    assert "line 3: missing `run`" in message
    assert "line 4: param.x is empty" in message
    assert "score.acc 'abc' is not a finite number" in message
    assert "cost.flops '-1' must not be negative" in message
    assert "line 5: run 'r1' already appears on line 2" in message


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("x.txt", "run\n", "unsupported file type"),
        ("cols.csv", "run,bogus,param.x\nr1,1,2\n", r"unknown column\(s\) \['bogus'\]"),
        ("cols.jsonl", '{"run": "r1", "bogus": 1}\n', "unknown column 'bogus'"),
        ("empty.csv", "", "the file is empty"),
        ("short.csv", "run,param.x\nr1\n", "has 1 cells, the header has 2"),
        ("dup.csv", "run,param.x,param.x\n", "duplicate column"),
        ("bad.jsonl", "{not json}\n", "is not valid JSON"),
        ("list.jsonl", "[1, 2]\n", "must be a JSON object"),
        ("nan.csv", "run,score.acc\nr1,nan\n", "is not a finite number"),
        ("seed.csv", "run,seed\nr1,1.5\n", "seed '1.5' is not an integer"),
    ],
)
def test_malformed_files_are_refused_clearly(tmp_path: Path, name: str, text: str, expected: str) -> None:
    with pytest.raises(BadInput, match=expected):
        plan_import(write(tmp_path, name, text), "e")


def test_missing_file_and_empty_experiment(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        plan_import(tmp_path / "nope.csv", "e")
    with pytest.raises(BadInput, match="--experiment must not be empty"):
        plan_import(BUNDLED, "  ")
