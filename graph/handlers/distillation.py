"""Lens distillation: capability 4's facts in the graph.

    (:Distillation)-[:OF]->(:Dataset)-[:CONTAINS]->(:QAPair)                 (the pair set)
    (:Distillation)-[:THROUGH]->(:Lens), (:Distillation)-[:GENERATED_BY]->(:Model)
    (:Distillate)-[:PART_OF]->(:Distillation)
    (:Distillate)-[:OF]->(:QAPair), -[:THROUGH]->(:Lens), -[:GENERATED_BY]->(:Model)
    (:Distillate)-[:DUPLICATE_OF {cosine}]->(:Distillate)                    (a rejected near-copy)
    (:Cloud {generated, accepted, diversity, vendi})-[:OF]->(:QAPair), -[:PART_OF]->(:Distillation)

A Distillate is made by its DistillateGenerated and completed by its DistillateAssessed: the
two write disjoint properties (`+=`), and each distillate has one of each (their idempotency
keys), so the node is the same in any order of arrival. Dataset, QAPair and Model are shared
and keep only the event that first named them; a Lens belongs to its LensDefined and is a bare
node (name, version, empty lists) until that arrives.

DistillateGenerated and CloudAssessed name their pair by its own id, not by the pair set's
digest that the QAPair's id holds: the projector finds the QAPair through the Distillation
node, which its request (always earlier in the log, and first in a batch's order) made. So the
OF relationships of distillates and clouds are keyed by the pair as the distillation names it,
`<distillation>/<pair id>`, instead of the QAPair's id.
"""

from __future__ import annotations

from typing import Any

from events.models.distillation import (
    CloudAssessed,
    DistillateAssessed,
    DistillateGenerated,
    DistillationCompleted,
    DistillationRequested,
    LensDefined,
    pair_node_id,
)
from events.store.port import StoredEvent
from graph.handlers.common import (
    Handler,
    Row,
    bare,
    base_row,
    created_by,
    first_mention,
    merge_tracked,
    newest_head,
    rel_id,
    shared,
    simple,
    track,
)


def lens_node_id(name: str, version: str) -> str:
    return f"{name}@{version}"


def cloud_node_id(distillation: str, pair_id: str) -> str:
    return f"{distillation}/{pair_id}"


def _pair_as_named(distillation: str, pair_id: str) -> str:
    """The end of a distillate's or cloud's OF in its relationship id (see the module docstring)."""
    return f"{distillation}/{pair_id}"


def _lens_ref(name: str, version: str) -> str:
    """MERGE the Lens a row names: bare, with its name and version, until LensDefined fills it."""
    return (f"MERGE (l:Lens:Entity {{id: {name} + '@' + {version}}})\n"
            f"    ON CREATE SET l.name = {name}, l.version = {version}, l.positions = [], l.event_ids = []")


def _model_ref(model: str) -> str:
    return f"""MERGE (mo:Model {{id: {model}}})
    ON CREATE SET mo.name = {model}, {created_by("mo")}
  {first_mention("mo")}"""


