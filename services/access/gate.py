"""The one check every way in goes through (the API, the dashboard, the MCP server): is the token
known, unexpired, unrevoked, within its rate limit, and of a scope that allows this?

Failed checks are counted per client address and throttled, so guessing tokens is slow;
messages name the token's public id and never the token.
"""

from __future__ import annotations

from pathlib import Path

from services.access.ratelimit import Limiter, retry_after
from services.access.registry import Registry, TokenRefused
from services.access.tokens import Grant, Scope, allows
from services.core.errors import Forbidden, RateLimited, Unauthorized
from services.core.settings import ApiSettings

NO_TOKEN = "send `Authorization: Bearer <token>`; create one with `knobs token create --name NAME`"
WHAT_NEEDS: dict[Scope, str] = {
    "read": "reading",
    "append": "appending (events, rankings, distillations)",
    "admin": "managing tokens",
}
WHAT_MAY: dict[Scope, str] = {
    "read": "is read-only",
    "append": "may read and append, not administer",
    "admin": "may do everything",
}


class Refused(Unauthorized):
    """A 401 with the reason in a word, for a page to show its own text rather than echo input."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Gate:
    def __init__(self, home: Path, settings: ApiSettings, limiter: Limiter | None = None) -> None:
        self.settings = settings
        self.registry = Registry(home, settings.token, settings.read_token)
        self.limiter = limiter or Limiter()

    def authorize(self, token: str, needed: Scope, client: str) -> Grant:
        """The caller's grant, or Unauthorized (401), Forbidden (403) or RateLimited (429)."""
        s = self.settings
        if not token:
            raise Refused(NO_TOKEN, "missing")
        failures = f"address:{client}"
        wait = self.limiter.wait(failures, s.failed_auth_per_s, s.failed_auth_burst)
        if wait:
            raise RateLimited(
                f"too many failed token checks from {client} (limit {s.failed_auth_per_s:g} per second, "
                f"burst {s.failed_auth_burst}); retry after {retry_after(wait)} s with a valid token",
                retry_after(wait))
        try:
            grant = self.registry.check(token)
        except TokenRefused as exc:
            self.limiter.take(failures, s.failed_auth_per_s, s.failed_auth_burst)
            raise Refused(str(exc), exc.reason) from None  # no chained traceback that might carry input
        rate = grant.rate_per_s or s.rate_per_s
        burst = grant.burst or s.burst
        wait = self.limiter.take(f"token:{grant.id}", rate, burst)
        if wait:
            raise RateLimited(
                f"token {grant.id} ({grant.name!r}) is over its limit of {rate:g} requests per second "
                f"(burst {burst}); retry after {retry_after(wait)} s, or give each client its own token",
                retry_after(wait))
        if not allows(grant.scope, needed):
            raise Forbidden(
                f"this token {WHAT_MAY[grant.scope]} (scope {grant.scope}); {WHAT_NEEDS[needed]} needs "
                f"scope {needed}: `knobs token create --name NAME --scope {needed}`")
        return grant
