"""`knobs`: the command line. Each command validates, calls one service function, prints.

Errors from any layer are printed as one clear line (what is wrong, what to do) and exit
non-zero: 2 for bad input, 1 for everything else.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from events.errors import EventsError
from graph.errors import GraphError
from services.cli import (
    access_cmd,
    distillation_cmd,
    estimate_cmd,
    experiments_cmd,
    graph_cmd,
    infra_cmd,
    judge_cmd,
    log_cmd,
    plot_cmd,
    ranking_cmd,
    repetition_cmd,
    shift_cmd,
)
from services.cli.export_cmd import app as export_app
from services.cli.importing_cmd import import_app
from services.cli.mcp_cmd import register as register_mcp
from services.cli.queries_cmd import register as register_queries
from services.cli.serve_cmd import LogLevel, run_server
from services.core import plugins
from services.core.errors import BadInput, ServiceError
from services.infra.errors import LLMNotConfigured, LLMProvisioningError, Neo4jProvisioningError

app = typer.Typer(
    name="knobs",
    help="Which knobs matter: an event log of runs and scores, its Neo4j graph, and rankings "
    "auditable back to their evidence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(infra_cmd.app, name="services")
app.add_typer(graph_cmd.app, name="graph")
app.add_typer(import_app, name="import")
app.add_typer(access_cmd.token_app, name="token")
app.add_typer(experiments_cmd.app, name="experiment")
app.add_typer(export_app, name="export")
app.add_typer(shift_cmd.app, name="shift")
app.add_typer(repetition_cmd.app, name="repetition")
app.add_typer(plot_cmd.app, name="plot")
log_cmd.register(app)
distillation_cmd.register(app)
judge_cmd.register(app)
estimate_cmd.register(app)
ranking_cmd.register(app)
graph_cmd.register(app)
register_queries(app)
register_mcp(app)
for _name, _command in plugins.commands().items():
    app.command(name=_name)(_command)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default KNOBS_API_HOST or 127.0.0.1); "
                             "anything but loopback without TLS prints a warning."),
    port: int = typer.Option(None, help="Port (default KNOBS_API_PORT or 8000)."),
    workers: int = typer.Option(1, min=1, max=64, help="Server processes (each with its own connections "
                                "and rate-limit buckets; any of them may project the graph, one batch "
                                "at a time)."),
    log_level: LogLevel = typer.Option(LogLevel.info, help="Log level; tokens are masked at every level."),
    ssl_certfile: Path = typer.Option(None, help="TLS certificate (PEM), with --ssl-keyfile: serve HTTPS."),
    ssl_keyfile: Path = typer.Option(None, help="TLS private key (PEM), with --ssl-certfile."),
) -> None:
    """Serve the HTTP API (FastAPI) and the dashboard until interrupted."""
    from services.core.settings import ApiSettings

    settings = ApiSettings()
    run_server(host or settings.host, port or settings.port, workers, log_level, ssl_certfile, ssl_keyfile)


@app.command()
def demo(
    data: Path = typer.Option(None, help="Results file to import (default: the bundled Table 3 of "
                              "Vaswani et al. 2017)."),
    train: bool = typer.Option(True, "--train/--no-train", help="Also train the bundled one-at-a-time "
                               "experiment on this machine (a few minutes on a CPU) and rank its knobs."),
) -> None:
    """Start the services, import published results, train a small ablation, rank the knobs, audit."""
    from services.cli.demo import run_demo

    run_demo(data, train)


def main() -> None:
    try:
        app()
    except BadInput as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except (ServiceError, EventsError, GraphError, Neo4jProvisioningError, LLMProvisioningError,
            LLMNotConfigured) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)


if __name__ == "__main__":
    main()
