"""The repetition report as an MCP tool, called by a real MCP client over stdio."""

from __future__ import annotations

import asyncio
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from services.core.context import Context
from tests.services.mcp.test_server import ROOT, answer, error_text
from tests.services.repetition.small_log import repetition_log


async def _session(env: dict[str, str]) -> None:
    server = StdioServerParameters(command=sys.executable, args=["-m", "services.cli.main", "mcp"],
                                   env=env, cwd=str(ROOT))
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        report = answer(await session.call_tool("repetition_report", {"experiment": "rep"}))
        (t,) = report["tables"]
        assert next(d for d in t["differences"] if d["K"] == 2)["label"] == "better beyond noise"
        assert "no experiment 'nope'" in error_text(await session.call_tool("repetition_report",
                                                                            {"experiment": "nope"}))


def test_repetition_report_tool_answers_over_stdio(knobs_env: dict[str, str]) -> None:
    with Context() as ctx:
        repetition_log(ctx.store())
    asyncio.run(_session(knobs_env))
