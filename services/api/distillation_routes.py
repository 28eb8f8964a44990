"""`GET /v1/...` routes about lens distillation: lenses by survival and by the diversity they add,
the cloud of one pair, and which model produced which distillates."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import ContextDep, ReadScope, SettingsDep
from services.api.queries_routes import AnswerPublic, named_answer

router = APIRouter(prefix="/v1", tags=["lens distillation"])


@router.get("/lenses/survival", response_model=AnswerPublic)
def get_lenses_by_survival(ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                           distillation: str | None = None) -> AnswerPublic:
    """Lens versions by the share of their assessed distillates accepted, with the reasons the
    others were dropped (distillation_lenses_by_survival)."""
    return named_answer(ctx, settings, "distillation_lenses_by_survival", {"distillation": distillation})


@router.get("/lenses/diversity", response_model=AnswerPublic)
def get_lenses_by_diversity(ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                            distillation: str | None = None) -> AnswerPublic:
    """Lens versions by the diversity they add to clouds: new distillates and their distance from
    the source (distillation_lenses_by_diversity)."""
    return named_answer(ctx, settings, "distillation_lenses_by_diversity", {"distillation": distillation})


@router.get("/pairs/{pair}/cloud", response_model=AnswerPublic)
def get_pair_cloud(pair: str, ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                   distillation: str | None = None) -> AnswerPublic:
    """Every distillate of one pair (its own id, or its QAPair id), with lens, verdict, text and
    its cloud's diversity (distillation_pair_cloud)."""
    return named_answer(ctx, settings, "distillation_pair_cloud",
                        {"pair": pair, "distillation": distillation})


@router.get("/distillation/models", response_model=AnswerPublic)
def get_distillation_models(ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                            distillation: str | None = None) -> AnswerPublic:
    """Which model (and engine) produced which distillates: counts, survival, tokens, cache hits
    (distillation_models)."""
    return named_answer(ctx, settings, "distillation_models", {"distillation": distillation})
