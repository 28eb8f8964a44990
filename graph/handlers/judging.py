"""An LLM judge's reliability in the graph: one node per judgement, beside what it judged.

    (:Judgement)-[:ABOUT]->(:Experiment)
    (:Judgement)-[:JUDGED]->(:Run)          (every run it graded)

The per-run scores are ordinary BenchmarkScored facts (benchmark qa_judge_accuracy), projected
as every score is; the Judgement node carries the figures that say what those scores are worth.
"""

from __future__ import annotations

from typing import Any

from events.canonical import canonical_json
from events.models.judging import JudgeReliabilityMeasured
from events.store.port import StoredEvent
from graph.handlers.common import (
    Handler,
    Row,
    base_row,
    created_by,
    first_mention,
    merge_tracked,
    newest_head,
    rel_id,
    run_node_id,
    simple,
)

JUDGE_RELIABILITY_MEASURED = f"""UNWIND $rows AS row
CALL (row) {{
{newest_head("j", "(j:Judgement:Entity {id: row.id})")}
CALL (j, row) {{
  MERGE (e:Experiment {{id: row.props.experiment}})
    ON CREATE SET e.name = row.props.experiment, {created_by("e")}
  {first_mention("e")}
  {merge_tracked("ab", "(j)-[ab:ABOUT {id: row.about_id}]->(e)")}
}}
CALL (j, row) {{
  UNWIND row.runs AS run
  // A judgement names completed runs, recorded earlier in the log: a bare node only guards a
  // log that lost them.
  MERGE (r:Run:Activity {{id: run.id}})
    ON CREATE SET r.experiment = row.props.experiment, r.run_id = run.run_id,
                  r.positions = [], r.event_ids = []
  {merge_tracked("ju", "(j)-[ju:JUDGED {id: run.rel_id}]->(r)")}
}}
}}
"""

SCALARS = ("experiment", "judge_model", "judge_host", "prompt_version", "items", "judgements",
           "agreement_with_exact_match", "kappa", "self_agreement", "position_pairs",
           "position_consistency", "first_position_share", "unparsable", "seconds", "requests", "cached",
           "prompt_tokens", "completion_tokens")


def judgement_row(stored: StoredEvent, event: JudgeReliabilityMeasured) -> Row:
    node = event.judgement_id
    props: dict[str, Any] = {"id": node, **{k: getattr(event, k) for k in SCALARS},
                             "settings": canonical_json(event.settings),
                             "by_kind": canonical_json({k: v.model_dump() for k, v in event.by_kind.items()}),
                             "exact_match": canonical_json(event.exact_match)}
    runs = [{"id": run, "run_id": r, "rel_id": rel_id("JUDGED", node, run)}
            for r in event.runs for run in [run_node_id(event.experiment, r)]]
    return {**base_row(stored), "id": node, "about_id": rel_id("ABOUT", node, event.experiment),
            "props": {k: v for k, v in props.items() if v is not None}, "runs": runs}


HANDLERS = (Handler(JudgeReliabilityMeasured.event_type, JUDGE_RELIABILITY_MEASURED, simple(judgement_row)),)
