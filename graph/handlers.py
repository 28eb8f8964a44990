"""Event type → Cypher: how each fact becomes nodes and relationships.

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
from events.models import BenchmarkScored, RankingDerived, RunRecorded, SourceCited
from events.models.base import Event
from events.models.experiments import ExperimentDeclared, RunCompleted, RunFailed
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


def _track(var: str) -> str:
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


def _merge_tracked(var: str, pattern: str) -> str:
    """MERGE a node or relationship and record the event on it, inside a subquery of its own.

    `pattern` names `var`; the variables it uses besides `row` are imported by the caller.
    """
    return f"MERGE {pattern}\n{_track(var)}"


def _created_by(var: str) -> str:
    """ON CREATE clause for shared nodes: only the first event that names it is recorded."""
    return f"{var}.positions = [row.position], {var}.event_ids = [row.event_id]"


def _first_mention(var: str) -> str:
    """Keep a shared node's lists on the lowest position that names it, in any order of arrival.

    The projector applies a batch type by type, so a later event of an earlier-applied type
    may create the node first; this makes the result the same as strict log order. It
    writes only when it changes something (hub nodes are matched by nearly every row).
    """
    return (
        f"FOREACH (x IN CASE WHEN row.position < {var}.positions[0] THEN [1] ELSE [] END |\n"
        f"  SET {var}.positions = [row.position], {var}.event_ids = [row.event_id])\n"
    )


def _newest_head(var: str, pattern: str, *, then: bool = True) -> str:
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


SOURCE_CITED = f"""UNWIND $rows AS row
CALL (row) {{
{_newest_head("s", "(s:Source:Entity {id: row.id})", then=False)}}}
"""

RUN_RECORDED = f"""UNWIND $rows AS row
CALL (row) {{
{_newest_head("r", "(r:Run:Activity {id: row.id})")}
CALL (r, row) {{
  MATCH (r)-[old:USED_VALUE|REPORTED_IN|WAS_ASSOCIATED_WITH]->()
  WHERE NOT old.id IN row.rel_ids
  DELETE old
}}
CALL (r, row) {{
  MERGE (e:Experiment {{id: row.experiment}})
    ON CREATE SET e.name = row.experiment, {_created_by("e")}
  {_first_mention("e")}
  {_merge_tracked("po", "(r)-[po:PART_OF {id: row.part_of_id}]->(e)")}
}}
CALL (r, row) {{
  UNWIND row.params AS param
  MERGE (k:Parameter {{id: param.name}})
    ON CREATE SET k.name = param.name, {_created_by("k")}
  {_first_mention("k")}
  MERGE (v:ParameterValue {{id: param.id}})
    ON CREATE SET v.name = param.name, v.value = param.value, {_created_by("v")}
  {_first_mention("v")}
  MERGE (v)-[vo:VALUE_OF {{id: param.value_of_id}}]->(k)
    ON CREATE SET {_created_by("vo")}
  {_first_mention("vo")}
  {_merge_tracked("uv", "(r)-[uv:USED_VALUE {id: param.rel_id}]->(v)")}
}}
CALL (r, row) {{
  UNWIND row.sources AS src
  // A run may cite a source before (or without) its SourceCited event: a bare node
  // with no positions until the citation arrives.
  MERGE (s:Source:Entity {{id: src.id}})
    ON CREATE SET s.positions = [], s.event_ids = []
  {_merge_tracked("ri", "(r)-[ri:REPORTED_IN {id: src.rel_id}]->(s)")}
}}
CALL (r, row) {{
  MERGE (a:Agent {{id: row.agent}})
    ON CREATE SET {_created_by("a")}
  {_first_mention("a")}
  {_merge_tracked("wa", "(r)-[wa:WAS_ASSOCIATED_WITH {id: row.agent_rel_id}]->(a)")}
}}
}}
"""

BENCHMARK_SCORED = f"""UNWIND $rows AS row
CALL (row) {{
{_newest_head("s", "(s:Score:Entity {id: row.id})")}
CALL (s, row) {{
  // A score may arrive before its run's RunRecorded: a bare run, filled in later.
  MERGE (r:Run:Activity {{id: row.run}})
    ON CREATE SET r.experiment = row.props.experiment, r.run_id = row.props.run_id,
                  r.positions = [], r.event_ids = []
  {_merge_tracked("g", "(s)-[g:WAS_GENERATED_BY {id: row.generated_id}]->(r)")}
}}
CALL (s, row) {{
  MERGE (b:Benchmark {{id: row.props.benchmark}})
    ON CREATE SET b.name = row.props.benchmark, {_created_by("b")}
  {_first_mention("b")}
  {_merge_tracked("ob", "(s)-[ob:ON_BENCHMARK {id: row.benchmark_rel_id}]->(b)")}
}}
}}
"""

RANKING_DERIVED = f"""UNWIND $rows AS row
CALL (row) {{
{_newest_head("k", "(k:Ranking:Entity {id: row.id})")}
CALL (k, row) {{
  MATCH (k)-[old]->()
  WHERE NOT old.id IN row.rel_ids
  DELETE old
}}
CALL (k, row) {{
  MERGE (e:Experiment {{id: row.props.experiment}})
    ON CREATE SET e.name = row.props.experiment, {_created_by("e")}
  {_first_mention("e")}
  {_merge_tracked("ab", "(k)-[ab:ABOUT {id: row.about_id}]->(e)")}
}}
CALL (k, row) {{
  MERGE (b:Benchmark {{id: row.props.benchmark}})
    ON CREATE SET b.name = row.props.benchmark, {_created_by("b")}
  {_first_mention("b")}
  {_merge_tracked("fb", "(k)-[fb:FOR_BENCHMARK {id: row.benchmark_rel_id}]->(b)")}
}}
CALL (k, row) {{
  UNWIND row.scores AS used
  MATCH (s:Score {{id: used.id}})
  {_merge_tracked("df", "(k)-[df:WAS_DERIVED_FROM {id: used.rel_id}]->(s)")}
}}
CALL (k, row) {{
  UNWIND row.runs AS used
  MATCH (r:Run {{id: used.id}})
  {_merge_tracked("ur", "(k)-[ur:USED_RUN {id: used.rel_id}]->(r)")}
}}
CALL (k, row) {{
  UNWIND row.parameters AS param
  MERGE (q:Parameter {{id: param.name}})
    ON CREATE SET q.name = param.name, {_created_by("q")}
  {_first_mention("q")}
  MERGE (k)-[rk:RANKS {{id: param.rel_id}}]->(q)
  SET rk.rank = param.rank, rk.influence_lo = param.influence_lo,
      rk.influence_hi = param.influence_hi, rk.values = param.values
  SET rk += param.props
  {_track("rk")}
}}
}}
"""


EXPERIMENT_DECLARED = f"""UNWIND $rows AS row
CALL (row) {{
{_newest_head("d", "(d:Design:Entity {id: row.id})")}
CALL (d, row) {{
  MERGE (e:Experiment {{id: row.props.experiment}})
    ON CREATE SET e.name = row.props.experiment, {_created_by("e")}
  {_first_mention("e")}
  {_merge_tracked("ds", "(d)-[ds:DESIGNS {id: row.designs_id}]->(e)")}
}}
}}
"""

RUN_ENDED = f"""UNWIND $rows AS row
CALL (row) {{
{_newest_head("o", "(o:Outcome:Entity {id: row.id})", then=False)}}}
CALL (row) {{
  // Two types (RunCompleted, RunFailed) share this node and a batch applies types one after
  // the other, so ENDED records every ending's position whichever is newest: the same
  // lists in any order of arrival. An ending is appended in the batch that records its run;
  // the bare run only covers the order a batch applies types in.
  MATCH (o:Outcome {{id: row.id}})
  MERGE (r:Run:Activity {{id: row.run}})
    ON CREATE SET r.experiment = row.props.experiment, r.run_id = row.props.run_id,
                  r.positions = [], r.event_ids = []
  {_merge_tracked("g", "(o)-[g:ENDED {id: row.ended_id}]->(r)")}
}}
"""


# ---------------------------------------------------------------------- rows


def _base(stored: StoredEvent) -> Row:
    return {"position": stored.position, "event_id": stored.event_id}


def source_row(stored: StoredEvent, event: SourceCited) -> Row:
    return {**_base(stored), "id": event.source_id,
            "props": {"id": event.source_id, "citation": event.citation}}


def run_row(stored: StoredEvent, event: RunRecorded) -> Row:
    node = run_node_id(event.experiment, event.run_id)
    props: dict[str, Any] = {
        "id": node,
        "experiment": event.experiment,
        "run_id": event.run_id,
        "seed": event.seed,
        "origin": event.origin,
        "agent": event.agent,
        "source_id": event.source_id,
        "params": canonical_json(event.params),
    }
    for kind, cost in event.costs.items():
        props[f"cost_{kind}"] = cost
    params = []
    for name in sorted(event.params):
        value = event.params[name]
        value_id = parameter_value_id(name, value)
        params.append({
            "name": name,
            "value": value,
            "id": value_id,
            "value_of_id": rel_id("VALUE_OF", value_id, name),
            "rel_id": rel_id("USED_VALUE", node, value_id),
        })
    sources = (
        [{"id": event.source_id, "rel_id": rel_id("REPORTED_IN", node, event.source_id)}]
        if event.source_id else []
    )
    agent_rel = rel_id("WAS_ASSOCIATED_WITH", node, event.agent)
    return {
        **_base(stored),
        "id": node,
        "experiment": event.experiment,
        "props": props,
        "part_of_id": rel_id("PART_OF", node, event.experiment),
        "params": params,
        "sources": sources,
        "agent": event.agent,
        "agent_rel_id": agent_rel,
        "rel_ids": [p["rel_id"] for p in params] + [s["rel_id"] for s in sources] + [agent_rel],
    }


def score_row(stored: StoredEvent, event: BenchmarkScored) -> Row:
    run = run_node_id(event.experiment, event.run_id)
    node = score_node_id(event.experiment, event.run_id, event.benchmark)
    return {
        **_base(stored),
        "id": node,
        "run": run,
        "props": {
            "id": node,
            "experiment": event.experiment,
            "run_id": event.run_id,
            "benchmark": event.benchmark,
            "value": event.value,
            "n": event.n,
            "stderr": event.stderr,
        },
        "generated_id": rel_id("WAS_GENERATED_BY", node, run),
        "benchmark_rel_id": rel_id("ON_BENCHMARK", node, event.benchmark),
    }


def ranking_row(stored: StoredEvent, event: RankingDerived, used: dict[int, StoredEvent]) -> Row:
    """`used` holds the stored events at the ranking's used_events positions."""
    node = event.ranking_id
    scores: list[Row] = []
    runs: list[Row] = []
    for ref in event.used_events:
        target = used.get(ref.position)
        if target is None or target.event_id != ref.event_id or ref.position >= stored.position:
            # Not in the log as named, or not before the ranking: `knobs audit` reports it,
            # the graph omits it (linking it would depend on how the log was batched).
            continue
        model = target.decode()
        if isinstance(model, BenchmarkScored):
            score = score_node_id(model.experiment, model.run_id, model.benchmark)
            scores.append({"id": score, "rel_id": rel_id("WAS_DERIVED_FROM", node, score)})
        elif isinstance(model, RunRecorded):
            run = run_node_id(model.experiment, model.run_id)
            runs.append({"id": run, "rel_id": rel_id("USED_RUN", node, run)})
    parameters = [
        {
            "name": p.name,
            "rank": p.rank,
            "influence_lo": p.influence_range[0],
            "influence_hi": p.influence_range[1],
            "values": canonical_json([v.model_dump(mode="json") for v in p.values]),
            "rel_id": rel_id("RANKS", node, p.name),
            # Scalars a query can filter and sort on; the structured parts as JSON text
            # (Neo4j properties cannot hold maps).
            "props": {
                "statistic": p.statistic,
                "noise_label": p.noise.label if p.noise else None,
                "knee_status": p.knee.status if p.knee else None,
                "knee_value": p.knee.value if p.knee else None,
                "flagged": bool(p.flags),
                "flag_kinds": [f.kind for f in p.flags],
                "indices": canonical_json(p.indices) if p.indices else None,
                "s2": canonical_json(p.s2) if p.s2 else None,
                "noise": canonical_json(p.noise.model_dump(mode="json")) if p.noise else None,
                "knee": canonical_json(p.knee.model_dump(mode="json")) if p.knee else None,
                "knee_cost": canonical_json(p.knee_cost.model_dump(mode="json")) if p.knee_cost else None,
                "per_cost": canonical_json([c.model_dump(mode="json") for c in p.per_cost]),
                "flags": canonical_json([f.model_dump(mode="json") for f in p.flags]),
            },
        }
        for p in event.parameters
    ]
    about = rel_id("ABOUT", node, event.experiment)
    for_benchmark = rel_id("FOR_BENCHMARK", node, event.benchmark)
    # The same evidence named twice yields one relationship.
    scores = list({s["id"]: s for s in scores}.values())
    runs = list({r["id"]: r for r in runs}.values())
    return {
        **_base(stored),
        "id": node,
        "props": {
            "id": node,
            "experiment": event.experiment,
            "benchmark": event.benchmark,
            "method": event.method,
            "code_version": event.code_version,
            "as_of": event.as_of,
            "baseline_mean": event.baseline_mean,
            "baseline": canonical_json(event.baseline),
            "baseline_runs": list(event.baseline_runs),
            "settings": canonical_json(event.settings),
            # A ranking recomputed without some runs answers "what if": never the latest one.
            "what_if": event.what_if,
            "direction": event.direction,
            "bootstrap_seed": event.bootstrap_seed,
            "excluded_runs": list(event.excluded_runs),
            "used_positions": [u.position for u in event.used_events],
            "used_event_ids": [u.event_id for u in event.used_events],
        },
        "about_id": about,
        "benchmark_rel_id": for_benchmark,
        "scores": scores,
        "runs": runs,
        "parameters": parameters,
        "rel_ids": [about, for_benchmark]
        + [s["rel_id"] for s in scores] + [r["rel_id"] for r in runs] + [p["rel_id"] for p in parameters],
    }


