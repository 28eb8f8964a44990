"""`knobs mcp`: serve the Model Context Protocol on stdin/stdout for agents."""

from __future__ import annotations

import os

import typer

from services.core.errors import Unauthorized


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


def mcp(
    token: str = typer.Option(None, help="An API token of scope read or more. Prefer KNOBS_MCP_TOKEN "
                              "(or KNOBS_API_TOKEN): a command-line argument is visible to other "
                              "users of this machine in `ps`."),
) -> None:
    """Serve the Model Context Protocol on stdio: tools for agents to ask which knobs matter.

    Tools: knobs_that_matter, influence_range, suggest_next_experiment, audit_ranking and
    read-only cypher.

    Point an MCP client at the command `knobs mcp` (with this KNOBS_HOME, or KNOBS_NEO4J_* set)
    and give it a token in KNOBS_MCP_TOKEN (`knobs token create --name agent --scope read`).
    The token is checked like the HTTP API's: unknown, expired or revoked, the server does not
    start; revoked while it runs, every tool call is refused with the reason.
    """
    from services.mcp.server import serve

    presented = token or os.environ.get("KNOBS_MCP_TOKEN") or os.environ.get("KNOBS_API_TOKEN") or ""
    if not presented.strip():
        raise Unauthorized("knobs mcp needs a token of scope read: set KNOBS_MCP_TOKEN (create one with "
                           "`knobs token create --name agent --scope read`) or pass --token")
    serve(presented.strip())
