"""`knobs graph ...` (projection) and `knobs query` (read-only Cypher)."""

from __future__ import annotations

import json
import threading

import typer

from graph.queries import list_queries, load_query
from services.cli.output import emit_json, table
from services.core.context import Context
from services.core.errors import BadInput

app = typer.Typer(help="Project the log into Neo4j, rebuild it, dump it.", no_args_is_help=True)


@app.command()
def project(
    follow: bool = typer.Option(False, "--follow", help="Keep following the log until interrupted."),
    poll: float = typer.Option(0.5, min=0.05, help="Seconds between polls with --follow."),
) -> None:
    """Project every event not yet in the graph (the projector is the graph's only writer)."""
    with Context() as ctx:
        projector = ctx.projector()
        if not follow:
            typer.echo(f"projected {projector.run_once()} events; lag {projector.lag()}")
            return
        stop = threading.Event()
        try:
            projector.follow(poll, stop)
        except KeyboardInterrupt:
            stop.set()


@app.command()
def rebuild() -> None:
    """Wipe the graph and replay the whole log into it."""
    with Context() as ctx:
        count = ctx.projector().rebuild()
    typer.echo(f"rebuilt: {count} events projected")


@app.command()
def dump(
    canonical: bool = typer.Option(True, "--canonical/--raw", help="Sorted canonical JSON lines."),
) -> None:
    """Print the whole graph as sorted canonical JSON lines (compare incremental vs rebuilt)."""
    from graph.dump import canonical_dump  # the driver: not at `knobs --help` time

    with Context() as ctx:
        typer.echo(canonical_dump(ctx.driver()), nl=False)


@app.command()
def status() -> None:
    """Checkpoint, log head and lag."""
    with Context() as ctx:
        head = ctx.store().head()
        lag = ctx.projector().lag()
    typer.echo(f"log head {head}; projected up to {head - lag}; lag {lag}")


def register(root: typer.Typer) -> None:
    root.command("query")(query)
    root.command("queries")(queries)


def _params(pairs: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise BadInput(f"--param {pair!r}: write NAME=VALUE (VALUE is JSON, or plain text)")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


def query(
    cypher: str = typer.Argument(None, help="A read-only Cypher query."),
    name: str = typer.Option(None, "--name", help="Run a named query from graph/queries instead."),
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE query parameter (repeatable)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Row limit (default KNOBS_API_CYPHER_ROW_LIMIT)."),
    timeout: float = typer.Option(None, "--timeout", min=0.1, help="Seconds before the query is stopped."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run Cypher strictly read-only: writes, LOAD CSV and unlisted procedures are refused."""
    from graph.readonly import run_readonly
    from services.core.settings import ApiSettings
    from services.queries.named import bind

    if (cypher is None) == (name is None):
        raise BadInput("give either a Cypher query or --name NAME (see `knobs queries`)")
    params = _params(param or [])
    if name:  # optional parameters left out become null; missing required ones are named
        named = load_query(name)
        text, params = named.cypher, bind(named, params)
    else:
        text = cypher
    settings = ApiSettings()
    with Context() as ctx:
        result = run_readonly(ctx.driver(), text, params,
                              timeout_s=timeout or settings.cypher_timeout_s,
                              row_limit=limit or settings.cypher_row_limit,
                              max_chars=settings.cypher_max_chars)
    if json_out:
        emit_json({"columns": result.columns, "rows": result.rows, "truncated": result.truncated})
        return
    typer.echo(table(result.columns, [[_cell(v) for v in row] for row in result.rows]))
    if result.truncated:
        typer.echo(f"(truncated at {len(result.rows)} rows; raise --limit to see more)")


def _cell(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def queries() -> None:
    """List the named queries in graph/queries."""
    for q in list_queries():
        typer.echo(f"{q.name}\n    {q.description.splitlines()[0] if q.description else ''}")
