"""`knobs import results | lm-eval | mlflow | optuna`: results people already have, brought into the log.

Each reads everything first and appends one batch (all or nothing, nothing new on a
re-import), then lets the graph catch up; one `run_import` serves them all, so every
import says the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from graph.errors import GraphError
from services.cli.output import emit_json
from services.core.context import Context
from services.core.errors import Unavailable

if TYPE_CHECKING:
    from services.importing.batch import ImportOutcome

import_app = typer.Typer(help="Bring results produced elsewhere into the log.", no_args_is_help=True)


@import_app.command("results")
def results(
    file: Path = typer.Argument(..., help="A .csv or .jsonl file, one row per run."),
    experiment: str = typer.Option(..., "--experiment", help="The experiment these runs belong to."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import runs (run, citation, seed, param.*, score.*, stderr.*, n.*, cost.*): all or nothing."""
    from services.importing.results import import_results

    run_import(lambda ctx: import_results(ctx, file, experiment), json_out)


@import_app.command("lm-eval")
def lm_eval(
    paths: list[Path] = typer.Argument(..., help="lm-evaluation-harness results files, or folders whose "
                                       "results*.json files are all read."),
    experiment: str = typer.Option(..., "--experiment", help="The experiment these runs belong to."),
    param: list[str] = typer.Option([], "--param", help="KEY=VALUE added to every run's parameters "
                                    "(overrides what the files say); repeatable."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import lm-evaluation-harness results: one run per file, a score per task/metric."""
    from services.importing.adapters import parse_assignments
    from services.importing.lm_eval import import_lm_eval

    overrides = parse_assignments(param)
    run_import(lambda ctx: import_lm_eval(ctx, paths, experiment, overrides), json_out)


@import_app.command("mlflow")
def mlflow(
    tracking: str = typer.Argument(..., help="An mlruns folder, an MLflow SQLite file, or a tracking URI "
                                   "(sqlite:///mlflow.db, postgresql://..., http://host:5000)."),
    experiment: str = typer.Option(..., "--experiment", help="The knobs experiment these runs belong to."),
    mlflow_experiment: list[str] = typer.Option([], "--mlflow-experiment", help="MLflow experiment name or "
                                                "id to read (repeatable; default: every active one)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import MLflow runs: each finished run with its params, latest metrics and cost.* values."""
    from services.importing.mlflow_runs import import_mlflow

    run_import(lambda ctx: import_mlflow(ctx, tracking, experiment, mlflow_experiment), json_out)


@import_app.command("optuna")
def optuna(
    storage: str = typer.Argument(..., help="The study's storage URL (sqlite:///optuna.db, postgresql://...) "
                                  "or a SQLite file."),
    study: str = typer.Option(..., "--study", help="The study's name."),
    experiment: str = typer.Option(..., "--experiment", help="The experiment these trials belong to."),
    benchmark: list[str] = typer.Option([], "--benchmark", help="Name of the objective's score; one per "
                                        "objective, in order (default: the study's metric names)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import an Optuna study: each complete trial with its params, objective value(s) and cost.* attrs."""
    from services.importing.optuna_study import import_optuna

    run_import(lambda ctx: import_optuna(ctx, storage, study, experiment, benchmark), json_out)


def run_import(do: Callable[[Context], ImportOutcome], json_out: bool) -> None:
    """Run one import against the log, let the graph catch up, then say what was stored."""
    with Context() as ctx:
        outcome = do(ctx)
        _catch_up(ctx)
    _print_outcome(outcome, json_out)


def _catch_up(ctx: Context) -> None:
    try:
        ctx.catch_up()
    except (Unavailable, GraphError) as exc:
        # The log is the truth and the import is in it; the graph can catch up later.
        typer.secho(f"note: the graph was not updated ({exc}); run `knobs graph project` "
                    "once Neo4j is up", err=True, fg=typer.colors.YELLOW)


def _print_outcome(outcome: ImportOutcome, json_out: bool) -> None:
    if json_out:
        emit_json(asdict(outcome))
        return
    span = (f" at positions {outcome.first_position}..{outcome.last_position}"
            if outcome.new_events else "")
    skipped = f"; {outcome.skipped} skipped" if outcome.skipped else ""
    typer.echo(f"{outcome.experiment}: {outcome.runs} runs, {outcome.scores} scores{skipped}; "
               f"{outcome.new_events} new events{span}, {outcome.events - outcome.new_events} already stored")
    for note in outcome.notes:
        typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)
