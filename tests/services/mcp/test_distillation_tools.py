"""The lens distillation tools of `knobs mcp`, called by a real MCP client over stdio."""

from __future__ import annotations

import asyncio
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from services.core.context import Context
from tests.graph.distillation_log import DistillationLog, distillation_log
from tests.services.mcp.test_server import ROOT, answer, error_text


async def _session(env: dict[str, str], log: DistillationLog) -> None:
    server = StdioServerParameters(command=sys.executable, args=["-m", "services.cli.main", "mcp"],
                                   env=env, cwd=str(ROOT))
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        schemas = {t.name: t.inputSchema for t in (await session.list_tools()).tools}
        assert schemas["pair_cloud"]["required"] == ["pair"]
        assert set(schemas["lenses_by_survival"]["properties"]) == {"distillation"}

        survival = answer(await session.call_tool("lenses_by_survival", {}))
        assert [(r["lens"], r["accepted"]) for r in survival["rows"]] == [
            ("restate", 2), ("restate", 5), ("child", 4), ("causal", 3)]
        diversity = answer(await session.call_tool("lenses_by_diversity", {"distillation": log.a}))
        assert [r["lens"] for r in diversity["rows"]] == ["child", "causal", "restate"]
        cloud = answer(await session.call_tool("pair_cloud", {"pair": "q3", "distillation": log.a}))
        restate_1 = cloud["rows"][-1]
        assert (restate_1["lens"], restate_1["sample"], restate_1["reasons"]) == ("restate", 1, ["duplicate"])
        assert restate_1["duplicate_of"] == log.ids[(log.a, "q3", "child", 0)]
        models = answer(await session.call_tool("distillation_models", {}))
        assert [r["model"] for r in models["rows"]] == ["tiny-instruct", "template"]
        # A missing parameter is a tool error naming it; the server goes on
        assert "pair" in error_text(await session.call_tool("pair_cloud", {}))


def test_distillation_tools_answer_over_stdio(knobs_env: dict[str, str]) -> None:
    with Context() as ctx:
        log = distillation_log(ctx.store())
        ctx.catch_up()
    asyncio.run(asyncio.wait_for(_session(knobs_env, log), timeout=240))
