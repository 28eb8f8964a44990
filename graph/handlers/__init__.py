"""Event type → Cypher: one module per area, and the registry the projector applies in order.

`common` holds the rules every statement keeps (see its docstring); `runs` the facts of
runs, scores and rankings; `shift` the facts of shift measurements and hypothesis verdicts;
`distillation` lenses, distillations, distillates, their assessments and clouds; `judging` an
LLM judge's reliability figures.
"""

from __future__ import annotations

from events.models import BenchmarkScored, RankingDerived, RunRecorded, SourceCited
from events.models.experiments import ExperimentDeclared, RunCompleted, RunFailed
from graph.handlers import distillation, judging, shift
from graph.handlers.common import (
    HUB_STATEMENTS,
    RELATIONSHIP_NAMESPACE,
    Fast,
    Handler,
    Lookup,
    Row,
    parameter_value_id,
    rel_id,
    run_node_id,
    score_node_id,
    simple,
)
from graph.handlers.runs import (
    BENCHMARK_SCORED,
    BENCHMARK_SCORED_NEW,
    EXPERIMENT_DECLARED,
    RANKING_DERIVED,
    RANKING_DERIVED_NEW,
    RUN_ENDED,
    RUN_RECORDED,
    RUN_RECORDED_NEW,
    SOURCE_CITED,
    _rankings,
    design_row,
    outcome_row,
    ranking_hubs,
    ranking_is_plain,
    ranking_row,
    run_hubs,
    run_row,
    score_hubs,
    score_row,
    source_row,
)

# In the order a batch applies them. Types only ever meet on shared nodes (made identical
# whatever the order, see first_mention) and on bare nodes that the owning type fills in
# (a score's run, a run's source); rankings come last so the runs and scores they cite exist.
HANDLERS: dict[str, Handler] = {
    h.event_type: h
    for h in (
        Handler(SourceCited.event_type, SOURCE_CITED, simple(source_row)),
        Handler(RunRecorded.event_type, RUN_RECORDED, simple(run_row),
                Fast("Run", RUN_RECORDED_NEW, run_hubs)),
        Handler(BenchmarkScored.event_type, BENCHMARK_SCORED, simple(score_row),
                Fast("Score", BENCHMARK_SCORED_NEW, score_hubs)),
        Handler(ExperimentDeclared.event_type, EXPERIMENT_DECLARED, simple(design_row)),
        Handler(RunCompleted.event_type, RUN_ENDED, simple(outcome_row)),
        Handler(RunFailed.event_type, RUN_ENDED, simple(outcome_row)),
        Handler(RankingDerived.event_type, RANKING_DERIVED, _rankings,
                Fast("Ranking", RANKING_DERIVED_NEW, ranking_hubs, ranking_is_plain)),
        *shift.HANDLERS,
        *distillation.HANDLERS,
        *judging.HANDLERS,
    )
}
"""Event types the graph projects; every other type is another capability's fact and skipped."""

__all__ = [
    "HANDLERS",
    "HUB_STATEMENTS",
    "RELATIONSHIP_NAMESPACE",
    "Fast",
    "Handler",
    "Lookup",
    "Row",
    "parameter_value_id",
    "ranking_row",
    "rel_id",
    "run_node_id",
    "run_row",
    "score_node_id",
]
