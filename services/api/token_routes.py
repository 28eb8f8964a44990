"""`/v1/tokens`: the admin scope's routes; list the tokens (never a secret) and revoke one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.access import tokens
from services.api.deps import AdminScope, ContextDep
from services.api.responses import EVERY, errors

router = APIRouter(prefix="/v1", tags=["tokens"], responses=errors(*EVERY, 403))


def public(entry: tokens.Entry, used: dict[str, str]) -> dict[str, Any]:
    return {"id": entry.id, "name": entry.name, "scope": entry.scope, "created": entry.created,
            "expires": entry.expires, "last_used": used.get(entry.id), "revoked": entry.revoked,
            "rate_per_s": entry.rate_per_s, "burst": entry.burst}


@router.get("/tokens")
def get_tokens(ctx: ContextDep, _: AdminScope) -> list[dict[str, Any]]:
    used = tokens.last_used(ctx.home)
    return [public(e, used) for e in tokens.list_tokens(ctx.home)]


@router.post("/tokens/{id_or_name}/revoke", responses=errors(400, 404))
def post_revoke(id_or_name: str, ctx: ContextDep, _: AdminScope) -> dict[str, Any]:
    return public(tokens.revoke(ctx.home, id_or_name), tokens.last_used(ctx.home))
