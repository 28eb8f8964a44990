"""`knobs export json`: the same facts as the notes vault, as one JSON document for programs.

Deterministic: sorted keys, sorted lists, dates from the log, so the same log gives the same
bytes and two exports can be diffed.
"""

from __future__ import annotations

import json
import math
from typing import Any

from services.core.context import Context
from services.export.snapshot import Snapshot, build

FORMAT = "knobs-export"
VERSION = 1


def _dates(snap: Snapshot, span: tuple[int, int] | None) -> dict[str, Any]:
    dates = snap.dates(span)
    return {
        "created": dates[0] if dates else None,
        "updated": dates[1] if dates else None,
        "log_span": list(span) if span else None,
    }


def document(snap: Snapshot) -> dict[str, Any]:
    """The export as a JSON-able dict: {"format", "version", "log_head", "experiments", ...}."""
    experiments = [
        {
            "name": e.name,
            "runs": e.runs,
            "scored_runs": len(e.run_facts),
            "scores": e.scores,
            "benchmarks": list(e.benchmarks),
            "parameters": list(e.parameters),
            "datasets": list(e.datasets),
            "sources": [
                {"source_id": sid,
                 "citation": snap.sources[sid].citation if sid in snap.sources else None,
                 "position": snap.sources[sid].event.position if sid in snap.sources else None}
                for sid in e.sources
            ],
            "design": None if e.design is None or e.design_event is None else {
                "executor": e.design.executor,
                "method": e.design.design,
                "spec": e.design.spec,
                "spec_sha256": e.design.spec_sha256,
                "planned_runs": len(e.design.run_ids),
                "benchmarks": e.design.benchmarks,
                "estimated_cost": e.design.estimated_cost,
                "event": e.design_event.public(),
            },
            "rankings": [r.ranking.ranking_id for r in e.rankings],
            **_dates(snap, e.span),
        }
        for e in snap.experiments
    ]
    parameters = [
        {
            "name": p.name,
            "experiments": list(p.experiments),
            "scored_runs": p.runs,
            "values": {exp: list(values) for exp, values in p.values},
            "rankings": [
                {
                    "ranking_id": e.ranking.ranking_id,
                    "experiment": e.ranking.experiment,
                    "benchmark": e.ranking.benchmark,
                    "method": e.ranking.method,
                    "rank": pr.rank,
                    "of": len(e.ranking.parameters),
                    "statistic": pr.statistic,
                    "influence_range": list(pr.influence_range),
                    "noise": pr.noise.model_dump(mode="json") if pr.noise else None,
                    "knee": pr.knee.model_dump(mode="json") if pr.knee else None,
                    "flags": [f.model_dump(mode="json") for f in pr.flags],
                }
                for e, pr in p.rankings
            ],
            **_dates(snap, p.span),
        }
        for p in snap.parameters
    ]
    benchmarks = [
        {
            "name": b.name,
            "direction": b.direction,
            "experiments": list(b.experiments),
            "scores": b.scores,
            "rankings": [r.ranking.ranking_id for r in b.rankings],
            **_dates(snap, b.span),
        }
        for b in snap.benchmarks
    ]
    datasets = [
        {"name": d.name, "parameters": list(d.knobs), "experiments": dict(d.experiments),
         **_dates(snap, d.span)}
        for d in snap.datasets
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "log_head": snap.log_head,
        "experiments": experiments,
        "parameters": parameters,
        "benchmarks": benchmarks,
        "datasets": datasets,
        "rankings": [r.public() for r in snap.rankings],
    }


def finite(value: Any) -> Any:
    """`value` with NaN and infinities as null: JSON has no such numbers, and strict parsers refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(doc: dict[str, Any]) -> str:
    """Sorted keys, two-space indent, a final newline: stable bytes for diffs."""
    return json.dumps(finite(doc), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def export_json(ctx: Context) -> str:
    """The export document, as text."""
    return dumps(document(build(ctx)))
