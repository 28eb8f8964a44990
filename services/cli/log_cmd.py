"""`knobs events` and `knobs verify`: read the log, check its hash chain."""

from __future__ import annotations

import typer

from services.cli.output import emit_json, emit_jsonl, table
from services.core.context import Context


def register(app: typer.Typer) -> None:
    app.command("events")(events)
    app.command("verify")(verify)


def events(
    type_: list[str] = typer.Option(None, "--type", help="Only events of this type (repeatable)."),
    after: int = typer.Option(0, "--after", min=0, help="Only events after this log position."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many events."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON lines (one event per line)."),
) -> None:
    """List events in log order."""
    with Context() as ctx:
        rows = ctx.store().read_all(after=after, limit=limit, types=type_ or None)
    if json_out:
        for e in rows:
            emit_jsonl(e.public())
        return
    typer.echo(table(
        ["position", "type", "stream", "recorded_at", "hash"],
        [[e.position, e.event_type, e.stream_id, e.recorded_at, e.hash[:12]] for e in rows],
    ))


def verify(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Recompute the SHA-256 hash chain; exit 1 naming the first bad position if it breaks."""
    with Context() as ctx:
        report = ctx.store().verify()
    if json_out:
        emit_json({"ok": report.ok, "checked": report.checked, "head_hash": report.head_hash,
                   "first_bad_position": report.first_bad_position, "reason": report.reason})
    elif report.ok:
        typer.echo(f"ok: {report.checked} events, chain head {report.head_hash}")
    else:
        typer.secho(f"BROKEN at position {report.first_bad_position}: {report.reason} "
                    f"({report.checked} events verified before it)", err=True, fg=typer.colors.RED)
    if not report.ok:
        raise typer.Exit(1)
