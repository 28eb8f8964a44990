"""`knobs demo` (what `make demo` runs): published results in, ranked knobs and audit out."""

from __future__ import annotations

from pathlib import Path

import typer

from events.settings import knobs_home
from services.audit import audit
from services.cli.results_cmd import render_audit, render_ranking
from services.context import Context
from services.infra import control
from services.ranking import rank
from services.results_import import import_results

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "vaswani2017_table3.csv"
EXPERIMENT = "vaswani2017-table3"


def run_demo(data: Path | None) -> None:
    home = knobs_home()
    typer.secho(f"== services (KNOBS_HOME={home})", bold=True)
    for name, state in control.up(home).items():
        typer.echo(f"{name}: {state.get('uri', '')} pid {state.get('pid')}")
    path = data or BUNDLED
    with Context(home) as ctx:
        typer.secho(f"\n== import {path.name} as experiment {EXPERIMENT}", bold=True)
        outcome = import_results(ctx, path, EXPERIMENT)
        ctx.catch_up()
        typer.echo(f"{outcome.runs} runs, {outcome.scores} scores, {outcome.new_events} new events "
                   f"({outcome.events - outcome.new_events} already stored)")
        last = None
        for benchmark in ("bleu_dev", "ppl_dev"):
            typer.secho(f"\n== rank the knobs on {benchmark}", bold=True)
            last = rank(ctx, EXPERIMENT, benchmark)
            typer.echo(render_ranking(last))
        assert last is not None
        typer.secho(f"\n== audit ranking {last.ranking.ranking_id}", bold=True)
        typer.echo(render_audit(audit(ctx, last.ranking.ranking_id)))
    typer.echo("\nNext: `knobs query 'MATCH (r:Ranking)-[k:RANKS]->(p:Parameter) RETURN r.benchmark, "
               "p.name, k.rank ORDER BY k.rank'`, `knobs serve`, `knobs services down`.")
