"""Rankings as they were recorded: one RankingDerived read back from the log by id, and which
ranking is current per benchmark of an experiment (the `rankings` named query's `latest`).
Nothing is recomputed: a page or a figure shows exactly what the ranking event says."""

from __future__ import annotations

from typing import Any

from events.models.rankings import RankingDerived
from events.store import StoredEvent
from services.core.context import Context
from services.core.errors import NotFound
from services.queries.named import run_named


def recorded_ranking(ctx: Context, ranking_id: str) -> tuple[StoredEvent, RankingDerived]:
    stream = ctx.store().read_stream(f"ranking:{ranking_id}")
    if not stream:
        raise NotFound(f"no ranking {ranking_id!r} in the log; list rankings with `knobs events --type "
                       "RankingDerived` or GET /v1/rankings")
    ranking = stream[-1].decode()
    assert isinstance(ranking, RankingDerived)
    return stream[-1], ranking


def ranking_public(ctx: Context, ranking_id: str) -> dict[str, Any]:
    """The recorded event as JSON (what every ranking figure is drawn from), with its place in the log."""
    stored, ranking = recorded_ranking(ctx, ranking_id)
    return {**ranking.model_dump(mode="json", exclude={"used_events"}), "position": stored.position,
            "event_id": str(stored.event_id), "hash": stored.hash,
            "used_events": [u.model_dump(mode="json") for u in ranking.used_events]}


def latest_rankings(ctx: Context, experiment: str | None = None) -> list[dict[str, Any]]:
    """The current ranking of each (experiment, benchmark, method), newest first."""
    return [row for row in all_rankings(ctx, experiment) if row["latest"]]


def all_rankings(ctx: Context, experiment: str | None = None) -> list[dict[str, Any]]:
    return run_named(ctx, "rankings", experiment=experiment, benchmark=None, method=None)


def current_by_benchmark(ctx: Context, experiment: str,
                         method: str | None = None) -> dict[str, RankingDerived]:
    """The ranking a matrix shows for each benchmark of an experiment, read back from the log: as
    the `knobs_matrix` query picks it (what-if rankings left out, then the newest evidence, ties to
    the one recorded last), among the current rankings of `method` or of any method."""
    rows = [r for r in latest_rankings(ctx, experiment) if method is None or r["method"] == method]
    chosen: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = chosen.get(row["benchmark"])
        if held is None or (row["as_of"], row["position"]) > (held["as_of"], held["position"]):
            chosen[row["benchmark"]] = row
    return {b: recorded_ranking(ctx, chosen[b]["ranking_id"])[1] for b in sorted(chosen)}
