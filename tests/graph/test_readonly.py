"""The read-only gate against a real Neo4j: what it refuses (and that nothing was written),
and that reads, allowed procedures, parameters, the row limit and the timeout work."""

from __future__ import annotations

import time

import neo4j
import pytest

from graph.dump import canonical_dump
from graph.errors import QueryFailed, QueryRefused
from graph.readonly import QueryTimedOut, check_text, run_readonly


@pytest.fixture
def people(graph: neo4j.Driver) -> neo4j.Driver:
    graph.execute_query(
        "UNWIND range(1, 30) AS i CREATE (:Person {id: i, name: 'p' + i})"
    )
    graph.execute_query(
        "MATCH (a:Person {id: 1}), (b:Person {id: 2}) CREATE (a)-[:KNOWS {since: 2020}]->(b)"
    )
    return graph


def counts(driver: neo4j.Driver) -> str:
    """The whole graph, to compare before and after a refused query."""
    return canonical_dump(driver)


WRITES = [
    "CREATE (n:Evil) RETURN n",
    "MERGE (n:Person {id: 1}) RETURN n",
    "MERGE (n:Evil {id: 1}) RETURN n",
    "MATCH (n:Person {id: 3}) DELETE n",
    "MATCH (n:Person) DETACH DELETE n",
    "MATCH (n:Person) SET n.name = 'x'",
    "MATCH (n:Person) SET n:Evil",
    "MATCH (n:Person) REMOVE n.name",
    "MATCH (n:Person {id: 1}) CALL (n) { CREATE (n)-[:EVIL]->(:Evil) } RETURN n",
    "CALL { CREATE (:Evil) } RETURN 1",
    "MATCH (n:Person) FOREACH (x IN [1] | CREATE (:Evil))",
    "UNWIND [1, 2] AS x CALL (x) { CREATE (:Evil {x: x}) } IN TRANSACTIONS RETURN x",
]

SCHEMA = [
    "CREATE INDEX evil IF NOT EXISTS FOR (n:Person) ON (n.name)",
    "CREATE CONSTRAINT evil IF NOT EXISTS FOR (n:Person) REQUIRE n.id IS UNIQUE",
    "DROP INDEX evil IF EXISTS",
    "CREATE DATABASE evil",
    "CREATE USER evil SET PASSWORD 'password123'",
    "ALTER USER neo4j SET PASSWORD 'password123'",
    "SHOW USERS",
    "STOP DATABASE neo4j",
    "GRANT ROLE admin TO neo4j",
    "SHOW DATABASES",
]


@pytest.mark.parametrize("cypher", WRITES + SCHEMA)
def test_refuses_writes_and_schema_commands(people: neo4j.Driver, cypher: str) -> None:
    before = counts(people)
    with pytest.raises(QueryRefused) as refused:
        run_readonly(people, cypher)
    assert "read-only" in str(refused.value) or "not allowed" in str(refused.value)
    assert counts(people) == before


def test_refusal_message_names_the_query_type(people: neo4j.Driver) -> None:
    with pytest.raises(QueryRefused, match=r"write queries are not allowed: query type is 'rw'; .*read-only"):
        run_readonly(people, "MERGE (n:Person {id: 1}) RETURN n")
    with pytest.raises(QueryRefused, match=r"query type is 's'"):
        run_readonly(people, "CREATE INDEX evil IF NOT EXISTS FOR (n:Person) ON (n.name)")


@pytest.mark.parametrize("cypher", [
    "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
    "load csv with headers from 'http://127.0.0.1:1/x.csv' AS l RETURN l",
    "MATCH (n) WITH n LIMIT 1 LOAD CSV FROM 'file:///etc/hostname' AS l RETURN l",
])
def test_refuses_load_csv(people: neo4j.Driver, cypher: str) -> None:
    with pytest.raises(QueryRefused, match="LOAD CSV is not allowed"):
        run_readonly(people, cypher)


def test_the_plan_check_refuses_load_csv_even_if_the_text_check_missed_it(people: neo4j.Driver) -> None:
    from graph import readonly

    # Given a text check that lets everything through
    summary_query = "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l"
    assert readonly.check_text("RETURN 1") == "RETURN 1"
    explained = readonly._explain(people, summary_query, {}, "neo4j")
    # Then the plan alone refuses it
    assert explained.query_type == "r"
    with pytest.raises(QueryRefused, match="LOAD CSV"):
        readonly.check_plan(explained.query_type, explained.plan)


