"""Ask the graph a named question: bind a named query's parameters and run it through the gate.

The API's `GET /v1/queries/...` routes and the CLI's `knobs knobs|influence|rankings|underused`
share this: a query's header ("Parameters: $name (...), ...") says which parameters it takes
and which are optional (their description says "optional": they default to null), so a missing
one is named in a clear error instead of Neo4j's. Named queries run through the same read-only
gate, row limit and timeout as user Cypher: the files are ours, but callers choose the values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j.exceptions import Neo4jError

from graph.errors import QueryFailed, UnknownQuery
from graph.queries import NamedQuery, list_queries, load_query
from graph.readonly import run_readonly
from services.core.context import Context
from services.core.errors import BadInput, NotFound
from services.core.settings import ApiSettings

JSON_COLUMNS = frozenset({
    "values", "knee", "knee_cost", "per_cost", "flags", "indices", "s2", "noise", "settings",
    "baseline", "params_json", "correlations", "grad_norm_groups",
})
"""Columns (and keys of map cells) that named queries return as JSON text: Neo4j properties
cannot hold maps, so the projector stores them as canonical JSON."""


class QueryParameterError(BadInput):
    """A named query was given too few parameters, or ones it does not take; nothing ran."""

    status_code = 400


@dataclass(frozen=True)
class QueryParameter:
    name: str
    required: bool
    description: str


@dataclass(frozen=True)
class Answer:
    query: str
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool

    def public(self) -> dict[str, Any]:
        return {"query": self.query, "columns": self.columns, "rows": self.rows,
                "truncated": self.truncated}


_SECTION = re.compile(r"Parameters:(.*?)(?:\n\s*Columns:|\Z)", re.DOTALL)
_PARAM = re.compile(r"\$([A-Za-z_]\w*)\s*(?:\(([^()]*)\))?")


def parameters_of(query: NamedQuery) -> list[QueryParameter]:
    """The parameters a query's header declares, in order; "optional" in a description makes one optional."""
    section = _SECTION.search(query.description)
    if section is None:
        return []
    text = " ".join(section.group(1).split())
    return [
        QueryParameter(name=m.group(1), required="optional" not in (m.group(2) or "").lower(),
                       description=(m.group(2) or "").strip())
        for m in _PARAM.finditer(text)
    ]


def bind(query: NamedQuery, given: Mapping[str, Any]) -> dict[str, Any]:
    """`given` checked against the header, with optional parameters left out set to null."""
    declared = parameters_of(query)
    names = {p.name for p in declared}
    # An empty value (`?benchmark=` in a URL) means "not given": no name is the empty string.
    given = {k: None if v == "" else v for k, v in given.items()}
    usage = _usage(query.name, declared)
    unknown = sorted(set(given) - names)
    if unknown:
        raise QueryParameterError(
            f"query {query.name} takes no parameter {', '.join(unknown)}; {usage}"
        )
    missing = [p.name for p in declared if p.required and given.get(p.name) is None]
    if missing:
        raise QueryParameterError(
            f"query {query.name} needs parameter{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; {usage}"
        )
    return {p.name: given.get(p.name) for p in declared}


def _usage(name: str, declared: list[QueryParameter]) -> str:
    if not declared:
        return f"{name} takes no parameters"
    return "it takes " + ", ".join(
        f"{p.name}{'' if p.required else ' (optional)'}" for p in declared
    ) + " (see `knobs queries` or GET /v1/queries)"


def catalogue() -> list[dict[str, Any]]:
    """Every named query: name, one-line summary, full description and parameters."""
    return [
        {
            "name": q.name,
            "summary": q.description.splitlines()[0] if q.description else "",
            "description": q.description,
            "parameters": [vars(p) for p in parameters_of(q)],
        }
        for q in list_queries()
    ]


def ask(
    ctx: Context,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    decode: bool = False,
    row_limit: int | None = None,
    timeout_s: float | None = None,
) -> Answer:
    """Run the named query `name` read-only; rows as {column: value}.

    `decode` turns the JSON text columns (JSON_COLUMNS, also inside map cells) into objects.
    Limits default to KNOBS_API_CYPHER_ROW_LIMIT / _TIMEOUT_S. Raises NotFound for an unknown
    name, QueryParameterError for missing or unknown parameters.
    """
    try:
        query = load_query(name)
    except UnknownQuery as exc:
        raise NotFound(str(exc)) from exc
    bound = bind(query, params or {})
    settings = ApiSettings()
    try:
        result = run_readonly(ctx.driver(), query.cypher, bound,
                              timeout_s=timeout_s or settings.cypher_timeout_s,
                              row_limit=row_limit or settings.cypher_row_limit,
                              max_chars=settings.cypher_max_chars)
    except QueryFailed as exc:
        cause = exc.__cause__
        if isinstance(cause, Neo4jError) and cause.code and "ParameterMissing" in cause.code:
            # The header and the Cypher disagree: say which, rather than pass Neo4j's words on.
            raise QueryParameterError(
                f"query {name} needs a parameter its header does not declare ({cause.message}); "
                f"fix the header of graph/queries/{name}.cypher"
            ) from exc
        raise
    rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    if decode:
        rows = [decoded(row) for row in rows]
    return Answer(query=name, columns=list(result.columns), rows=rows, truncated=result.truncated)


def decoded(value: Any, key: str | None = None) -> Any:
    """`value` with JSON text under JSON_COLUMNS keys parsed, recursively through maps and lists."""
    if isinstance(value, Mapping):
        return {k: decoded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [decoded(v) for v in value]
    if key in JSON_COLUMNS and isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        # Only structured values: a plain string that happens to parse as a number stays text.
        return parsed if isinstance(parsed, dict | list) else value
    return value


def run_named(ctx: Context, name: str, **params: Any) -> list[dict[str, Any]]:
    """A named query for our own callers (ranking, audit, export): no gate, no row limit.

    The parameters come from our code, not from a person, and a ranking reads every run.
    """
    query = load_query(name)
    records, _, _ = ctx.driver().execute_query(
        query.cypher, params, routing_=neo4j.RoutingControl.READ
    )
    # dict(record), not record.data(): our named queries return plain values, lists and maps,
    # and data() walks every nested value again (2 s of a 6 s ranking at 10k runs).
    return [dict(record) for record in records]
