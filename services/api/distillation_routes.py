"""`GET /v1/...` routes about lens distillation: the distillations and their reports (read from
the log), lenses by survival and by the diversity they add, the cloud of one pair and its 2D
projection, and which model produced which distillates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.deps import ContextDep, ReadScope, SettingsDep
from services.api.queries_routes import AnswerPublic, named_answer
from services.api.responses import EVERY, errors
from services.distillation.report import list_distillations, read_report
from services.figures.distillation import read_projection

router = APIRouter(prefix="/v1", tags=["lens distillation"], responses=errors(*EVERY, 400))


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


@router.get("/distillations")
def get_distillations(ctx: ContextDep, _: ReadScope) -> list[dict[str, Any]]:
    """Every distillation in the log: its pairs, lenses, samples, engine, model, and whether it
    completed (`knobs distill list --json`)."""
    return list_distillations(ctx.store())


@router.get("/distillations/{distillation}", responses=errors(404))
def get_distillation(distillation: str, ctx: ContextDep, _: ReadScope) -> dict[str, Any]:
    """One distillation's report: each pair's cloud, every distillate with its verdict and reasons
    (`knobs distill report --json`)."""
    return read_report(ctx.store(), distillation).to_json()


@router.get("/distillations/{distillation}/pairs/{pair}/projection", responses=errors(404))
def get_cloud_projection(distillation: str, pair: str, ctx: ContextDep, _: ReadScope) -> dict[str, Any]:
    """A pair's cloud projected to 2D: PCA of the embeddings the checks stored (sign fixed so the
    largest loading of each component is positive), each distillate's lens, verdict and reasons;
    the distillates whose embedding is not stored here are listed under `missing`."""
    return read_projection(ctx.store(), ctx.home, distillation, pair).to_json()
