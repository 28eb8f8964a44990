"""What every import shares: runs read from elsewhere become one batch of events.

`knobs import results` (a CSV/JSONL table) and the adapters for lm-evaluation-harness,
MLflow and Optuna all end as `ParsedRun`s with a `Source` each. `run_events` turns them
into SourceCited + RunRecorded + BenchmarkScored events whose ids and idempotency keys
follow from their content (so importing the same thing twice stores nothing new), and
`append_plan` appends the whole batch at once: all of it or, on any problem, none of it.
One outcome type, `ImportOutcome`, says what every import stored.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from events.canonical import canonical_json
from events.errors import InvalidEvent
from events.models import BenchmarkScored, JSONScalar, RunRecorded, SourceCited
from events.store import NewEvent
from events.store.identity import new_event
from services.core.context import Context
from services.core.errors import BadInput

MAX_ERRORS_SHOWN = 20


@dataclass
class ParsedRun:
    line: int
    run_id: str
    citation: str | None = None
    seed: int | None = None
    params: dict[str, JSONScalar] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    stderrs: dict[str, float] = field(default_factory=dict)
    ns: dict[str, int] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """Where a run's numbers come from; recorded once as SourceCited and named by its runs."""

    source_id: str
    citation: str


@dataclass(frozen=True)
class ImportPlan:
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
class ImportOutcome:
    """What an import stored, whichever door it came through."""

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


def source_id_for(citation: str) -> str:
    return "src-" + hashlib.sha256(citation.strip().encode()).hexdigest()[:16]


def check_experiment(experiment: str) -> str:
    if not experiment.strip():
        raise BadInput("--experiment must not be empty: name the experiment these runs belong to")
    return experiment.strip()


def refuse(place: str, errors: Sequence[str]) -> None:
    """Raise one BadInput listing every problem (capped), so one run fixes them all."""
    if not errors:
        return
    shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
    more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
    raise BadInput(f"{place}: {len(errors)} problem(s), nothing was imported:\n  {shown}{more}")


def run_events(
    experiment: str, runs: Sequence[ParsedRun], sources: Mapping[str, Source], agent: str
) -> list[NewEvent]:
    """The events for these runs: each source once, then each run and its scores.

    Keys are `import:<experiment>:<run>:<type>:<content digest>` (sources: `source:...`)
    whatever the door, so a re-import is recognised and a corrected value is a new fact.
    """
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
    return out


def plan_events(
    experiment: str,
    origin: str,
    runs: Sequence[ParsedRun],
    sources: Mapping[str, Source],
    *,
    skipped: int = 0,
    notes: Iterable[str] = (),
) -> ImportPlan:
    """An adapter's plan: the experiment name checked and trimmed, the agent named by the origin."""
    experiment = check_experiment(experiment)
    events = run_events(experiment, runs, sources, agent=f"knobs-import-{origin}")
    return ImportPlan(experiment, origin, list(runs), dict(sources), events, skipped, list(notes))


def append_plan(ctx: Context, plan: ImportPlan) -> ImportOutcome:
    """Append the plan's events as one atomic batch; already stored events count as duplicates."""
    try:
        appended = ctx.store().append(plan.events)
    except InvalidEvent as exc:  # a value the log cannot hold (a 65-bit integer): the file's fault
        raise BadInput(f"nothing was imported: {exc}") from exc
    new = [a.position for a in appended if not a.duplicate]
    return ImportOutcome(
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


def param_value(raw: Any) -> JSONScalar | None:
    """One rule for typing values: CSV cells become int, float, bool or str; JSON scalars keep their type."""
    if raw is None:
        return None
    if isinstance(raw, bool | int | float):
        if isinstance(raw, float) and not math.isfinite(raw):
            return str(raw)
        return raw
    if isinstance(raw, dict | list):
        return canonical_json(raw)
    text = str(raw).strip()
    if text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


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
