"""What every handler shares: deterministic ids, the Cypher that tracks evidence, the Handler type.

How each fact becomes nodes and relationships:

Each handler turns a run of consecutive events of one type into rows for a single
`UNWIND $rows AS row CALL (row) { ... }` statement. The per-row `CALL` subquery matters:
Cypher applies a clause to every row before the next clause runs, so without it two rows
touching the same node (a run recorded twice in one batch) would both read the node's
`positions` before either wrote it, and one position would be lost. A subquery runs whole
for one row before the next row starts.

Rules every statement keeps, so that a replay changes nothing and a rebuild equals the
incremental graph:
- every node and relationship is found by a deterministic `id` (MERGE on a constraint);
- `positions` (sorted) and `event_ids` (in the same order) record the events that made or
  changed it; a position already listed is not added again;
- an event older than the newest one already applied to a node changes nothing but those
  lists (last write wins, by log position, whatever order a replay brings them in);
- shared nodes that no event ever changes after creating them (Experiment, Parameter,
  ParameterValue, Benchmark, Agent, VALUE_OF) list only the event that created them, so a
  hub with a million runs does not carry a million positions: the evidence is on the
  relationships into it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from events.canonical import canonical_json
from events.models.base import Event
from events.store.port import StoredEvent

# Fixed forever: relationship ids are uuid5(RELATIONSHIP_NAMESPACE, canonical JSON of
# [type, start id, end id]). Changing it would change every relationship id.
RELATIONSHIP_NAMESPACE = uuid.UUID("6f1d3c2a-8b4e-5a7f-9c0d-1e2f3a4b5c6d")

Row = dict[str, Any]
Lookup = Callable[[Sequence[int]], list[StoredEvent]]
"""Reads stored events by position (the store's `read_positions`)."""


# ---------------------------------------------------------------------------- ids


def run_node_id(experiment: str, run_id: str) -> str:
    return f"{experiment}/{run_id}"


def score_node_id(experiment: str, run_id: str, benchmark: str) -> str:
    return f"{experiment}/{run_id}/{benchmark}"


def parameter_value_id(name: str, value: Any) -> str:
    return f"{name}={canonical_json(value)}"


def rel_id(rel_type: str, start_id: str, end_id: str) -> str:
    return str(uuid.uuid5(RELATIONSHIP_NAMESPACE, canonical_json([rel_type, start_id, end_id])))


# ------------------------------------------------------------------- Cypher parts


def track(var: str) -> str:
    """Insert row.position (and row.event_id beside it) into `var`'s sorted lists, once."""
    ps, es = f"{var}_ps", f"{var}_es"
    before = f"[i IN range(0, size({ps}) - 1) WHERE {ps}[i] < row.position | {es}[i]]"
    after = f"[i IN range(0, size({ps}) - 1) WHERE {ps}[i] > row.position | {es}[i]]"
    return (
        f"WITH *, coalesce({var}.positions, []) AS {ps}, coalesce({var}.event_ids, []) AS {es}\n"
        f"SET {var}.positions = CASE WHEN row.position IN {ps} THEN {ps} ELSE "
        f"[p IN {ps} WHERE p < row.position] + [row.position] + [p IN {ps} WHERE p > row.position] END,\n"
        f"    {var}.event_ids = CASE WHEN row.position IN {ps} THEN {es} ELSE "
        f"{before} + [row.event_id] + {after} END\n"
    )


def merge_tracked(var: str, pattern: str) -> str:
    """MERGE a node or relationship and record the event on it, inside a subquery of its own.

    `pattern` names `var`; the variables it uses besides `row` are imported by the caller.
    """
    return f"MERGE {pattern}\n{track(var)}"


def created_by(var: str) -> str:
    """ON CREATE clause for shared nodes: only the first event that names it is recorded."""
    return f"{var}.positions = [row.position], {var}.event_ids = [row.event_id]"


def first_mention(var: str) -> str:
    """Keep a shared node's lists on the lowest position that names it, in any order of arrival.

    The projector applies a batch type by type, so a later event of an earlier-applied type
    may create the node first; this makes the result the same as strict log order. It
    writes only when it changes something (hub nodes are matched by nearly every row).
    """
    return (
        f"FOREACH (x IN CASE WHEN row.position < {var}.positions[0] THEN [1] ELSE [] END |\n"
        f"  SET {var}.positions = [row.position], {var}.event_ids = [row.event_id])\n"
    )


def shared(var: str, pattern: str, props: str) -> str:
    """MERGE a shared node, its properties set by the first event that names it."""
    return f"MERGE {pattern}\n  ON CREATE SET {var} += {props}, {created_by(var)}\n  {first_mention(var)}"


def bare(var: str, pattern: str) -> str:
    """MERGE a node another type owns, with empty evidence lists until its own event arrives."""
    return f"MERGE {pattern}\n    ON CREATE SET {var}.positions = [], {var}.event_ids = []"


def newest_head(var: str, pattern: str, *, then: bool = True) -> str:
    """MERGE the row's main node; replace its properties when this event is its newest.

    With `then`, leaves `var` and `row` in scope, filtered to the rows that were the newest,
    for the statements that rewire the node's relationships.
    """
    tail = f"WITH {var}, row WHERE newest\n" if then else ""
    return f"""MERGE {pattern}
WITH {var}, row, coalesce({var}.positions, []) AS head_ps, coalesce({var}.event_ids, []) AS head_es
WITH {var}, row, head_ps, head_es, (size(head_ps) = 0 OR row.position >= head_ps[-1]) AS newest
FOREACH (x IN CASE WHEN newest THEN [1] ELSE [] END | SET {var} = row.props)
SET {var}.positions = CASE WHEN row.position IN head_ps THEN head_ps ELSE
      [p IN head_ps WHERE p < row.position] + [row.position] + [p IN head_ps WHERE p > row.position] END,
    {var}.event_ids = CASE WHEN row.position IN head_ps THEN head_es ELSE
      [i IN range(0, size(head_ps) - 1) WHERE head_ps[i] < row.position | head_es[i]] + [row.event_id] +
      [i IN range(0, size(head_ps) - 1) WHERE head_ps[i] > row.position | head_es[i]] END
{tail}"""


# ------------------------------------------------------------------- rows


def base_row(stored: StoredEvent) -> Row:
    return {"position": stored.position, "event_id": stored.event_id}


@dataclass(frozen=True)
class Handler:
    """How one event type is projected: its statement and how to build its rows."""

    event_type: str
    cypher: str
    build: Callable[[Sequence[tuple[StoredEvent, Event]], Lookup], list[Row]]
    """Rows for a run of consecutive events of this type; `Lookup` reads events they cite."""


Builder = Callable[[Sequence[tuple[StoredEvent, Event]], Lookup], list[Row]]


def simple(fn: Callable[[StoredEvent, Any], Row]) -> Builder:
    def build(batch: Sequence[tuple[StoredEvent, Event]], lookup: Lookup) -> list[Row]:
        return [fn(stored, event) for stored, event in batch]

    return build
