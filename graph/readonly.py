"""The read-only gate: run a caller's Cypher only if Neo4j's own planner says it cannot write.

Layers, each enough on its own for the cases it covers:
1. text: one statement, no EXPLAIN/PROFILE or CYPHER prefix, no LOAD CSV, no CALL of a
   procedure outside the allowlist (comments and string literals are ignored);
2. the plan: `EXPLAIN` the query (nothing runs) and refuse any query type but "r"
   (pure read), any LoadCSV operator, any ProcedureCall outside the allowlist, the
   transaction/settings commands that plan as reads (TERMINATE TRANSACTIONS does!), and
   any operator aimed at another database;
3. the transaction: the query runs in a READ transaction, which Neo4j itself refuses to
   write in, with a server-side timeout and a row limit.

Before any of them, a length limit: a query longer than `max_chars` is refused before the
text check reads it or Neo4j plans it (planning a 4 MB query kept Neo4j busy for minutes).
One deadline covers planning and running: the EXPLAIN and the query each run in a
transaction whose Neo4j-side timeout is what is left of `timeout_s`. Both transactions carry
metadata {"knobs": "cypher-gate", "request": <request id>}, so that graph/transactions.py can
find and terminate them when the caller gives up or goes away.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j.exceptions import Neo4jError
from neo4j.graph import Node, Path, Relationship

from graph.dump import plain
from graph.errors import QueryFailed, QueryRefused, translated

DEFAULT_ALLOWED: frozenset[str] = frozenset({
    "db.labels",
    "db.relationshipTypes",
    "db.propertyKeys",
    "db.schema.visualization",
    "db.schema.nodeTypeProperties",
    "db.schema.relTypeProperties",
})
"""Procedures a read-only query may CALL: schema introspection, nothing else."""

# Commands that plan as query type "r" but are not reads of the graph.
_ALLOWED_COMMANDS = frozenset({"ShowIndexes", "ShowConstraints", "ShowProcedures", "ShowFunctions"})

_READ_ONLY = "knobs' Cypher endpoint is read-only"

DEFAULT_MAX_CHARS = 65_536
"""The longest query the gate reads (KNOBS_API_CYPHER_MAX_CHARS in the services)."""

GATE_TAG = "cypher-gate"
"""The value of metaData.knobs on every transaction the gate opens."""


class QueryTooLong(QueryRefused):
    """The query is longer than the gate's length limit; nothing was sent to Neo4j."""


class QueryTimedOut(QueryFailed):
    """The query ran longer than its time limit and was stopped by Neo4j."""


@dataclass(frozen=True)
class ReadOnlyResult:
    columns: list[str]
    rows: list[list[Any]]
    """JSON-able cells: nodes → {"labels", "properties"}, relationships → {"type",
    "properties"}, paths → lists alternating nodes and relationships."""
    truncated: bool
    """True when the query had more rows than the row limit; `rows` holds the first ones."""


def run_readonly(
    driver: neo4j.Driver,
    cypher: str,
    params: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = 10.0,
    row_limit: int = 1000,
    allowed_procedures: Iterable[str] = DEFAULT_ALLOWED,
    database: str = "neo4j",
    max_chars: int = DEFAULT_MAX_CHARS,
    request_id: str | None = None,
) -> ReadOnlyResult:
    """Run `cypher` if it is a pure read; raise QueryRefused (before running it) otherwise.

    `timeout_s` bounds planning and running together. `request_id` tags the transactions
    (see graph/transactions.py); a fresh one is made when none is given. Raises QueryTooLong
    (a QueryRefused) over `max_chars`, QueryFailed for Neo4j's errors (syntax, missing
    parameters), QueryTimedOut when it runs past `timeout_s`, GraphUnavailable when Neo4j
    cannot be reached.
    """
    if timeout_s <= 0 or row_limit < 1 or max_chars < 1:
        raise ValueError("timeout_s must be positive, row_limit and max_chars at least 1")
    check_length(cypher, max_chars)
    deadline = _Deadline(timeout_s, {"knobs": GATE_TAG, "request": request_id or uuid.uuid4().hex})
    allowed = frozenset(allowed_procedures)
    statement = check_text(cypher, allowed)
    parameters = dict(params or {})
    summary = _explain(driver, statement, parameters, database, deadline)
    check_plan(summary.query_type, summary.plan, allowed, database)
    return _execute(driver, statement, parameters, deadline, row_limit, database)


