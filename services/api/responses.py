"""The error answers each route declares in the OpenAPI schema, so that a client (and
schemathesis) knows every status it can get: all share one body, ErrorPublic, as errors.py
writes it."""

from __future__ import annotations

from typing import Any

from services.api.schemas import ErrorPublic

WHY = {
    400: "A body that is not JSON, or a query parameter or Cypher text the graph cannot use.",
    401: "No token, or one the server does not know: send `Authorization: Bearer <token>`.",
    403: "The token may not do this (a read-only token writing, or Cypher that would write).",
    404: "No such thing in the log or the graph (`detail` says where to look).",
    409: "The log moved on: an expected version or an idempotency key disagrees.",
    413: "The request body is larger than the server accepts.",
    422: "A parameter or the body is invalid; nothing was done.",
    429: "Too many requests; wait and retry.",
    503: "The event store or Neo4j does not answer; retry when `/v1/health` says ok.",
}

# What any route behind a token can answer, besides its own errors.
EVERY = (401, 422, 429, 503)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or a route: each status with the shared body and its meaning."""
    return {code: {"model": ErrorPublic, "description": WHY[code]} for code in codes}
