"""`GET /v1/...` routes about shift: measurements, volatile examples, data sets by volatility,
the knobs that move training volatility, and what a hypothesis verdict was derived from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from services.api.deps import ContextDep, ReadScope, SettingsDep
from services.api.queries_routes import AnswerPublic, named_answer
from services.api.responses import EVERY, errors
from services.api.schemas import ROWS_MAX
from services.shift.figures import read_measurement

router = APIRouter(prefix="/v1", tags=["shift and volatility"], responses=errors(*EVERY, 400))


@router.get("/measurements/{measurement_id}", responses=errors(404))
def get_measurement(measurement_id: str, ctx: ContextDep, _: ReadScope) -> dict[str, Any]:
    """A measurement read back from the log: its request, every example's figures, the data set's
    (the document `knobs shift measure --json` prints)."""
    return read_measurement(ctx.store(), measurement_id).public()


@router.get("/datasets/volatility", response_model=AnswerPublic)
def get_datasets_by_volatility(ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                               model: str | None = None) -> AnswerPublic:
    """Data sets by volatility, most volatile first, optionally on one model
    (shift_datasets_by_volatility)."""
    return named_answer(ctx, settings, "shift_datasets_by_volatility", {"model": model})


@router.get("/datasets/{dataset}/volatile-examples", response_model=AnswerPublic)
def get_volatile_examples(dataset: str, ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                          measurement: str | None = None,
                          limit: int | None = Query(None, ge=1, le=ROWS_MAX)) -> AnswerPublic:
    """The examples of a data set (sha256 or file name) that move the model most (shift_volatile_examples)."""
    return named_answer(ctx, settings, "shift_volatile_examples",
                   {"dataset": dataset, "measurement": measurement, "limit": limit})


@router.get("/volatility/knobs", response_model=AnswerPublic)
def get_volatility_knobs(ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                         benchmark: str | None = None) -> AnswerPublic:
    """Which knobs make training volatile: latest rankings on the train_volatility outcomes
    (shift_volatility_knobs)."""
    return named_answer(ctx, settings, "shift_volatility_knobs", {"benchmark": benchmark})


@router.get("/verdicts/{verdict}/provenance", response_model=AnswerPublic)
def get_verdict_provenance(verdict: str, ctx: ContextDep, settings: SettingsDep,
                           _: ReadScope) -> AnswerPublic:
    """What a hypothesis verdict was derived from: a row per candidate data set, its volatility,
    measurement, model and log positions (shift_verdict_provenance)."""
    return named_answer(ctx, settings, "shift_verdict_provenance", {"verdict": verdict})


@router.get("/examples/forgotten", response_model=AnswerPublic)
def get_forgotten_examples(ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                           experiment: str | None = None,
                           limit: int | None = Query(None, ge=1, le=ROWS_MAX)) -> AnswerPublic:
    """Training documents forgotten most inside training, with their cartography
    (shift_forgotten_examples)."""
    return named_answer(ctx, settings, "shift_forgotten_examples", {"experiment": experiment, "limit": limit})
