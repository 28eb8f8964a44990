"""`knobs services ...`: the local Neo4j, PostgreSQL, RabbitMQ, Redis and LLM server of a KNOBS_HOME."""

from __future__ import annotations

import typer

from events.home import knobs_home
from services.cli.output import emit_json

app = typer.Typer(help="Install, start, stop and inspect the local Neo4j, PostgreSQL, RabbitMQ, "
                  "Redis and LLM server.",
                  no_args_is_help=True)


@app.command()
def install() -> None:
    """Fetch Neo4j Community 5.26 from Maven Central into the shared cache (once)."""
    from services.infra import control

    control.install()
    typer.echo("neo4j: installed")


@app.command()
def up(
    postgres: bool = typer.Option(False, "--postgres", help="Also start PostgreSQL (the production "
                                  "event-store backend)."),
    rabbitmq: bool = typer.Option(False, "--rabbitmq", help="Also start RabbitMQ (a private node, "
                                  "Dramatiq's broker)."),
    redis: bool = typer.Option(False, "--redis", help="Also start Redis (Dramatiq's other broker)."),
    llm: bool = typer.Option(False, "--llm", help="Also start the local OpenAI-compatible LLM server "
                             "(llama-cpp-python serving SmolLM2-135M-Instruct)."),
    http: bool = typer.Option(False, "--http", help="Also open Neo4j's HTTP port (off by default)."),
) -> None:
    """Start this home's services on free loopback ports and record them under $KNOBS_HOME/run."""
    from services.infra import control

    started = control.up(knobs_home(), with_postgres=postgres, with_rabbitmq=rabbitmq,
                         with_redis=redis, with_llm=llm, http=http)
    for name, state in started.items():
        port = state.get("bolt_port") or state.get("port")
        served = f", serving {state['model']} at {state['base_url']}" if state.get("model") else ""
        typer.echo(f"{name}: running on 127.0.0.1:{port} (pid {state.get('pid')}{served})")


@app.command()
def down() -> None:
    """Stop this home's services."""
    from services.infra import control

    for name, stopped in control.down(knobs_home()).items():
        typer.echo(f"{name}: {'stopped' if stopped else 'was not running'}")


@app.command()
def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show what runs for this home, and where."""
    from services.infra import control

    state = control.status(knobs_home())
    if json_out:
        emit_json(state)
        return
    typer.echo(f"KNOBS_HOME: {state['home']}")
    for name in ("neo4j", "postgres", "rabbitmq", "redis", "llm"):
        s = state[name]
        where = s.get("uri") or s.get("base_url") or (f"127.0.0.1:{s['port']}" if s.get("port") else "")
        typer.echo(f"{name}: {'running ' + where if s.get('running') else 'stopped'}")
