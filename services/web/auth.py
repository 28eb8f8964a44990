"""Who may see the pages: the API's bearer tokens, kept after a login form in a cookie
(HttpOnly, so no script can read it; SameSite=Strict, so no other site's page can send it).
A read-only token sees every page; pages only read, and the one form that writes (rank now)
needs a write token."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from services.access.tokens import Scope, scope_of
from services.core.context import Context
from services.core.settings import ApiSettings

COOKIE = "knobs_token"
LOGIN = "/ui/login"


def page_context(request: Request) -> Context:
    """The Context the serving process opened (the store, the driver, the projector)."""
    ctx: Context = request.app.state.context
    return ctx


def token_scope(request: Request, token: str) -> Scope | None:
    ctx: Context = request.app.state.context
    settings: ApiSettings = request.app.state.settings
    return scope_of(ctx.home, token, settings.token, settings.read_token) if token else None


def presented(request: Request) -> tuple[str, bool]:
    """The bearer header's token, else the login cookie's; and whether it came from the cookie.
    One reading for the pages and for `/v1` (services/api/deps.py), which lets a cookie only read."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), False
    return request.cookies.get(COOKIE, "").strip(), True


def presented_token(request: Request) -> str:
    return presented(request)[0]


def safe_next(target: str | None) -> str:
    """Only our own pages: an absolute or scheme-relative URL would make the form an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def require_page(request: Request) -> Scope:
    """The caller's scope, or a redirect to the login form that comes back here."""
    scope = token_scope(request, presented_token(request))
    if scope is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(status_code=303, headers={"Location": f"{LOGIN}?next={quote(back)}"})
    return scope


PageScope = Annotated[Scope, Depends(require_page)]
