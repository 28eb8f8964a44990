"""`knobs lenses list|show|check`: the lenses a distillation can rewrite pairs through (README: Lens
distillation). `knobs distill` belongs in this module too (see `register`)."""

from __future__ import annotations

from pathlib import Path

import typer

from services.cli.output import emit_json, table
from services.distillation.lenses import (
    BUILTIN,
    LensError,
    LoadedLens,
    check_paths,
    families,
    lens_named,
    lens_public,
    load_lenses,
)

lenses_app = typer.Typer(help="The lenses: builtin and your own YAML files, each versioned by its "
                         "content (README: Lens distillation).", no_args_is_help=True)

LENS_DIR_HELP = ("A directory of your own lens files (repeatable; after $KNOBS_HOME/lenses and "
                 "KNOBS_LENS_DIRS, and a lens here replaces one of the same name).")


def register(app: typer.Typer) -> None:
    """Wire this module's commands into `knobs` (services/cli/main.py calls this once)."""
    app.add_typer(lenses_app, name="lenses")
    # `knobs distill` (issue 11, the engine) registers here: app.command("distill")(distill_cmd).


@lenses_app.command("list")
def list_cmd(
    family: str | None = typer.Option(None, "--family", help="Only lenses of this family."),
    lens_dir: list[Path] = typer.Option([], "--lens-dir", help=LENS_DIR_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every lens by family: name, version, where it came from, what it does."""
    lenses = load_lenses(lens_dir)
    shown = sorted(lenses.values(), key=lambda item: (item.lens.family, item.lens.name))
    if family is not None:
        shown = [item for item in shown if item.lens.family == family]
        if not shown:
            raise LensError(f"no lens of family {family!r}; families: {', '.join(families(lenses.values()))}")
    if json_out:
        emit_json([{"name": item.lens.name, "family": item.lens.family, "version": item.version,
                    "origin": item.origin, "overrides": item.overrides or None,
                    "description": item.lens.description} for item in shown])
        return
    rows = [[item.lens.name, item.lens.family, item.version, _origin(item), item.lens.description]
            for item in shown]
    typer.echo(table(["name", "family", "version", "origin", "description"], rows))
    users = sum(item.origin != BUILTIN for item in shown)
    typer.echo(f"\n{len(shown)} lenses, {users} of them yours"
               + (f"; {sum(bool(i.overrides) for i in shown)} replace a lens of the same name"
                  if any(i.overrides for i in shown) else ""))


def _origin(item: LoadedLens) -> str:
    return f"{item.origin} (overrides {item.overrides})" if item.overrides else item.origin


@lenses_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="A lens name (`knobs lenses list`)."),
    lens_dir: list[Path] = typer.Option([], "--lens-dir", help=LENS_DIR_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One lens in full, with its version: what the model is asked, with which settings."""
    item = lens_named(name, load_lenses(lens_dir))
    if json_out:
        emit_json(lens_public(item))
        return
    lens = item.lens
    s, k = lens.sampling, lens.keeps
    lines = [f"lens {lens.name} (family {lens.family}), version {item.version}", f"origin: {_origin(item)}",
             f"description: {lens.description}", f"system: {lens.system or '(none)'}", "template:",
             *(f"  {line}".rstrip() for line in lens.template.splitlines()),
             f"sampling: temperature {s.temperature:g}, top_p {s.top_p:g}, max_tokens {s.max_tokens}",
             f"keeps: answer {'yes' if k.answer else 'no'}, {k.min_chars} to {k.max_chars} characters"]
    typer.echo("\n".join(lines))


@lenses_app.command("check")
def check_cmd(
    paths: list[Path] = typer.Argument(..., help="Lens files, or directories of them."),
) -> None:
    """Validate lens files: each is OK (with its version) or its error; exit 2 if any is bad."""
    checked = check_paths(paths)
    for verdict in checked:
        if verdict.lens is not None:
            typer.echo(f"OK    {verdict.path}  ({verdict.lens.name}, family {verdict.lens.family}, "
                       f"version {verdict.lens.version})")
        else:
            typer.secho(f"BAD   {verdict.error}", fg=typer.colors.RED)
    bad = sum(v.lens is None for v in checked)
    if bad:
        typer.echo(f"{bad} of {len(checked)} bad")
        raise typer.Exit(2)
