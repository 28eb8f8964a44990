"""Import a results file: parse and validate all of it, then append it as one batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.context import Context
from services.importing.results import plan_import


@dataclass(frozen=True)
class ImportOutcome:
    experiment: str
    runs: int
    scores: int
    events: int
    new_events: int
    first_position: int | None
    last_position: int | None


def import_results(ctx: Context, path: Path, experiment: str) -> ImportOutcome:
    plan = plan_import(path, experiment)
    appended = ctx.store().append(plan.events)
    new = [a.position for a in appended if not a.duplicate]
    return ImportOutcome(
        experiment=experiment,
        runs=len(plan.runs),
        scores=plan.score_count,
        events=len(appended),
        new_events=len(new),
        first_position=min(new) if new else None,
        last_position=max(new) if new else None,
    )
