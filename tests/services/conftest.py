"""Fixtures for services/ tests: a real Neo4j for the session, a fresh KNOBS_HOME per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import GraphDatabase

from services.infra.neo4j import start_neo4j, stop_neo4j


@pytest.fixture(scope="session")
def neo4j_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("neo4j-home")
    state = start_neo4j(home)
    yield state
    stop_neo4j(home)


@pytest.fixture
def knobs_env(tmp_path: Path, neo4j_state: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh KNOBS_HOME whose Neo4j is the session's, with an empty graph."""
    with GraphDatabase.driver(neo4j_state["uri"], auth=(neo4j_state["user"], neo4j_state["password"])) as d:
        d.execute_query("MATCH (n) DETACH DELETE n")
    env = {
        "KNOBS_HOME": str(tmp_path / "home"),
        "KNOBS_NEO4J_URI": neo4j_state["uri"],
        "KNOBS_NEO4J_USER": neo4j_state["user"],
        "KNOBS_NEO4J_PASSWORD": neo4j_state["password"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}
