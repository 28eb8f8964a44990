"""Health of the parts a request needs: the store, Neo4j and the projection's lag."""

from __future__ import annotations

from typing import Any

from services.core.context import Context


def health(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {"store": {"ok": False}, "neo4j": {"ok": False}, "projection": {"lag": None}}
    head = None
    try:
        head = ctx.store().head()
        out["store"] = {"ok": True, "head": head}
    except Exception as exc:  # health reports every failure instead of raising
        out["store"] = {"ok": False, "error": str(exc)}
    try:
        ctx.driver().verify_connectivity()
        out["neo4j"] = {"ok": True}
        if head is not None:
            lag = ctx.projector().lag()
            out["projection"] = {"lag": lag, "position": head - lag}
    except Exception as exc:
        out["neo4j"] = {"ok": False, "error": str(exc)}
    out["status"] = "ok" if out["store"]["ok"] and out["neo4j"]["ok"] else "degraded"
    return out