def check_length(cypher: object, max_chars: int = DEFAULT_MAX_CHARS) -> None:
    """Refuse a query over `max_chars` characters before anything reads it."""
    if isinstance(cypher, str) and len(cypher) > max_chars:
        raise QueryTooLong(
            f"the query is {len(cypher):,} characters long, over the limit of {max_chars:,} "
            "(KNOBS_API_CYPHER_MAX_CHARS): pass large values as parameters rather than literals, "
            "or raise KNOBS_API_CYPHER_MAX_CHARS"
        )


class _Deadline:
    """One time limit for planning and running, and the metadata both transactions carry."""

    def __init__(self, timeout_s: float, metadata: dict[str, str]) -> None:
        self.timeout_s = timeout_s
        self.metadata = metadata
        self._ends = time.monotonic() + timeout_s

    def left(self) -> float:
        """Seconds left, never below a millisecond (Neo4j reads 0 as "no timeout")."""
        return max(self._ends - time.monotonic(), 0.001)

    def timed_out(self) -> QueryTimedOut:
        return QueryTimedOut(
            f"the query ran past its time limit of {self.timeout_s:g} s (planning included) and "
            "was stopped: narrow it (a LIMIT, a label, an indexed property) or ask for a longer "
            "timeout"
        )


def _read_transaction(
    driver: neo4j.Driver, database: str, deadline: _Deadline
) -> tuple[neo4j.Session, neo4j.Transaction]:
    """A session and an explicit READ transaction under what is left of the deadline.

    Explicit, not `execute_read`: a managed transaction is retried after a connection error,
    and a retried runaway query is twice the load the time limit was meant to stop.
    """
    session = driver.session(database=database, default_access_mode=neo4j.READ_ACCESS)
    try:
        return session, session.begin_transaction(metadata=deadline.metadata, timeout=deadline.left())
    except BaseException:
        session.close()
        raise


def _timed_out(exc: QueryFailed) -> Neo4jError | None:
    cause = exc.__cause__
    if isinstance(cause, Neo4jError) and cause.code and "TimedOut" in cause.code:
        return cause
    return None


# ----------------------------------------------------------------------- text


def _code_only(cypher: str) -> str:
    """`cypher` with comments and string-literal contents blanked to spaces (same length).

    Backtick-quoted names keep their letters, digits, dots and underscores (a procedure may
    be named with them); anything else inside them becomes `_`, so it counts as neither a
    semicolon nor a comment.
    """
    out = list(cypher)
    i, n = 0, len(cypher)
    while i < n:
        ch = cypher[i]
        if ch in "'\"":
            j = i + 1
            while j < n and cypher[j] != ch:
                if cypher[j] == "\\":
                    out[j] = " "
                    j += 1
                if j < n:
                    out[j] = " "
                j += 1
            i = j + 1
        elif ch == "`":
            j = cypher.find("`", i + 1)
            j = n if j < 0 else j
            for k in range(i + 1, j):
                if not (cypher[k].isalnum() or cypher[k] in "._"):
                    out[k] = "_"
            i = j + 1
        elif cypher.startswith("//", i):
            j = cypher.find("\n", i)
            j = n if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
        elif cypher.startswith("/*", i):
            j = cypher.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out[i:j] = " " * (j - i)
            i = j
        else:
            i += 1
    return "".join(out)


_NAME_PART = r"(?:`[^`]*`|[A-Za-z_][\w$]*)"
# After CALL, any name is a procedure (subqueries open with `{` or `(`).
_CALLED = re.compile(rf"\bCALL\s+({_NAME_PART}(?:\s*\.\s*{_NAME_PART})*)", re.IGNORECASE)
_LOAD_CSV = re.compile(r"\bLOAD\s+CSV\b", re.IGNORECASE)
_FIRST_WORD = re.compile(r"\s*([A-Za-z]+)")


def _procedure_name(text: str) -> str:
    return ".".join(part.strip().strip("`") for part in text.split("."))


