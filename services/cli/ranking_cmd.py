"""`knobs rank`, `knobs audit`, `knobs suggest`, `knobs selftest`: the commands of services/ranking/."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from services.cli.output import emit_json, table
from services.cli.ranking_view import render_audit, render_matrix, render_ranking, render_suggested
from services.core.context import Context
from services.core.errors import BadInput

if TYPE_CHECKING:
    from events.models import Direction


def register(app: typer.Typer) -> None:
    app.command("rank")(rank)
    app.command("audit")(audit)
    app.command("suggest")(suggest_cmd)
    app.command("selftest")(selftest)


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
    from services.ranking.analysis.efficiency import COST_KINDS
    from services.ranking.matrix import rank_matrix
    from services.ranking.rank import METHODS, RankOptions  # numpy, pandas: not at `--help` time
    from services.ranking.rank import rank as rank_knobs

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
    """Show a ranking's (or a hypothesis verdict's) provenance: the events it used, their hashes,
    and the citations or measurements behind them."""
    from services.ranking.audit import audit as audit_ranking
    from services.shift.audit import audit_verdict, is_verdict, render_verdict_audit

    with Context() as ctx:
        if is_verdict(ctx, ranking_id):
            trail = audit_verdict(ctx, ranking_id)
            render = render_verdict_audit
        else:
            trail = audit_ranking(ctx, ranking_id)
            render = render_audit
    if json_out:
        emit_json(trail)
    else:
        typer.echo(render(trail))
    if trail["problems"] or not trail["chain"]["ok"]:
        raise typer.Exit(1)


def suggest_cmd(
    experiment: str = typer.Option(..., "--experiment", help="Experiment to follow up."),
    benchmark: str = typer.Option(None, "--benchmark", help="Benchmark to rank on (needed when the "
                                  "experiment has several)."),
    out: Path = typer.Option(None, "--out", help="File (or folder) to write the spec to (default: "
                             "<experiment>-followup-<hash>.yaml here)."),
    force: bool = typer.Option(False, "--force", help="Overwrite the file if it exists."),
    max_runs: int = typer.Option(None, "--max-runs", min=1, help="Cap the follow-up's runs (drops "
                                 "unflagged factors, then added seeds)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write a follow-up experiment spec that explores the knobs a ranking flags as under-used.

    Best value as the new base, values beyond an edge or inside a narrow range, more seeds.
    """
    from services.ranking.suggest import suggest

    with Context() as ctx:
        done = suggest(ctx, experiment, benchmark, out, force=force, max_runs=max_runs)
    if json_out:
        emit_json(done.public())
    else:
        typer.echo(render_suggested(done))


def selftest(
    seed: int = typer.Option(0, "--seed", min=0, help="Design and bootstrap seed."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check Morris and Sobol against analytic indices (Ishigami, Sobol G); exit 1 on a miss.

    The test functions go through the same spec, design and analysis code as experiments and
    are compared within SALib's own test tolerances.
    """
    from services.ranking.analysis.selftest import gsa_selftest

    checks = gsa_selftest(seed)
    failed = [c for c in checks if not c.passed]
    if json_out:
        emit_json({"ok": not failed, "seed": seed, "checks": [asdict(c) for c in checks]})
    else:
        typer.echo(table(["check", "expected", "got", "tolerance", "ok"],
                         [[c.name, c.expected, c.got, c.tolerance, "ok" if c.passed else "FAIL"]
                          for c in checks]))
        sources = sorted({c.source for c in checks if c.source})
        typer.echo("\ntolerances from: " + "; ".join(sources))
        typer.echo(f"{len(checks) - len(failed)} of {len(checks)} checks passed")
    if failed:
        raise typer.Exit(1)
