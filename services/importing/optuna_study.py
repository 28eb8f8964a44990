"""`knobs import optuna`: the complete trials of an Optuna study become runs and scores.

Read with Optuna itself (the `adapters` extra) from its storage URL (`sqlite:///study.db`,
`postgresql://...`, `mysql://...`; a plain path is taken as a SQLite file). Trial N becomes
run `trial-N` with the trial's sampled params; its objective value(s) become scores, named
by `--benchmark`, else by the study's metric names, else `objective` (or `objective_0`,
`objective_1`, ... for several objectives); `cost.*` user attributes are costs and a
`seed` user attribute is the seed. Trials that did not complete are counted, not imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.core.context import Context
from services.core.errors import BadInput, NotFound, Unavailable
from services.importing.adapters import (
    add_cost,
    add_score,
    is_cost,
    is_url,
    missing_package,
    missing_sqlite_file,
    only_done,
    redact_url,
    scrub,
    set_seed,
)
from services.importing.batch import (
    ImportOutcome,
    ImportPlan,
    ParsedRun,
    Source,
    append_plan,
    check_experiment,
    param_value,
    plan_events,
    refuse,
    source_id_for,
)
from services.ranking.analysis.direction import direction_for


def storage_url_for(storage: str) -> str:
    """A storage URL as is (a SQLite one must name an existing file), or a path as SQLite.

    Optuna creates a SQLite file that does not exist; an import must not.
    """
    if is_url(storage):
        if storage.lower().startswith("sqlite:") and missing_sqlite_file(storage):
            raise BadInput(f"{storage}: no such SQLite file; give the storage URL the study was "
                           "created with (e.g. sqlite:///optuna.db)")
        return storage
    path = Path(storage).expanduser()
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    raise BadInput(f"{storage}: no such file, and not a storage URL; give the URL the study was created "
                   "with (sqlite:///..., postgresql://..., mysql://...)")


def plan_optuna(storage: str, study: str, experiment: str, benchmarks: Sequence[str] = ()) -> ImportPlan:
    """Read one study's trials; BadInput/NotFound/Unavailable say what to fix, nothing is written."""
    experiment = check_experiment(experiment)
    url = storage_url_for(storage)
    shown = redact_url(url)
    try:
        import optuna
    except ImportError as exc:
        raise missing_package("optuna", "`knobs import optuna`") from exc

    try:
        loaded = optuna.load_study(study_name=study, storage=url)
    except KeyError as exc:
        names = _study_names(optuna, url)
        raise NotFound(f"no study {study!r} in {shown}; it has: {', '.join(names) or 'no studies'}") from exc
    except ImportError as exc:  # a database driver (psycopg, pymysql) that is not installed
        raise Unavailable(f"cannot open {shown}: {exc}; install the database driver") from exc
    except Exception as exc:  # SQLAlchemy and driver errors: the storage cannot be read
        first = scrub(str(exc), url).splitlines()[0] if str(exc) else type(exc).__name__
        raise Unavailable(f"cannot read the Optuna storage {shown}: {first}") from exc

    directions = [d.name.lower() for d in loaded.directions]
    names = _objective_names(benchmarks, loaded.metric_names, len(directions), study)
    notes = [
        f"study {study} {direction}s {name!r}, which knobs reads as {direction_for(name)}-is-better: "
        f"name it with --benchmark (e.g. a name with `loss` or `error` in it), or rank with "
        f"--{'lower' if direction == 'minimize' else 'higher'}-is-better"
        for name, direction in zip(names, directions, strict=True)
        if direction_for(name) != ("lower" if direction == "minimize" else "higher")
    ]
    citation = f"Optuna study {study} in {shown}"
    source = Source(source_id_for(citation), citation)
    runs: list[ParsedRun] = []
    errors: list[str] = []
    complete, skipped = only_done(loaded.get_trials(deepcopy=False), lambda trial: trial.state.name,
                                  "COMPLETE", "trial(s) not complete", notes)
    for trial in complete:
        run = _parse_trial(trial, names, errors, notes)
        if run is not None:
            runs.append(run)
    refuse(f"Optuna study {study} in {shown}", errors)
    if not runs:
        raise BadInput(f"study {study} in {shown} has no complete trial; nothing was imported")
    return plan_events(experiment, "optuna", runs, {r.run_id: source for r in runs},
                       skipped=skipped, notes=notes)


def import_optuna(
    ctx: Context, storage: str, study: str, experiment: str, benchmarks: Sequence[str] = ()
) -> ImportOutcome:
    """Import an Optuna study's complete trials into the log, all or nothing."""
    return append_plan(ctx, plan_optuna(storage, study, experiment, benchmarks))


def _study_names(optuna: Any, url: str) -> list[str]:
    try:
        return sorted(optuna.study.get_all_study_names(storage=url))
    except Exception:  # the names only decorate the message; the study is missing either way
        return []


def _objective_names(
    given: Sequence[str], metric_names: list[str] | None, count: int, study: str
) -> list[str]:
    if given:
        if len(given) != count:
            raise BadInput(f"study {study} has {count} objective(s) but {len(given)} --benchmark name(s) "
                           "were given; give one per objective, in order")
        if len(set(given)) != len(given) or not all(g.strip() for g in given):
            raise BadInput("--benchmark names must be distinct and not empty")
        return [g.strip() for g in given]
    if metric_names and len(metric_names) == count:
        return list(metric_names)
    return ["objective"] if count == 1 else [f"objective_{i}" for i in range(count)]


def _parse_trial(trial: Any, names: list[str], errors: list[str], notes: list[str]) -> ParsedRun | None:
    place = f"trial {trial.number}"
    before = len(errors)
    run = ParsedRun(line=trial.number, run_id=f"trial-{trial.number}")
    for key, raw in sorted(trial.params.items()):
        value = param_value(raw)
        run.params[key] = value if value is not None else "None"  # a categorical choice of None
    attrs = trial.user_attrs
    if "seed" in attrs:
        set_seed(run, attrs["seed"], f"{place}: user attribute seed", errors)
    for key, raw in sorted(attrs.items()):
        if is_cost(key):
            add_cost(run, key, raw, f"{place}: user attribute {key}", errors)
    for name, raw in zip(names, trial.values or [], strict=False):
        add_score(run, name, raw, f"{place}: {name}", notes)
    return run if len(errors) == before else None
