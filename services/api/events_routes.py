"""`/v1/events`: programs append events (all or nothing) and read the log from a position."""

from __future__ import annotations

from fastapi import APIRouter, Query

from services.api.deps import ContextDep, ReadScope, SettingsDep, WriteScope
from services.api.responses import EVERY, errors
from services.api.schemas import EXACT_INT_MAX, AppendIn, AppendPublic, EventsPublic
from services.core.errors import BadInput
from services.importing.submitted import append_events

router = APIRouter(prefix="/v1", responses=errors(*EVERY))


@router.post("/events", status_code=201, response_model=AppendPublic,
             responses=errors(400, 403, 409, 413, 507))
def post_events(body: AppendIn, ctx: ContextDep, settings: SettingsDep, _: WriteScope) -> AppendPublic:
    if len(body.events) > settings.max_batch:
        raise BadInput(f"{len(body.events)} events in one batch; the limit is {settings.max_batch}")
    appended = append_events(ctx, [e.model_dump() for e in body.events], body.expected_versions)
    return AppendPublic.model_validate({
        "positions": [a.position for a in appended],
        "results": [vars(a) for a in appended],
    })


@router.get("/events", response_model=EventsPublic)
def get_events(
    ctx: ContextDep, _: ReadScope,
    after: int = Query(0, ge=0, le=EXACT_INT_MAX), limit: int = Query(100, ge=1, le=10_000),
    type: list[str] | None = Query(None),
) -> EventsPublic:
    rows = ctx.store().read_all(after=after, limit=limit, types=type or None)
    return EventsPublic.model_validate({
        "events": [e.public() for e in rows],
        "next_after": rows[-1].position if rows else after,
    })
