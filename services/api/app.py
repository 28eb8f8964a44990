"""The FastAPI app: `knobs serve`. One router per domain; routes validate, call one service
function and return *Public schemas; status codes come from one exception handler."""

from __future__ import annotations

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
from services.core.context import Context
from services.core.settings import ApiSettings
from services.web import distillation_routes as web_distillation_routes
from services.web import evidence_routes
from services.web import repetition_routes as web_repetition_routes
from services.web import routes as web_routes
from services.web import shift_routes as web_shift_routes


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
