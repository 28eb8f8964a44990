"""Influence pages: data sets by volatility, and per data set the histogram of its examples'
shifts, the loss-against-shift map, and its most volatile examples with their tokens shaded by
saliency. Read from the graph's named queries and the measurements in the log; nothing written."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from services.core.errors import NotFound, ServiceError
from services.figures import shift as shift_figures
from services.queries.named import run_named
from services.shift.figures import read_measurement
from services.shift.tokens import measurement_tokens, token_spans
from services.web.auth import PageScope, page_context
from services.web.render import error_page, page

router = APIRouter(include_in_schema=False)

VOLATILE = 10  # examples shown per measurement
TRACKED = 2000  # tracked training documents drawn per experiment


@router.get("/ui/influence", response_class=HTMLResponse)
def influence(request: Request, scope: PageScope) -> HTMLResponse:
    ctx = page_context(request)
    try:
        datasets = run_named(ctx, "shift_datasets_by_volatility", model=None)
        tracked = run_named(ctx, "shift_forgotten_examples", experiment=None, limit=TRACKED * 50)
    except ServiceError as exc:
        return error_page(request, exc)
    by_experiment: dict[str, list[dict[str, Any]]] = {}
    for row in tracked:
        by_experiment.setdefault(str(row["experiment"]), []).append(row)
    maps = [shift_figures.training_cartography(name, rows[:TRACKED], TRACKED)
            for name, rows in sorted(by_experiment.items())]
    return page(request, "influence.html", scope=scope, datasets=datasets, maps=maps)


@router.get("/ui/influence/datasets/{dataset}", response_class=HTMLResponse)
def dataset_page(request: Request, dataset: str, scope: PageScope) -> HTMLResponse:
    ctx = page_context(request)
    try:
        rows = [r for r in run_named(ctx, "shift_datasets_by_volatility", model=None)
                if dataset in (r["dataset"], r["dataset_name"])]
        if not rows:
            raise NotFound(f"no finished measurement of a data set {dataset!r} (its sha256 or file name): "
                           "measure it with `knobs shift measure --model MODEL --data FILE.jsonl`; "
                           "/ui/influence lists the data sets measured")
        measurements = []
        for row in rows:
            m = read_measurement(ctx.store(), str(row["measurement_id"]))
            volatile = run_named(ctx, "shift_volatile_examples", dataset=row["dataset"],
                                 measurement=row["measurement_id"], limit=VOLATILE)
            tokens = measurement_tokens(m, [str(v["example_id"]) for v in volatile])
            measurements.append({
                "row": row, "measurement": m, "histogram": shift_figures.volatility_histogram(m),
                "map": shift_figures.shift_map(m), "volatile": volatile,
                "volatile_json": shift_figures.volatile_json_url(
                    str(row["dataset"]), str(row["measurement_id"]), VOLATILE),
                "tokens": {k: Markup(token_spans(v, "tok")) for k, v in tokens.items()}})
    except ServiceError as exc:
        return error_page(request, exc)
    return page(request, "influence_dataset.html", scope=scope, dataset=rows[0], measurements=measurements)
