"""Distillation pages: the distillations, lenses by survival and by the diversity they add; one
distillation's clouds; one pair's cloud projected to 2D, coloured by lens, with the rejected and
duplicate distillates marked with their reasons. Read from the log, the graph and the stored
embeddings; nothing written."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.core.errors import ServiceError
from services.distillation.report import list_distillations, read_report
from services.figures import distillation as distillation_figures
from services.queries.named import run_named
from services.web.auth import PageScope, page_context
from services.web.render import error_page, page

router = APIRouter(include_in_schema=False)


@router.get("/ui/distillation", response_class=HTMLResponse)
def distillations(request: Request, scope: PageScope) -> HTMLResponse:
    ctx = page_context(request)
    try:
        found = list_distillations(ctx.store())
        survival = run_named(ctx, "distillation_lenses_by_survival", distillation=None)
        diversity = run_named(ctx, "distillation_lenses_by_diversity", distillation=None)
    except ServiceError as exc:
        return error_page(request, exc)
    return page(request, "distillations.html", scope=scope, distillations=found, survival=survival,
                diversity=diversity)


@router.get("/ui/distillation/{distillation}", response_class=HTMLResponse)
def distillation(request: Request, distillation: str, scope: PageScope) -> HTMLResponse:
    ctx = page_context(request)
    try:
        report = read_report(ctx.store(), distillation)
        survival = run_named(ctx, "distillation_lenses_by_survival", distillation=distillation)
    except ServiceError as exc:
        return error_page(request, exc)
    return page(request, "distillation.html", scope=scope, report=report, survival=survival)


@router.get("/ui/distillation/{distillation}/pairs/{pair}", response_class=HTMLResponse)
def pair_cloud(request: Request, distillation: str, pair: str, scope: PageScope) -> HTMLResponse:
    ctx = page_context(request)
    try:
        report = read_report(ctx.store(), distillation)
        cloud = distillation_figures.find_cloud(report, pair)
        projection = distillation_figures.read_projection(ctx.store(), ctx.home, distillation, pair)
    except ServiceError as exc:
        return error_page(request, exc)
    lenses = [name.split("@")[0] for name in report.lenses]
    return page(request, "pair_cloud.html", scope=scope, report=report, cloud=cloud, projection=projection,
                figure=distillation_figures.cloud_scatter(projection, lenses))
