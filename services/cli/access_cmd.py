"""`knobs token ...`: the API bearer tokens of a KNOBS_HOME (services/access/)."""

from __future__ import annotations

import typer

from events.home import knobs_home
from services.access import tokens

token_app = typer.Typer(help="API bearer tokens kept (hashed) under $KNOBS_HOME.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., help="Who or what the token is for."),
    read_only: bool = typer.Option(False, "--read-only", help="May read, may not append events."),
) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    typer.echo(tokens.create_token(knobs_home(), name, "read" if read_only else "write"))
