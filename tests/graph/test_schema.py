"""Constraints: created idempotently, one per label and relationship type, enforced."""

from __future__ import annotations

import neo4j
import pytest
from neo4j.exceptions import ConstraintError

from graph.schema import NODE_LABELS, RELATIONSHIP_TYPES, ensure_schema


def constraint_names(driver: neo4j.Driver) -> set[str]:
    records, _, _ = driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN name")
    return {r["name"] for r in records if r["name"].startswith("knobs_")}


def test_ensure_schema_is_idempotent_and_complete(neo4j_driver: neo4j.Driver) -> None:
    ensure_schema(neo4j_driver)
    first = constraint_names(neo4j_driver)
    ensure_schema(neo4j_driver)
    assert constraint_names(neo4j_driver) == first
    assert len(first) == len(NODE_LABELS) + len(RELATIONSHIP_TYPES)


def test_ids_are_unique(graph: neo4j.Driver) -> None:
    ensure_schema(graph)
    graph.execute_query("CREATE (:Run {id: 'e/r'})")
    with pytest.raises(ConstraintError):
        graph.execute_query("CREATE (:Run {id: 'e/r'})")
    graph.execute_query("CREATE (a:X)-[:PART_OF {id: 'p'}]->(b:Y)")
    with pytest.raises(ConstraintError):
        graph.execute_query("MATCH (a:X), (b:Y) CREATE (a)-[:PART_OF {id: 'p'}]->(b)")
