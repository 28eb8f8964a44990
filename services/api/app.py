"""The FastAPI app: `knobs serve`. Routes validate, call one service function, return *Public."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from graph.readonly import run_readonly
from services.access.health import health
from services.api.deps import ContextDep, ReadScope, SettingsDep, WriteScope
from services.api.errors import install_handlers
from services.api.queries_routes import router as queries_router
from services.api.schemas import (
    AppendIn,
    AppendPublic,
    CypherIn,
    CypherPublic,
    EventsPublic,
    HealthPublic,
    RankIn,
)
from services.core.context import Context
from services.core.errors import BadInput
from services.core.settings import ApiSettings
from services.importing.submitted import append_events
from services.ranking.audit import audit
from services.ranking.rank import RankOptions, rank


def create_app(context: Context | None = None, settings: ApiSettings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.context = context or Context()
        app.state.settings = settings or ApiSettings()
        yield
        app.state.context.close()

    app = FastAPI(title="knobs", version="0.1.0", lifespan=lifespan,
                  description="Which knobs matter, with the evidence for every answer.")
    install_handlers(app)
    app.include_router(queries_router)

    @app.post("/v1/events", status_code=201, response_model=AppendPublic)
    def post_events(body: AppendIn, ctx: ContextDep, settings: SettingsDep, _: WriteScope) -> AppendPublic:
        if len(body.events) > settings.max_batch:
            raise BadInput(f"{len(body.events)} events in one batch; the limit is {settings.max_batch}")
        appended = append_events(ctx, [e.model_dump() for e in body.events], body.expected_versions)
        return AppendPublic.model_validate({
            "positions": [a.position for a in appended],
            "results": [vars(a) for a in appended],
        })

    @app.get("/v1/events", response_model=EventsPublic)
    def get_events(
        ctx: ContextDep, _: ReadScope,
        after: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=10_000),
        type: list[str] | None = Query(None),
    ) -> EventsPublic:
        rows = ctx.store().read_all(after=after, limit=limit, types=type or None)
        return EventsPublic.model_validate({
            "events": [e.public() for e in rows],
            "next_after": rows[-1].position if rows else after,
        })

    @app.post("/v1/cypher", response_model=CypherPublic)
    def post_cypher(body: CypherIn, ctx: ContextDep, settings: SettingsDep, _: ReadScope) -> CypherPublic:
        result = run_readonly(
            ctx.driver(), body.query, body.params,
            timeout_s=min(body.timeout_s or settings.cypher_timeout_s, settings.cypher_timeout_s),
            row_limit=min(body.limit or settings.cypher_row_limit, settings.cypher_row_limit),
        )
        return CypherPublic(columns=list(result.columns), rows=list(result.rows), truncated=result.truncated)

    @app.post("/v1/rankings", status_code=201)
    def post_ranking(body: RankIn, ctx: ContextDep, _: WriteScope) -> dict[str, object]:
        options = RankOptions(baseline_run=body.baseline, method=body.method, as_of=body.as_of,
                              without=tuple(body.without), direction=body.direction,
                              bootstrap_seed=body.seed)
        return rank(ctx, body.experiment, body.benchmark, options=options).public()

    @app.get("/v1/rankings/{ranking_id}/audit")
    def get_audit(ranking_id: str, ctx: ContextDep, _: ReadScope) -> dict[str, object]:
        return audit(ctx, ranking_id)

    @app.get("/v1/health", response_model=HealthPublic)
    def get_health(ctx: ContextDep) -> JSONResponse:
        body = health(ctx)
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    return app
