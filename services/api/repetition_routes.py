"""`GET /v1/repetition/{experiment}`: the verbatim-versus-lens report, as `knobs repetition report --json`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.deps import ContextDep, ReadScope
from services.api.responses import EVERY, errors
from services.repetition.report import read

router = APIRouter(prefix="/v1", tags=["repetition"], responses=errors(*EVERY, 404))


@router.get("/repetition/{experiment}")
def get_repetition_report(experiment: str, ctx: ContextDep, _: ReadScope) -> dict[str, Any]:
    """Per protocol and benchmark: the K x condition table with seed intervals, lenses - verbatim
    against noise, the fits in ln K, and Physics of LM 3.1's figures beside them."""
    return read(ctx.store(), experiment).to_json()