LENS_DEFINED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("l", "(l:Lens:Entity {id: row.id})", then=False)}}}
"""

DISTILLATION_REQUESTED = f"""UNWIND $rows AS row
CALL (row) {{
MERGE (r:Distillation:Activity {{id: row.id}})
SET r += row.props
{track("r")}
WITH r, row
CALL (r, row) {{
  {shared("d", "(d:Dataset:Entity {id: row.dataset.id})", "row.dataset")}
  {merge_tracked("of", "(r)-[of:OF {id: row.of_id}]->(d)")}
  WITH d, row
  UNWIND row.pairs AS pair
  {shared("q", "(q:QAPair:Entity {id: pair.props.id})", "pair.props")}
  MERGE (d)-[c:CONTAINS {{id: pair.rel_id}}]->(q)
    ON CREATE SET {created_by("c")}
  {first_mention("c")}
}}
CALL (r, row) {{
  UNWIND row.lenses AS lens
  {_lens_ref("lens.name", "lens.version")}
  {merge_tracked("th", "(r)-[th:THROUGH {id: lens.rel_id}]->(l)")}
}}
CALL (r, row) {{
  {_model_ref("row.model")}
  {merge_tracked("gb", "(r)-[gb:GENERATED_BY {id: row.model_rel_id}]->(mo)")}
}}
}}
"""

DISTILLATE_GENERATED = f"""UNWIND $rows AS row
CALL (row) {{
MERGE (x:Distillate:Entity {{id: row.id}})
SET x += row.props
{track("x")}
WITH x, row
CALL (x, row) {{
  // The request made the Distillation and its QAPairs; without it (a log that lost it) the
  // distillate stands alone.
  MATCH (r:Distillation {{id: row.distillation}})
  {merge_tracked("po", "(x)-[po:PART_OF {id: row.part_of_id}]->(r)")}
  WITH x, r, row
  MATCH (q:QAPair {{id: r.pair_prefix + row.pair_id}})
  {merge_tracked("of", "(x)-[of:OF {id: row.of_id}]->(q)")}
}}
CALL (x, row) {{
  {_lens_ref("row.props.lens", "row.props.lens_version")}
  {merge_tracked("th", "(x)-[th:THROUGH {id: row.through_id}]->(l)")}
}}
CALL (x, row) {{
  {_model_ref("row.props.model")}
  {merge_tracked("gb", "(x)-[gb:GENERATED_BY {id: row.model_rel_id}]->(mo)")}
}}
}}
"""

DISTILLATE_ASSESSED = f"""UNWIND $rows AS row
CALL (row) {{
{bare("x", "(x:Distillate:Entity {id: row.id})")}
SET x += row.props
{track("x")}
WITH x, row
CALL (x, row) {{
  UNWIND row.duplicates AS dup
  {bare("o", "(o:Distillate:Entity {id: dup.id})")}
  MERGE (x)-[du:DUPLICATE_OF {{id: dup.rel_id}}]->(o)
  SET du.cosine = dup.cosine
  {track("du")}
}}
}}
"""

CLOUD_ASSESSED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("c", "(c:Cloud:Entity {id: row.id})")}
CALL (c, row) {{
  MATCH (r:Distillation {{id: row.props.distillation_id}})
  {merge_tracked("po", "(c)-[po:PART_OF {id: row.part_of_id}]->(r)")}
  WITH c, r, row
  MATCH (q:QAPair {{id: r.pair_prefix + row.props.pair_id}})
  {merge_tracked("of", "(c)-[of:OF {id: row.of_id}]->(q)")}
}}
}}
"""

DISTILLATION_COMPLETED = f"""UNWIND $rows AS row
CALL (row) {{
MERGE (r:Distillation:Activity {{id: row.id}})
SET r += row.props
{track("r")}
}}
"""


def _present(props: dict[str, Any]) -> dict[str, Any]:
    """Neo4j stores no nulls (`+=` with a null removes the property): leave them out."""
    return {k: v for k, v in props.items() if v is not None}


def lens_row(stored: StoredEvent, event: LensDefined) -> Row:
    lens = event.lens
    node = lens_node_id(lens.name, event.version)
    return {**base_row(stored), "id": node, "props": {
        "id": node, "name": lens.name, "version": event.version, "family": lens.family,
        "description": lens.description, "system": lens.system, "template": lens.template,
        "temperature": lens.sampling.temperature, "top_p": lens.sampling.top_p,
        "max_tokens": lens.sampling.max_tokens, "keeps_answer": lens.keeps.answer,
        "min_chars": lens.keeps.min_chars, "max_chars": lens.keeps.max_chars, "origin": event.origin}}


def request_row(stored: StoredEvent, event: DistillationRequested) -> Row:
    did = event.distillation_id
    ps = event.pair_set
    checks = event.checks
    pairs = []
    for index, pair in enumerate(event.pairs):
        node = pair_node_id(ps.sha256, pair.id)
        pairs.append({"props": {"id": node, "pair_id": pair.id, "pair_set": ps.sha256, "index": index,
                                "question": pair.question, "answer": pair.answer, "context": pair.context,
                                "known_answer": pair.known_answer},
                      "rel_id": rel_id("CONTAINS", ps.sha256, node)})
    lenses = [{"name": ref.name, "version": ref.version,
               "rel_id": rel_id("THROUGH", did, lens_node_id(ref.name, ref.version))}
              for ref in event.lenses]
    return {
        **base_row(stored),
        "id": did,
        "props": {"id": did, "pair_set": ps.sha256, "pair_set_name": ps.name,
                  # pair_node_id(sha, id) is this prefix and the id: what DistillateGenerated rows join on.
                  "pair_prefix": pair_node_id(ps.sha256, ""), "pairs": len(event.pairs),
                  "lenses": [lens_node_id(ref.name, ref.version) for ref in event.lenses],
                  "samples": event.samples, "engine": event.engine, "model": event.model,
                  "base_url": event.base_url, "batch_pairs": event.batch_pairs,
                  "embedder": checks.embedder, "min_similarity": checks.min_similarity,
                  "duplicate_cosine": checks.duplicate_cosine},
        "dataset": {"id": ps.sha256, "name": ps.name, "path": ps.path, "kind": ps.kind, "pairs": ps.pairs},
        "of_id": rel_id("OF", did, ps.sha256),
        "pairs": pairs,
        "lenses": lenses,
        "model": event.model,
        "model_rel_id": rel_id("GENERATED_BY", did, event.model),
    }


