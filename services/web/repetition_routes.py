"""The repetition report page: does rewriting beat repeating? Per protocol and benchmark the
K x condition table with the seeds' intervals and each difference's noise label, the score
against K per condition with its fitted ln K line, the paper's figures (cited) and the plain
sentences on agreement. Read from the log (services/repetition/report.py); nothing written."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.core.context import Context
from services.core.errors import ServiceError
from services.figures import repetition as repetition_figures
from services.repetition.report import read
from services.web.auth import PageScope
from services.web.render import error_page, page

router = APIRouter(include_in_schema=False)


@router.get("/ui/repetition/{experiment}", response_class=HTMLResponse)
def repetition(request: Request, experiment: str, scope: PageScope) -> HTMLResponse:
    ctx: Context = request.app.state.context
    try:
        report = read(ctx.store(), experiment)
    except ServiceError as exc:
        return error_page(request, exc)
    tables = [{"table": t, "curves": repetition_figures.k_curves(report, t),
               "grid": repetition_figures.k_grid(t), "differences": repetition_figures.differences(t)}
              for t in report.tables]
    return page(request, "repetition.html", scope=scope, report=report, tables=tables,
                json_url=repetition_figures.repetition_json_url(experiment))
