"""`knobs audit VERDICT`: a hypothesis verdict traced down to the per-example measurements.

The log is the authority. The verdict names the data-set summaries it read; each summary
names its chunk events; each chunk holds the per-example gradient norms. The audit checks
every reference (position and event id), recomputes each candidate's volatility from the
chunks' grad_norm values and compares it with the summary's, verifies the hash chain, and
compares the graph's links from the verdict with the event's list.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from events.models.rankings import UsedEvent
from events.models.shift import DatasetShiftMeasured, HypothesisTested
from events.store import StoredEvent
from services.core.context import Context
from services.core.errors import NotFound
from services.queries.named import run_named

TOLERANCE = 1e-9


def verdict_stream(test_id: str) -> str:
    return f"hypothesis:{test_id}"


def is_verdict(ctx: Context, test_id: str) -> bool:
    return bool(ctx.store().read_stream(verdict_stream(test_id)))


def _ref(e: StoredEvent) -> dict[str, Any]:
    return {"position": e.position, "event_id": e.event_id, "event_type": e.event_type, "hash": e.hash}


def _resolve(ctx: Context, refs: list[UsedEvent], problems: list[str], what: str) -> list[StoredEvent]:
    found = {e.position: e for e in ctx.store().read_positions(sorted(r.position for r in refs))}
    out = []
    for r in refs:
        hit = found.get(r.position)
        if hit is None or hit.event_id != r.event_id:
            problems.append(f"{what} position {r.position}: expected event {r.event_id}, found "
                            + (hit.event_id if hit else "nothing"))
        else:
            out.append(hit)
    return out


def audit_verdict(ctx: Context, test_id: str) -> dict[str, Any]:
    stream = ctx.store().read_stream(verdict_stream(test_id))
    if not stream:
        raise NotFound(f"no verdict {test_id!r} in the log; list them with `knobs shift verdicts`")
    stored = stream[-1]
    verdict = stored.decode()
    assert isinstance(verdict, HypothesisTested)
    problems: list[str] = []
    candidates: list[dict[str, Any]] = []
    chunk_events = 0
    names = {str(c.get("measurement_id")): c for c in verdict.candidates}
    for summary_event in _resolve(ctx, verdict.used_events, problems, "summary"):
        summary = summary_event.decode()
        if not isinstance(summary, DatasetShiftMeasured):
            problems.append(f"position {summary_event.position} is a {summary_event.event_type}, "
                            "not a DatasetShiftMeasured")
            continue
        chunks = _resolve(ctx, summary.used_events, problems, f"measurement {summary.measurement_id} chunk")
        norms = [float(x["grad_norm"]) for c in sorted(chunks, key=lambda c: int(c.data["chunk"]))
                 for x in c.data["examples"]]
        mean = statistics.fmean(norms) if norms else 0.0
        recomputed = statistics.pstdev(norms) / mean if mean else 0.0
        if len(norms) != summary.figures.examples:
            problems.append(f"measurement {summary.measurement_id}: chunks hold {len(norms)} examples, "
                            f"the summary says {summary.figures.examples}")
        elif not math.isclose(recomputed, summary.figures.volatility, rel_tol=TOLERANCE, abs_tol=TOLERANCE):
            problems.append(f"measurement {summary.measurement_id}: volatility recomputed from its chunks "
                            f"is {recomputed!r}, the summary says {summary.figures.volatility!r}")
        claimed = names.get(summary.measurement_id, {})
        stated = float(claimed.get("volatility", math.nan))
        if claimed and not math.isclose(stated, summary.figures.volatility, rel_tol=TOLERANCE,
                                        abs_tol=TOLERANCE):
            problems.append(f"candidate {claimed.get('name')}: the verdict's table says volatility "
                            f"{claimed.get('volatility')}, its measurement {summary.figures.volatility}")
        chunk_events += len(chunks)
        candidates.append({
            "candidate": claimed.get("name"),
            "measurement_id": summary.measurement_id,
            "volatility": summary.figures.volatility,
            "volatility_recomputed": recomputed,
            "examples": len(norms),
            "summary": _ref(summary_event),
            "chunks": [_ref(c) for c in chunks],
        })
    chain = ctx.store().verify()
    return {
        "verdict": {"test_id": verdict.test_id, "name": verdict.name, "verdict": verdict.verdict,
                    "correlations": [c.model_dump(mode="json") for c in verdict.correlations],
                    "code_version": verdict.code_version, "event": _ref(stored)},
        "candidates": candidates,
        "events_used": len(verdict.used_events) + chunk_events,
        "problems": problems,
        "chain": {"ok": chain.ok, "checked": chain.checked, "first_bad_position": chain.first_bad_position,
                  "reason": chain.reason},
        "graph": _graph_links(ctx, verdict, candidates),
    }


def _graph_links(ctx: Context, verdict: HypothesisTested, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    ctx.catch_up()
    rows = run_named(ctx, "shift_verdict_provenance", verdict=verdict.test_id)
    in_graph = sorted(str(r["measurement_id"]) for r in rows)
    in_log = sorted(str(c["measurement_id"]) for c in candidates)
    return {"agrees": in_graph == in_log, "measurements_in_graph": in_graph, "measurements_in_log": in_log}


def render_verdict_audit(trail: dict[str, Any]) -> str:
    v = trail["verdict"]
    lines = [f"verdict {v['test_id']} ({v['name']}): {v['verdict']}, HypothesisTested at position "
             f"{v['event']['position']} (hash {v['event']['hash'][:12]})"]
    for c in v["correlations"]:
        ci = c["ci"]
        interval = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "n/a"
        rho = "n/a" if c["spearman"] is None else f"{c['spearman']:+.3f}"
        lines.append(f"  {c['outcome']}: spearman {rho}, 95% bootstrap {interval}, expected sign "
                     f"{c['expected_sign']:+d} -> {c['verdict']}")
    lines.append("derived from:")
    for c in trail["candidates"]:
        chunks = c["chunks"]
        span = f"{chunks[0]['position']}..{chunks[-1]['position']}" if chunks else "none"
        lines.append(f"  {c['candidate']}: volatility {c['volatility']:.4f} (recomputed "
                     f"{c['volatility_recomputed']:.4f}) from {c['examples']} examples; summary at "
                     f"{c['summary']['position']}, {len(chunks)} chunk events at {span}")
    chain = trail["chain"]
    lines.append(f"hash chain: {'ok' if chain['ok'] else 'BROKEN'} ({chain['checked']} events checked)")
    graph = trail["graph"]
    lines.append(f"graph: {'agrees with the log' if graph['agrees'] else 'DISAGREES with the log'}")
    lines += [f"problem: {p}" for p in trail["problems"]]
    return "\n".join(lines)