def check_text(cypher: str, allowed: frozenset[str] = DEFAULT_ALLOWED) -> str:
    """Refuse by reading the text; returns the single statement (a trailing `;` removed)."""
    if not isinstance(cypher, str) or not cypher.strip():
        raise QueryRefused("empty query: send one read-only Cypher statement")
    code = _code_only(cypher)
    if not code.strip():
        raise QueryRefused("the query is only comments: send one read-only Cypher statement")
    check_shape(code)
    semicolons = [i for i, ch in enumerate(code) if ch == ";"]
    if semicolons:
        first = semicolons[0]
        if code[first + 1:].strip(" \t\r\n;"):
            raise QueryRefused(
                "more than one statement: send one Cypher statement per request "
                "(only a single trailing ';' is accepted)"
            )
        cypher, code = cypher[:first], code[:first]
    first_word = _FIRST_WORD.match(code)
    keyword = first_word.group(1).upper() if first_word else ""
    if keyword in ("EXPLAIN", "PROFILE"):
        raise QueryRefused(
            f"{keyword} queries are not accepted: the gate explains every query itself; "
            f"send the query without the {keyword} prefix"
        )
    if keyword == "CYPHER":
        raise QueryRefused(
            "the CYPHER options prefix is not accepted (it may hide EXPLAIN or PROFILE): "
            "send the query without it"
        )
    if _LOAD_CSV.search(code):
        raise QueryRefused(
            f"LOAD CSV is not allowed: it reads files and URLs, not the graph; {_READ_ONLY}"
        )
    for match in _CALLED.finditer(code):
        name = _procedure_name(match.group(1))
        if name not in allowed:
            raise QueryRefused(_procedure_refusal(name, allowed))
    return cypher


MAX_DEPTH = 48
"""Deepest nesting of brackets and CASE ... END the gate lets Neo4j parse. Neo4j 5.26 parses
recursively: 300 nested lists (608 characters) overflowed its stack, and the bolt connection
then hung with the transaction still listed for minutes, out of reach of TERMINATE."""
MAX_BRACES = 8
"""Deepest nesting of `{ }` (subqueries, maps). Planning time climbs steeply with nested
subqueries: 14 nested EXISTS took ~2 s to plan, 48 ran on for over ten minutes after their
transaction had timed out (Neo4j 5.26 on two busy cores)."""
MAX_OPERATORS = 1000
"""Most operators in one query. Each binary operator deepens the expression tree Neo4j
walks: 1,000 `+` plan in 0.2 s, 5,000 in 7 s, 15,000 overflow its stack."""

_OPERATOR = re.compile(r"<>|<=|>=|=~|[-+*/%^=<>]|\b(?:AND|OR|XOR|NOT)\b", re.IGNORECASE)
_NESTING = re.compile(r"[(\[{]|[)\]}]|\b(?:CASE|END)\b", re.IGNORECASE)
_QUOTED_NAME = re.compile(r"`[^`]*`")


def check_shape(code: str) -> None:
    """Refuse a query nested deeper than MAX_DEPTH (MAX_BRACES for `{ }`) or with more than
    MAX_OPERATORS operators: shapes that keep Neo4j planning past any timeout.

    `code` is the query with comments and strings blanked (`_code_only`); quoted names count
    as plain names, so that a name like `END` cannot hide nesting.
    """
    names_blanked = _QUOTED_NAME.sub("_", code)
    depth = deepest = braces = deepest_braces = 0
    for match in _NESTING.finditer(names_blanked):
        token = match.group(0)
        depth += 1 if token in "([{" or token.upper() == "CASE" else -1
        braces += 1 if token == "{" else -1 if token == "}" else 0
        deepest, deepest_braces = max(deepest, depth), max(deepest_braces, braces)
    if deepest_braces > MAX_BRACES:
        raise QueryRefused(
            f"the query nests {deepest_braces} levels of {{ }} (subqueries, maps), over the limit of "
            f"{MAX_BRACES}: Neo4j's planning time climbs steeply with nested subqueries; flatten it "
            "(WITH steps, one subquery after another)"
        )
    if deepest > MAX_DEPTH:
        raise QueryRefused(
            f"the query nests {deepest} levels deep (brackets and CASE), over the limit of {MAX_DEPTH}: "
            "Neo4j's parser can overflow on deep nesting; flatten it (WITH steps, UNWIND, parameters)"
        )
    operators = sum(1 for _ in _OPERATOR.finditer(names_blanked))
    if operators > MAX_OPERATORS:
        raise QueryRefused(
            f"the query has {operators:,} operators, over the limit of {MAX_OPERATORS:,}: long chains "
            "make Neo4j plan for minutes; pass values as a list parameter (`x IN $values`) instead"
        )


def _procedure_refusal(name: str, allowed: frozenset[str]) -> str:
    return (
        f"procedure {name} is not allowed: {_READ_ONLY} and calls only "
        f"{', '.join(sorted(allowed)) or 'no procedures'}"
    )


# ----------------------------------------------------------------------- plan