@pytest.mark.parametrize("cypher", [
    "CALL dbms.security.listUsers()",
    "CALL db.createLabel('X')",
    "CALL db.createProperty('evil')",
    "CALL dbms.components()",
    "CALL db.index.fulltext.queryNodes('x', 'y')",
    "MATCH (n) CALL db.createLabel('X') RETURN n",
    "CALL `db`.`createLabel`('X')",
    "CALL `db.createLabel`('X')",
    "call DB.CREATELABEL('X')",
    "CALL db . createLabel('X')",
    "CALL dbms.listConfig()",
    "CALL db.awaitIndexes(1)",
])
def test_refuses_procedures_outside_the_allowlist(people: neo4j.Driver, cypher: str) -> None:
    before = counts(people)
    with pytest.raises(QueryRefused, match="not allowed"):
        run_readonly(people, cypher)
    assert counts(people) == before


def test_the_plan_check_refuses_unlisted_procedures_even_if_the_text_check_missed_them(
    people: neo4j.Driver,
) -> None:
    from graph import readonly

    explained = readonly._explain(people, "CALL db.labels() YIELD label RETURN label", {}, "neo4j")
    readonly.check_plan(explained.query_type, explained.plan)  # allowed
    with pytest.raises(QueryRefused, match=r"procedure db\.labels is not allowed"):
        readonly.check_plan(explained.query_type, explained.plan, frozenset({"db.propertyKeys"}))


@pytest.mark.parametrize("cypher", [
    "SHOW TRANSACTIONS",
    "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "SHOW SETTINGS",
])
def test_refuses_commands_that_plan_as_reads_but_are_not_graph_reads(
    people: neo4j.Driver, cypher: str
) -> None:
    with pytest.raises(QueryRefused, match="command is not allowed"):
        run_readonly(people, cypher)


@pytest.mark.parametrize("cypher", [
    "EXPLAIN MATCH (n) RETURN n",
    "PROFILE MATCH (n) RETURN n",
    "  explain MATCH (n) RETURN n",
    "// a comment\nPROFILE MATCH (n) RETURN n",
    "/* block */ EXPLAIN MATCH (n) RETURN n",
    "CYPHER runtime=slotted EXPLAIN MATCH (n) RETURN n",
])
def test_refuses_explain_profile_and_prefixes(people: neo4j.Driver, cypher: str) -> None:
    with pytest.raises(QueryRefused):
        run_readonly(people, cypher)


@pytest.mark.parametrize("cypher", [
    "MATCH (n) RETURN n; MATCH (m) RETURN m",
    "MATCH (n) RETURN n; CREATE (:Evil)",
    "RETURN 1;;RETURN 2",
    "RETURN 1 ; // trailing comment\n MATCH (n) DETACH DELETE n",
])
def test_refuses_more_than_one_statement(people: neo4j.Driver, cypher: str) -> None:
    with pytest.raises(QueryRefused, match="more than one statement"):
        run_readonly(people, cypher)


@pytest.mark.parametrize("cypher", ["", "   \n ", "// only a comment", "/* nothing */"])
def test_refuses_empty_queries(people: neo4j.Driver, cypher: str) -> None:
    with pytest.raises(QueryRefused, match=r"empty|only comments"):
        run_readonly(people, cypher)


def test_text_check_ignores_strings_and_comments() -> None:
    # Semicolons, keywords and CALLs inside strings or comments are not statements.
    assert check_text("RETURN 'a; CREATE (n)' AS s;") == "RETURN 'a; CREATE (n)' AS s"
    assert check_text("RETURN \"LOAD CSV\" AS s // CALL dbms.evil()") == (
        "RETURN \"LOAD CSV\" AS s // CALL dbms.evil()"
    )
    assert check_text("RETURN 'it\\'s; fine' AS s") == "RETURN 'it\\'s; fine' AS s"
    assert check_text("MATCH (`a;b`) RETURN 1 /* ; */") == "MATCH (`a;b`) RETURN 1 /* ; */"


def test_reads_nodes_relationships_paths_and_scalars(people: neo4j.Driver) -> None:
    result = run_readonly(
        people,
        "MATCH p = (a:Person {id: 1})-[r:KNOWS]->(b) "
        "RETURN a, r, p, b.name AS name, [1, 2.5, 'x', null] AS list, {k: a.id} AS map",
    )
    assert result.columns == ["a", "r", "p", "name", "list", "map"]
    assert not result.truncated
    [[a, r, p, name, lst, mp]] = result.rows
    assert a == {"labels": ["Person"], "properties": {"id": 1, "name": "p1"}}
    assert r == {"type": "KNOWS", "properties": {"since": 2020}}
    assert p == [a, r, {"labels": ["Person"], "properties": {"id": 2, "name": "p2"}}]
    assert (name, lst, mp) == ("p2", [1, 2.5, "x", None], {"k": 1})


