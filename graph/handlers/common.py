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

Two shortcuts the projector takes, each giving exactly what the rules above give:
- hubs first: before a batch's per-type statements, the hubs its runs, scores and rankings
  name are MERGEd once each (`HUB_STATEMENTS`), with the lowest position in the batch that
  names them; the per-row statements then find them made, and their own MERGE and
  first_mention change nothing. first_mention keeps the lowest position whatever the
  order, so the result is the one per-row MERGEs give.
- new nodes: a row whose main node does not exist yet and that is the only row of its type
  in the batch naming that node (a fresh run, a fresh score: nearly every row of an import;
  a fresh ranking) goes through its handler's `fast` statement, which CREATEs the node and
  the relationships out of it with the lists one event gives (`[position]`, `[event_id]`)
  and MATCHes the hubs, without the per-row subquery: no other row of the statement
  touches those nodes and relationships. Every other row (a node already in the graph, a replay, a node named
  twice in the batch) goes through the per-row statement, after the fast rows; the two sets
  of rows share nothing but hubs and bare nodes, which are the same in either order.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, Protocol

from events.canonical import canonical_json
from events.models.base import Event
from events.store.port import EventFields, EventStore, StoredEvent

# Fixed forever: relationship ids are uuid5(RELATIONSHIP_NAMESPACE, canonical JSON of
# [type, start id, end id]). Changing it would change every relationship id.
RELATIONSHIP_NAMESPACE = uuid.UUID("6f1d3c2a-8b4e-5a7f-9c0d-1e2f3a4b5c6d")

Row = dict[str, Any]
class Lookup(Protocol):
    """Reads the events a batch cites: whole (`read_positions`) or a few fields (`read_fields`)."""

    def __call__(self, positions: Sequence[int]) -> list[StoredEvent]: ...

    def fields(self, positions: Sequence[int], names: Sequence[str]) -> list[EventFields]: ...


@dataclass(frozen=True)
class StoreLookup:
    """The Lookup of a store."""

    store: EventStore

    def __call__(self, positions: Sequence[int]) -> list[StoredEvent]:
        return self.store.read_positions(positions)

    def fields(self, positions: Sequence[int], names: Sequence[str]) -> list[EventFields]:
        return self.store.read_fields(positions, names)


# ---------------------------------------------------------------------------- ids


def run_node_id(experiment: str, run_id: str) -> str:
    return f"{experiment}/{run_id}"


def score_node_id(experiment: str, run_id: str, benchmark: str) -> str:
    return f"{experiment}/{run_id}/{benchmark}"


def parameter_value_id(name: str, value: Any) -> str:
    return f"{name}={canonical_json(value)}"


_NAMESPACE_BYTES = RELATIONSHIP_NAMESPACE.bytes


def rel_id(rel_type: str, start_id: str, end_id: str) -> str:
    """uuid5(RELATIONSHIP_NAMESPACE, canonical_json([rel_type, start_id, end_id])), computed inline.

    A projection computes several per event; `uuid.uuid5` and `json.dumps` cost more than the
    hash itself. For three strings canonical JSON is `encode_basestring` (the function
    json.dumps uses with ensure_ascii=False) of each, comma-joined in brackets; anything
    else takes the general path. tests/graph/test_handlers.py checks both agree.
    """
    if type(rel_type) is not str or type(start_id) is not str or type(end_id) is not str:
        return str(uuid.uuid5(RELATIONSHIP_NAMESPACE, canonical_json([rel_type, start_id, end_id])))
    name = f"[{encode_basestring(rel_type)},{encode_basestring(start_id)},{encode_basestring(end_id)}]"
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
class Fast:
    """The statement for rows whose main node is new and named once in the batch (see above)."""

    label: str
    """The main node's label: a row takes this path when no `label` node has the row's `id`."""
    cypher: str
    hubs: Callable[[Row], Iterable[tuple[str, Row]]]
    """The hubs a row names, as (HUB_STATEMENTS key, hub row); `cypher` MATCHes them."""
    eligible: Callable[[Row], bool] | None = None
    """Whether a new node's row may take the fast path (default: every one)."""


@dataclass(frozen=True)
class Handler:
    """How one event type is projected: its statement and how to build its rows."""

    event_type: str
    cypher: str
    build: Callable[[Sequence[tuple[StoredEvent, Event]], Lookup], list[Row]]
    """Rows for a run of consecutive events of this type; `Lookup` reads events they cite."""
    fast: Fast | None = None


def _hub_statement(label: str, on_create: str) -> str:
    """MERGE each hub once; its lists name the lowest position (first_mention, set-wise)."""
    sets = "n.positions = [h.position], n.event_ids = [h.event_id]"
    return (
        f"UNWIND $hubs AS h\nMERGE (n:{label} {{id: h.id}})\n"
        f"  ON CREATE SET {on_create}{sets}\n"
        f"WITH n, h WHERE h.position < n.positions[0]\nSET {sets}\n"
    )


# In the order they are applied: VALUE_OF joins a ParameterValue to its Parameter. The ON
# CREATE properties are the ones every handler that MERGEs these hubs sets.
HUB_STATEMENTS: dict[str, str] = {
    "Experiment": _hub_statement("Experiment", "n.name = h.id, "),
    "Agent": _hub_statement("Agent", ""),
    "Benchmark": _hub_statement("Benchmark", "n.name = h.id, "),
    "Parameter": _hub_statement("Parameter", "n.name = h.id, "),
    "ParameterValue": _hub_statement("ParameterValue", "n.name = h.name, n.value = h.value, "),
    "VALUE_OF": """UNWIND $hubs AS h
MATCH (v:ParameterValue {id: h.value}), (k:Parameter {id: h.name})
MERGE (v)-[n:VALUE_OF {id: h.id}]->(k)
  ON CREATE SET n.positions = [h.position], n.event_ids = [h.event_id]
WITH n, h WHERE h.position < n.positions[0]
SET n.positions = [h.position], n.event_ids = [h.event_id]
""",
}
"""Hub rows: `id`, `position`, `event_id` and what ON CREATE sets (a ParameterValue's `name`
and `value`; VALUE_OF's `value` and `name`, the ids of its ends)."""


def hub_row(row: Row, hub_id: Any, **extra: Any) -> Row:
    return {"id": hub_id, "position": row["position"], "event_id": row["event_id"], **extra}


Builder = Callable[[Sequence[tuple[StoredEvent, Event]], Lookup], list[Row]]


def simple(fn: Callable[[StoredEvent, Any], Row]) -> Builder:
    def build(batch: Sequence[tuple[StoredEvent, Event]], lookup: Lookup) -> list[Row]:
        return [fn(stored, event) for stored, event in batch]

    return build
