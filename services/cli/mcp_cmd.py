"""`knobs mcp`: serve the Model Context Protocol on stdin/stdout for agents."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


def mcp() -> None:
    """Serve the Model Context Protocol on stdio: tools for agents to ask which knobs matter.

    Tools: knobs_that_matter, influence_range, suggest_next_experiment, audit_ranking and
    read-only cypher.

    Point an MCP client at the command `knobs mcp` (with this KNOBS_HOME, or KNOBS_NEO4J_* set).
    """
    from services.mcp.server import serve

    serve()
