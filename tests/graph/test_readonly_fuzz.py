"""The read-only gate under generated queries, against a real Neo4j holding a populated graph.

Writes are hidden every way we know (subqueries, FOREACH, CALL { } IN TRANSACTIONS, procedures,
comments, string tricks, unicode, deep nesting, huge literals, several statements, USE, LOAD
CSV, prefixes) and must each be refused with a reason; reads dressed up the same ways (write
words inside strings, comments and backticks) must pass, so that the gate is not "refuse
everything". The graph's canonical dump is the same before and after. `make test` runs a
sample; `make soak` (KNOBS_SOAK=1) runs 1,000 queries of each kind.
"""

from __future__ import annotations

from collections import Counter

import neo4j
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.dump import canonical_dump
from graph.errors import QueryFailed, QueryRefused
from graph.readonly import QueryTooLong, check_text, run_readonly
from tests.faults import count, faults

# ---------------------------------------------------------------- building blocks


@st.composite
def kw(draw: st.DrawFn, word: str) -> str:
    """A keyword in a random mix of cases (Cypher's keywords are case-insensitive)."""
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.lower() if f else c.upper() for c, f in zip(word, flips, strict=True))


comment = st.sampled_from([
    "/* CREATE (x:Evil) */", "/* ; DELETE n */", "/* MATCH (n) DETACH DELETE n; */",
    "// MERGE (:Evil)\n", "// ; CALL db.createLabel('Evil')\n", "/**/", "/* ' \" ` */",
])
gap = st.one_of(st.sampled_from([" ", "  ", "\n", "\t", " \n "]), comment.map(lambda c: f" {c} "))
# Whitespace Neo4j may or may not take for whitespace: fine inside writes (refused either way).
odd_gap = st.one_of(gap, st.sampled_from(["\u00a0", "\u2028", "\u3000", "\u200b", "\ufeff", "\r\n"]))

write_words = ["CREATE (x:Evil) RETURN x", "MATCH (n) DETACH DELETE n", "SET n.name = 'x'",
               "CALL db.createLabel('Evil')", "LOAD CSV FROM 'file:///etc/passwd' AS l", "; DROP INDEX x",
               "MERGE (:Evil {id: 1})", "REMOVE n:Person", "FOREACH (x IN [1] | CREATE (:Evil))"]
string_literal = st.one_of(
    st.sampled_from(write_words).map(lambda w: "'" + w.replace("'", "\\'") + "'"),
    st.sampled_from(write_words).map(lambda w: '"' + w.replace("'", "''") + '"'),
    st.sampled_from(write_words).map(lambda w: "'it\\'s " + w.replace("'", "\\'") + "'"),
    st.sampled_from(write_words).map(lambda w: '"say \\"' + w + '\\""'),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="'\\"),
            max_size=30).map(lambda t: f"'{t}'"),
)
homoglyphs = {"C": "\u0421", "E": "\u0415", "A": "\u0410", "T": "\u0422", "M": "\u041c", "O": "\u041e",
              "P": "\u0420"}  # Cyrillic look-alikes

# A write clause with `n` bound to a :Person, and the same clause alone (it makes its own nodes).
write_with_n = st.sampled_from([
    "SET n.name = 'evil'", "SET n:Evil", "SET n += {evil: true}", "SET n = {}", "REMOVE n.name",
    "REMOVE n:Person", "DELETE n", "DETACH DELETE n", "CREATE (n)-[:EVIL]->(:Evil)",
    "MERGE (n)-[:EVIL]->(:Evil)", "MERGE (n)-[:KNOWS]->(n)", "SET n.id = n.id + 1000",
    "CREATE (:Evil {of: n.id})", "MERGE (e:Evil {id: n.id}) ON CREATE SET e.x = 1",
    "WITH n MATCH (n)-[r]->() DELETE r", "FOREACH (x IN [1] | SET n.evil = x)",
])
write_alone = st.sampled_from([
    "CREATE (:Evil)", "CREATE (:Evil {s: 'it\\'s; DELETE'})", "MERGE (:Evil {id: 1})",
    "MERGE (:Person {id: 1})", "MATCH (m:Person {id: 2}) SET m.name = 'evil'",
    "MATCH (m) DETACH DELETE m", "MATCH ()-[r]->() DELETE r", "CREATE (:`Évil\u200b`)",
    "CREATE (:`Evil; DROP`)", "UNWIND range(1, 3) AS i CREATE (:Evil {i: i})",
    "MATCH (m:Person) WITH m LIMIT 1 SET m.name = 'evil'",
])
procedure = st.sampled_from([
    "db.createLabel('Evil')", "db.createProperty('evil')", "db.createRelationshipType('EVIL')",
    "dbms.setConfigValue('db.logs.query.enabled', 'INFO')", "dbms.security.createUser('evil', 'x', false)",
    "apoc.create.node(['Evil'], {})", "apoc.periodic.iterate('MATCH (n) RETURN n', 'DELETE n', {})",
    "apoc.cypher.runWrite('CREATE (:Evil)', {})", "tx.setMetaData({evil: true})",
    "db.clearQueryCaches()", "dbms.killQuery('query-1')",
    "db.index.fulltext.createNodeIndex('x', ['P'], ['n'])",
    "dbms.components()", "db.awaitIndexes(1)", "dbms.listConfig()", "db.createIndex('x', ['P'], ['n'], 'x')",
])