# ------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Handler:
    """How one event type is projected: its statement and how to build its rows."""

    event_type: str
    cypher: str
    build: Callable[[Sequence[tuple[StoredEvent, Event]], Lookup], list[Row]]
    """Rows for a run of consecutive events of this type; `Lookup` reads events they cite."""


Builder = Callable[[Sequence[tuple[StoredEvent, Event]], Lookup], list[Row]]


def design_row(stored: StoredEvent, event: ExperimentDeclared) -> Row:
    return {**_base(stored), "id": event.name,
            "designs_id": rel_id("DESIGNS", event.name, event.name),
            "props": {"id": event.name, "experiment": event.name, "executor": event.executor,
                      "method": event.design, "spec": canonical_json(event.spec),
                      "spec_sha256": event.spec_sha256, "runs": len(event.run_ids),
                      "benchmarks": list(event.benchmarks)}}


def outcome_row(stored: StoredEvent, event: RunCompleted | RunFailed) -> Row:
    """A run's single ending: completed (device, artifact) or failed (kind, reason)."""
    run = run_node_id(event.experiment, event.run_id)
    node = f"{run}/outcome"
    props: dict[str, Any] = {"id": node, "experiment": event.experiment, "run_id": event.run_id,
                             "attempt": event.attempt}
    if isinstance(event, RunCompleted):
        props.update(status="completed", device=event.device, artifact=event.artifact,
                     config=canonical_json(event.config))
    else:
        props.update(status="failed", kind=event.kind, reason=event.reason)
    return {**_base(stored), "id": node, "run": run, "ended_id": rel_id("ENDED", node, run),
            "props": {k: v for k, v in props.items() if v is not None}}


