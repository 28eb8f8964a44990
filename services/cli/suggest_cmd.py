"""`knobs suggest`: write a follow-up experiment spec for the knobs a ranking flags as under-used."""

from __future__ import annotations

from pathlib import Path

import typer

from services.cli.output import emit_json
from services.core.context import Context
from services.ranking.suggest import SuggestedSpec, suggest


def register(app: typer.Typer) -> None:
    app.command("suggest")(suggest_cmd)


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
    with Context() as ctx:
        done = suggest(ctx, experiment, benchmark, out, force=force, max_runs=max_runs)
    if json_out:
        emit_json(done.public())
    else:
        typer.echo(render(done))


def render(s: SuggestedSpec) -> str:
    lines = [f"{s.name}: a follow-up of {s.experiment} ({s.runs} runs), from ranking {s.ranking_id} "
             f"on {s.benchmark}", "why:"]
    lines += [f"  - {r}" for r in s.reasons]
    lines.append(f"written to {s.path}; check it with `knobs experiment plan {s.path}`")
    return "\n".join(lines)