@st.composite
def procedure_call(draw: st.DrawFn) -> str:
    call = draw(procedure)
    name, _, args = call.partition("(")
    parts = name.split(".")
    style = draw(st.sampled_from(["plain", "ticks", "each", "spaced", "comment", "case"]))
    if style == "ticks":
        name = f"`{name}`"
    elif style == "each":
        name = ".".join(f"`{p}`" for p in parts)
    elif style == "spaced":
        name = " . ".join(parts)
    elif style == "comment":
        name = "/* x */.".join(parts)
    elif style == "case":
        name = draw(kw(name))
    lead = draw(st.sampled_from(["", "MATCH (n:Person) WITH n LIMIT 1 ", "UNWIND [1] AS i ", "WITH 1 AS x "]))
    tail = draw(st.sampled_from(["", " YIELD *", " RETURN 1"])) if lead else ""
    return f"{lead}{draw(kw('CALL'))} {name}({args}{tail}"


@st.composite
def hidden_write(draw: st.DrawFn) -> str:
    """One write, hidden in one of the ways a caller might try."""
    match = f"{draw(kw('MATCH'))}{draw(gap)}(n:Person){draw(gap)}"
    with_n = draw(write_with_n)
    alone = draw(write_alone)
    disguise = draw(st.sampled_from([
        "plain", "alone", "call", "call_old", "call_in_tx", "foreach", "nested", "union", "procedure",
        "comments", "strings", "homoglyph", "zero_width", "odd_space", "huge", "statements", "use",
        "load_csv", "prefix", "case_when", "optional", "deep",
    ]))
    if disguise == "plain":
        return f"{match}{with_n}"
    if disguise == "alone":
        return alone
    if disguise == "call":
        return f"{match}{draw(kw('CALL'))} (n) {{ {with_n} }} RETURN count(*) AS c"
    if disguise == "call_old":
        return f"{match}CALL {{ WITH n {with_n} }} RETURN count(*) AS c"
    if disguise == "call_in_tx":
        rows = draw(st.sampled_from(["", " OF 1 ROWS", " OF 10 ROWS ON ERROR CONTINUE", " CONCURRENTLY"]))
        return f"{match}CALL (n) {{ {with_n} }} {draw(kw('IN TRANSACTIONS'))}{rows}"
    if disguise == "foreach":
        inner = draw(st.sampled_from(["CREATE (:Evil)", "SET n.x = 1", "DELETE n", "MERGE (:Evil)",
                                      "FOREACH (y IN [1] | CREATE (:Evil))"]))
        return f"{match}{draw(kw('FOREACH'))} (i IN [1, 2] | {inner})"
    if disguise == "nested":
        depth = draw(st.integers(1, 25))
        body = alone
        for _ in range(depth):
            body = f"CALL {{ {body} }}" if draw(st.booleans()) else f"CALL () {{ {body} }}"
        return f"{body} RETURN 1 AS one"
    if disguise == "union":
        return f"MATCH (p:Person) RETURN p.id AS x UNION {draw(kw('ALL'))} {match}{with_n} RETURN 1 AS x"
    if disguise == "procedure":
        return draw(procedure_call())
    if disguise == "comments":
        return f"{draw(comment)}{match}{draw(comment)}{with_n}{draw(comment)}"
    if disguise == "strings":
        return f"{match}WHERE n.name <> {draw(string_literal)} {with_n}"
    if disguise == "deep":  # shapes that keep Neo4j planning (graph.readonly.check_shape)
        k = draw(st.integers(1, 120))
        shape = draw(st.sampled_from(["[", "(", "CASE", "+", "EXISTS"]))
        if shape == "[":
            value = "[" * k + "1" + "]" * k
        elif shape == "(":
            value = "(" * k + "1" + ")" * k
        elif shape == "CASE":
            value = "CASE WHEN true THEN " * k + "1" + " END" * k
        elif shape == "+":
            value = " + ".join(["1"] * (k * 20))
        else:
            value = "EXISTS { MATCH (m) WHERE " * min(k, 30) + "true" + " }" * min(k, 30)
        return f"{match}SET n.x = {value}"
    if disguise == "homoglyph":
        statement = draw(st.sampled_from(["CREATE (:Evil)", "MERGE (:Evil {id: 1})",
                                          "MATCH (n:Person) DELETE n", "MATCH (n:Person) SET n.name = 'x'"]))
        keyword, _, rest = statement.partition(" ")
        if draw(st.booleans()):  # a look-alike in the keyword: Neo4j does not read it as one
            at = draw(st.sampled_from([i for i, c in enumerate(keyword) if c in homoglyphs]))
            return keyword[:at] + homoglyphs[keyword[at]] + keyword[at + 1:] + " " + rest
        # a look-alike in a name: a real write of a label nobody would notice
        return f"{keyword} {rest}".replace("Evil", "\u0415vil").replace("Person", "\u0420erson")
    if disguise == "zero_width":
        return f"{match}{with_n}".replace(" ", draw(st.sampled_from(["\u200b ", " \u200b", "\u2060 ", " "])))
    if disguise == "odd_space":
        return f"{draw(kw('MATCH'))}{draw(odd_gap)}(n:Person){draw(odd_gap)}{with_n}"
    if disguise == "huge":
        size = draw(st.integers(1_000, 20_000))
        kind = draw(st.sampled_from(["list", "string", "map", "over"]))
        if kind == "list":
            return f"UNWIND [{', '.join(['1'] * size)}] AS i WITH i LIMIT 1 {alone}"
        if kind == "string":
            return f"{match}WHERE n.name <> '{'x' * size * 3}' {with_n}"
        if kind == "map":
            return f"CREATE (:Evil {{{', '.join(f'k{i}: {i}' for i in range(size // 10))}}})"
        return f"RETURN '{'x' * 70_000}' AS s UNION {alone} RETURN 1 AS s"
    if disguise == "statements":
        sep = draw(st.sampled_from([";", "; ", ";\n", ";/* */", "; // x\n", ";;"]))
        return f"MATCH (p:Person) RETURN count(p){sep}{alone}"
    if disguise == "use":
        target = draw(st.sampled_from(["system", "neo4j", "`neo4j`", "other"]))
        return f"{draw(kw('USE'))} {target} {alone}"
    if disguise == "load_csv":
        load = f"{draw(kw('LOAD'))}{draw(gap)}{draw(kw('CSV'))}"
        return f"{load} FROM 'http://127.0.0.1:1/x.csv' AS line {alone}"
    if disguise == "prefix":
        prefix = draw(st.sampled_from(["CYPHER runtime=slotted", "CYPHER 5", "EXPLAIN", "PROFILE",
                                       "CYPHER planner=dp PROFILE"]))
        return f"{prefix} {alone}"
    if disguise == "case_when":
        return f"{match}WITH n, CASE WHEN true THEN 1 END AS c {with_n}"
    return f"{draw(kw('OPTIONAL MATCH'))} (n:Person {{id: 1}}) {with_n}"