def test_reverse_path_keeps_path_order(people: neo4j.Driver) -> None:
    result = run_readonly(people, "MATCH p = (b:Person {id: 2})<-[:KNOWS]-(a) RETURN p")
    [[path]] = result.rows
    assert [path[0]["properties"]["id"], path[2]["properties"]["id"]] == [2, 1]


def test_allowed_procedures_parameters_and_a_trailing_semicolon(people: neo4j.Driver) -> None:
    labels = run_readonly(people, "CALL db.labels() YIELD label RETURN label ORDER BY label;")
    assert ["Person"] in labels.rows
    found = run_readonly(people, "MATCH (n:Person) WHERE n.id IN $ids RETURN n.id AS id ORDER BY id",
                         {"ids": [3, 4, 99]})
    assert found.rows == [[3], [4]]
    schema = run_readonly(people, "CALL db.schema.visualization()")
    assert schema.columns == ["nodes", "relationships"]
    indexes = run_readonly(people, "SHOW INDEXES YIELD name RETURN count(*) AS n")
    assert indexes.columns == ["n"]


def test_row_limit_truncates(people: neo4j.Driver) -> None:
    result = run_readonly(people, "MATCH (n:Person) RETURN n.id AS id ORDER BY id", row_limit=10)
    assert result.truncated
    assert result.rows == [[i] for i in range(1, 11)]
    exact = run_readonly(people, "MATCH (n:Person) RETURN n.id AS id ORDER BY id", row_limit=30)
    assert not exact.truncated and len(exact.rows) == 30


def test_timeout_stops_a_long_query(people: neo4j.Driver) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimedOut, match=r"time limit of 0\.5 s"):
        run_readonly(
            people,
            "UNWIND range(1, 100000000) AS x WITH x WHERE x % 7 = 13 RETURN count(*)",
            timeout_s=0.5,
        )
    assert time.monotonic() - started < 15


def test_syntax_errors_are_query_failed_with_neo4j_message(people: neo4j.Driver) -> None:
    with pytest.raises(QueryFailed, match="SyntaxError") as failed:
        run_readonly(people, "MATCH (n RETURN n")
    assert not isinstance(failed.value, QueryRefused)


def test_missing_parameter_is_query_failed(people: neo4j.Driver) -> None:
    with pytest.raises(QueryFailed):
        run_readonly(people, "MATCH (n:Person {id: $id}) RETURN n")


@pytest.mark.parametrize(("cypher", "reason"), [
    ("RETURN " + "[" * 49 + "1" + "]" * 49, "nests 49 levels deep"),
    ("RETURN " + "(" * 300 + "1" + ")" * 300, "nests 300 levels deep"),
    ("RETURN " + "CASE WHEN true THEN " * 49 + "1" + " END" * 49, "nests 49 levels deep"),
    ("RETURN " + "[`END`, " * 49 + "1" + "]" * 49, "nests 49 levels deep"),  # a quoted END hides nothing
    ("MATCH (n) WHERE " + "EXISTS { MATCH (n)-->(m) WHERE " * 9 + "true" + " }" * 9 + " RETURN n",
     "nests 9 levels of { }"),
    ("RETURN " + " + ".join(["1"] * 1002), "1,001 operators"),
    ("MATCH (n) WHERE " + " OR ".join(f"n.id = {i}" for i in range(501)) + " RETURN n", "1,001 operators"),
])
def test_refuses_shapes_that_keep_neo4j_planning(cypher: str, reason: str) -> None:
    # Given shapes that overflowed Neo4j's parser or planned for minutes past their timeout,
    # Then the text check refuses them, saying which limit and how to rewrite the query
    with pytest.raises(QueryRefused, match=reason) as refused:
        check_text(cypher)
    assert "over the limit of" in str(refused.value)


def test_shapes_at_the_limits_still_run(people: neo4j.Driver) -> None:
    # Given queries exactly at the nesting and operator limits, and operator-like text in strings
    at_depth = "RETURN " + "[" * 48 + "1" + "]" * 48 + " AS deep"
    at_braces = "RETURN " + "{a: " * 8 + "1" + "}" * 8 + " AS maps"
    at_operators = "RETURN " + " + ".join(["1"] * 1000) + " AS total"
    in_strings = "RETURN '" + "(((+ - * /" * 200 + "' AS s"
    # Then each runs
    assert run_readonly(people, at_depth).columns == ["deep"]
    assert run_readonly(people, at_braces).columns == ["maps"]
    assert run_readonly(people, at_operators).rows == [[1000]]
    assert run_readonly(people, in_strings).columns == ["s"]
