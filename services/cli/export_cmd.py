"""`knobs export notes DIR` (a Markdown vault for notes apps), `knobs export json` (for programs) and
`knobs export cloud` (distillates as a training corpus)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from services.cli.output import emit_json
from services.core.context import Context
from services.core.errors import BadInput
from services.export import MANIFEST

if TYPE_CHECKING:
    from events.models.rankings import RankingDerived

app = typer.Typer(help="Export what the log knows: a Markdown vault for notes apps, or JSON for programs.",
                  no_args_is_help=True)


@app.command("notes")
def notes(
    directory: Path = typer.Argument(..., help="The vault folder (created if missing)."),
    force: bool = typer.Option(False, "--force", help=f"Write into a non-empty folder that has no {MANIFEST} "
                               "from an earlier export (files knobs did not write are never removed)."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Draw each ranking's tornado chart "
                                 "as Figures/ranking-<id>.svg and embed it in the ranking's note."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write one note per experiment, benchmark, parameter, data set and latest ranking, plus index.md.

    Notes carry YAML front matter and [[wiki-links]]; Obsidian opens the folder as a vault.
    Each ranking note embeds its tornado chart (an SVG drawn by matplotlib, as `knobs plot ranking`).
    Re-exporting rewrites the notes and removes those a previous export wrote that are gone.
    """
    from services.export.notes import export_notes  # not at `knobs --help` time

    with Context() as ctx:
        outcome = export_notes(ctx, directory, force=force, ranking_figure=tornado_svg if figures else None)
    if json_out:
        emit_json(outcome.public())
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in outcome.notes.items())
    removed = f"; removed {len(outcome.removed)} stale" if outcome.removed else ""
    drawn = f", {outcome.figures} figures" if outcome.figures else ""
    typer.echo(f"{directory}: {counts}{drawn} and index.md (log head {outcome.log_head}); "
               f"{outcome.written} written, {outcome.unchanged} unchanged{removed}")


def tornado_svg(ranking: RankingDerived) -> str:
    from services.figures.mpl import svg_text  # matplotlib: only when a vault is drawn
    from services.figures.ranking import tornado

    return svg_text(tornado(ranking))


@app.command("json")
def json_cmd(
    out: Path = typer.Option(None, "--out", help="Write to FILE instead of standard output."),
) -> None:
    """One JSON document: {"format": "knobs-export", "version": 1, "log_head", "experiments", "parameters",
    "benchmarks", "datasets", "rankings"} with sorted keys, identical for the same log."""
    from services.export.json_export import export_json

    with Context() as ctx:
        text = export_json(ctx)
    if out is None:
        typer.echo(text, nl=False)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from exc
    typer.echo(f"wrote {out} ({len(text.encode('utf-8'))} bytes)", err=True)


@app.command("cloud")
def cloud(
    out: Path = typer.Option(None, "--out", help="Write to FILE.jsonl instead of standard output."),
    distillation: str = typer.Option(None, "--distillation",
                                     help="One distillation (its id or a prefix); default every one."),
    accepted_only: bool = typer.Option(True, "--accepted-only/--all",
                                       help="Only accepted distillates (default), or every one with "
                                            "`accepted` and `reasons`."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """The clouds of distillates as training-ready JSONL, read from the log (no Neo4j needed).

    One line per distillate: {"text": the distillate, "id", "distillation_id", "pair_id",
    "question", "answer", "known_answer", "lens", "lens_version", "family", "sample", "engine",
    "model", "similarity", "position"}. The trainer reads it as `corpus='file:FILE.jsonl'`.
    """
    from services.export.cloud import export_cloud

    with Context() as ctx:
        summary, text = export_cloud(ctx.store(), out, distillation=distillation, accepted_only=accepted_only)
    if out is None:
        typer.echo(text, nl=False)
    if json_out:
        if out is None:  # standard output holds the lines: the summary goes to standard error
            typer.echo(json.dumps(summary.public(), sort_keys=True), err=True)
        else:
            emit_json(summary.public())
        return
    kept = "accepted" if accepted_only else "all"
    typer.echo(f"wrote {summary.lines} distillates ({kept}) of {len(summary.distillations)} distillation(s) "
               f"to {out or 'standard output'}; {summary.generated} generated, {summary.rejected} rejected, "
               f"{summary.unassessed} not yet assessed", err=True)
