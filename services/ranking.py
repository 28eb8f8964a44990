"""Rank the knobs of an experiment on a benchmark, and record the ranking as an event.

The numbers come from the graph (after the projector has caught up with the log); the
RankingDerived event lists exactly the RunRecorded and BenchmarkScored events behind them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from events.canonical import canonical_json
from events.models import ParameterRanking, RankingDerived, UsedEvent, ValueEffect
from events.store import NewEvent, StoredEvent
from services.analysis.ofat import Observation, OfatResult, analyse
from services.context import Context
from services.errors import BadInput, NotFound
from services.graph_queries import run_named
from services.version import code_version

RANKING_NAMESPACE = uuid.UUID("0b9a4f0e-2f51-4f7d-8d0a-5d1e7f3c9a20")
METHOD = "ofat"


@dataclass(frozen=True)
class RankingOutcome:
    ranking: RankingDerived
    position: int
    duplicate: bool
    result: OfatResult

    def public(self) -> dict[str, Any]:
        """The `knobs rank --json` object."""
        r = self.ranking
        return {
            "ranking_id": r.ranking_id,
            "experiment": r.experiment,
            "benchmark": r.benchmark,
            "method": r.method,
            "baseline": r.baseline,
            "baseline_runs": r.baseline_runs,
            "baseline_mean": r.baseline_mean,
            "as_of": r.as_of,
            "position": self.position,
            "code_version": r.code_version,
            "parameters": [
                {
                    "name": p.name,
                    "rank": p.rank,
                    "influence_range": list(p.influence_range),
                    "values": [
                        {"value": v.value, "mean": v.mean, "effect": v.effect,
                         "ci": list(v.ci) if v.ci else None, "n": v.n,
                         "baseline": v.is_baseline, "runs": v.runs, "cost": v.cost}
                        for v in p.values
                    ],
                }
                for p in r.parameters
            ],
            "not_varied_alone": list(self.result.not_varied_alone),
            "excluded_runs": r.excluded_runs,
            "used_events": len(r.used_events),
        }


def rank(ctx: Context, experiment: str, benchmark: str, baseline_run: str | None = None) -> RankingOutcome:
    ctx.catch_up()
    rows = run_named(ctx, "runs_for_benchmark", experiment=experiment, benchmark=benchmark)
    if not rows:
        _explain_empty(ctx, experiment, benchmark)
    observations = [_observation(row) for row in rows]
    baseline = None
    if baseline_run is not None:
        match = [o for o in observations if o.run_id == baseline_run]
        if not match:
            known = ", ".join(sorted(o.run_id for o in observations)[:20])
            raise NotFound(
                f"run {baseline_run!r} has no {benchmark!r} score in experiment {experiment!r}; "
                f"runs with one: {known}"
            )
        baseline = dict(match[0].params)
    result = analyse(observations, baseline)
    # The newest event among everything the analysis looked at (used or left out): a
    # function of the evidence, not of when it ran, so re-ranking the same evidence yields
    # the identical fact, and events appended since (rankings, other experiments) don't matter.
    as_of = max(p for o in observations for p in o.positions)
    used = _used_events(ctx, observations, set(result.used_runs), benchmark)
    settings: dict[str, Any] = {"baseline_run": baseline_run, "ci_level": 0.95}
    identity = canonical_json({
        "experiment": experiment, "benchmark": benchmark, "method": METHOD,
        "settings": settings, "used": [u.event_id for u in used], "code": code_version(),
    })
    ranking_id = str(uuid.uuid5(RANKING_NAMESPACE, identity))
    ranking = RankingDerived(
        ranking_id=ranking_id,
        experiment=experiment,
        benchmark=benchmark,
        method=METHOD,
        settings=settings,
        baseline=result.baseline,
        baseline_runs=list(result.baseline_runs),
        baseline_mean=result.baseline_mean,
        code_version=code_version(),
        as_of=as_of,
        used_events=used,
        parameters=[
            ParameterRanking(
                name=p.name, rank=p.rank, influence_range=p.influence_range,
                values=[ValueEffect(value=v.value, mean=v.mean, effect=v.effect, ci=v.ci, n=v.n,
                                    runs=list(v.runs), is_baseline=v.is_baseline, cost=dict(v.cost))
                        for v in p.values],
            )
            for p in result.parameters
        ],
        excluded_runs=list(result.excluded_runs),
    )
    key = f"ranking:{ranking_id}"
    [appended] = ctx.store().append(
        [NewEvent(event=ranking, event_id=uuid.uuid5(RANKING_NAMESPACE, key), idempotency_key=key)]
    )
    if appended.duplicate:
        # The same evidence ranked by the same code: the stored fact stands (with its as_of).
        stored = ctx.store().read_positions([appended.position])[0].decode()
        assert isinstance(stored, RankingDerived)
        ranking = stored
    ctx.catch_up()
    return RankingOutcome(ranking, appended.position, appended.duplicate, result)


def _observation(row: dict[str, Any]) -> Observation:
    return Observation(
        run_id=row["run_id"],
        params=dict(row["params"] or {}),
        score=float(row["value"]),
        seed=row.get("seed"),
        positions=tuple(sorted(set(row.get("run_positions") or []) | set(row.get("score_positions") or []))),
        costs=dict(row.get("costs") or {}),
    )


def _used_events(
    ctx: Context, observations: list[Observation], used_runs: set[str], benchmark: str
) -> list[UsedEvent]:
    """The RunRecorded and BenchmarkScored events that set the values the analysis used.

    When a run or score was recorded more than once (a corrected import), the latest event
    is the one whose value the graph holds, so it is the one listed.
    """
    positions = sorted({p for o in observations if o.run_id in used_runs for p in o.positions})
    latest: dict[tuple[str, str], StoredEvent] = {}
    for stored in ctx.store().read_positions(positions):
        run_id = stored.data.get("run_id")
        if run_id not in used_runs:
            continue
        if stored.event_type == "RunRecorded":
            latest[("run", run_id)] = stored
        elif stored.event_type == "BenchmarkScored" and stored.data.get("benchmark") == benchmark:
            latest[("score", run_id)] = stored
    missing = [r for r in used_runs if ("run", r) not in latest or ("score", r) not in latest]
    if missing:
        raise BadInput(
            f"the graph and the log disagree about runs {sorted(missing)[:5]}: "
            "rebuild the graph with `knobs graph rebuild`"
        )
    return [UsedEvent(position=s.position, event_id=s.event_id)
            for s in sorted(latest.values(), key=lambda s: s.position)]


def _explain_empty(ctx: Context, experiment: str, benchmark: str) -> None:
    experiments = {row["name"]: row for row in run_named(ctx, "experiments")}
    if experiment not in experiments:
        known = ", ".join(sorted(experiments)) or "none yet (import some with `knobs import results`)"
        raise NotFound(f"no experiment named {experiment!r}; experiments: {known}")
    benchmarks = experiments[experiment].get("benchmarks") or []
    raise NotFound(
        f"experiment {experiment!r} has no scores on benchmark {benchmark!r}; "
        f"its benchmarks: {', '.join(sorted(benchmarks)) or 'none'}"
    )
