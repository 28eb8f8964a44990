"""Run the named, read-only queries of graph/queries and hand back plain dicts."""

from __future__ import annotations

from typing import Any

import neo4j

from graph.queries import load_query
from services.context import Context


def run_named(ctx: Context, name: str, **params: Any) -> list[dict[str, Any]]:
    query = load_query(name)
    records, _, _ = ctx.driver().execute_query(
        query.cypher, params, routing_=neo4j.RoutingControl.READ
    )
    return [record.data() for record in records]
