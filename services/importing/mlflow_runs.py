"""`knobs import mlflow`: the finished runs of an MLflow tracking store become runs and scores.

Read with MLflow's own client (the `adapters` extra), from a local `mlruns` folder or any
tracking URI (`sqlite:///mlflow.db`, `postgresql://...`, `http://host:5000`). Each FINISHED
run keeps its MLflow run id; its params are typed as `knobs import results` types cells;
a `seed` param (or tag) is the seed, not a knob; `cost.*` params and metrics are costs;
every other metric's latest value is a score named by its key (MLflow's own `system/*`
metrics are machine telemetry and left out). Runs that did not finish are counted, not
imported. Nothing is written to the MLflow store.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from services.core.context import Context
from services.core.errors import BadInput, NotFound, Unavailable
from services.importing.adapters import (
    add_cost,
    add_score,
    environment,
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
)

PAGE = 1000
SYSTEM_PREFIX = "system/"


def tracking_uri_for(tracking: str) -> str:
    """A tracking URI from what the user typed: a URI as is, a folder as `file:`, a file as SQLite.

    Refuses local stores that do not exist yet: MLflow would create them, and an import reads.
    """
    if is_url(tracking):
        scheme = tracking.split(":", 1)[0].lower()
        if scheme == "file":
            root = Path(unquote(urlsplit(tracking).path))
            _check_mlruns(root, tracking)
            return root.resolve().as_uri()  # one spelling, so the citation is the same every time
        elif scheme == "sqlite" and missing_sqlite_file(tracking):
            raise BadInput(f"{tracking}: no such SQLite file; give the path of an existing MLflow database")
        return tracking
    path = Path(tracking).expanduser()
    if path.is_dir():
        _check_mlruns(path, tracking)
        return path.resolve().as_uri()
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    raise BadInput(f"{tracking}: no such folder or file; give an mlruns folder, an MLflow SQLite "
                   "database, or a tracking URI (sqlite:///..., postgresql://..., http://...)")


def _check_mlruns(root: Path, shown: str) -> None:
    if not root.is_dir():
        raise BadInput(f"{shown}: no such folder")
    if not any((child / "meta.yaml").is_file() for child in root.iterdir() if child.is_dir()):
        raise BadInput(f"{shown}: not an MLflow tracking folder (no experiment with a meta.yaml in it); "
                       "give the `mlruns` folder itself")


def plan_mlflow(tracking: str, experiment: str, mlflow_experiments: Sequence[str] = ()) -> ImportPlan:
    """Read every finished run of the chosen MLflow experiments (all active ones by default)."""
    experiment = check_experiment(experiment)
    uri = tracking_uri_for(tracking)
    shown = redact_url(uri)
    try:
        from mlflow.entities import ViewType
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise missing_package("mlflow", "`knobs import mlflow`") from exc

    with _reading(uri):
        try:
            client = MlflowClient(tracking_uri=uri)
            experiments = _all_pages(lambda token: client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY, max_results=PAGE, page_token=token))
            chosen = _choose(experiments, mlflow_experiments, shown)
            runs = _all_pages(lambda token: client.search_runs(
                [e.experiment_id for e in chosen], run_view_type=ViewType.ACTIVE_ONLY,
                max_results=PAGE, page_token=token))
        except MlflowException as exc:
            raise Unavailable(f"cannot read MLflow at {shown}: {scrub(exc.message, uri)}") from exc
        except (OSError, ConnectionError) as exc:
            raise Unavailable(f"cannot reach MLflow at {shown}: {scrub(str(exc), uri)}") from exc

    names = {e.experiment_id: e.name for e in chosen}
    runs.sort(key=lambda r: (names[r.info.experiment_id], r.info.start_time or 0, r.info.run_id))
    parsed: list[ParsedRun] = []
    sources: dict[str, Source] = {}
    errors: list[str] = []
    notes: list[str] = []
    finished, skipped = only_done(enumerate(runs, start=1), lambda item: item[1].info.status, "FINISHED",
                                  "run(s) not finished", notes)
    for index, run in finished:
        one = _parse_run(index, run, errors, notes)
        if one is not None:
            parsed.append(one)
            citation = (f"MLflow {shown} experiment {names[run.info.experiment_id]} run {run.info.run_id}"
                        + (f" ({run.info.run_name})" if run.info.run_name else ""))
            # The run id is unique and stays when the store moves, so the source does too.
            digest = hashlib.sha256(f"mlflow:{run.info.run_id}".encode()).hexdigest()[:16]
            sources[one.run_id] = Source(f"src-mlflow-{digest}", citation)
    refuse(f"MLflow {shown}", errors)
    if not parsed:
        where = ", ".join(sorted(names.values())) or "(none)"
        raise BadInput(f"MLflow {shown}: no finished run in experiment(s) {where}; nothing was imported")
    return plan_events(experiment, "mlflow", parsed, sources, skipped=skipped, notes=notes)


def import_mlflow(
    ctx: Context, tracking: str, experiment: str, mlflow_experiments: Sequence[str] = ()
) -> ImportOutcome:
    """Import the finished runs of an MLflow store into the log, all or nothing."""
    return append_plan(ctx, plan_mlflow(tracking, experiment, mlflow_experiments))


@contextmanager
def _reading(uri: str) -> Iterator[None]:
    """MLflow 3 refuses a file store unless told it is wanted; reading an existing one is.
    Against a server, fail in seconds rather than after MLflow's minutes of retries (unless
    the user set those knobs)."""
    settings: dict[str, str] = {}
    if uri.startswith("file:"):
        settings["MLFLOW_ALLOW_FILE_STORE"] = "true"
    elif uri.startswith(("http:", "https:")):
        defaults = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
        settings = {k: v for k, v in defaults.items() if k not in os.environ}
    with environment(**settings):
        yield


def _all_pages(fetch: Any) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        page = fetch(token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _choose(experiments: list[Any], wanted: Sequence[str], shown: str) -> list[Any]:
    if not wanted:
        return experiments
    by_key = {e.name: e for e in experiments} | {e.experiment_id: e for e in experiments}
    missing = [w for w in wanted if w not in by_key]
    if missing:
        known = ", ".join(f"{e.name} (id {e.experiment_id})" for e in experiments) or "none"
        raise NotFound(f"MLflow {shown} has no active experiment named or numbered {', '.join(missing)}; "
                       f"it has: {known}")
    chosen = {by_key[w].experiment_id: by_key[w] for w in wanted}
    return list(chosen.values())


def _parse_run(index: int, run: Any, errors: list[str], notes: list[str]) -> ParsedRun | None:
    run_id = run.info.run_id
    place = f"run {run_id}"
    before = len(errors)
    parsed = ParsedRun(line=index, run_id=run_id)
    seed_raw = run.data.params.get("seed", run.data.tags.get("seed"))
    if seed_raw is not None:
        set_seed(parsed, seed_raw, f"{place}: seed", errors)
    for key, raw in sorted(run.data.params.items()):
        if key == "seed":
            continue
        if is_cost(key):
            add_cost(parsed, key, raw, f"{place}: {key}", errors)
        else:
            value = param_value(raw)
            parsed.params[key] = value if value is not None else ""
    for key, raw in sorted(run.data.metrics.items()):
        if key.startswith(SYSTEM_PREFIX):
            continue
        if is_cost(key):
            add_cost(parsed, key, raw, f"{place}: {key}", errors)
        else:
            add_score(parsed, key, raw, f"{place}: metric {key}", notes)
    return parsed if len(errors) == before else None
