"""Runs, scores, sources, designs, outcomes and rankings: the facts of capabilities 1 and 2."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from events.canonical import canonical_json
from events.models import BenchmarkScored, RankingDerived, RunRecorded, SourceCited
from events.models.base import Event
from events.models.experiments import ExperimentDeclared, RunCompleted, RunFailed
from events.store.port import StoredEvent
from graph.handlers.common import (
    Lookup,
    Row,
    base_row,
    created_by,
    first_mention,
    hub_row,
    merge_tracked,
    newest_head,
    parameter_value_id,
    rel_id,
    run_node_id,
    score_node_id,
    track,
)

SOURCE_CITED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("s", "(s:Source:Entity {id: row.id})", then=False)}}}
"""

RUN_RECORDED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("r", "(r:Run:Activity {id: row.id})")}
CALL (r, row) {{
  MATCH (r)-[old:USED_VALUE|REPORTED_IN|WAS_ASSOCIATED_WITH]->()
  WHERE NOT old.id IN row.rel_ids
  DELETE old
}}
CALL (r, row) {{
  MERGE (e:Experiment {{id: row.experiment}})
    ON CREATE SET e.name = row.experiment, {created_by("e")}
  {first_mention("e")}
  {merge_tracked("po", "(r)-[po:PART_OF {id: row.part_of_id}]->(e)")}
}}
CALL (r, row) {{
  UNWIND row.params AS param
  MERGE (k:Parameter {{id: param.name}})
    ON CREATE SET k.name = param.name, {created_by("k")}
  {first_mention("k")}
  MERGE (v:ParameterValue {{id: param.id}})
    ON CREATE SET v.name = param.name, v.value = param.value, {created_by("v")}
  {first_mention("v")}
  MERGE (v)-[vo:VALUE_OF {{id: param.value_of_id}}]->(k)
    ON CREATE SET {created_by("vo")}
  {first_mention("vo")}
  {merge_tracked("uv", "(r)-[uv:USED_VALUE {id: param.rel_id}]->(v)")}
}}
CALL (r, row) {{
  UNWIND row.sources AS src
  // A run may cite a source before (or without) its SourceCited event: a bare node
  // with no positions until the citation arrives.
  MERGE (s:Source:Entity {{id: src.id}})
    ON CREATE SET s.positions = [], s.event_ids = []
  {merge_tracked("ri", "(r)-[ri:REPORTED_IN {id: src.rel_id}]->(s)")}
}}
CALL (r, row) {{
  MERGE (a:Agent {{id: row.agent}})
    ON CREATE SET {created_by("a")}
  {first_mention("a")}
  {merge_tracked("wa", "(r)-[wa:WAS_ASSOCIATED_WITH {id: row.agent_rel_id}]->(a)")}
}}
}}
"""

# The fast paths (see graph.handlers.common): a new node and the relationships out of it,
# written once with the lists one event gives; the hubs are MERGEd before, by HUB_STATEMENTS.
def _one(var: str) -> str:
    return f"{var}.positions = [row.position], {var}.event_ids = [row.event_id]"


_ONE = "positions: [row.position], event_ids: [row.event_id]"


def _links(var: str, items: str, label: str, rel_type: str) -> str:
    """A relationship from `var` to each `label` node of `items` (each with `id` and `rel_id`)."""
    return f"""CALL ({var}, row) {{
  UNWIND {items} AS item
  MATCH (n:{label} {{id: item.id}})
  CREATE ({var})-[:{rel_type} {{id: item.rel_id, {_ONE}}}]->(n)
}}"""

RUN_RECORDED_NEW = f"""UNWIND $rows AS row
CREATE (r:Run:Activity)
SET r = row.props, {_one("r")}
WITH r, row
MATCH (e:Experiment {{id: row.experiment}}), (a:Agent {{id: row.agent}})
CREATE (r)-[:PART_OF {{id: row.part_of_id, {_ONE}}}]->(e)
CREATE (r)-[:WAS_ASSOCIATED_WITH {{id: row.agent_rel_id, {_ONE}}}]->(a)
WITH r, row
{_links("r", "row.params", "ParameterValue", "USED_VALUE")}
CALL (r, row) {{
  UNWIND row.sources AS src
  MERGE (s:Source:Entity {{id: src.id}})
    ON CREATE SET s.positions = [], s.event_ids = []
  CREATE (r)-[:REPORTED_IN {{id: src.rel_id, {_ONE}}}]->(s)
}}
"""

BENCHMARK_SCORED_NEW = f"""UNWIND $rows AS row
CREATE (s:Score:Entity)
SET s = row.props, {_one("s")}
WITH s, row
MERGE (r:Run:Activity {{id: row.run}})
  ON CREATE SET r.experiment = row.props.experiment, r.run_id = row.props.run_id,
                r.positions = [], r.event_ids = []
