"""`knobs mcp` goes through the API's gate: no token or a refused one, it does not start; a token
revoked while it serves is refused at the next tool call, with the reason."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from typer.testing import CliRunner, Result

from services.access.tokens import create_token, revoke
from services.cli.main import app
from services.core.errors import Unauthorized
from tests.services.mcp.test_server import ROOT, answer, error_text


def _start(env: dict[str, str]) -> Result:
    # In process: the token is checked before the server reads stdin, so nothing is served here
    return CliRunner().invoke(app, ["mcp"], env=env)


def test_mcp_does_not_start_without_a_valid_token(knobs_env: dict[str, str]) -> None:
    home = Path(knobs_env["KNOBS_HOME"])
    bare = {"KNOBS_MCP_TOKEN": "", "KNOBS_API_TOKEN": ""}
    # Without a token: it says which variable to set and how to make a token
    none = _start(bare)
    assert isinstance(none.exception, Unauthorized) and "KNOBS_MCP_TOKEN" in str(none.exception)
    assert none.stdout == ""
    # With a revoked one: it says since when, and never shows the token
    token = create_token(home, "old-agent", "read")
    revoke(home, "old-agent")
    refused = _start({**bare, "KNOBS_MCP_TOKEN": token})
    assert isinstance(refused.exception, Unauthorized) and "was revoked on" in str(refused.exception)
    assert token not in str(refused.exception) + refused.output


async def _revoked_while_serving(env: dict[str, str], home: Path) -> None:
    server = StdioServerParameters(command=sys.executable, args=["-m", "services.cli.main", "mcp"],
                                   env=env, cwd=str(ROOT))
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        one = answer(await session.call_tool("cypher", {"query": "RETURN 1 AS one"}))
        assert one["rows"] == [[1]] or one["rows"] == [{"one": 1}]
        # When the agent's token is revoked, the next call is refused with the reason
        revoke(home, "agent")
        assert "was revoked on" in error_text(await session.call_tool("cypher", {"query": "RETURN 1"}))


def test_a_token_revoked_while_serving_is_refused_at_the_next_call(knobs_env: dict[str, str]) -> None:
    asyncio.run(asyncio.wait_for(_revoked_while_serving(knobs_env, Path(knobs_env["KNOBS_HOME"])), 120))