@st.composite
def dressed_read(draw: st.DrawFn) -> str:
    """A pure read, dressed in write words inside strings, comments and backticks."""
    match = f"{draw(kw('MATCH'))}{draw(gap)}(n:Person){draw(gap)}"
    text = draw(string_literal)
    shape = draw(st.sampled_from([
        "count", "string", "where", "comments", "backticks", "call", "nested", "union", "procedure",
        "list", "exists", "semicolon", "unicode_string",
    ]))
    if shape == "count":
        return f"{match}{draw(kw('RETURN'))} count(n) AS c"
    if shape == "string":
        return f"{draw(kw('RETURN'))} {text} AS s"
    if shape == "where":
        return f"{match}WHERE n.name <> {text} RETURN n.id AS id ORDER BY id LIMIT 3"
    if shape == "comments":
        return f"{draw(comment)} {match}{draw(comment)} RETURN n.name AS name {draw(comment)}"
    if shape == "backticks":
        name = draw(st.sampled_from(["`CREATE (x)`", "`DELETE n; `", "`LOAD CSV`", "`CALL db.createLabel`",
                                     "`/* x */`", "`// y`", "`Évil\u200b`"]))
        return f"MATCH (n:Person) RETURN n.{name} AS {name}"
    if shape == "call":
        return f"{match}CALL (n) {{ RETURN n.id AS id }} RETURN max(id) AS top"
    if shape == "nested":
        body = "MATCH (p:Person) RETURN count(p) AS c"
        for _ in range(draw(st.integers(1, 8))):  # graph.readonly.MAX_BRACES
            body = f"CALL () {{ {body} }} RETURN c"
        return body
    if shape == "union":
        return f"MATCH (p:Person) RETURN p.id AS x UNION RETURN {text} AS x"
    if shape == "procedure":
        return draw(st.sampled_from(["CALL db.labels()", "CALL db.propertyKeys() YIELD propertyKey RETURN *",
                                     "CALL `db`.`relationshipTypes`()", "call db.labels()"]))
    if shape == "list":
        return f"UNWIND [{', '.join(['1'] * draw(st.integers(1, 5000)))}] AS i RETURN sum(i) AS s"
    if shape == "exists":
        return f"{match}WHERE EXISTS {{ MATCH (n)-[:KNOWS]->() }} RETURN count(n) AS c"
    if shape == "semicolon":
        return f"MATCH (n:Person) RETURN n.name = {text} AS same LIMIT 2;"
    words = draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="'\\"),
                         max_size=40))
    return f"RETURN '{words} CREATE \u200b(n) ; DELETE' AS s"