CREATE (s)-[:WAS_GENERATED_BY {{id: row.generated_id, {_ONE}}}]->(r)
WITH s, row
MATCH (b:Benchmark {{id: row.props.benchmark}})
CREATE (s)-[:ON_BENCHMARK {{id: row.benchmark_rel_id, {_ONE}}}]->(b)
"""


RANKING_DERIVED_NEW = f"""UNWIND $rows AS row
CREATE (k:Ranking:Entity)
SET k = row.props, {_one("k")}
WITH k, row
MATCH (e:Experiment {{id: row.props.experiment}}), (b:Benchmark {{id: row.props.benchmark}})
CREATE (k)-[:ABOUT {{id: row.about_id, {_ONE}}}]->(e)
CREATE (k)-[:FOR_BENCHMARK {{id: row.benchmark_rel_id, {_ONE}}}]->(b)
WITH k, row
{_links("k", "row.scores", "Score", "WAS_DERIVED_FROM")}
{_links("k", "row.runs", "Run", "USED_RUN")}
CALL (k, row) {{
  UNWIND row.parameters AS param
  MATCH (q:Parameter {{id: param.name}})
  CREATE (k)-[rk:RANKS {{id: param.rel_id}}]->(q)
  SET rk.rank = param.rank, rk.influence_lo = param.influence_lo,
      rk.influence_hi = param.influence_hi, rk.values = param.values
  SET rk += param.props
  SET {_one("rk")}
}}
"""


def ranking_is_plain(row: Row) -> bool:
    """A ranking that names a parameter twice MERGEs one RANKS for both: the per-row statement."""
    names = [p["name"] for p in row["parameters"]]
    return len(set(names)) == len(names)


def ranking_hubs(row: Row) -> Iterator[tuple[str, Row]]:
    yield "Experiment", hub_row(row, row["props"]["experiment"])
    yield "Benchmark", hub_row(row, row["props"]["benchmark"])
    for param in row["parameters"]:
        yield "Parameter", hub_row(row, param["name"])


def run_hubs(row: Row) -> Iterator[tuple[str, Row]]:
    yield "Experiment", hub_row(row, row["experiment"])
    yield "Agent", hub_row(row, row["agent"])
    for param in row["params"]:
        yield "Parameter", hub_row(row, param["name"])
        yield "ParameterValue", hub_row(row, param["id"], name=param["name"], value=param["value"])
        yield "VALUE_OF", hub_row(row, param["value_of_id"], value=param["id"], name=param["name"])


def score_hubs(row: Row) -> Iterator[tuple[str, Row]]:
    yield "Benchmark", hub_row(row, row["props"]["benchmark"])


BENCHMARK_SCORED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("s", "(s:Score:Entity {id: row.id})")}
CALL (s, row) {{
  // A score may arrive before its run's RunRecorded: a bare run, filled in later.
  MERGE (r:Run:Activity {{id: row.run}})
    ON CREATE SET r.experiment = row.props.experiment, r.run_id = row.props.run_id,
                  r.positions = [], r.event_ids = []
  {merge_tracked("g", "(s)-[g:WAS_GENERATED_BY {id: row.generated_id}]->(r)")}
}}
CALL (s, row) {{
  MERGE (b:Benchmark {{id: row.props.benchmark}})
    ON CREATE SET b.name = row.props.benchmark, {created_by("b")}
  {first_mention("b")}
  {merge_tracked("ob", "(s)-[ob:ON_BENCHMARK {id: row.benchmark_rel_id}]->(b)")}
}}
}}
"""

RANKING_DERIVED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("k", "(k:Ranking:Entity {id: row.id})")}
CALL (k, row) {{
  MATCH (k)-[old]->()
  WHERE NOT old.id IN row.rel_ids
  DELETE old
}}
CALL (k, row) {{
  MERGE (e:Experiment {{id: row.props.experiment}})
    ON CREATE SET e.name = row.props.experiment, {created_by("e")}
  {first_mention("e")}
  {merge_tracked("ab", "(k)-[ab:ABOUT {id: row.about_id}]->(e)")}
}}
CALL (k, row) {{
  MERGE (b:Benchmark {{id: row.props.benchmark}})
    ON CREATE SET b.name = row.props.benchmark, {created_by("b")}
  {first_mention("b")}
  {merge_tracked("fb", "(k)-[fb:FOR_BENCHMARK {id: row.benchmark_rel_id}]->(b)")}
}}
CALL (k, row) {{
  UNWIND row.scores AS used
  MATCH (s:Score {{id: used.id}})
  {merge_tracked("df", "(k)-[df:WAS_DERIVED_FROM {id: used.rel_id}]->(s)")}
}}
CALL (k, row) {{
  UNWIND row.runs AS used
  MATCH (r:Run {{id: used.id}})
  {merge_tracked("ur", "(k)-[ur:USED_RUN {id: used.rel_id}]->(r)")}
}}
CALL (k, row) {{
  UNWIND row.parameters AS param
  MERGE (q:Parameter {{id: param.name}})
    ON CREATE SET q.name = param.name, {created_by("q")}
  {first_mention("q")}
  MERGE (k)-[rk:RANKS {{id: param.rel_id}}]->(q)
  SET rk.rank = param.rank, rk.influence_lo = param.influence_lo,
      rk.influence_hi = param.influence_hi, rk.values = param.values
  SET rk += param.props
  {track("rk")}
}}
}}
"""


EXPERIMENT_DECLARED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("d", "(d:Design:Entity {id: row.id})")}
CALL (d, row) {{
  MERGE (e:Experiment {{id: row.props.experiment}})
    ON CREATE SET e.name = row.props.experiment, {created_by("e")}
  {first_mention("e")}
  {merge_tracked("ds", "(d)-[ds:DESIGNS {id: row.designs_id}]->(e)")}
}}
}}
"""

