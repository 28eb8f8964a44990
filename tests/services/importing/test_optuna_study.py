"""Optuna studies into the log: a real study in a real SQLite storage, optimised by Optuna."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from events.models import BenchmarkScored, RunRecorded, SourceCited
from services.core.context import Context
from services.core.errors import BadInput, NotFound, Unavailable
from services.importing.adapters import redact_url
from services.importing.optuna_study import import_optuna, plan_optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)


def objective(trial: optuna.Trial) -> float:
    """A stand-in for a training run: loss falls with depth and has a best learning rate."""
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    n_layer = trial.suggest_int("n_layer", 2, 8)
    optimizer = trial.suggest_categorical("optimizer", ["adamw", "sgd"])
    trial.set_user_attr("seed", 1234)
    trial.set_user_attr("cost.flops", 1e15 * n_layer)
    trial.set_user_attr("note", "not a cost")
    if trial.number == 2:
        raise RuntimeError("out of memory")  # this trial FAILs
    return 3.0 - 0.1 * n_layer + abs(lr - 0.003) * 10 + (0.2 if optimizer == "sgd" else 0.0)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One study for the module's tests, which only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('optuna') / 'optuna.db'}"
    study = optuna.create_study(study_name="gpt-small", storage=url, direction="minimize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=5, catch=(RuntimeError,))
    return url


def test_complete_trials_become_runs_with_params_costs_and_the_objective(storage: str) -> None:
    plan = plan_optuna(storage, "gpt-small", "sweep", ["val_loss"])
    runs = {e.event.run_id: e.event for e in plan.events if isinstance(e.event, RunRecorded)}
    assert sorted(runs) == ["trial-0", "trial-1", "trial-3", "trial-4"]  # trial 2 failed
    study = optuna.load_study(study_name="gpt-small", storage=storage)
    trial = study.trials[0]
    run = runs["trial-0"]
    assert run.params == trial.params
    assert run.seed == 1234
    assert run.costs == {"flops": trial.user_attrs["cost.flops"]}
    assert run.agent == "knobs-import-optuna"
    scores = [e.event for e in plan.events if isinstance(e.event, BenchmarkScored)]
    assert {s.benchmark for s in scores} == {"val_loss"}
    assert next(s.value for s in scores if s.run_id == "trial-0") == trial.value
    assert plan.skipped == 1 and plan.notes == ["1 trial(s) not complete, not imported: 1 FAIL"]


def test_a_minimised_objective_without_a_telling_name_is_flagged(storage: str) -> None:
    plan = plan_optuna(storage, "gpt-small", "sweep")
    assert {e.event.benchmark for e in plan.events if isinstance(e.event, BenchmarkScored)} == {"objective"}
    assert any("minimizes 'objective', which knobs reads as higher-is-better" in n for n in plan.notes)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_several_objectives_take_the_study_metric_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'multi.db'}"
    study = optuna.create_study(study_name="pareto", storage=url, directions=["minimize", "maximize"])
    study.set_metric_names(["val_loss", "hellaswag_acc"])
    study.optimize(lambda t: (t.suggest_float("lr", 1e-4, 1e-2), 0.3), n_trials=2)
    plan = plan_optuna(url, "pareto", "e")
    assert {e.event.benchmark for e in plan.events if isinstance(e.event, BenchmarkScored)} == {
        "val_loss", "hellaswag_acc"}
    assert plan.notes == []  # both names say which way is better
    with pytest.raises(BadInput, match="has 2 objective"):
        plan_optuna(url, "pareto", "e", ["only_one"])


def test_the_study_is_cited_once_and_a_reimport_stores_nothing(storage: str, ctx: Context) -> None:
    first = import_optuna(ctx, storage, "gpt-small", "sweep", ["val_loss"])
    assert (first.runs, first.scores, first.skipped) == (4, 4, 1)
    assert first.new_events == 1 + 4 + 4
    again = import_optuna(ctx, storage, "gpt-small", "sweep", ["val_loss"])
    assert again.new_events == 0
    (cited,) = [e.decode() for e in ctx.store().read_all(types=["SourceCited"])]
    assert isinstance(cited, SourceCited)
    assert cited.citation == f"Optuna study gpt-small in {storage}"


def test_one_bad_trial_imports_nothing(tmp_path: Path, ctx: Context) -> None:
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    study = optuna.create_study(study_name="s", storage=url)

    def costly(trial: optuna.Trial) -> float:
        trial.set_user_attr("cost.gpu_hours", -1.0 if trial.number == 1 else 2.0)
        trial.set_user_attr("seed", "first" if trial.number == 2 else trial.number)
        return trial.suggest_float("x", 0, 1)

    study.optimize(costly, n_trials=3)
    with pytest.raises(BadInput) as err:
        import_optuna(ctx, url, "s", "e", ["val_loss"])
    message = str(err.value)
    assert "2 problem(s), nothing was imported" in message
    assert "trial 1: user attribute cost.gpu_hours -1.0 is not a finite, non-negative number" in message
    assert "trial 2: user attribute seed 'first' is not an integer" in message
    assert ctx.store().read_all() == []


def test_unknown_study_and_missing_storage_are_refused_without_creating_anything(
    storage: str, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match=r"no study 'nope' in .*; it has: gpt-small"):
        plan_optuna(storage, "nope", "e")
    missing = tmp_path / "missing.db"
    with pytest.raises(BadInput, match="no such SQLite file"):
        plan_optuna(f"sqlite:///{missing}", "gpt-small", "e")
    with pytest.raises(BadInput, match="no such file, and not a storage URL"):
        plan_optuna(str(missing), "gpt-small", "e")
    assert not missing.exists()  # Optuna would have created it


def test_unreachable_storage_is_unavailable_and_the_password_never_shown() -> None:
    url = "postgresql://knobs:s3cret@127.0.0.1:1/optuna"
    with pytest.raises(Unavailable) as err:
        plan_optuna(url, "gpt-small", "e")
    assert "s3cret" not in str(err.value)
    assert "postgresql://knobs:***@127.0.0.1:1/optuna" in str(err.value)
    assert redact_url("mysql://u@h/db") == "mysql://u@h/db"
