"""`knobs import results`, `knobs rank`, `knobs audit`: the first main job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from events.models import Direction
from services.cli.import_adapters_cmd import run_import
from services.cli.output import emit_json
from services.cli.ranking_view import render_matrix, render_ranking
from services.core.context import Context
from services.core.errors import BadInput
from services.importing.results import import_results
from services.ranking.analysis.efficiency import COST_KINDS
from services.ranking.audit import audit as audit_ranking
from services.ranking.matrix import rank_matrix
from services.ranking.rank import METHODS, RankOptions
from services.ranking.rank import rank as rank_knobs

import_app = typer.Typer(help="Bring results produced elsewhere into the log.", no_args_is_help=True)


@import_app.command("results")
def results(
    file: Path = typer.Argument(..., help="A .csv or .jsonl file, one row per run."),
    experiment: str = typer.Option(..., "--experiment", help="The experiment these runs belong to."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import runs (run, citation, seed, param.*, score.*, stderr.*, n.*, cost.*): all or nothing."""
    run_import(lambda ctx: import_results(ctx, file, experiment), json_out)


def register(app: typer.Typer) -> None:
    app.command("rank")(rank)
    app.command("audit")(audit)


def rank(
    experiment: str = typer.Option(..., "--experiment", help="Experiment name."),
    benchmark: list[str] = typer.Option(None, "--benchmark", help="Benchmark to rank on; repeat it "
                                        "for a parameters x benchmarks matrix."),
    all_benchmarks: bool = typer.Option(False, "--all-benchmarks", help="Rank on every benchmark "
                                        "the experiment has (a matrix)."),
    method: str = typer.Option(None, "--method", help="ofat, morris or sobol (default: what the "
                               "experiment's design calls for; ofat for imported results)."),
    as_of: int = typer.Option(None, "--as-of", min=1, help="Rank the evidence as the log held it at "
                              "this position: reproduces a recorded ranking exactly."),
    without: list[str] = typer.Option(None, "--without", help="Leave this run out (repeatable): "
                                      "recompute a ranking as if the run had never happened."),
    baseline: str = typer.Option(None, "--baseline", help="ofat: run whose parameters are the "
                                 "baseline (default: the most common value of each parameter)."),
    lower_is_better: bool = typer.Option(None, "--lower-is-better/--higher-is-better", help="Which way "
                                         "the benchmark improves (default: from its name)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Bootstrap seed (confidence intervals, knees)."),
    by_cost: str = typer.Option(None, "--by-cost", help="Also order the knobs by gain per unit of "
                                "this cost: flops, gpu_hours or weight_bytes."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Rank parameters (one-at-a-time, Morris or Sobol) with noise, knees and cost; record it."""
    if benchmark and all_benchmarks:
        raise BadInput("give --benchmark or --all-benchmarks, not both")
    if not benchmark and not all_benchmarks:
        raise BadInput("say what to rank on: --benchmark NAME (repeatable) or --all-benchmarks")
    if by_cost is not None and by_cost not in COST_KINDS:
        raise BadInput(f"--by-cost {by_cost!r}: choose one of {', '.join(COST_KINDS)}")
    if method is not None and method not in METHODS:
        raise BadInput(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    direction: Direction | None = (None if lower_is_better is None
                                   else "lower" if lower_is_better else "higher")
    options = RankOptions(baseline_run=baseline, method=method,
                          as_of=as_of, without=tuple(without or ()), direction=direction,
                          bootstrap_seed=seed)
    with Context() as ctx:
        if all_benchmarks or len(benchmark) > 1:
            matrix = rank_matrix(ctx, experiment, None if all_benchmarks else benchmark, options)
            if json_out:
                emit_json(matrix.public())
            else:
                typer.echo(render_matrix(matrix))
            return
        outcome = rank_knobs(ctx, experiment, benchmark[0], options=options)
    if json_out:
        emit_json(outcome.public())
    else:
        typer.echo(render_ranking(outcome, by_cost))


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
        f"  settings: {_settings_line(r)}",
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


def _settings_line(r: dict[str, Any]) -> str:
    """The choices that set the numbers, so the reader can repeat them with `knobs rank`."""
    shown = {k: v for k, v in sorted((r.get("settings") or {}).items()) if v not in (None, [], "")}
    parts = [f"{k}={v}" for k, v in shown.items()]
    if r.get("bootstrap_seed") is not None:
        parts.append(f"bootstrap seed {r['bootstrap_seed']}")
    return ", ".join(parts) or "defaults"
