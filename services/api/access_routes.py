"""`/v1/health`: whether the store and Neo4j answer, and how far the projection lags (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.access.health import health
from services.api.deps import ContextDep
from services.api.errors import headers_for
from services.api.responses import errors
from services.api.schemas import HealthPublic

router = APIRouter(prefix="/v1")


@router.get("/health", response_model=HealthPublic, responses={
    503: {"model": HealthPublic, "description": "The store or Neo4j does not answer; the body says which."},
    **errors(429)})
def get_health(ctx: ContextDep) -> JSONResponse:
    body = health(ctx)
    status = 200 if body["status"] == "ok" else 503
    return JSONResponse(body, status_code=status, headers=headers_for(status))