def _simple(fn: Callable[[StoredEvent, Any], Row]) -> Builder:
    def build(batch: Sequence[tuple[StoredEvent, Event]], lookup: Lookup) -> list[Row]:
        return [fn(stored, event) for stored, event in batch]

    return build


def _rankings(batch: Sequence[tuple[StoredEvent, Event]], lookup: Lookup) -> list[Row]:
    wanted = sorted({
        ref.position for _, event in batch if isinstance(event, RankingDerived) for ref in event.used_events
    })
    used = {stored.position: stored for stored in lookup(wanted)} if wanted else {}
    return [ranking_row(stored, event, used) for stored, event in batch if isinstance(event, RankingDerived)]


# In the order a batch applies them. Types only ever meet on shared nodes (made identical
# whatever the order, see _first_mention) and on bare nodes that the owning type fills in
# (a score's run, a run's source); rankings come last so the runs and scores they cite exist.
HANDLERS: dict[str, Handler] = {
    h.event_type: h
    for h in (
        Handler(SourceCited.event_type, SOURCE_CITED, _simple(source_row)),
        Handler(RunRecorded.event_type, RUN_RECORDED, _simple(run_row)),
        Handler(BenchmarkScored.event_type, BENCHMARK_SCORED, _simple(score_row)),
        Handler(ExperimentDeclared.event_type, EXPERIMENT_DECLARED, _simple(design_row)),
        Handler(RunCompleted.event_type, RUN_ENDED, _simple(outcome_row)),
        Handler(RunFailed.event_type, RUN_ENDED, _simple(outcome_row)),
        Handler(RankingDerived.event_type, RANKING_DERIVED, _rankings),
    )
}
"""Event types the graph projects; every other type is another capability's fact and skipped."""