# ---------------------------------------------------------------- the test


@pytest.fixture
def populated(graph: neo4j.Driver) -> neo4j.Driver:
    """People who know each other, and a few labels and types the writes aim at."""
    graph.execute_query("UNWIND range(1, 50) AS i CREATE (:Person {id: i, name: 'p' + i})")
    graph.execute_query(
        "MATCH (a:Person), (b:Person) WHERE b.id = a.id + 1 CREATE (a)-[:KNOWS {w: a.id}]->(b)")
    graph.execute_query("UNWIND range(1, 5) AS i CREATE (:Knob {name: 'k' + i})-[:OF]->(:Experiment {id: i})")
    return graph


def layer(query: str) -> str:
    """Which layer refused `query`: the text check, else Neo4j's plan (or the READ transaction)."""
    try:
        check_text(query)
    except QueryRefused:
        return "text"
    return "plan"


REASONS = ("read-only", "not allowed", "not accepted", "more than one statement", "characters long",
           "over the limit of")
QUERIES = count(250, 1000)


@faults
def test_generated_writes_are_all_refused_with_a_reason_and_reads_pass(populated: neo4j.Driver) -> None:
    # Given a populated graph and its dump
    before = canonical_dump(populated)
    seen: Counter[str] = Counter()

    @settings(max_examples=QUERIES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(write=hidden_write(), read=dressed_read())
    def one_of_each(write: str, read: str) -> None:
        # When a hidden write goes through the gate, it is refused, and the refusal says why
        try:
            run_readonly(populated, write, timeout_s=10)
        except QueryTooLong:
            seen["refused: too long"] += 1
        except QueryRefused as refused:
            assert any(r in str(refused) for r in REASONS), str(refused)
            seen["refused: " + layer(write)] += 1
        except QueryFailed as failed:
            # Neo4j would not plan it (a syntax error, an unknown procedure or database): its code says why
            assert "failed in Neo4j: Neo." in str(failed), str(failed)
            seen["failed in Neo4j: " + str(failed).split("Neo.")[1].split(":")[0]] += 1
        else:
            pytest.fail(f"a write passed the gate: {write!r}")
        # And a read dressed in write words passes
        result = run_readonly(populated, read, timeout_s=10)
        assert result.columns, read
        seen["reads passed"] += 1

    one_of_each()
    # Then nothing was written
    assert canonical_dump(populated) == before
    print(f"\n{QUERIES} examples: {dict(seen)}")
