"""MLflow runs into the log: a real mlruns folder and a real tracking database, written by MLflow."""

from __future__ import annotations

import sys
from pathlib import Path

import mlflow
import pytest

from events.models import BenchmarkScored, RunRecorded, SourceCited
from services.core.context import Context
from services.core.errors import BadInput, NotFound, Unavailable
from services.importing.mlflow_runs import import_mlflow, plan_mlflow, tracking_uri_for


def log_sweep(uri: str) -> dict[str, str]:
    """Three runs of a learning-rate sweep as a person logs them; the last one crashes."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("lr-sweep")
    ids: dict[str, str] = {}
    for i, (lr, status) in enumerate([(1e-3, "FINISHED"), (3e-3, "FINISHED"), (1e-2, "FAILED")]):
        with mlflow.start_run(run_name=f"lr={lr}") as run:
            mlflow.log_params({"lr": lr, "n_layer": 4, "optimizer": "adamw", "seed": i, "cost.gpus": 1})
            for step, loss in enumerate([4.0, 3.2, 2.9 - i * 0.1]):
                mlflow.log_metric("val_loss", loss, step=step)
            mlflow.log_metric("hellaswag_acc", 0.30 + i * 0.01)
            mlflow.log_metric("cost.gpu_hours", 1.5 + i)
            mlflow.log_metric("system/cpu_utilization_percentage", 42.0)
            if status != "FINISHED":
                mlflow.end_run(status=status)
            ids[lr.__repr__()] = run.info.run_id
    return ids


@pytest.fixture
def mlruns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    # MLflow 3 only writes a file store when told to; the importer reads one without being told.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    root = tmp_path / "mlruns"
    ids = log_sweep(f"file:{root}")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    return root, ids


def test_finished_runs_become_runs_with_typed_params_latest_metrics_and_costs(
    mlruns: tuple[Path, dict[str, str]],
) -> None:
    root, ids = mlruns
    plan = plan_mlflow(str(root), "sweep")
    runs = {e.event.run_id: e.event for e in plan.events if isinstance(e.event, RunRecorded)}
    assert set(runs) == {ids["0.001"], ids["0.003"]}  # the FAILED run is left out
    first = runs[ids["0.001"]]
    assert first.params == {"lr": 0.001, "n_layer": 4, "optimizer": "adamw"}
    assert first.seed == 0  # the seed is a replicate's label, not a knob
    assert first.costs == {"gpus": 1.0, "gpu_hours": 1.5}
    assert first.agent == "knobs-import-mlflow"
    scores = {(e.event.run_id, e.event.benchmark): e.event.value
              for e in plan.events if isinstance(e.event, BenchmarkScored)}
    # the latest value of each metric; MLflow's system metrics are not benchmarks
    assert scores == {(ids["0.001"], "val_loss"): 2.9, (ids["0.001"], "hellaswag_acc"): 0.30,
                      (ids["0.003"], "val_loss"): 2.8, (ids["0.003"], "hellaswag_acc"): 0.31}
    assert plan.skipped == 1
    assert plan.notes[0] == "1 run(s) not finished, not imported: 1 FAILED"


def test_each_run_is_cited_with_the_store_experiment_and_run(mlruns: tuple[Path, dict[str, str]]) -> None:
    root, ids = mlruns
    plan = plan_mlflow(str(root), "sweep")
    cited = {e.event.source_id: e.event.citation for e in plan.events if isinstance(e.event, SourceCited)}
    runs = {e.event.run_id: e.event for e in plan.events if isinstance(e.event, RunRecorded)}
    source_id = runs[ids["0.001"]].source_id
    assert source_id in cited
    expected = f"MLflow {root.resolve().as_uri()} experiment lr-sweep run {ids['0.001']} (lr=0.001)"
    assert cited[source_id] == expected


def test_import_is_all_at_once_and_a_reimport_stores_nothing(
    ctx: Context, mlruns: tuple[Path, dict[str, str]]
) -> None:
    root, _ = mlruns
    first = import_mlflow(ctx, f"file:{root}", "sweep", ["lr-sweep"])
    assert (first.runs, first.scores, first.skipped) == (2, 4, 1)
    assert first.new_events == 2 + 2 + 4  # a source and a run per run, and the scores
    again = import_mlflow(ctx, str(root), "sweep")
    assert again.new_events == 0 and again.events == first.events
    assert len(ctx.store().read_all(types=["SourceCited"])) == 2


def test_experiments_are_chosen_by_name_or_id_and_unknown_ones_are_named(
    mlruns: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = mlruns
    with monkeypatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        found = mlflow.MlflowClient(tracking_uri_for(str(root))).get_experiment_by_name("lr-sweep")
    assert found is not None
    experiment_id = found.experiment_id
    assert len(plan_mlflow(str(root), "e", [experiment_id]).runs) == 2
    with pytest.raises(NotFound, match=r"no active experiment named or numbered nope; it has: .*lr-sweep"):
        plan_mlflow(str(root), "e", ["nope"])
    with pytest.raises(BadInput, match="no finished run in experiment"):
        plan_mlflow(str(root), "e", ["Default"])


@pytest.mark.slow  # MLflow builds its database schema: about ten seconds
def test_a_tracking_database_is_read_too(tmp_path: Path, ctx: Context) -> None:
    db = tmp_path / "mlflow.db"
    ids = log_sweep(f"sqlite:///{db}")
    outcome = import_mlflow(ctx, f"sqlite:///{db}", "sweep")
    assert (outcome.runs, outcome.scores, outcome.skipped) == (2, 4, 1)
    assert import_mlflow(ctx, str(db), "sweep").new_events == 0  # a plain path to the file works too
    stored = [e.decode() for e in ctx.store().read_all(types=["RunRecorded"])]
    assert {r.run_id for r in stored if isinstance(r, RunRecorded)} == {ids["0.001"], ids["0.003"]}


def test_what_is_not_an_mlflow_store_is_refused_and_left_untouched(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such folder or file"):
        plan_mlflow(str(tmp_path / "nope"), "e")
    empty = tmp_path / "not-mlruns"
    empty.mkdir()
    with pytest.raises(BadInput, match="not an MLflow tracking folder"):
        plan_mlflow(str(empty), "e")
    assert list(empty.iterdir()) == []  # MLflow would have created a Default experiment here
    with pytest.raises(BadInput, match="no such SQLite file"):
        plan_mlflow(f"sqlite:///{tmp_path / 'missing.db'}", "e")
    assert not (tmp_path / "missing.db").exists()


def test_without_the_mlflow_package_the_error_says_how_to_install_it(
    mlruns: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = mlruns
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` finds when it is not installed
    with pytest.raises(Unavailable, match=r"pip install '\.\[adapters\]'"):
        plan_mlflow(str(root), "e")
