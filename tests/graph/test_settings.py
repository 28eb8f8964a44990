"""Settings from KNOBS_NEO4J_* and the driver made from them."""

from __future__ import annotations

from typing import Any

import pytest

from graph.errors import GraphUnavailable, QueryFailed
from graph.readonly import run_readonly
from graph.settings import Neo4jSettings, driver_from


def test_settings_read_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOBS_NEO4J_URI", "bolt://db:7687")
    monkeypatch.setenv("KNOBS_NEO4J_PASSWORD", "s3cret")
    monkeypatch.setenv("KNOBS_NEO4J_DATABASE", "knobs")
    settings = Neo4jSettings()
    assert (settings.uri, settings.user, settings.password, settings.database) == (
        "bolt://db:7687", "neo4j", "s3cret", "knobs")
    assert "s3cret" not in repr(settings)


def test_driver_from_refuses_to_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("KNOBS_NEO4J_URI", "KNOBS_NEO4J_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(GraphUnavailable, match="KNOBS_NEO4J_URI"):
        driver_from(Neo4jSettings())
    with pytest.raises(GraphUnavailable, match="KNOBS_NEO4J_PASSWORD"):
        driver_from(Neo4jSettings(uri="bolt://127.0.0.1:7687"))
    with pytest.raises(GraphUnavailable, match="not a Neo4j URI"):
        driver_from(Neo4jSettings(uri="ftp://127.0.0.1:7474", password="x"))


def test_driver_from_real_settings_reaches_neo4j(neo4j_info: dict[str, Any]) -> None:
    settings = Neo4jSettings(uri=neo4j_info["uri"], user=neo4j_info["user"], password=neo4j_info["password"])
    with driver_from(settings) as driver:
        assert run_readonly(driver, "RETURN 1 AS one").rows == [[1]]


def test_wrong_password_and_dead_server_say_what_to_do(neo4j_info: dict[str, Any]) -> None:
    with driver_from(Neo4jSettings(uri=neo4j_info["uri"], password="wrong")) as driver, \
            pytest.raises(GraphUnavailable, match="KNOBS_NEO4J_PASSWORD"):
        run_readonly(driver, "RETURN 1")
    with driver_from(Neo4jSettings(uri="bolt://127.0.0.1:1", password="x", connection_timeout_s=2,
                                   retry_time_s=0)) as driver, \
            pytest.raises(GraphUnavailable, match="knobs services up"):
        run_readonly(driver, "RETURN 1")
    assert issubclass(GraphUnavailable, Exception) and not issubclass(GraphUnavailable, QueryFailed)
