"""The dashboard's core pages: login, the experiments (live status) and the ranking pages.
Each page reads recorded facts (the log, the graph's named queries) and never writes; the
"rank now" form appends a ranking and needs an append token, like `POST /v1/rankings`."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from services.access.gate import Refused
from services.access.tokens import allows
from services.core.context import Context
from services.core.errors import BadInput, Forbidden, NotFound, ServiceError
from services.experiments.status import Summary, Tracker, experiment_status
from services.figures import ranking as ranking_figures
from services.queries.named import run_named
from services.ranking.rank import rank
from services.ranking.recorded import all_rankings, latest_rankings, recorded_ranking
from services.web.auth import COOKIE, PageScope, authorize, page_context, safe_next
from services.web.render import STATIC, error_page, page

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=303)


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    path = STATIC / name
    if "/" in name or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "max-age=3600"})


@router.get("/ui/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/ui/", failed: int = 0, why: str = "") -> HTMLResponse:
    reason = why if why in ("unknown", "expired", "revoked", "missing") else ("unknown" if failed else "")
    return page(request, "login.html", next=safe_next(next), why=reason)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/ui/"])[0])
    try:
        authorize(request, token, "read")
    except Refused as exc:
        return RedirectResponse(f"/ui/login?next={quote(target)}&why={exc.reason}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.post("/ui/logout")
def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/ui/", response_class=HTMLResponse)
def experiments(request: Request, scope: PageScope) -> HTMLResponse:
    ctx = page_context(request)
    rows = run_named(ctx, "experiments")
    current = latest_rankings(ctx)
    by_experiment: dict[str, list[dict[str, Any]]] = {}
    for r in current:
        by_experiment.setdefault(r["experiment"], []).append(r)
    declared = {str(e.data["name"]) for e in ctx.store().read_all(types=["ExperimentDeclared"])}
    return page(request, "experiments.html", scope=scope, experiments=rows, rankings=by_experiment,
                declared=declared)


# The runs a person looks at first: what is moving, then what went wrong, then the rest.
STATE_ORDER = {"running": 0, "dispatched": 1, "requested": 2, "failed": 3, "completed": 4}
SHOWN_RUNS = 300  # a page of an experiment with 10k runs lists these; the JSON has every run


class Trackers:
    """One Tracker per experiment for the serving process: a poll reads only the lifecycle events
    appended since the last one, so the live page costs what changed, not the whole log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trackers: dict[str, tuple[threading.Lock, Tracker]] = {}

    def summary(self, ctx: Context, name: str) -> Summary:
        if not ctx.store().read_stream(f"experiment:{name}"):
            return experiment_status(ctx.store(), name)  # raises NotFound, naming the known ones
        with self._lock:
            lock, tracker = self._trackers.setdefault(name, (threading.Lock(), Tracker(ctx.store(), name)))
        with lock:
            return tracker.poll()


def _trackers(request: Request) -> Trackers:
    state = request.app.state
    if not hasattr(state, "trackers"):
        state.trackers = Trackers()
    trackers: Trackers = state.trackers
    return trackers


def _status(request: Request, name: str, limit: int | None = None) -> dict[str, Any]:
    summary = _trackers(request).summary(page_context(request), name)
    out = {**summary.public(), "finished": summary.finished}
    if limit is not None:
        runs = sorted(out["runs"], key=lambda r: (STATE_ORDER.get(r["state"], 5), r["run_id"]))
        out["runs"], out["hidden_runs"] = runs[:limit], max(0, len(runs) - limit)
    return out


@router.get("/ui/experiments/{name}", response_class=HTMLResponse)
def experiment(request: Request, name: str, scope: PageScope) -> HTMLResponse:
    ctx = page_context(request)
    row = next((r for r in run_named(ctx, "experiments") if r["name"] == name), None)
    declared = bool(ctx.store().read_stream(f"experiment:{name}"))
    if row is None and not declared:
        known = ", ".join(r["name"] for r in run_named(ctx, "experiments")) or "none yet"
        return error_page(request, NotFound(f"no experiment {name!r} in the graph; known: {known} (import "
                                            "results or `knobs experiment run SPEC`)"))
    # An imported experiment (results trained elsewhere) has runs and scores but no lifecycle here.
    status = _status(request, name, SHOWN_RUNS) if declared else None
    return page(request, "experiment.html", scope=scope, name=name, status=status, row=row,
                rankings=all_rankings(ctx, name), benchmarks=row["benchmarks"] if row else [])


@router.get("/ui/experiments/{name}/status.json")
def experiment_status_json(request: Request, name: str, _: PageScope,
                           limit: int = SHOWN_RUNS) -> dict[str, Any]:
    """What the status page polls while runs train: `knobs experiment status --json`, the runs in
    the page's order; `?limit=0` for every run."""
    return _status(request, name, limit or None)


@router.get("/ui/rankings/{ranking_id}", response_class=HTMLResponse)
def ranking_page(request: Request, ranking_id: str, scope: PageScope) -> HTMLResponse:
    ctx = page_context(request)
    try:
        stored, ranking = recorded_ranking(ctx, ranking_id)
    except ServiceError as exc:
        return error_page(request, exc)
    siblings = [r for r in latest_rankings(ctx, ranking.experiment) if r["ranking_id"] != ranking_id]
    return page(request, "ranking.html", scope=scope, ranking=ranking, stored=stored,
                tornado=ranking_figures.tornado(ranking), knees=ranking_figures.knee_curves(ranking),
                costs=[ranking_figures.cost_view(ranking, kind) for kind in ("flops", "wall_s")],
                siblings=siblings)


@router.post("/ui/experiments/{name}/rank")
async def rank_now(request: Request, name: str, scope: PageScope) -> Response:
    """Rank one benchmark now (a RankingDerived is appended), then show it. Needs a write token."""
    if not allows(scope, "append"):
        return error_page(request, Forbidden("this token is read-only: ranking appends a RankingDerived "
                                             "event, which needs a token of scope append"))
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    benchmark = (form.get("benchmark") or [""])[0]
    try:
        if not benchmark:
            raise BadInput("choose a benchmark to rank")
        outcome = rank(page_context(request), name, benchmark)
    except ServiceError as exc:
        return error_page(request, exc)
    return RedirectResponse(f"/ui/rankings/{outcome.ranking.ranking_id}", status_code=303)