def distillate_row(stored: StoredEvent, event: DistillateGenerated) -> Row:
    node = event.distillate_id
    did = event.distillation_id
    usage = event.usage
    return {
        **base_row(stored),
        "id": node,
        "distillation": did,
        "pair_id": event.pair_id,
        "props": _present({
            "id": node, "distillation_id": did, "pair_id": event.pair_id, "lens": event.lens,
            "lens_version": event.lens_version, "sample": event.sample, "engine": event.engine,
            "model": event.model, "temperature": event.sampling.temperature, "top_p": event.sampling.top_p,
            "max_tokens": event.sampling.max_tokens, "request_sha256": event.request_sha256,
            "text": event.text, "finish_reason": event.finish_reason,
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "latency_s": usage.latency_s, "attempts": usage.attempts, "cached": usage.cached}),
        "part_of_id": rel_id("PART_OF", node, did),
        "of_id": rel_id("OF", node, _pair_as_named(did, event.pair_id)),
        "through_id": rel_id("THROUGH", node, lens_node_id(event.lens, event.lens_version)),
        "model_rel_id": rel_id("GENERATED_BY", node, event.model),
    }


def assessment_row(stored: StoredEvent, event: DistillateAssessed) -> Row:
    node = event.distillate_id
    duplicates = []
    if event.duplicate_of is not None:
        duplicates.append({"id": event.duplicate_of, "cosine": event.duplicate_cosine,
                           "rel_id": rel_id("DUPLICATE_OF", node, event.duplicate_of)})
    return {
        **base_row(stored),
        "id": node,
        "props": _present({
            "accepted": event.accepted, "reasons": list(event.reasons),
            "answer_present": event.answer_present, "similarity": event.similarity, "chars": event.chars,
            "duplicate_of": event.duplicate_of, "duplicate_cosine": event.duplicate_cosine,
            "embedding_sha256": event.embedding_sha256}),
        "duplicates": duplicates,
    }


def cloud_row(stored: StoredEvent, event: CloudAssessed) -> Row:
    did = event.distillation_id
    node = cloud_node_id(did, event.pair_id)
    return {
        **base_row(stored),
        "id": node,
        "props": {"id": node, "distillation_id": did, "pair_id": event.pair_id,
                  "generated": event.generated, "accepted": event.accepted,
                  "diversity": event.diversity, "vendi": event.vendi},
        "part_of_id": rel_id("PART_OF", node, did),
        "of_id": rel_id("OF", node, _pair_as_named(did, event.pair_id)),
    }


def completed_row(stored: StoredEvent, event: DistillationCompleted) -> Row:
    return {**base_row(stored), "id": event.distillation_id, "props": {
        "completed": True, "distillates": event.distillates, "accepted": event.accepted,
        "requests": event.requests, "cached": event.cached, "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens}}


HANDLERS: tuple[Handler, ...] = (
    Handler(LensDefined.event_type, LENS_DEFINED, simple(lens_row)),
    Handler(DistillationRequested.event_type, DISTILLATION_REQUESTED, simple(request_row)),
    Handler(DistillateGenerated.event_type, DISTILLATE_GENERATED, simple(distillate_row)),
    Handler(DistillateAssessed.event_type, DISTILLATE_ASSESSED, simple(assessment_row)),
    Handler(CloudAssessed.event_type, CLOUD_ASSESSED, simple(cloud_row)),
    Handler(DistillationCompleted.event_type, DISTILLATION_COMPLETED, simple(completed_row)),
)
"""In the order a batch applies them: the request before the distillates that join through it,
a distillate before its assessment."""
