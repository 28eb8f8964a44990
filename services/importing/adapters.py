"""What the import adapters share: runs parsed from another tool become one batch of events.

lm-evaluation-harness files, MLflow runs and Optuna trials all end as `ParsedRun`s with a
`Source` each; `plan_events` turns them into SourceCited + RunRecorded + BenchmarkScored
events whose ids and idempotency keys follow from their content (the same key scheme as
`knobs import results`, so importing the same thing twice stores nothing new), and
`append_plan` appends the whole batch at once: all of it or, on any problem, none of it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from events.models import BenchmarkScored, JSONScalar, RunRecorded, SourceCited
from events.store import NewEvent
from services.context import Context
from services.errors import BadInput, Unavailable
from services.importing.results import MAX_ERRORS_SHOWN, ParsedRun, new_event, param_value

INSTALL_HINT = "pip install '.[adapters]'"


@dataclass(frozen=True)
class Source:
    """Where a run's numbers come from; recorded once as SourceCited and named by its runs."""

    source_id: str
    citation: str


@dataclass(frozen=True)
class AdapterPlan:
    """Everything one import would append, checked before anything is written."""

    experiment: str
    origin: str
    runs: list[ParsedRun]
    sources: dict[str, Source]
    """The source of each run, by run id."""
    events: list[NewEvent]
    skipped: int = 0
    """Runs or trials found but not imported (not finished, not complete)."""
    notes: list[str] = field(default_factory=list)
    """What was left out or guessed, and why: printed so nothing is dropped silently."""

    @property
    def score_count(self) -> int:
        return sum(len(r.scores) for r in self.runs)


@dataclass(frozen=True)
class AdapterOutcome:
    """What an import stored; the fields of `ImportOutcome` plus what was skipped."""

    experiment: str
    origin: str
    runs: int
    scores: int
    events: int
    new_events: int
    first_position: int | None
    last_position: int | None
    skipped: int
    notes: list[str]


def check_experiment(experiment: str) -> str:
    if not experiment.strip():
        raise BadInput("--experiment must not be empty: name the experiment these runs belong to")
    return experiment.strip()


def refuse(place: str, errors: Sequence[str]) -> None:
    """Raise one BadInput listing every problem (capped), as `knobs import results` does."""
    if not errors:
        return
    shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
    more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
    raise BadInput(f"{place}: {len(errors)} problem(s), nothing was imported:\n  {shown}{more}")


def plan_events(
    experiment: str,
    origin: str,
    runs: Sequence[ParsedRun],
    sources: Mapping[str, Source],
    *,
    skipped: int = 0,
    notes: Iterable[str] = (),
) -> AdapterPlan:
    """The events for these runs: each source once, then each run and its scores.

    Keys use the same prefixes as `knobs import results`, so the same run imported through
    two doors is one fact.
    """
    experiment = check_experiment(experiment)
    agent = f"knobs-import-{origin}"
    out: list[NewEvent] = []
    cited: set[str] = set()
    for run in runs:
        source = sources.get(run.run_id)
        if source is not None and source.source_id not in cited:
            cited.add(source.source_id)
            out.append(new_event(SourceCited(source_id=source.source_id, citation=source.citation), "source"))
        prefix = f"import:{experiment}:{run.run_id}"
        out.append(new_event(RunRecorded(
            experiment=experiment, run_id=run.run_id, params=run.params, seed=run.seed,
            source_id=source.source_id if source else None, costs=run.costs, origin="import", agent=agent,
        ), prefix))
        for benchmark, value in sorted(run.scores.items()):
            out.append(new_event(BenchmarkScored(
                experiment=experiment, run_id=run.run_id, benchmark=benchmark, value=value,
                n=run.ns.get(benchmark), stderr=run.stderrs.get(benchmark),
            ), prefix))
    return AdapterPlan(experiment, origin, list(runs), dict(sources), out, skipped, list(notes))


def append_plan(ctx: Context, plan: AdapterPlan) -> AdapterOutcome:
    """Append the plan's events as one atomic batch; already stored events count as duplicates."""
    appended = ctx.store().append(plan.events)
    new = [a.position for a in appended if not a.duplicate]
    return AdapterOutcome(
        experiment=plan.experiment,
        origin=plan.origin,
        runs=len(plan.runs),
        scores=plan.score_count,
        events=len(appended),
        new_events=len(new),
        first_position=min(new) if new else None,
        last_position=max(new) if new else None,
        skipped=plan.skipped,
        notes=plan.notes,
    )


def parse_assignments(pairs: Iterable[str], option: str = "--param") -> dict[str, JSONScalar]:
    """`KEY=VALUE` strings as parameters; values typed as a CSV cell would be (int, float, bool, str)."""
    out: dict[str, JSONScalar] = {}
    errors: list[str] = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        value = param_value(raw)
        if not sep or not key.strip() or value is None:
            errors.append(f"{option} {pair!r} must be KEY=VALUE with a non-empty key and value")
        else:
            out[key.strip()] = value
    refuse(option, errors)
    return out


def finite_number(raw: Any) -> float | None:
    """A finite float from a number or numeric string; None for anything else (bools too)."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def integer_seed(raw: Any) -> int | None:
    number = finite_number(raw)
    return int(number) if number is not None and number.is_integer() else None


def redact_url(url: str) -> str:
    """The URL without its password, fit for a citation or an error message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def scrub(message: str, url: str) -> str:
    """An error message with the URL's password, if any, replaced."""
    password = urlsplit(url).password if "://" in url else None
    return message.replace(password, "***") if password else message


def is_url(text: str) -> bool:
    """`scheme://...` or `file:...`; anything else is read as a path."""
    has_scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) is not None
    return has_scheme and ("://" in text or text.startswith("file:"))


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then put them back."""
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def missing_package(package: str, what: str) -> Unavailable:
    return Unavailable(f"{what} needs the `{package}` package, which is not installed: run `{INSTALL_HINT}`")
