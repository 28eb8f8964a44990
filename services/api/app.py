"""The FastAPI app: `knobs serve`. One router per domain; routes validate, call one service
function and return *Public schemas; status codes come from one exception handler."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.api import (
    access_routes,
    distillation_routes,
    events_routes,
    queries_routes,
    ranking_routes,
    repetition_routes,
    shift_routes,
)
from services.api.errors import install_handlers
from services.api.guard import install_access
from services.api.limits import RequestLimits
from services.core.context import Context
from services.core.settings import ApiSettings
from services.ranking import readmodel
from services.web import distillation_routes as web_distillation_routes
from services.web import evidence_routes
from services.web import repetition_routes as web_repetition_routes
from services.web import routes as web_routes
from services.web import shift_routes as web_shift_routes

log = logging.getLogger("knobs.api")


def warm_up(ctx: Context) -> None:
    """Read the log into the ranking's read model in the background, so that the first ranking
    after a start does not pay for it (a second at 10k runs, ten at 100k). A request that comes
    sooner waits for the same read under the model's lock; a log that cannot be read now is
    read by the first request instead."""
    def read() -> None:
        try:
            readmodel.for_context(ctx).version("", "")
        except Exception as exc:  # a warm-up never takes the server down
            log.warning("could not read the log ahead of the first ranking: %s", exc)

    threading.Thread(target=read, name="knobs-warm-up", daemon=True).start()


def create_app(context: Context | None = None, settings: ApiSettings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings or ApiSettings()
        app.state.context = context or Context(neo4j_retry_time_s=app.state.settings.neo4j_retry_time_s)
        warm_up(app.state.context)
        yield
        app.state.context.close()

    app = FastAPI(title="knobs", version="0.1.0", lifespan=lifespan,
                  description="Which knobs matter, with the evidence for every answer.")
    install_handlers(app)
    install_access(app)  # scopes' admin routes, 429s, no tokens in URLs (services/api/guard.py)
    app.add_middleware(RequestLimits)  # 413 for an over-long URL or body: added last, so outermost
    app.include_router(queries_routes.router)
    app.include_router(events_routes.router)
    app.include_router(queries_routes.cypher_router)
    app.include_router(ranking_routes.router)
    app.include_router(access_routes.router)
    app.include_router(shift_routes.router)
    app.include_router(distillation_routes.router)
    app.include_router(repetition_routes.router)
    app.include_router(web_routes.router)  # the dashboard, /ui (services/web)
    app.include_router(web_shift_routes.router)
    app.include_router(web_distillation_routes.router)
    app.include_router(web_repetition_routes.router)
    app.include_router(evidence_routes.router)  # its audit and matrix pages
    return app