RUN_ENDED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("o", "(o:Outcome:Entity {id: row.id})", then=False)}}}
CALL (row) {{
  // Two types (RunCompleted, RunFailed) share this node and a batch applies types one after
  // the other, so ENDED records every ending's position whichever is newest: the same
  // lists in any order of arrival. An ending is appended in the batch that records its run;
  // the bare run only covers the order a batch applies types in.
  MATCH (o:Outcome {{id: row.id}})
  MERGE (r:Run:Activity {{id: row.run}})
    ON CREATE SET r.experiment = row.props.experiment, r.run_id = row.props.run_id,
                  r.positions = [], r.event_ids = []
  {merge_tracked("g", "(o)-[g:ENDED {id: row.ended_id}]->(r)")}
}}
"""


# ---------------------------------------------------------------------- rows


def source_row(stored: StoredEvent, event: SourceCited) -> Row:
    return {**base_row(stored), "id": event.source_id,
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
        **base_row(stored),
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
        **base_row(stored),
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


_CITED_FIELDS = ("experiment", "run_id", "benchmark")
"""What a ranking's projection needs of each event it cites: enough to name its node."""


@dataclass(frozen=True)
class Cited:
    event_id: str
    event_type: str
    fields: dict[str, Any]


def cited_events(positions: Sequence[int], lookup: Lookup) -> dict[int, Cited]:
    """The events a ranking cites, by position: three fields each, read without their payloads.

    A ranking cites up to two events per run, and reading and validating whole payloads cost
    more than the rest of its projection. A payload at the current schema_version holds the
    fields as its model does; an older one is read whole and upcast by decoding.
    """
    current = {RunRecorded.event_type: RunRecorded.schema_version,
               BenchmarkScored.event_type: BenchmarkScored.schema_version}
    found = lookup.fields(positions, _CITED_FIELDS)
    cited = {f.position: Cited(f.event_id, f.event_type, f.fields) for f in found}
    older = [f.position for f in found
             if f.event_type in current and f.schema_version != current[f.event_type]]
    for stored in lookup(older) if older else []:
        cited[stored.position] = Cited(stored.event_id, stored.event_type, stored.decode().model_dump())
    return cited


def ranking_row(stored: StoredEvent, event: RankingDerived, used: dict[int, Cited]) -> Row:
    """`used` holds the events at the ranking's used_events positions (`cited_events`)."""
    node = event.ranking_id
    scores: list[Row] = []
    runs: list[Row] = []
    for ref in event.used_events:
        target = used.get(ref.position)
        if target is None or target.event_id != ref.event_id or ref.position >= stored.position:
            # Not in the log as named, or not before the ranking: `knobs audit` reports it,
            # the graph omits it (linking it would depend on how the log was batched).
            continue
        data = target.fields
        if target.event_type == BenchmarkScored.event_type:
            score = score_node_id(data["experiment"], data["run_id"], data["benchmark"])
            scores.append({"id": score, "rel_id": rel_id("WAS_DERIVED_FROM", node, score)})
        elif target.event_type == RunRecorded.event_type:
            run = run_node_id(data["experiment"], data["run_id"])
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
        **base_row(stored),
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


def design_row(stored: StoredEvent, event: ExperimentDeclared) -> Row:
    return {**base_row(stored), "id": event.name,
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
    return {**base_row(stored), "id": node, "run": run, "ended_id": rel_id("ENDED", node, run),
            "props": {k: v for k, v in props.items() if v is not None}}


def _rankings(batch: Sequence[tuple[StoredEvent, Event]], lookup: Lookup) -> list[Row]:
    wanted = sorted({
        ref.position for _, event in batch if isinstance(event, RankingDerived) for ref in event.used_events
    })
    used = cited_events(wanted, lookup) if wanted else {}
    return [ranking_row(stored, event, used) for stored, event in batch if isinstance(event, RankingDerived)]
