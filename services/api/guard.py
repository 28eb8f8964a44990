"""What the app adds around its routes for access: 429 with Retry-After, no tokens in URLs,
and the admin routes. One call from create_app, so the access rules stay in one place."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api import token_routes
from services.core.errors import RateLimited

# Query parameters that would carry a secret into access logs, proxies and browser history.
SECRET_PARAMS = frozenset({"token", "access_token", "api_token", "api_key", "apikey", "key", "auth",
                           "bearer", "password"})


class RefuseTokensInUrls:
    """400 for `?token=...` and the like, before any route sees it: no route accepts a token
    there, and a caller who tried should learn why it is refused rather than see a 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            query = scope["query_string"].decode("latin-1")
            named = sorted({k for k, _ in parse_qsl(query, keep_blank_values=True)
                            if k.lower() in SECRET_PARAMS})
            if named:
                response = JSONResponse({"error": "TokenInUrl", "detail": (
                    f"query parameter {', '.join(named)} looks like a secret, and URLs end up in logs "
                    "and browser history: send `Authorization: Bearer <token>` instead, and if that "
                    "was a real token, revoke it with `knobs token revoke ID`")}, status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_access(app: FastAPI) -> None:
    async def limited(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimited)
        return JSONResponse({"error": "RateLimited", "detail": str(exc)}, status_code=429,
                            headers={"Retry-After": str(exc.retry_after_s)})

    app.add_exception_handler(RateLimited, limited)
    app.add_middleware(RefuseTokensInUrls)
    app.include_router(token_routes.router)
