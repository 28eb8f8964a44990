"""Dependencies of the routes, as Annotated aliases: the context and the caller's scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.access.tokens import Scope
from services.core.context import Context
from services.core.errors import Forbidden, Unauthorized
from services.core.settings import ApiSettings
from services.web.auth import presented, token_scope


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def _scope(request: Request) -> Scope:
    # The dashboard's login cookie lets a browser follow a figure's JSON link. It grants reading
    # only: a write through a cookie is what a cross-site request would forge.
    token, from_cookie = presented(request)
    if not token:
        raise Unauthorized("send `Authorization: Bearer <token>`; create one with `knobs token create`")
    scope = token_scope(request, token)
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
