"""Shift measurements and hypothesis verdicts: capability 3's facts in the graph.

    (:Measurement)-[:USED_MODEL]->(:ModelState)-[:WAS_GENERATED_BY]->(:Run)   (when a run's)
    (:Measurement)-[:MEASURED_ON]->(:Dataset)<-[:PART_OF]-(:Example)
    (:Measurement)-[:PROBED_WITH]->(:Dataset)                                  (with a probe)
    (:Measurement)-[:MEASURED {grad_norm, loss_drop, ...}]->(:Example)        (one per chunk row)
    (:Volatility)-[:SUMMARIZES]->(:Measurement), (:Volatility)-[:OF_DATASET]->(:Dataset)
    (:Verdict)-[:WAS_DERIVED_FROM]->(:Volatility)
    (:Example)-[:TRACKED_IN {forgetting_events, confidence, variability, correctness}]->(:Run)

ModelState, Dataset and Example are shared (many measurements name them) and keep only the
event that created them, like Parameter; each MEASURED relationship carries its chunk's
event, so the evidence of every figure is one hop from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.canonical import canonical_json
from events.models.base import Event
from events.models.shift import (
    DatasetShiftMeasured,
    HypothesisTested,
    ShiftMeasured,
    ShiftRequested,
    TrainingInfluenceRecorded,
)
from events.store.port import StoredEvent
from graph.handlers.common import (
    Handler,
    Lookup,
    Row,
    bare,
    base_row,
    created_by,
    first_mention,
    merge_tracked,
    newest_head,
    rel_id,
    run_node_id,
    shared,
    simple,
    track,
)


def example_node_id(dataset_sha256: str, example_id: str) -> str:
    return f"{dataset_sha256}/{example_id}"


def volatility_node_id(measurement_id: str) -> str:
    return f"{measurement_id}/dataset"


SHIFT_REQUESTED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("m", "(m:Measurement:Activity {id: row.id})")}
CALL (m, row) {{
  {shared("s", "(s:ModelState:Entity {id: row.model.id})", "row.model")}
  {merge_tracked("um", "(m)-[um:USED_MODEL {id: row.used_model_id}]->(s)")}
  WITH s, row
  UNWIND row.model_runs AS run
  MERGE (r:Run:Activity {{id: run.id}})
    ON CREATE SET r.experiment = run.experiment, r.run_id = run.run_id,
                  r.positions = [], r.event_ids = []
  MERGE (s)-[g:WAS_GENERATED_BY {{id: run.rel_id}}]->(r)
    ON CREATE SET {created_by("g")}
  {first_mention("g")}
}}
CALL (m, row) {{
  UNWIND row.datasets AS data
  {shared("d", "(d:Dataset:Entity {id: data.props.id})", "data.props")}
  WITH m, d, data, row
  CALL (m, d, data, row) {{
    WITH * WHERE data.role = 'data'
    {merge_tracked("mo", "(m)-[mo:MEASURED_ON {id: data.rel_id}]->(d)")}
  }}
  CALL (m, d, data, row) {{
    WITH * WHERE data.role = 'probe'
    {merge_tracked("pw", "(m)-[pw:PROBED_WITH {id: data.rel_id}]->(d)")}
  }}
}}
}}
"""

SHIFT_MEASURED = f"""UNWIND $rows AS row
CALL (row) {{
  // The request is earlier in the log and first in a batch's order: a bare node only guards
  // a log that lost it.
  {bare("m", "(m:Measurement:Activity {id: row.measurement})")}
  {bare("d", "(d:Dataset:Entity {id: row.dataset})")}
  WITH m, d, row
  UNWIND row.examples AS ex
  MERGE (x:Example:Entity {{id: ex.id}})
    ON CREATE SET x.example_id = ex.example_id, x.dataset = row.dataset, x.index = ex.index,
                  {created_by("x")}
  {first_mention("x")}
  MERGE (x)-[po:PART_OF {{id: ex.part_of_id}}]->(d)
    ON CREATE SET {created_by("po")}
  {first_mention("po")}
  MERGE (m)-[me:MEASURED {{id: ex.rel_id}}]->(x)
  SET me += ex.figures, me.chunk = row.chunk, me.tokens_sha256 = row.tokens_sha256
  {track("me")}
}}
"""

