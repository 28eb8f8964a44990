"""Starlette's own HTTP errors on `/v1` (a method a path does not take, a body that is not JSON)
in the API's {"error", "detail"} shape, with an `Allow` header that names every method of the
path: Starlette names only those of the first route whose path matched."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match

API_PREFIX = "/v1/"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this path: asked of the routes themselves, since the
    routers FastAPI includes do not list theirs."""
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith(API_PREFIX):  # the dashboard's redirects and pages keep theirs
        return await http_exception_handler(request, exc)
    headers = dict(exc.headers or {})
    detail = str(exc.detail)
    if exc.status_code == 405:
        allow = allowed_methods(request)
        headers["Allow"] = ", ".join(allow)
        detail = f"{request.method} is not allowed on {request.url.path}; it takes {', '.join(allow)}"
    elif exc.status_code == 400:
        detail = f"{detail}: send the body as UTF-8 JSON with `Content-Type: application/json`"
    name = HTTPStatus(exc.status_code).phrase.replace(" ", "").replace("-", "")
    return JSONResponse({"error": name, "detail": detail}, status_code=exc.status_code, headers=headers)
