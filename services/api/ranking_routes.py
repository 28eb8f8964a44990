"""`/v1/rankings`: rank an experiment's knobs (recorded as RankingDerived) and audit a ranking."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import ContextDep, ReadScope, WriteScope
from services.api.schemas import RankIn
from services.ranking.audit import audit
from services.ranking.rank import RankOptions, rank
from services.ranking.recorded import ranking_public

router = APIRouter(prefix="/v1")


@router.post("/rankings", status_code=201)
def post_ranking(body: RankIn, ctx: ContextDep, _: WriteScope) -> dict[str, object]:
    options = RankOptions(baseline_run=body.baseline, method=body.method, as_of=body.as_of,
                          without=tuple(body.without), direction=body.direction,
                          bootstrap_seed=body.seed)
    return rank(ctx, body.experiment, body.benchmark, options=options).public()


@router.get("/rankings/{ranking_id}")
def get_ranking(ranking_id: str, ctx: ContextDep, _: ReadScope) -> dict[str, object]:
    """The recorded RankingDerived (every ranking figure is drawn from it), with its log position and hash."""
    return ranking_public(ctx, ranking_id)


@router.get("/rankings/{ranking_id}/audit")
def get_audit(ranking_id: str, ctx: ContextDep, _: ReadScope) -> dict[str, object]:
    return audit(ctx, ranking_id)
