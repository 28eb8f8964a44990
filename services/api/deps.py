"""Dependencies of the routes, as Annotated aliases: the context and the caller's scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from services.access.tokens import Scope
from services.core.context import Context
from services.core.errors import Forbidden
from services.core.settings import ApiSettings
from services.web.auth import authorize, presented


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def _require(needed: Scope) -> Callable[[Request], Scope]:
    def require(request: Request) -> Scope:
        # The dashboard's login cookie lets a browser follow a figure's JSON link. It grants
        # reading only: a write through a cookie is what a cross-site request would forge.
        token, from_cookie = presented(request)
        if from_cookie and token and needed != "read":
            authorize(request, token, "read")  # still counted, limited and refused if revoked
            raise Forbidden(f"the dashboard's login cookie only reads; {needed} needs "
                            f"`Authorization: Bearer <token>` with scope {needed}")
        return authorize(request, token, needed).scope
    return require


ContextDep = Annotated[Context, Depends(get_context)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
ReadScope = Annotated[Scope, Depends(_require("read"))]
AppendScope = Annotated[Scope, Depends(_require("append"))]
WriteScope = AppendScope  # the name routes used before scopes were split
AdminScope = Annotated[Scope, Depends(_require("admin"))]
