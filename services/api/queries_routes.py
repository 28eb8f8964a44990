"""`GET /v1/...` routes that ask the graph a named question (graph/queries), read-only.

`/v1/queries/{name}` runs any named query with its parameters from the query string and
returns cells as Neo4j gives them; the friendly routes (`/v1/knobs`, `/v1/parameters/{name}/influence`,
...) run one query each and decode its JSON text columns into objects. Every answer is
`{query, columns, rows: [{column: value}], truncated}`, under the API's Cypher row limit and timeout.
`POST /v1/cypher` runs a caller's own Cypher through the same read-only gate, watched
(services/api/watched.py) so that it stops in Neo4j when its time is up or its client goes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from graph.readonly import ReadOnlyResult, run_readonly
from services.api.deps import ContextDep, ReadScope, SettingsDep
from services.api.responses import EVERY, errors
from services.api.schemas import CypherIn, CypherPublic
from services.api.watched import run_watched
from services.core.context import Context
from services.core.settings import ApiSettings
from services.queries.named import QueryParameterError, ask, catalogue

# A named query can refuse its parameters (400) on every route that asks one.
router = APIRouter(prefix="/v1", tags=["asking the graph"], responses=errors(*EVERY, 400))
# untagged, as it was when the app declared it
cypher_router = APIRouter(prefix="/v1", responses=errors(*EVERY, 400, 403, 408, 504))


class AnswerPublic(BaseModel):
    query: str
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool
    """True when the query had more rows than KNOBS_API_CYPHER_ROW_LIMIT; `rows` holds the first."""


class QueryParameterPublic(BaseModel):
    name: str
    required: bool
    description: str


class NamedQueryPublic(BaseModel):
    name: str
    summary: str
    description: str
    parameters: list[QueryParameterPublic]


class QueriesPublic(BaseModel):
    queries: list[NamedQueryPublic]


def named_answer(ctx: Context, settings: ApiSettings, name: str, params: dict[str, Any],
            decode: bool = True) -> AnswerPublic:
    answer = ask(ctx, name, params, decode=decode, row_limit=settings.cypher_row_limit,
                 timeout_s=settings.cypher_timeout_s)
    return AnswerPublic.model_validate(answer.public())


@router.get("/queries", response_model=QueriesPublic)
def get_queries(_: ReadScope) -> QueriesPublic:
    """The named queries: name, summary, description, parameters (required or optional)."""
    return QueriesPublic.model_validate({"queries": catalogue()})


@router.get("/queries/{name}", response_model=AnswerPublic, responses=errors(404))
def get_query(name: str, request: Request, ctx: ContextDep, settings: SettingsDep,
              _: ReadScope) -> AnswerPublic:
    """Run a named query; its parameters come from the query string, as text."""
    items = request.query_params.multi_items()
    repeated = sorted(k for k, n in Counter(k for k, _v in items).items() if n > 1)
    if repeated:
        raise QueryParameterError(f"give each parameter once: {', '.join(repeated)} repeated")
    return named_answer(ctx, settings, name, dict(items), decode=False)


@router.get("/knobs", response_model=AnswerPublic)
def get_knobs(ctx: ContextDep, settings: SettingsDep, _: ReadScope,
              benchmark: str = Query(min_length=1)) -> AnswerPublic:
    """Which knobs matter on a benchmark: each experiment and method's last ranking (knobs_for_benchmark)."""
    return named_answer(ctx, settings, "knobs_for_benchmark", {"benchmark": benchmark})


@router.get("/parameters/{name}/influence", response_model=AnswerPublic)
def get_influence(name: str, ctx: ContextDep, settings: SettingsDep, _: ReadScope,
                  benchmark: str | None = None) -> AnswerPublic:
    """A parameter's influence range, noise verdict and knee in every latest ranking (influence_range)."""
    return named_answer(ctx, settings, "influence_range", {"parameter": name, "benchmark": benchmark})


@router.get("/rankings", response_model=AnswerPublic)
def get_rankings(ctx: ContextDep, settings: SettingsDep, _: ReadScope, experiment: str | None = None,
                 benchmark: str | None = None, method: str | None = None) -> AnswerPublic:
    """Rankings newest first, filtered by experiment, benchmark and method (rankings)."""
    return named_answer(ctx, settings, "rankings",
                   {"experiment": experiment, "benchmark": benchmark, "method": method})


@router.get("/rankings/{ranking_id}/provenance", response_model=AnswerPublic)
def get_provenance(ranking_id: str, ctx: ContextDep, settings: SettingsDep,
                   _: ReadScope) -> AnswerPublic:
    """What a ranking was derived from: a row per run, its score, source, positions (ranking_provenance)."""
    return named_answer(ctx, settings, "ranking_provenance", {"ranking_id": ranking_id})


@router.get("/runs/{experiment}/{run_id}/rankings", response_model=AnswerPublic)
def get_run_rankings(experiment: str, run_id: str, ctx: ContextDep, settings: SettingsDep,
                     _: ReadScope) -> AnswerPublic:
    """Which rankings a run feeds, newest first: what to recompute without it (rankings_using_run)."""
    return named_answer(ctx, settings, "rankings_using_run", {"experiment": experiment, "run_id": run_id})


@router.get("/underused", response_model=AnswerPublic)
def get_underused(ctx: ContextDep, settings: SettingsDep, _: ReadScope, benchmark: str | None = None,
                  experiment: str | None = None) -> AnswerPublic:
    """Under-used high-leverage parameters the latest rankings flag, with reasons (underused_parameters)."""
    return named_answer(ctx, settings, "underused_parameters",
                        {"benchmark": benchmark, "experiment": experiment})


@router.get("/experiments/{name}/matrix", response_model=AnswerPublic)
def get_matrix(name: str, ctx: ContextDep, settings: SettingsDep, _: ReadScope,
               method: str | None = None) -> AnswerPublic:
    """Parameters x benchmarks for an experiment: rank and statistic per cell (knobs_matrix)."""
    return named_answer(ctx, settings, "knobs_matrix", {"experiment": name, "method": method})


@cypher_router.post("/cypher", response_model=CypherPublic)
async def post_cypher(body: CypherIn, request: Request, ctx: ContextDep, settings: SettingsDep,
                      _: ReadScope) -> CypherPublic:
    """Run a read-only Cypher query; stopped in Neo4j when its time is up or its client goes."""
    driver = ctx.driver()
    timeout_s = min(body.timeout_s or settings.cypher_timeout_s, settings.cypher_timeout_s)

    def run(request_id: str) -> ReadOnlyResult:
        return run_readonly(
            driver, body.query, body.params, timeout_s=timeout_s,
            row_limit=min(body.limit or settings.cypher_row_limit, settings.cypher_row_limit),
            max_chars=settings.cypher_max_chars, request_id=request_id,
        )

    result = await run_watched(request, driver, run, timeout_s)
    return CypherPublic(columns=list(result.columns), rows=list(result.rows), truncated=result.truncated)
