"""The canonical dump: stable text, everything but element ids, sensitive to any change."""

from __future__ import annotations

import json

import neo4j

from graph.dump import canonical_dump


def test_dump_lists_nodes_and_relationships_as_sorted_canonical_lines(graph: neo4j.Driver) -> None:
    graph.execute_query(
        "CREATE (a:B:A {id: 'a', z: 1, y: [3, 1, 2], f: 0.5})-[:R {id: 'r', w: 'x'}]->(b:C {id: 'b'})"
    )
    text = canonical_dump(graph)
    lines = text.splitlines()
    assert text.endswith("\n")
    nodes = [line for line in lines if '"kind":"node"' in line]
    assert lines == sorted(nodes) + sorted(set(lines) - set(nodes))
    assert json.loads(lines[0]) == {"kind": "node", "labels": ["A", "B"],
                                    "properties": {"f": 0.5, "id": "a", "y": [3, 1, 2], "z": 1}}
    assert '"labels":["A","B"],"properties":{"f":0.5,"id":"a","y":[3,1,2],"z":1}' in lines[0]
    assert {"kind": "relationship", "type": "R", "start": "a", "end": "b",
            "properties": {"id": "r", "w": "x"}} in [json.loads(line) for line in lines]
    assert "element" not in text


def test_dump_is_identical_for_the_same_graph_built_twice(graph: neo4j.Driver) -> None:
    build = "UNWIND range(1, 50) AS i CREATE (:N {id: i})-[:T {i: i}]->(:M {id: -i})"
    graph.execute_query(build)
    first = canonical_dump(graph)
    graph.execute_query("MATCH (n) DETACH DELETE n")
    graph.execute_query(build)
    assert canonical_dump(graph) == first


def test_dump_changes_when_anything_changes(graph: neo4j.Driver) -> None:
    graph.execute_query("CREATE (:N {id: 'a', xs: [1, 2]})-[:T {id: 't'}]->(:N {id: 'b'})")
    before = canonical_dump(graph)
    for change, undo in [
        ("MATCH (n:N {id: 'a'}) SET n.xs = [2, 1]", "MATCH (n:N {id: 'a'}) SET n.xs = [1, 2]"),
        ("MATCH (n:N {id: 'a'}) SET n:Extra", "MATCH (n:N {id: 'a'}) REMOVE n:Extra"),
        ("MATCH ()-[t:T]->() SET t.w = 1", "MATCH ()-[t:T]->() REMOVE t.w"),
        ("CREATE (:Lonely)", "MATCH (n:Lonely) DELETE n"),
    ]:
        graph.execute_query(change)
        assert canonical_dump(graph) != before, change
        graph.execute_query(undo)
        assert canonical_dump(graph) == before, undo


def test_empty_graph_dumps_empty(graph: neo4j.Driver) -> None:
    assert canonical_dump(graph) == ""
