"""Who may see the pages: the API's bearer tokens, kept after a login form in a cookie
(HttpOnly, so no script can read it; SameSite=Strict, so no other site's page can send it).
A read-only token sees every page; pages only read, and the one form that writes (rank now)
needs an append token. Pages and `/v1` ask the same gate (services/access/gate.py): scope,
expiry, revocation and rate limits are one rule whichever way a token comes in."""

from __future__ import annotations

import threading
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from services.access.gate import Gate, Refused
from services.access.tokens import Grant, Scope
from services.core.context import Context
from services.core.settings import ApiSettings

COOKIE = "knobs_token"
LOGIN = "/ui/login"


def page_context(request: Request) -> Context:
    """The Context the serving process opened (the store, the driver, the projector)."""
    ctx: Context = request.app.state.context
    return ctx


_gate_lock = threading.Lock()


def gate(request: Request) -> Gate:
    """The serving app's one gate (its rate limits are per process), made on first use."""
    state = request.app.state
    with _gate_lock:
        if getattr(state, "gate", None) is None:
            ctx: Context = state.context
            settings: ApiSettings = state.settings
            state.gate = Gate(ctx.home, settings)
    made: Gate = state.gate
    return made


def client_of(request: Request) -> str:
    # The socket's peer, not X-Forwarded-For: a header any guesser could vary per request.
    return request.client.host if request.client else "unknown"


def authorize(request: Request, token: str, needed: Scope) -> Grant:
    return gate(request).authorize(token, needed, client_of(request))


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
    """The caller's scope, or a redirect to the login form that comes back here. The form says
    why in its own words (`why` is a word: a message in a URL could be anyone's).
    A rate-limited caller gets the 429 itself: a login form would not help."""
    try:
        return authorize(request, presented_token(request), "read").scope
    except Refused as exc:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        why = "" if exc.reason == "missing" else f"&why={exc.reason}"
        raise HTTPException(status_code=303,
                            headers={"Location": f"{LOGIN}?next={quote(back)}{why}"}) from None


PageScope = Annotated[Scope, Depends(require_page)]