DATASET_SHIFT_MEASURED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("v", "(v:Volatility:Entity {id: row.id})")}
CALL (v, row) {{
  {bare("m", "(m:Measurement:Activity {id: row.measurement})")}
  {merge_tracked("su", "(v)-[su:SUMMARIZES {id: row.summarizes_id}]->(m)")}
}}
CALL (v, row) {{
  {bare("d", "(d:Dataset:Entity {id: row.dataset})")}
  {merge_tracked("od", "(v)-[od:OF_DATASET {id: row.of_dataset_id}]->(d)")}
}}
}}
"""

HYPOTHESIS_TESTED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("h", "(h:Verdict:Entity {id: row.id})")}
CALL (h, row) {{
  MATCH (h)-[old:WAS_DERIVED_FROM]->()
  WHERE NOT old.id IN row.rel_ids
  DELETE old
}}
CALL (h, row) {{
  UNWIND row.used AS used
  MATCH (v:Volatility {{id: used.id}})
  {merge_tracked("df", "(h)-[df:WAS_DERIVED_FROM {id: used.rel_id}]->(v)")}
  SET df.candidate = used.candidate
}}
}}
"""


def request_row(stored: StoredEvent, event: ShiftRequested) -> Row:
    mid = event.measurement_id
    model = event.model
    runs: list[Row] = []
    if model.kind == "run":
        experiment, _, run_id = model.ref.rpartition("/")
        run = run_node_id(experiment, run_id)
        runs.append({"id": run, "experiment": experiment, "run_id": run_id,
                     "rel_id": rel_id("WAS_GENERATED_BY", model.sha256, run)})
    datasets = [("data", event.dataset)] + ([("probe", event.probe)] if event.probe else [])
    settings = event.settings
    return {
        **base_row(stored),
        "id": mid,
        "props": {"id": mid, "model_ref": model.ref, "model_sha256": model.sha256,
                  "dataset": event.dataset.sha256, "dataset_name": event.dataset.name,
                  "examples": event.dataset.examples, "chunks": event.chunks,
                  "probe": event.probe.sha256 if event.probe else None,
                  "lr": settings.lr, "optimizer": settings.optimizer, "metrics": settings.metrics,
                  "tokens": settings.tokens, "truncate": settings.truncate, "chunk": settings.chunk},
        "model": {"id": model.sha256, "kind": model.kind, "ref": model.ref, "path": model.path},
        "used_model_id": rel_id("USED_MODEL", mid, model.sha256),
        "model_runs": runs,
        "datasets": [{"role": role,
                      "props": {"id": d.sha256, "name": d.name, "path": d.path, "examples": d.examples},
                      "rel_id": rel_id("MEASURED_ON" if role == "data" else "PROBED_WITH", mid, d.sha256)}
                     for role, d in datasets],
    }


def chunk_row(stored: StoredEvent, event: ShiftMeasured) -> Row:
    mid = event.measurement_id
    examples = []
    for x in event.examples:
        node = example_node_id(event.dataset_sha256, x.id)
        figures: dict[str, Any] = x.model_dump(mode="json", exclude={"id", "index", "grad_norm_groups"})
        # Neo4j properties hold no maps: the per-group norms as JSON text.
        figures["grad_norm_groups"] = canonical_json(x.grad_norm_groups)
        examples.append({"id": node, "example_id": x.id, "index": x.index,
                         "part_of_id": rel_id("PART_OF", node, event.dataset_sha256),
                         "rel_id": rel_id("MEASURED", mid, node),
                         "figures": {k: v for k, v in figures.items() if v is not None}})
    return {**base_row(stored), "measurement": mid, "dataset": event.dataset_sha256, "chunk": event.chunk,
            "tokens_sha256": event.tokens_sha256, "examples": examples}


def summary_row(stored: StoredEvent, event: DatasetShiftMeasured) -> Row:
    node = volatility_node_id(event.measurement_id)
    figures = event.figures.model_dump(mode="json")
    return {
        **base_row(stored),
        "id": node,
        "measurement": event.measurement_id,
        "dataset": event.dataset_sha256,
        "props": {"id": node, "measurement_id": event.measurement_id, "dataset": event.dataset_sha256,
                  "model_sha256": event.model_sha256,
                  "used_positions": [u.position for u in event.used_events],
                  "used_event_ids": [u.event_id for u in event.used_events],
                  **{k: v for k, v in figures.items() if v is not None}},
        "summarizes_id": rel_id("SUMMARIZES", node, event.measurement_id),
        "of_dataset_id": rel_id("OF_DATASET", node, event.dataset_sha256),
    }


