"""Dependencies of the routes, as Annotated aliases: the context and the caller's scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.access.tokens import Scope, scope_of
from services.core.context import Context
from services.core.errors import Forbidden, Unauthorized
from services.core.settings import ApiSettings
from services.web.auth import COOKIE


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def _scope(request: Request) -> Scope:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    from_cookie = False
    if scheme.lower() != "bearer" or not token.strip():
        # The dashboard's login cookie lets a browser follow a figure's JSON link. It grants
        # reading only: a write through a cookie is what a cross-site request would forge.
        token, from_cookie = request.cookies.get(COOKIE, ""), True
        if not token.strip():
            raise Unauthorized("send `Authorization: Bearer <token>`; create one with `knobs token create`")
    settings = get_settings(request)
    scope = scope_of(get_context(request).home, token.strip(), settings.token, settings.read_token)
    if scope is None:
        raise Unauthorized("unknown token; create one with `knobs token create`")
    return "read" if from_cookie else scope


def require_read(request: Request) -> Scope:
    return _scope(request)


def require_write(request: Request) -> Scope:
    scope = _scope(request)
    if scope != "write":
        raise Forbidden("this token is read-only; appending events needs a write token")
    return scope


ContextDep = Annotated[Context, Depends(get_context)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
ReadScope = Annotated[Scope, Depends(require_read)]
WriteScope = Annotated[Scope, Depends(require_write)]
