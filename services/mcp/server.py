"""`knobs mcp`: a Model Context Protocol server (stdio) that lets agents ask which knobs matter.

Tools answer from the log (the latest RankingDerived per experiment, benchmark and method,
what-if rankings left out: services.export.snapshot.read_rankings) and the graph (read-only
Cypher). One Context is opened lazily per server and reused; a
backing service that drops is reopened on the next call. Errors of ours (not found, bad
input, a refused write) come back as MCP tool errors carrying their message, so an agent
reads what to do next and the server keeps serving.

Tools run synchronously on the server's event loop on purpose: the Context's SQLite
connection belongs to the thread that opened it, and a stdio server has one client.

Access goes through the API's gate (services/access/gate.py): the server starts only with a
token of scope read or more, and checks it again before every tool call, so a token revoked
or expired while the server runs is refused at once, with the reason, as a tool error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError

from events.errors import EventsError
from events.home import knobs_home
from events.models import ParameterRanking
from events.store import EventStore
from graph.errors import GraphError, GraphUnavailable
from graph.readonly import run_readonly
from services.access.gate import Gate
from services.core.context import Context
from services.core.errors import BadInput, NotFound, ServiceError, Unavailable
from services.core.settings import ApiSettings
from services.experiments.service import declared_experiment
from services.export.snapshot import RankingEntry, read_rankings, recency
from services.queries.named import ask
from services.ranking.audit import audit
from services.ranking.suggest import suggest_spec
from services.repetition.report import read as read_repetition

T = TypeVar("T")
STDIO = "stdio"  # the client "address" failed checks are counted under

INSTRUCTIONS = """\
knobs records training runs, benchmark scores and rankings of parameters ("knobs") as events,
and projects them into a Neo4j graph. Start with knobs_that_matter(benchmark) to see which
parameters move a benchmark most; influence_range(parameter) for how one knob acts across
rankings (values, effects, knee, effect per cost); suggest_next_experiment(experiment) for a
follow-up spec exploring under-used knobs; audit_ranking(ranking_id) to trace a ranking to
the events and citations behind it; datasets_by_volatility, volatile_examples,
volatility_knobs and verdict_provenance for how much data moves a model (shift);
lenses_by_survival, lenses_by_diversity, pair_cloud and distillation_models for the clouds
of rewritten question-answer pairs (lens distillation); cypher(query) for anything else
(read-only; labels: Experiment, Run, Score, Benchmark, Parameter, ParameterValue, Ranking,
Source, Design, Outcome, Measurement, ModelState, Dataset, Example, Volatility, Verdict, Lens,
QAPair, Distillation, Distillate, Cloud, Model).
"""


class _Session:
    """The server's one Context, opened on first use and reopened after a connection failure."""

    def __init__(self, factory: Callable[[], Context], guard: Callable[[], object] | None = None) -> None:
        self._factory = factory
        self._guard = guard
        self._ctx: Context | None = None

    def context(self) -> Context:
        if self._ctx is None:
            self._ctx = self._factory()
        return self._ctx

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    def call(self, fn: Callable[[Context], T]) -> T:
        try:
            if self._guard is not None:
                self._guard()
            return fn(self.context())
        except (Unavailable, GraphUnavailable) as exc:
            self.close()  # the next call reconnects
            raise ToolError(str(exc)) from exc
        except (ServiceError, GraphError, EventsError) as exc:
            raise ToolError(str(exc)) from exc


# ----------------------------------------------------------------------- tool bodies


def _parameter_view(entry: RankingEntry, p: ParameterRanking, *, values: bool) -> dict[str, Any]:
    out = p.model_dump(mode="json", exclude={"values"} if not values else set())
    out["of"] = len(entry.ranking.parameters)
    return out


def _ranked(entry: RankingEntry, name: str) -> ParameterRanking:
    return next(p for p in entry.ranking.parameters if p.name == name)


def _ranking_head(entry: RankingEntry) -> dict[str, Any]:
    r = entry.ranking
    return {
        "ranking_id": r.ranking_id,
        "experiment": r.experiment,
        "benchmark": r.benchmark,
        "method": r.method,
        "direction": r.direction,
        "as_of": r.as_of,
        "code_version": r.code_version,
        "position": entry.event.position,
        "recorded_at": entry.event.recorded_at,
        "baseline": r.baseline,
        "baseline_mean": r.baseline_mean,
        "audit": f"audit_ranking('{r.ranking_id}') or `knobs audit {r.ranking_id}`",
    }


