"""Fault row F4: Neo4j stopped and restarted under a running `knobs serve` and projector.

The Neo4j is the test's own (the session's shared one is never stopped). While it is away,
appends go on, every graph read answers 503 with Retry-After and a message that names Neo4j,
and /v1/health says degraded; once it is back the projection catches up (lag 0) and the graph
equals a rebuild of it from the log."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from neo4j import GraphDatabase

from events.store.sqlite import SQLiteEventStore
from graph.dump import canonical_dump
from graph.projector import Projector
from services.access.tokens import create_token
from services.infra.neo4j import start_neo4j, stop_neo4j
from tests.faults import count, faults, report
from tests.services.serving import ROOT, AppendingClient, Served, knobs_env

GRAPH_READS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/knobs?benchmark=acc", None),
    ("GET", "/v1/queries/runs_for_benchmark?experiment=faults&benchmark=acc", None),
    ("GET", "/v1/rankings", None),
    ("POST", "/v1/cypher", {"query": "MATCH (r:Run) RETURN count(r) AS runs"}),
]


def graph_reads(served: Served, headers: dict[str, str]) -> list[httpx.Response]:
    return [served.client.request(method, path, json=body, headers=headers)
            for method, path, body in GRAPH_READS]


def wait_until(what: str, check: Any, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout_s} s")


@pytest.fixture
def own_neo4j(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A home with a Neo4j of its own, stopped however the test ends (the session's shared
    Neo4j is never stopped)."""
    home = tmp_path / "home"
    try:
        yield home, start_neo4j(home)
    finally:
        stop_neo4j(home)


@faults
def test_neo4j_away_appends_go_on_reads_answer_503_and_all_catches_up(
    own_neo4j: tuple[Path, dict[str, Any]]
) -> None:
    # Given a home with a Neo4j of its own, `knobs serve`, a following projector, and a client
    # appending without pause
    home, state = own_neo4j
    headers = {"Authorization": f"Bearer {create_token(home, 'tests', 'write')}"}
    env = knobs_env(home)
    log = open(home / "projector.log", "w")  # noqa: SIM115 - closed in finally, after the process
    projector = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "graph", "project", "--follow", "--poll", "0.2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        with Served(env, home) as served:
            client = AppendingClient(served, headers).start()
            try:
                client.wait_for(0, 201, 5)
                assert [r.status_code for r in graph_reads(served, headers)] == [200] * len(GRAPH_READS)
                restarts, refused = count(1, 3), 0
                for _ in range(restarts):
                    # When Neo4j stops mid-work
                    stopped = time.monotonic()
                    stop_neo4j(home)
                    # Then appends go on
                    client.wait_for(stopped, 201, 5)
                    # And every graph read answers 503 with Retry-After and what to do
                    for resp in graph_reads(served, headers):
                        refused += 1
                        assert resp.status_code == 503, (resp.request.url, resp.text)
                        assert int(resp.headers["retry-after"]) > 0
                        assert "Neo4j" in resp.json()["detail"], resp.text
                    # And /v1/health says degraded: the store is fine, Neo4j is not
                    health = served.client.get("/v1/health")
                    assert health.status_code == 503 and health.headers["retry-after"]
                    assert health.json()["status"] == "degraded" and health.json()["store"]["ok"]
                    # When Neo4j comes back (at the same address)
                    assert start_neo4j(home)["uri"] == state["uri"], "Neo4j moved to another port"
                    # Then graph reads answer again
                    wait_until("graph reads answer 200 after the restart", lambda: [
                        r.status_code for r in graph_reads(served, headers)] == [200] * len(GRAPH_READS))
            finally:
                client.stop()
            # And the projection catches up with everything appended (lag 0)
            wait_until("the projection caught up", lambda: served.client.get("/v1/health").json().get(
                "projection", {}).get("lag") == 0)
        assert {a.status for a in client.answers} == {201}, "an append failed while Neo4j was away"
    finally:
        projector.send_signal(signal.SIGTERM)
        projector.wait(timeout=60)
        log.close()
    # And the graph built incrementally across the restarts equals a rebuild from the log
    with GraphDatabase.driver(state["uri"], auth=(state["user"], state["password"])) as driver, \
            SQLiteEventStore(home / "events.sqlite3") as store:
        incremental = canonical_dump(driver)
        assert '"Run"' in incremental
        Projector(driver, store).rebuild()
        assert canonical_dump(driver) == incremental
        assert Projector(driver, store).lag() == 0
        report("F4", restarts=restarts, appended=store.head(), reads_answered_503=refused)
