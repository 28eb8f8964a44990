"""`knobs token ...`: the API bearer tokens of a KNOBS_HOME (services/access/)."""

from __future__ import annotations

import typer

from events.home import knobs_home
from services.access import tokens
from services.core.errors import BadInput

token_app = typer.Typer(help="API bearer tokens kept (hashed) under $KNOBS_HOME.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., help="Who or what the token is for."),
    scope: str = typer.Option(None, help="read (everything but writing), append (also POST events, "
                              "rankings, distillations) or admin (also list and revoke tokens). "
                              "Default append."),
    read_only: bool = typer.Option(False, "--read-only", help="Same as --scope read."),
    expires_in: str = typer.Option("never", help="Lifetime: 30d, 12h, 90m, 2w or never."),
    rate_per_s: float = typer.Option(None, help="This token's request limit per second "
                                     "(default: the server's KNOBS_API_RATE_PER_S)."),
    burst: int = typer.Option(None, help="This token's burst (default: KNOBS_API_BURST)."),
) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    if read_only and scope not in (None, "read"):
        raise BadInput(f"--read-only and --scope {scope} disagree: pass one of them")
    chosen = "read" if read_only else (scope or "append")
    lifetime = tokens.parse_expiry(expires_in)
    token = tokens.create_token(knobs_home(), name, tokens.as_scope(chosen), lifetime, rate_per_s, burst)
    typer.echo(token)  # alone on stdout, for scripts: `TOKEN=$(knobs token create ...)`
    typer.echo(f"token {token.split('_')[1]} for {name!r}, scope {tokens.as_scope(chosen)}, "
               f"{'expires in ' + expires_in.strip() if lifetime else 'never expires'}: it is shown only "
               f"this once; `knobs token revoke {token.split('_')[1]}` ends it", err=True)


@token_app.command("list")
def token_list() -> None:
    """The tokens of this KNOBS_HOME: id (the token's visible prefix), name, scope, dates (last use to
    the minute); never a secret."""
    entries = tokens.list_tokens(knobs_home())
    if not entries:
        typer.echo("no tokens yet; create one with `knobs token create --name NAME`")
        return
    at, used = tokens.now(), tokens.last_used(knobs_home())
    rows = [("ID", "NAME", "SCOPE", "CREATED", "EXPIRES", "LAST USED", "STATE")]
    for e in entries:
        state = (f"revoked {e.revoked}" if e.revoked else "expired" if e.expired(at) else "active")
        rows.append((e.id, e.name, e.scope, e.created, e.expires or "never", used.get(e.id, "never"), state))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


@token_app.command("revoke")
def token_revoke(
    id_or_name: str = typer.Argument(..., help="The token's id (see `list`) or its name."),
) -> None:
    """Revoke a token: a running server refuses it at its next request."""
    entry = tokens.revoke(knobs_home(), id_or_name)
    typer.echo(f"revoked {entry.id} ({entry.name}, scope {entry.scope}) on {entry.revoked}")
