"""`knobs mcp` as an agent meets it: a real subprocess, a real MCP client over stdio, a real Neo4j."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult

from tests.services.export import BENCHMARK, EXPERIMENT, build_log

ROOT = Path(__file__).resolve().parents[3]
TOOLS = {"knobs_that_matter", "influence_range", "suggest_next_experiment", "audit_ranking", "cypher",
         "datasets_by_volatility", "volatile_examples", "volatility_knobs", "verdict_provenance",
         "forgotten_examples", "lenses_by_survival", "lenses_by_diversity", "pair_cloud",
         "distillation_models", "repetition_report"}


def answer(result: CallToolResult) -> Any:
    assert not result.isError, result.content
    text = result.content[0].text  # type: ignore[union-attr]
    data = json.loads(text)
    assert result.structuredContent == data
    return data


def error_text(result: CallToolResult) -> str:
    assert result.isError, result.content
    return str(result.content[0].text)  # type: ignore[union-attr]


async def _session(env: dict[str, str], ranking_id: str) -> None:
    server = StdioServerParameters(command=sys.executable, args=["-m", "services.cli.main", "mcp"],
                                   env=env, cwd=str(ROOT))
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()

        listed = (await session.list_tools()).tools
        assert {t.name for t in listed} == TOOLS
        schemas = {t.name: t.inputSchema for t in listed}
        assert all(t.description and len(t.description) > 100 for t in listed)
        assert schemas["knobs_that_matter"]["required"] == ["benchmark"]
        assert set(schemas["influence_range"]["properties"]) == {"parameter", "benchmark"}
        assert set(schemas["cypher"]["properties"]) == {"query", "params"}

        # Which knobs matter: lr first, with its statistic, noise verdict, knee, costs and flags
        knobs = answer(await session.call_tool("knobs_that_matter", {"benchmark": BENCHMARK}))
        [ranking] = knobs["rankings"]
        assert ranking["ranking_id"] == ranking_id and ranking["experiment"] == EXPERIMENT
        top = ranking["parameters"][0]
        assert top["name"] == "lr" and top["rank"] == 1 and top["of"] == 2
        assert top["influence_range"] == pytest.approx([0.0, 0.1])
        assert {"statistic", "indices", "noise", "knee", "per_cost", "flags"} <= set(top)
        assert "values" not in top

        # An unknown benchmark is a tool error naming the ones that exist; the server goes on
        missing = error_text(await session.call_tool("knobs_that_matter", {"benchmark": "nope"}))
        assert "no ranking on benchmark 'nope'" in missing and BENCHMARK in missing

        # Influence range: every value tried, with its effect and runs
        lr = answer(await session.call_tool("influence_range", {"parameter": "lr", "benchmark": BENCHMARK}))
        [entry] = lr["rankings"]
        assert [v["value"] for v in entry["values"]] == [0.001, 0.002, 0.004]
        assert [v["effect"] for v in entry["values"]] == pytest.approx([0.0, 0.05, 0.1])
        assert "not ranked" in error_text(
            await session.call_tool("influence_range", {"parameter": "lr", "benchmark": "val_loss"}))

        # Audit, by the 8-character id the notes show: 15 runs x (run + score) events, a sound chain
        audit = answer(await session.call_tool("audit_ranking", {"ranking_id": ranking_id[:8]}))
        assert audit["ranking"]["ranking_id"] == ranking_id
        assert audit["events_used"] == 30 and audit["problems"] == [] and audit["chain"]["ok"]
        assert "no ranking 'zzzz-not-there'" in error_text(
            await session.call_tool("audit_ranking", {"ranking_id": "zzzz-not-there"}))

        # Read-only Cypher, with parameters
        rows = answer(await session.call_tool("cypher", {
            "query": "MATCH (r:Run)-[:PART_OF]->(:Experiment {id: $name}) RETURN count(r) AS runs",
            "params": {"name": EXPERIMENT}}))
        assert rows["columns"] == ["runs"] and rows["rows"] == [[15]] and rows["truncated"] is False
        refused = error_text(await session.call_tool("cypher", {"query": "CREATE (n:Hack) RETURN n"}))
        assert "write queries are not allowed" in refused and "read-only" in refused
        bad = error_text(await session.call_tool("cypher", {"query": "MATCH (n RETURN n"}))
        assert "Neo4j" in bad
        after = answer(await session.call_tool("cypher", {"query": "MATCH (n:Hack) RETURN count(n) AS n"}))
        assert after["rows"] == [[0]]

        # Suggest: a follow-up spec for the flagged lr (its best value sits at the edge)
        suggested = await session.call_tool("suggest_next_experiment", {"experiment": EXPERIMENT})
        if importlib.util.find_spec("services.ranking.suggest") is None:
            assert "services.ranking.suggest is missing" in error_text(suggested)
        else:
            body = answer(suggested)
            assert body["ranking_id"] == ranking_id and body["benchmark"] == BENCHMARK
            spec = yaml.safe_load(body["yaml"])
            assert "lr" in spec["factors"] and spec["benchmarks"]
            assert any("best_at_edge" in r for r in body["reasons"])
        assert "no ranking to follow up" in error_text(
            await session.call_tool("suggest_next_experiment", {"experiment": "books-run"}))


@pytest.mark.slow
def test_mcp_client_calls_every_tool(knobs_env: dict[str, str], tmp_path: Path) -> None:
    ranking_id = build_log(tmp_path)
    asyncio.run(asyncio.wait_for(_session(knobs_env, ranking_id), timeout=240))