def knobs_that_matter(ctx: Context, benchmark: str, experiment: str | None = None) -> dict[str, Any]:
    rankings = read_rankings(ctx.store())
    on_benchmark = [e for e in rankings if e.ranking.benchmark == benchmark]
    if not on_benchmark:
        known = sorted({e.ranking.benchmark for e in rankings})
        raise NotFound(
            f"no ranking on benchmark {benchmark!r}; benchmarks with rankings: "
            f"{', '.join(known) or 'none yet'} (rank one with `knobs rank --experiment NAME "
            f"--benchmark {benchmark}`)"
        )
    chosen = [e for e in on_benchmark if experiment is None or e.ranking.experiment == experiment]
    if not chosen:
        known = sorted({e.ranking.experiment for e in on_benchmark})
        raise NotFound(
            f"experiment {experiment!r} has no ranking on {benchmark!r}; "
            f"experiments that do: {', '.join(known)}"
        )
    return {
        "benchmark": benchmark,
        "experiment": experiment,
        "rankings": [
            {**_ranking_head(e),
             "parameters": [_parameter_view(e, p, values=False) for p in e.ranking.parameters]}
            for e in chosen
        ],
    }


def influence_range(ctx: Context, parameter: str, benchmark: str | None = None) -> dict[str, Any]:
    rankings = read_rankings(ctx.store())
    ranking_it = [e for e in rankings if any(p.name == parameter for p in e.ranking.parameters)]
    if not ranking_it:
        known = sorted({p.name for e in rankings for p in e.ranking.parameters})
        raise NotFound(
            f"no ranking ranks parameter {parameter!r}; "
            f"ranked parameters: {', '.join(known[:40]) or 'none yet'}"
        )
    chosen = [e for e in ranking_it if benchmark is None or e.ranking.benchmark == benchmark]
    if not chosen:
        known = sorted({e.ranking.benchmark for e in ranking_it})
        raise NotFound(f"parameter {parameter!r} is not ranked on {benchmark!r}; it is ranked on: "
                       f"{', '.join(known)}")
    return {
        "parameter": parameter,
        "benchmark": benchmark,
        "rankings": [{**_ranking_head(e), **_parameter_view(e, _ranked(e, parameter), values=True)}
                     for e in chosen],
    }


def suggest_next_experiment(
    ctx: Context, experiment: str, benchmark: str | None = None, max_runs: int | None = None
) -> dict[str, Any]:
    own = [e for e in read_rankings(ctx.store()) if e.ranking.experiment == experiment]
    if not own:
        raise NotFound(
            f"experiment {experiment!r} has no ranking to follow up; rank it first with "
            f"`knobs rank --experiment {experiment} --benchmark NAME`"
        )
    benchmarks = sorted({e.ranking.benchmark for e in own})
    if benchmark is None and len(benchmarks) > 1:
        raise BadInput(f"experiment {experiment!r} is ranked on {len(benchmarks)} benchmarks; say which to "
                       f"follow up with benchmark=...: {', '.join(benchmarks)}")
    wanted = benchmark if benchmark is not None else benchmarks[0]
    on_it = [e for e in own if e.ranking.benchmark == wanted]
    if not on_it:
        raise NotFound(f"experiment {experiment!r} has no ranking on {wanted!r}; it is ranked on: "
                       f"{', '.join(benchmarks)}")
    latest = max(on_it, key=recency)
    declared = declared_experiment(ctx, experiment)
    spec = declared.spec if declared is not None else None
    suggested = suggest_spec(latest.ranking, spec, max_runs=max_runs)
    return {
        "experiment": experiment,
        "benchmark": wanted,
        "ranking_id": latest.ranking.ranking_id,
        "method": latest.ranking.method,
        "yaml": suggested.yaml,
        "reasons": list(suggested.reasons),
        "next": "save the YAML as a file, then `knobs experiment declare FILE` and "
                "`knobs experiment run NAME` (or export its design for an external executor)",
    }


def audit_ranking(ctx: Context, ranking_id: str) -> dict[str, Any]:
    return audit(ctx, resolve_ranking_id(ctx.store(), ranking_id))