def _verdicts(batch: Sequence[tuple[StoredEvent, Event]], lookup: Lookup) -> list[Row]:
    wanted = sorted({u.position for _, e in batch if isinstance(e, HypothesisTested) for u in e.used_events})
    used = {s.position: s for s in lookup(wanted)} if wanted else {}
    return [verdict_row(stored, event, used)
            for stored, event in batch if isinstance(event, HypothesisTested)]


def verdict_row(stored: StoredEvent, event: HypothesisTested, used: dict[int, StoredEvent]) -> Row:
    node = event.test_id
    names = {str(c.get("measurement_id")): str(c.get("name")) for c in event.candidates}
    links: dict[str, Row] = {}
    for ref in event.used_events:
        target = used.get(ref.position)
        # Not in the log as named, or not before the verdict: the audit reports it, the graph omits it.
        if target is None or target.event_id != ref.event_id or ref.position >= stored.position \
                or target.event_type != DatasetShiftMeasured.event_type:
            continue
        mid = str(target.data["measurement_id"])
        vol = volatility_node_id(mid)
        links[vol] = {"id": vol, "rel_id": rel_id("WAS_DERIVED_FROM", node, vol),
                      "candidate": names.get(mid)}
    return {
        **base_row(stored),
        "id": node,
        "props": {"id": node, "name": event.name, "verdict": event.verdict,
                  "code_version": event.code_version,
                  "correlations": canonical_json([c.model_dump(mode="json") for c in event.correlations]),
                  "candidates": canonical_json(event.candidates),
                  "curriculum": canonical_json(event.curriculum),
                  "spec": canonical_json(event.spec),
                  "used_positions": [u.position for u in event.used_events],
                  "used_event_ids": [u.event_id for u in event.used_events]},
        "used": list(links.values()),
        "rel_ids": [link["rel_id"] for link in links.values()],
    }


TRAINING_INFLUENCE = f"""UNWIND $rows AS row
CALL (row) {{
  // The run's RunRecorded is in the same batch; a bare run covers the order types apply in.
  MERGE (r:Run:Activity {{id: row.run}})
    ON CREATE SET r.experiment = row.experiment, r.run_id = row.run_id,
                  r.positions = [], r.event_ids = []
  SET r.influence_every = row.every, r.influence_sha256 = row.influence_sha256,
      r.volatility_curve = row.volatility_curve
  WITH r, row
  UNWIND row.documents AS doc
  MERGE (x:Example:Entity {{id: doc.id}})
    ON CREATE SET x.example_id = doc.example_id, x.index = doc.index, x.text = doc.text,
                  {created_by("x")}
  {first_mention("x")}
  MERGE (x)-[t:TRACKED_IN {{id: doc.rel_id}}]->(r)
  SET t += doc.figures
  {track("t")}
}}
"""


def training_influence_row(stored: StoredEvent, event: TrainingInfluenceRecorded) -> Row:
    run = run_node_id(event.experiment, event.run_id)
    documents = []
    for d in event.documents:
        node = f"{run}/train/{d.index}"
        documents.append({"id": node, "example_id": f"train/{d.index}", "index": d.index, "text": d.text,
                          "rel_id": rel_id("TRACKED_IN", node, run),
                          "figures": d.model_dump(mode="json", exclude={"index", "text"})})
    return {**base_row(stored), "run": run, "experiment": event.experiment, "run_id": event.run_id,
            "every": event.every, "influence_sha256": event.influence_sha256,
            "volatility_curve": canonical_json(event.volatility_curve), "documents": documents}


HANDLERS: tuple[Handler, ...] = (
    Handler(ShiftRequested.event_type, SHIFT_REQUESTED, simple(request_row)),
    Handler(ShiftMeasured.event_type, SHIFT_MEASURED, simple(chunk_row)),
    Handler(DatasetShiftMeasured.event_type, DATASET_SHIFT_MEASURED, simple(summary_row)),
    Handler(TrainingInfluenceRecorded.event_type, TRAINING_INFLUENCE, simple(training_influence_row)),
    Handler(HypothesisTested.event_type, HYPOTHESIS_TESTED, _verdicts),
)
"""In the order a batch applies them: a verdict comes last, after what it cites."""
