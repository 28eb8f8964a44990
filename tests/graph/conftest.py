"""Fixtures for graph/ tests: a real Neo4j for the session, an empty graph per test, a real
SQLite event log.

The Neo4j is the one `services.infra.neo4j.start_neo4j` provisions under a session temp
home. KNOBS_TEST_NEO4J_URI / _USER / _PASSWORD point the tests at another Neo4j instead;
its graph is wiped before every test, so never point them at a database you care about.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
import pytest

from events.store.port import EventStore


@pytest.fixture(scope="session")
def neo4j_info(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    uri = os.environ.get("KNOBS_TEST_NEO4J_URI")
    if uri:
        yield {
            "uri": uri,
            "user": os.environ.get("KNOBS_TEST_NEO4J_USER", "neo4j"),
            "password": os.environ["KNOBS_TEST_NEO4J_PASSWORD"],
        }
        return
    from services.infra.neo4j import start_neo4j, stop_neo4j

    home = tmp_path_factory.mktemp("neo4j-home")
    info = start_neo4j(home)
    try:
        yield info
    finally:
        stop_neo4j(home)


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_info: dict[str, Any]) -> Iterator[neo4j.Driver]:
    driver = neo4j.GraphDatabase.driver(
        neo4j_info["uri"], auth=(neo4j_info["user"], neo4j_info["password"])
    )
    driver.verify_connectivity()
    try:
        yield driver
    finally:
        driver.close()


def wipe(driver: neo4j.Driver) -> None:
    """Delete every node and relationship; constraints and indexes stay."""
    with driver.session() as session:
        # CALL ... IN TRANSACTIONS runs only in an auto-commit query (session.run).
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


@pytest.fixture
def graph(neo4j_driver: neo4j.Driver) -> neo4j.Driver:
    """The session's driver over an empty graph."""
    wipe(neo4j_driver)
    return neo4j_driver


@pytest.fixture
def neo4j_env(neo4j_info: dict[str, Any]) -> dict[str, str]:
    """The environment a projector process needs to reach the session's Neo4j."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNOBS_")}
    env.update({
        "KNOBS_NEO4J_URI": neo4j_info["uri"],
        "KNOBS_NEO4J_USER": neo4j_info["user"],
        "KNOBS_NEO4J_PASSWORD": neo4j_info["password"],
    })
    return env


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "events.sqlite3"


@pytest.fixture
def store(store_path: Path) -> Iterator[EventStore]:
    from events.store.sqlite import SQLiteEventStore

    opened = SQLiteEventStore(store_path)
    try:
        yield opened
    finally:
        opened.close()
