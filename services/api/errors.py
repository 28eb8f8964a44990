"""The one place where errors become HTTP status codes."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from events.errors import (
    ConcurrencyConflict,
    EventsError,
    IdempotencyMismatch,
    InvalidEvent,
    StoreFull,
    StoreUnavailable,
    UnknownEventType,
)
from graph.errors import GraphError, GraphUnavailable, QueryRefused
from graph.readonly import QueryTimedOut, QueryTooLong
from services.api.http_errors import http_error
from services.core.errors import ServiceError

EVENTS_STATUS: list[tuple[type[EventsError], int]] = [
    (ConcurrencyConflict, 409),
    (IdempotencyMismatch, 409),
    (InvalidEvent, 422),
    (UnknownEventType, 422),
    (StoreFull, 507),  # before its base class: a full disk needs a person, not a retry
    (StoreUnavailable, 503),
]

RETRY_AFTER_S = 5
"""What a 503 tells a client to wait (seconds) before retrying: a store or Neo4j that is
restarting is usually back within that."""


def headers_for(status: int) -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}


def status_for(exc: Exception) -> int:
    if isinstance(exc, ServiceError):
        return exc.status_code
    if isinstance(exc, EventsError):
        return next((code for cls, code in EVENTS_STATUS if isinstance(exc, cls)), 500)
    if isinstance(exc, QueryTooLong):
        return 413
    if isinstance(exc, QueryRefused):
        return 403
    if isinstance(exc, QueryTimedOut):
        return 504
    if isinstance(exc, GraphUnavailable):
        return 503
    if isinstance(exc, GraphError):
        return 400
    return 500


def install_handlers(app: FastAPI) -> None:
    async def known(_: Request, exc: Exception) -> JSONResponse:
        status = status_for(exc)
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=status,
                            headers=headers_for(status))

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
        return JSONResponse(
            {"error": "BadRequestBody", "detail": "the request body is invalid; nothing was done: "
             + "; ".join(problems[:20])},
            status_code=422,
        )

    for cls in (ServiceError, EventsError, GraphError):
        app.add_exception_handler(cls, known)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
