"""`/v1/rankings`: rank an experiment's knobs (recorded as RankingDerived) and audit a ranking."""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks

from events.errors import EventsError
from graph.errors import GraphError
from services.api.deps import ContextDep, ReadScope, WriteScope
from services.api.responses import EVERY, errors
from services.api.schemas import RankIn
from services.core.context import Context
from services.core.errors import ServiceError
from services.ranking.audit import audit
from services.ranking.rank import RankOptions, rank
from services.ranking.recorded import ranking_public

# Every route here names an experiment or a ranking that may not be in the log (404).
router = APIRouter(prefix="/v1", responses=errors(*EVERY, 404))
log = logging.getLogger("knobs.api")


@router.post("/rankings", status_code=201, responses=errors(400, 403, 409, 413))
def post_ranking(body: RankIn, ctx: ContextDep, _: WriteScope, after: BackgroundTasks) -> dict[str, object]:
    """Answered once the ranking is in the log with its citations; its links in the graph are
    projected right after the response (the audit route catches up before it reads)."""
    options = RankOptions(baseline_run=body.baseline, method=body.method, as_of=body.as_of,
                          without=tuple(body.without), direction=body.direction,
                          bootstrap_seed=body.seed)
    outcome = rank(ctx, body.experiment, body.benchmark, options=options, project=False)
    if not outcome.duplicate:
        after.add_task(_project, ctx)
    return outcome.public()


def _project(ctx: Context) -> None:
    try:
        ctx.catch_up()
    except (ServiceError, GraphError, EventsError) as exc:  # the next reader that catches up projects it
        log.warning("the new ranking is in the log; projecting it into the graph failed: %s", exc)


@router.get("/rankings/{ranking_id}")
def get_ranking(ranking_id: str, ctx: ContextDep, _: ReadScope) -> dict[str, object]:
    """The recorded RankingDerived (every ranking figure is drawn from it), with its log position and hash."""
    return ranking_public(ctx, ranking_id)


@router.get("/rankings/{ranking_id}/audit")
def get_audit(ranking_id: str, ctx: ContextDep, _: ReadScope) -> dict[str, object]:
    return audit(ctx, ranking_id)
