"""One error tree for services/: every message says what is wrong and what to do next.

The CLI prints these and exits non-zero; the API maps them to status codes in one handler.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors services/ raises on purpose."""

    status_code = 400


class BadInput(ServiceError):
    """A file, argument or body is malformed; nothing was written."""

    status_code = 422


class NotFound(ServiceError):
    status_code = 404


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class Conflict(ServiceError):
    status_code = 409


class Unavailable(ServiceError):
    """A backing service (store, Neo4j) cannot be reached."""

    status_code = 503


class RateLimited(ServiceError):
    """Too many requests for one token or one address; `retry_after_s` says when to try again."""

    status_code = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
