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
    408: "The client went away before the query finished; it was stopped in Neo4j.",
    409: "The log moved on: an expected version or an idempotency key disagrees.",
    413: "The URL, the headers, the body or the Cypher text is over its limit (`detail` names it).",
    422: "A parameter or the body is invalid; nothing was done.",
    429: "Too many requests; wait and retry.",
    503: "The event store or Neo4j does not answer; retry after `Retry-After` seconds.",
    504: "The query ran past its time limit (planning included) and was stopped in Neo4j.",
    507: "The disk under the event store is full; nothing of the request was kept.",
}

# What any route behind a token can answer, besides its own errors (413: a URL over its limit).
EVERY = (401, 413, 422, 429, 503)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or a route: each status with the shared body and its meaning."""
    return {code: {"model": ErrorPublic, "description": WHY[code]} for code in codes}
