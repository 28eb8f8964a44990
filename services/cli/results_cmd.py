"""`knobs import results`, `knobs rank`, `knobs audit`: the first main job."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from graph.errors import GraphError
from services.audit import audit as audit_ranking
from services.cli.output import emit_json, si, table
from services.context import Context
from services.errors import Unavailable
from services.ranking import RankingOutcome
from services.ranking import rank as rank_knobs
from services.results_import import import_results

import_app = typer.Typer(help="Bring results produced elsewhere into the log.", no_args_is_help=True)


@import_app.command("results")
def results(
    file: Path = typer.Argument(..., help="A .csv or .jsonl file, one row per run."),
    experiment: str = typer.Option(..., "--experiment", help="The experiment these runs belong to."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import runs (run, citation, seed, param.*, score.*, stderr.*, n.*, cost.*): all or nothing."""
    with Context() as ctx:
        outcome = import_results(ctx, file, experiment)
        try:
            ctx.catch_up()
        except (Unavailable, GraphError) as exc:
            # The log is the truth and the import is in it; the graph can catch up later.
            typer.secho(f"note: the graph was not updated ({exc}); run `knobs graph project` "
                        "once Neo4j is up", err=True, fg=typer.colors.YELLOW)
    if json_out:
        emit_json(asdict(outcome))
        return
    span = (f" at positions {outcome.first_position}..{outcome.last_position}"
            if outcome.new_events else "")
    typer.echo(f"{experiment}: {outcome.runs} runs, {outcome.scores} scores; "
               f"{outcome.new_events} new events{span}, {outcome.events - outcome.new_events} already stored")


def register(app: typer.Typer) -> None:
    app.command("rank")(rank)
    app.command("audit")(audit)


def rank(
    experiment: str = typer.Option(..., "--experiment", help="Experiment name."),
    benchmark: str = typer.Option(..., "--benchmark", help="Benchmark to rank on."),
    baseline: str = typer.Option(None, "--baseline", help="Run whose parameters are the baseline "
                                 "(default: the most common value of each parameter)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rank parameters by the width of their one-at-a-time influence range; record the ranking."""
    with Context() as ctx:
        outcome = rank_knobs(ctx, experiment, benchmark, baseline)
    if json_out:
        emit_json(outcome.public())
    else:
        typer.echo(render_ranking(outcome))


def render_ranking(outcome: RankingOutcome) -> str:
    r = outcome.ranking
    res = outcome.result
    lines = [
        f"Ranking {r.ranking_id}  ({r.method}, benchmark {r.benchmark}, experiment {r.experiment})",
        f"baseline: runs {', '.join(r.baseline_runs)}  mean {r.baseline_mean:.4g}",
        "",
    ]
    rows: list[list[Any]] = []
    cost_kind = headline_cost(v.cost for p in r.parameters for v in p.values)
    for p in r.parameters:
        lo, hi = p.influence_range
        tried = "  ".join(
            f"{v.value}{'*' if v.is_baseline else ''}: {v.mean:.4g} ({v.effect:+.3g}"
            + (f", ci {v.ci[0]:.3g}..{v.ci[1]:.3g}" if v.ci else "") + f", n={v.n})"
            for v in p.values
        )
        costs = [v.cost[cost_kind] for v in p.values if cost_kind and cost_kind in v.cost]
        spent = f"{si(min(costs))}..{si(max(costs))}" if costs else "-"
        rows.append([p.rank, p.name, f"[{lo:+.3g}, {hi:+.3g}]", f"{hi - lo:.3g}", spent, tried])
    headers = ["rank", "parameter", "influence", "width", f"cost ({cost_kind or 'none recorded'})",
               "values (* baseline): mean (effect)"]
    lines.append(table(headers, rows))
    if res.not_varied_alone:
        shown = ", ".join(res.not_varied_alone[:8])
        more = len(res.not_varied_alone) - 8
        lines.append(f"\nnot varied alone (no ranking possible): {shown}"
                     + (f" and {more} more (--json lists them)" if more > 0 else ""))
    if r.excluded_runs:
        lines.append(f"runs differing in several parameters (left out): {', '.join(r.excluded_runs)}")
    lines.append(f"\nrecorded as RankingDerived at position {outcome.position}"
                 f"{' (already recorded: same evidence, same code)' if outcome.duplicate else ''}; "
                 f"{len(r.used_events)} events used; `knobs audit {r.ranking_id}` shows them")
    return "\n".join(lines)


COST_PREFERENCE = ("flops_6nd", "flops", "gpu_hours", "wall_s", "params_total", "parameters")


def headline_cost(costs: Iterable[dict[str, float]]) -> str | None:
    """The cost kind to show beside effects: compute first, then time, then size."""
    kinds = {k for c in costs for k in c}
    return next((k for k in COST_PREFERENCE if k in kinds), min(kinds) if kinds else None)


def audit(
    ranking_id: str = typer.Argument(..., help="The ranking's id (from `knobs rank`)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a ranking's provenance: the events it used, their hashes, and the citations."""
    with Context() as ctx:
        trail = audit_ranking(ctx, ranking_id)
    if json_out:
        emit_json(trail)
    else:
        typer.echo(render_audit(trail))
    if trail["problems"] or not trail["chain"]["ok"]:
        raise typer.Exit(1)


def render_audit(trail: dict[str, Any]) -> str:
    r = trail["ranking"]
    ev = r["event"]
    lines = [
        f"Ranking {r['ranking_id']}",
        f"  {r['method']} on {r['benchmark']} in {r['experiment']}; code {r['code_version']}; "
        f"evidence up to log position {r['as_of']}",
        f"  recorded: event #{ev['position']} {ev['type']} {ev['event_id']} sha256 {ev['hash'][:16]}…",
        "  ranks: " + ", ".join(f"{p['rank']}. {p['name']}" for p in trail["parameters"]),
        f"  derived from {trail['events_used']} events:",
    ]
    citations: dict[str, str] = {}
    for run in trail["evidence"]:
        re_, se = run.get("run_event"), run.get("score_event")
        lines.append(f"    run {run['run_id']}: score {run.get('score')}"
                     f"  [#{re_['position']} RunRecorded {re_['hash'][:10]}…, "
                     f"#{se['position']} BenchmarkScored {se['hash'][:10]}…]")
        if run.get("source"):
            src = run["source"]
            citations[src["source_id"]] = f"{src['citation']}  [#{src['event']['position']} SourceCited]"
            lines.append(f"      cited from {src['source_id']}")
    if citations:
        lines.append("  citations:")
        lines.extend(f"    {sid}: {text}" for sid, text in sorted(citations.items()))
    chain = trail["chain"]
    verdict = "verified" if chain["ok"] else f"BROKEN at position {chain['first_bad_position']}"
    lines.append(f"  hash chain: {verdict} ({chain['checked']} events)")
    g = trail["graph"]
    agreement = "consistent with the log" if g["consistent"] else "NOT consistent: run `knobs graph rebuild`"
    lines.append(f"  graph: ranking linked to {g['linked_events']} of those events ({agreement})")
    for p in trail["problems"]:
        lines.append(f"  PROBLEM: {p}")
    return "\n".join(lines)