def resolve_ranking_id(store: EventStore, ranking_id: str) -> str:
    """A full ranking id, given the id or an unambiguous prefix of it (notes show 8 characters)."""
    wanted = ranking_id.strip()
    if wanted and store.read_stream(f"ranking:{wanted}"):
        return wanted
    if len(wanted) >= 4:
        matches = sorted({
            str(s.data.get("ranking_id")) for s in store.read_all(types=["RankingDerived"])
            if str(s.data.get("ranking_id", "")).startswith(wanted.lower())
        })
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise BadInput(
                f"ranking id prefix {ranking_id!r} matches {len(matches)} rankings "
                f"({', '.join(matches[:5])}): give more of the id"
            )
    raise NotFound(
        f"no ranking {ranking_id!r} in the log; list rankings with `knobs events --type RankingDerived`"
    )


def _named(ctx: Context, name: str, params: dict[str, Any]) -> dict[str, Any]:
    settings = ApiSettings()
    return ask(ctx, name, params, decode=True, row_limit=settings.cypher_row_limit,
               timeout_s=settings.cypher_timeout_s).public()


def cypher(ctx: Context, query: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    settings = ApiSettings()
    ctx.catch_up()
    result = run_readonly(ctx.driver(), query, params or {}, timeout_s=settings.cypher_timeout_s,
                          row_limit=settings.cypher_row_limit, max_chars=settings.cypher_max_chars)
    return {"columns": result.columns, "rows": result.rows, "truncated": result.truncated,
            "row_limit": settings.cypher_row_limit}


# ----------------------------------------------------------------------- the server


def create_server(context_factory: Callable[[], Context] = Context,
                  guard: Callable[[], object] | None = None) -> FastMCP:
    """The FastMCP server "knobs" with its tools; the Context opens on the first call, and
    `guard` (raising a ServiceError to refuse) runs before every tool call."""
    session = _Session(context_factory, guard)

    @asynccontextmanager
    async def lifespan(_server: FastMCP) -> AsyncIterator[None]:
        try:
            yield None
        finally:
            session.close()

    server = FastMCP("knobs", instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING")

    @server.tool(name="knobs_that_matter")
    def _knobs_that_matter(benchmark: str, experiment: str | None = None) -> dict[str, Any]:
        """Which parameters matter most for a benchmark, ranked, from the latest ranking of each
        experiment and method (ofat, morris, sobol) on it.

        Each parameter has: rank (1 = matters most), statistic (what it is ranked by: influence width
        for ofat, mu_star for morris, ST for sobol), influence_range [low, high] (effects on the
        benchmark vs the baseline), indices (SALib: mu, mu_star, sigma, mu_star_conf or S1, S1_conf,
        ST, ST_conf), noise (label "indistinguishable" means the effect is within run-to-run noise:
        do not trust it), knee (where returns diminish; status "not_reached" means more may help),
        per_cost (gain per unit of flops, gpu_hours or weight_bytes) and flags (under-explored
        high-leverage knobs, each with a reason). Pass `experiment` to keep one experiment's ranking.
        Unknown benchmarks are answered with the list of ranked ones.
        """
        return session.call(lambda ctx: knobs_that_matter(ctx, benchmark, experiment))

    @server.tool(name="influence_range")
    def _influence_range(parameter: str, benchmark: str | None = None) -> dict[str, Any]:
        """How one parameter moves benchmarks: for every latest ranking that ranks it (optionally
        on one `benchmark`), its rank, influence_range, and per value tried: mean score, effect vs
        the baseline, 95% ci, number of runs n, run ids and mean costs; plus its knee (diminishing
        returns: value, ci, status), knee_cost, noise verdict, per_cost efficiency and flags.
        Use it to choose a value for the knob or to see whether its range was explored enough.
        """
        return session.call(lambda ctx: influence_range(ctx, parameter, benchmark))

    @server.tool(name="suggest_next_experiment")
    def _suggest_next_experiment(
        experiment: str, benchmark: str | None = None, max_runs: int | None = None
    ) -> dict[str, Any]:
        """A follow-up experiment spec (YAML) exploring the under-used, high-leverage parameters that
        the experiment's latest ranking flagged (best value at the edge of the range, narrow range,
        few runs, baseline far from the best), with the reasons. Give `benchmark` when the
        experiment is ranked on several; `max_runs` caps the design. Nothing is recorded: save the
        YAML and declare it with `knobs experiment declare FILE` to run it. When nothing is
        flagged the tool says so, and why, instead of guessing.
        """
        return session.call(lambda ctx: suggest_next_experiment(ctx, experiment, benchmark, max_runs))

    @server.tool(name="audit_ranking")
    def _audit_ranking(ranking_id: str) -> dict[str, Any]:
        """The provenance of a ranking: the RunRecorded and BenchmarkScored events it used (log
        positions, event ids, hashes), each run's parameters, score and citation, whether the
        log's hash chain verifies, and whether the graph's links agree with the event. Accepts a
        full ranking id or an unambiguous prefix (notes show the first 8 characters). `problems`
        empty and chain.ok true mean the ranking is fully backed by the log.
        """
        return session.call(lambda ctx: audit_ranking(ctx, ranking_id))

    @server.tool(name="datasets_by_volatility")
    def _datasets_by_volatility(model: str | None = None) -> dict[str, Any]:
        """Data sets ranked by volatility (pstdev/mean of per-example gradient norms: how unevenly
        their examples move the model), most volatile first, one row per finished shift
        measurement: total_shift (sum of per-example gradient norms), net_shift (norm of their
        sum), coherence (net/total: do the examples pull the same way?), noise_scale (gradient
        noise scale B_simple), grad_norm p50/p90/max, the model measured and the log positions of
        the evidence. Pass `model` ('<experiment>/<run_id>' or a model's sha256) to keep one model.
        """
        return session.call(lambda ctx: _named(ctx, "shift_datasets_by_volatility", {"model": model}))

    @server.tool(name="volatile_examples")
    def _volatile_examples(dataset: str, measurement: str | None = None,
                           limit: int | None = None) -> dict[str, Any]:
        """The examples of a data set (its sha256 or file name) that move the model most: per example
        grad_norm (size of its gradient), loss_before, loss_drop (how much one step on it alone
        lowers its own loss), probe_shift (how that step changes the loss on a probe set: negative
        helps the rest), hidden_shift, update_norm, alignment (LoRA: cosine to the data set's mean
        gradient), with the measurement, model and the ShiftMeasured event behind each row.
        `limit` defaults to 20; `measurement` keeps one measurement.
        """
        params = {"dataset": dataset, "measurement": measurement, "limit": limit}
        return session.call(lambda ctx: _named(ctx, "shift_volatile_examples", params))

    @server.tool(name="volatility_knobs")
    def _volatility_knobs(benchmark: str | None = None) -> dict[str, Any]:
        """Which knobs make training volatile: the latest rankings of parameters on the outcomes
        runs record when their spec sets influence_every (train_volatility: mean volatility over
        training; train_volatility_final; train_forgetting: forgetting events per tracked
        example), with rank, influence range and noise label per parameter. Lower is smoother.
        Empty until an experiment recording influence has been ranked on one of them.
        """
        return session.call(lambda ctx: _named(ctx, "shift_volatility_knobs", {"benchmark": benchmark}))

    @server.tool(name="forgotten_examples")
    def _forgotten_examples(experiment: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """The training documents forgotten most while training: runs whose spec set influence_every
        track a sample of their training documents; a forgetting event is a document the model got
        right at one recording and wrong at the next (Toneva et al. 2019). Each row: run, document
        index and text, forgetting_events, never_learned, and its cartography (confidence = mean
        probability of its gold tokens, variability = its std, correctness = share of recordings
        right). `experiment` keeps one experiment; `limit` defaults to 20.
        """
        params = {"experiment": experiment, "limit": limit}
        return session.call(lambda ctx: _named(ctx, "shift_forgotten_examples", params))

    @server.tool(name="verdict_provenance")
    def _verdict_provenance(verdict: str) -> dict[str, Any]:
        """What a verdict on the compatibility hypothesis (does volatility measured before training
        predict what training learns, generalises and forgets?) was derived from: per candidate
        data set its volatility, the measurement and model state behind it, and the log positions
        of the HypothesisTested, DatasetShiftMeasured and chunk events, plus the correlations with
        their bootstrap intervals. `verdict` is the test id (`knobs shift verdicts` lists them).
        """
        return session.call(lambda ctx: _named(ctx, "shift_verdict_provenance", {"verdict": verdict}))

    @server.tool(name="lenses_by_survival")
    def _lenses_by_survival(distillation: str | None = None) -> dict[str, Any]:
        """Lenses (ways of rewriting a question-answer pair: restate, explain to a child, causal,
        ...) by survival rate: per lens version (name@version; an edited lens is a new version),
        distillates generated, assessed and accepted, survival = accepted / assessed, and the
        reasons the rejected ones were dropped as [reason, count] pairs (empty, refusal, echo,
        too_short, too_long, answer_missing, dissimilar, duplicate). Best survival first.
        `distillation` keeps one distillation (its id).
        """
        params = {"distillation": distillation}
        return session.call(lambda ctx: _named(ctx, "distillation_lenses_by_survival", params))

    @server.tool(name="lenses_by_diversity")
    def _lenses_by_diversity(distillation: str | None = None) -> dict[str, Any]:
        """Lenses by the diversity they add to each pair's cloud of rewrites: diversity_added = the
        summed cosine distance from the source (1 - similarity) of its accepted distillates, over
        its accepted plus its near-duplicate ones (a duplicate adds nothing); novelty = accepted /
        (accepted + duplicates); mean_distance; repeats_other_lenses and repeated_by_other_lenses
        count duplicates across lenses. Most diversity first. `distillation` keeps one.
        """
        params = {"distillation": distillation}
        return session.call(lambda ctx: _named(ctx, "distillation_lenses_by_diversity", params))

    @server.tool(name="pair_cloud")
    def _pair_cloud(pair: str, distillation: str | None = None) -> dict[str, Any]:
        """The cloud of one question-answer pair: every distillate (rewrite) of it, with lens and
        version, sample index, accepted or not with its reasons, the distillate it duplicates and
        their cosine, its similarity to the source, its text, model and engine, and its cloud's
        generated and accepted counts, diversity (mean pairwise cosine distance) and Vendi score.
        `pair` is the pair's own id from its file (or its QAPair id); `distillation` keeps one.
        """
        params = {"pair": pair, "distillation": distillation}
        return session.call(lambda ctx: _named(ctx, "distillation_pair_cloud", params))

    @server.tool(name="distillation_models")
    def _distillation_models(distillation: str | None = None) -> dict[str, Any]:
        """Which model produced which distillates: per model and engine (llm, or template for the
        deterministic template engine), the distillations and lens versions it wrote through,
        distillates generated, assessed and accepted, survival, prompt and completion tokens,
        answers served from the cache, requests sent (retries included) and mean latency.
        `distillation` keeps one distillation.
        """
        params = {"distillation": distillation}
        return session.call(lambda ctx: _named(ctx, "distillation_models", params))

    @server.tool(name="repetition_report")
    def _repetition_report(experiment: str) -> dict[str, Any]:
        """Does rewriting beat repeating? For a repetition experiment (`knobs repetition run`): per
        protocol and benchmark, the K x condition table (verbatim: the same text K times; lenses:
        K rewrites) with 95% intervals over seeds, lenses - verbatim at each K against seed noise
        ("better beyond noise", "within noise", ...), fits y = a + b ln K, the budget rule, and
        Physics of LM 3.1's figures with where in the paper they are, plus whether ours agree.
        """
        return session.call(lambda ctx: read_repetition(ctx.store(), experiment).to_json())

    @server.tool(name="cypher")
    def _cypher(query: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one read-only Cypher query on the knobs graph, with `params` as query parameters.

        Writes, LOAD CSV, procedures other than schema introspection (db.labels, ...) and
        administration commands are refused with the reason. Rows are capped (row_limit;
        `truncated` says when more existed) and queries time out. Graph: (Run)-[:PART_OF]->(Experiment),
        (Run)-[:USED_VALUE]->(ParameterValue {name, value})-[:VALUE_OF]->(Parameter {name}),
        (Score {benchmark, value, stderr})-[:WAS_GENERATED_BY]->(Run), (Score)-[:ON_BENCHMARK]->(Benchmark),
        (Run)-[:REPORTED_IN]->(Source {citation}), (Ranking)-[:RANKS {rank, influence_lo, influence_hi}]->
        (Parameter), (Ranking)-[:ABOUT]->(Experiment), (Ranking)-[:FOR_BENCHMARK]->(Benchmark),
        (Ranking)-[:USED_RUN]->(Run), (Ranking)-[:WAS_DERIVED_FROM]->(Score).
        Example: MATCH (k:Ranking)-[r:RANKS]->(p:Parameter) RETURN k.benchmark, p.name, r.rank LIMIT 10
        """
        return session.call(lambda ctx: cypher(ctx, query, params))

    return server


def serve(token: str) -> None:
    """Serve on stdin/stdout until the client closes the stream, if `token` may read; else
    raise the gate's error (the command prints it and exits non-zero before serving)."""
    gate = Gate(knobs_home(), ApiSettings())
    gate.authorize(token, "read", STDIO)
    create_server(guard=lambda: gate.authorize(token, "read", STDIO)).run("stdio")
