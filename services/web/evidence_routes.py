"""The pages that show the evidence behind rankings: the audit trail of one ranking (ranking ->
runs -> events with hashes -> citations, and the hash chain's status) and an experiment's
parameters x benchmarks matrix with the benchmarks' disagreements marked. Both only read: the
audit is `knobs audit`'s (services/ranking/audit.py), the matrix is drawn from the recorded
rankings, so opening it never ranks anything."""

from __future__ import annotations

import re
import shlex
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.core.errors import ServiceError
from services.figures import matrix as matrix_figures
from services.ranking.audit import audit
from services.ranking.evidence import experiment_benchmarks
from services.ranking.matrix import matrix_rows, ranking_disagreements
from services.ranking.recorded import current_by_benchmark
from services.web.auth import PageScope, page_context
from services.web.render import error_page, page

router = APIRouter(include_in_schema=False)
URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:)]")


def _events(trail: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event the ranking used, in log order, with the run it belongs to."""
    rows = [{**run[key], "run_id": run["run_id"]} for run in trail["evidence"]
            for key in ("run_event", "score_event") if run.get(key)]
    return sorted(rows, key=lambda e: e["position"])


def _citations(trail: dict[str, Any]) -> list[dict[str, Any]]:
    """Each source the runs were imported from, once, with the runs that cite it and the web
    address its citation names, if any."""
    sources: dict[str, dict[str, Any]] = {}
    for run in trail["evidence"]:
        src = run.get("source")
        if src:
            url = URL.search(src["citation"])
            entry = sources.setdefault(src["source_id"],
                                       {**src, "url": url.group(0) if url else None, "runs": []})
            entry["runs"].append(run["run_id"])
    return [sources[sid] for sid in sorted(sources)]


@router.get("/ui/audit/{ranking_id}", response_class=HTMLResponse)
def audit_page(request: Request, ranking_id: str, scope: PageScope) -> HTMLResponse:
    try:
        trail = audit(page_context(request), ranking_id)
    except ServiceError as exc:
        return error_page(request, exc)
    citations = _citations(trail)
    anchors = {c["source_id"]: f"source-{i}" for i, c in enumerate(citations, start=1)}
    baseline = trail["ranking"]["baseline"] or {}
    changed = {run["run_id"]: {k: v for k, v in (run.get("params") or {}).items() if k in baseline
                               and baseline[k] != v} for run in trail["evidence"]}
    return page(request, "audit.html", scope=scope, trail=trail, ranking=trail["ranking"],
                events=_events(trail), citations=citations, anchors=anchors, changed=changed)


@router.get("/ui/experiments/{name}/matrix", response_class=HTMLResponse)
def matrix_page(request: Request, name: str, scope: PageScope, method: str | None = None) -> HTMLResponse:
    ctx = page_context(request)
    try:
        benchmarks = experiment_benchmarks(ctx, name)
    except ServiceError as exc:
        return error_page(request, exc)
    rankings = current_by_benchmark(ctx, name, method or None)
    found = ranking_disagreements(rankings)
    command = f"knobs rank --experiment {shlex.quote(name)} --all-benchmarks"
    if method:
        command += f" --method {shlex.quote(method)}"
    return page(
        request, "matrix.html", scope=scope, name=name, method=method or None, rankings=rankings,
        figure=matrix_figures.heatmap(name, rankings, found, method or None) if rankings else None,
        rows=matrix_rows(rankings), disagreements=found, command=command,
        unranked=[b for b in benchmarks if b not in rankings])
