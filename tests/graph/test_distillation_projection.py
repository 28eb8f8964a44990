"""Lens distillation in the graph: what its events make, and that a rebuild equals the
incremental graph whatever the batch size."""

from __future__ import annotations

import neo4j

from events.models.distillation import pair_node_id
from events.store.port import EventStore
from graph.dump import canonical_dump
from graph.projector import Projector
from tests.graph.distillation_log import LENSES, PAIR_SET, RESTATE_V2, distillation_log


def rows(driver: neo4j.Driver, cypher: str, **params: object) -> list[dict[str, object]]:
    return [r.data() for r in driver.execute_query(cypher, params)[0]]


def test_distillates_link_their_pair_lens_model_and_duplicates(graph: neo4j.Driver,
                                                               store: EventStore) -> None:
    log = distillation_log(store)
    Projector(graph, store).run_once()
    # The pair set is a Dataset that CONTAINS its pairs, each QAPair keyed by the pair set and its own id
    pairs = rows(graph, "MATCH (d:Dataset)-[:CONTAINS]->(q:QAPair) RETURN d.id AS d, q.id AS id, "
                        "q.pair_id AS pair, q.known_answer AS known ORDER BY q.index")
    assert [(p["d"], p["id"], p["pair"], p["known"]) for p in pairs] == [
        (PAIR_SET.sha256, pair_node_id(PAIR_SET.sha256, q), q, q != "q3") for q in ("q1", "q2", "q3")]
    # Every distillate is OF its pair, THROUGH its lens version, GENERATED_BY its model, PART_OF its run
    linked = rows(graph, """
        MATCH (x:Distillate)-[:OF]->(q:QAPair), (x)-[:THROUGH]->(l:Lens), (x)-[:GENERATED_BY]->(m:Model),
              (x)-[:PART_OF]->(r:Distillation)
        RETURN r.id AS run, m.id AS model, l.id AS lens, count(x) AS n, collect(DISTINCT x.sample) AS samples,
               min(size(x.positions)) AS least_events, max(size(x.positions)) AS most_events
        ORDER BY run, lens""")
    a = sorted([(log.a, "tiny-instruct", f"{lens.name}@{lens.version}", 6, [0, 1], 2, 2) for lens in LENSES])
    b = [(log.b, "template", f"restate@{RESTATE_V2.version}", 3, [0], 1, 2)]
    got = [(r["run"], r["model"], r["lens"], r["n"], sorted(r["samples"]), r["least_events"],  # type: ignore[arg-type]
            r["most_events"]) for r in linked]
    assert sorted(got) == sorted(a + b)
    # Lenses were defined before use: full properties, their LensDefined as evidence
    lenses = rows(graph, "MATCH (l:Lens) RETURN l.id AS id, l.family AS family, size(l.positions) AS p "
                         "ORDER BY id")
    assert len(lenses) == 4 and all(lens["family"] and lens["p"] == 1 for lens in lenses)
    # Duplicates point at the distillate they repeat, across lenses too
    dups = rows(graph, "MATCH (x:Distillate)-[d:DUPLICATE_OF]->(o:Distillate) "
                       "RETURN x.lens AS lens, x.sample AS s, o.lens AS of_lens, o.sample AS of_s, "
                       "d.cosine AS cosine, x.pair_id AS pair ORDER BY pair, lens")
    assert [(d["pair"], d["lens"], d["s"], d["of_lens"], d["of_s"]) for d in dups] == [
        ("q1", "causal", 1, "causal", 0), ("q2", "causal", 1, "causal", 0),
        ("q3", "causal", 1, "causal", 0), ("q3", "restate", 1, "child", 0)]
    assert {d["cosine"] for d in dups} == {0.97}
    # An unassessed distillate has no verdict yet; a rejected one keeps its reasons
    [pending] = rows(graph, "MATCH (x:Distillate) WHERE x.accepted IS NULL RETURN x.distillation_id AS run, "
                            "x.pair_id AS pair")
    assert pending == {"run": log.b, "pair": "q3"}
    [short] = rows(graph, "MATCH (x:Distillate {lens: 'child', pair_id: 'q2', sample: 0}) "
                          "RETURN x.accepted AS a, x.reasons AS r")
    assert short == {"a": False, "r": ["too_short"]}
    # One cloud per assessed pair of A, OF the pair and PART_OF A; A completed, B not
    clouds = rows(graph, "MATCH (c:Cloud)-[:OF]->(q:QAPair), (c)-[:PART_OF]->(r:Distillation) "
                         "RETURN r.id AS run, q.pair_id AS pair, c.accepted AS accepted, c.vendi AS vendi "
                         "ORDER BY pair")
    assert [(c["run"], c["pair"], c["accepted"]) for c in clouds] == [(log.a, "q1", 5), (log.a, "q2", 3),
                                                                     (log.a, "q3", 4)]
    runs = rows(graph, "MATCH (r:Distillation)-[:OF]->(d:Dataset) OPTIONAL MATCH (r)-[:THROUGH]->(l:Lens) "
                       "RETURN r.id AS id, r.completed AS done, r.accepted AS accepted, count(l) AS lenses, "
                       "r.positions AS positions, r.samples AS samples ORDER BY samples DESC")
    assert [(r["id"], r["done"], r["accepted"], r["lenses"]) for r in runs] == [
        (log.a, True, 12, 3), (log.b, None, None, 1)]
    assert runs[0]["positions"] == [log.request_a, log.completed_a]


def test_a_rebuild_equals_the_graph_built_one_event_at_a_time(graph: neo4j.Driver, store: EventStore) -> None:
    distillation_log(store)
    Projector(graph, store, batch_size=1).run_once()
    one_by_one = canonical_dump(graph)
    for batch_size in (5000, 3):
        Projector(graph, store, batch_size=batch_size).rebuild()
        assert canonical_dump(graph) == one_by_one, batch_size