def _explain(
    driver: neo4j.Driver, cypher: str, params: dict[str, Any], database: str,
    deadline: _Deadline | None = None,
) -> neo4j.ResultSummary:
    deadline = deadline or _Deadline(10.0, {"knobs": GATE_TAG, "request": uuid.uuid4().hex})
    try:
        with translated("planning the query"):
            session, tx = _read_transaction(driver, database, deadline)
            with session, tx:
                # Nothing runs: EXPLAIN only plans, under the same deadline as the query.
                return tx.run("EXPLAIN " + cypher, params).consume()
    except QueryFailed as exc:
        stopped = _timed_out(exc)
        if stopped is not None:
            raise deadline.timed_out() from stopped
        cause = exc.__cause__
        code = cause.code if isinstance(cause, Neo4jError) else None
        if code and ("UnsupportedAdministrationCommand" in code or "NotSystemDatabase" in code):
            # Neo4j would not even plan it; it is an administration command all the same.
            raise QueryRefused(f"administration commands are not allowed; {_READ_ONLY}") from cause
        raise


def check_plan(
    query_type: str | None,
    plan: Mapping[str, Any] | None,
    allowed: frozenset[str] = DEFAULT_ALLOWED,
    database: str = "neo4j",
) -> None:
    """Refuse by Neo4j's own reading of the query: its type and its plan's operators."""
    if query_type != "r":
        kind = {
            "w": "write queries",
            "rw": "write queries",
            "s": "schema and administration commands",
        }.get(str(query_type), "queries that are not pure reads")
        raise QueryRefused(f"{kind} are not allowed: query type is {query_type!r}; {_READ_ONLY}")
    if plan is None:
        raise QueryRefused(f"Neo4j returned no plan for the query, so it cannot be checked; {_READ_ONLY}")
    stack: list[Mapping[str, Any]] = [plan]
    while stack:
        operator = stack.pop()
        stack.extend(operator.get("children") or [])
        op_type = str(operator.get("operatorType", ""))
        name, _, target = op_type.partition("@")
        if target and target != database:
            raise QueryRefused(
                f"the query reaches database {target!r}: only {database!r}, knobs' graph, may be read"
            )
        details = str((operator.get("args") or {}).get("Details", ""))
        if name == "LoadCSV":
            raise QueryRefused(
                f"LOAD CSV is not allowed: it reads files and URLs, not the graph; {_READ_ONLY}"
            )
        if name == "ProcedureCall":
            called = re.match(r"\s*([^(\s]+)\s*\(", details)
            procedure = _procedure_name(called.group(1)) if called else details
            if procedure not in allowed:
                raise QueryRefused(_procedure_refusal(procedure, allowed))
        elif name.startswith(("Show", "Terminate")) and name not in _ALLOWED_COMMANDS:
            raise QueryRefused(
                f"the {name} command is not allowed: {_READ_ONLY} and reads the graph only "
                f"(allowed commands: {', '.join(sorted(_ALLOWED_COMMANDS))})"
            )
        elif "Administration" in name or "SystemProcedure" in name:
            raise QueryRefused(f"administration commands are not allowed; {_READ_ONLY}")


# ----------------------------------------------------------------------- run


def _execute(
    driver: neo4j.Driver,
    cypher: str,
    params: dict[str, Any],
    deadline: _Deadline,
    row_limit: int,
    database: str,
) -> ReadOnlyResult:
    def read(tx: neo4j.Transaction) -> ReadOnlyResult:
        result = tx.run(cypher, params)
        columns = list(result.keys())
        rows: list[list[Any]] = []
        for record in result:
            if len(rows) == row_limit:
                return ReadOnlyResult(columns, rows, truncated=True)
            rows.append([jsonable(value) for value in record.values()])
        return ReadOnlyResult(columns, rows, truncated=False)

    try:
        # The timeout travels with the transaction and Neo4j enforces it server-side.
        with translated("running the query"):
            session, tx = _read_transaction(driver, database, deadline)
            with session, tx:
                return read(tx)
    except QueryFailed as exc:
        stopped = _timed_out(exc)
        if stopped is not None:
            raise deadline.timed_out() from stopped
        cause = exc.__cause__
        code = cause.code if isinstance(cause, Neo4jError) else None
        if code and "AccessMode" in code:
            raise QueryRefused(f"the query tried to write: {_READ_ONLY}") from cause
        raise


def jsonable(value: Any) -> Any:
    """A JSON-able form of one result cell."""
    if isinstance(value, Node):
        return {"labels": sorted(value.labels), "properties": plain(dict(value.items()))}
    if isinstance(value, Relationship):
        return {"type": value.type, "properties": plain(dict(value.items()))}
    if isinstance(value, Path):
        cells: list[Any] = [jsonable(value.nodes[0])]
        for rel, node in zip(value.relationships, value.nodes[1:], strict=True):
            cells.append(jsonable(rel))
            cells.append(jsonable(node))
        return cells
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return plain(value)
