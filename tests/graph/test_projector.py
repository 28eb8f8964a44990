"""The projector against a real Neo4j and a real SQLite log: what it draws, and that replays,
rebuilds and any batching give the same graph."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import neo4j
import pytest

from events.models import BenchmarkScored, RunRecorded
from events.store.port import EventStore, NewEvent
from graph.dump import canonical_dump
from graph.errors import ProjectionFailed
from graph.projector import Projector
from tests.graph.logs import append, big_log, checkpoint, node_count, small_log, used


def node(driver: neo4j.Driver, label: str, node_id: str) -> dict[str, Any]:
    records, _, _ = driver.execute_query(
        f"MATCH (n:{label} {{id: $id}}) RETURN labels(n) AS labels, properties(n) AS props", id=node_id
    )
    assert len(records) == 1, f"expected one {label} {node_id!r}, found {len(records)}"
    return {"labels": sorted(records[0]["labels"]), **records[0]["props"]}


def links(driver: neo4j.Driver, start: str, rel_type: str) -> dict[str, dict[str, Any]]:
    """The `rel_type` relationships out of the node with id `start`, by end node id."""
    records, _, _ = driver.execute_query(
        f"MATCH (a {{id: $id}})-[r:{rel_type}]->(b) RETURN b.id AS end, properties(r) AS props", id=start
    )
    return {r["end"]: r["props"] for r in records}


def test_projects_sources_runs_scores_and_rankings(graph: neo4j.Driver, store: EventStore) -> None:
    # Given a log with a source, two runs and their scores, a corrected re-record of one run
    # and its score, a foreign event and a ranking
    log = small_log(store)
    by_pos = {e.position: e.event_id for e in log.all}

    # When it is projected
    consumed = Projector(graph, store).run_once()

    # Then every event was consumed and the checkpoint is the head (the foreign one included)
    assert consumed == len(log.all) == store.head()
    assert checkpoint(graph) == store.head()

    source = node(graph, "Source", "vaswani2017")
    assert source == {"labels": ["Entity", "Source"], "id": "vaswani2017",
                      "citation": "Vaswani et al. 2017, Table 3",
                      "positions": [log.source], "event_ids": [by_pos[log.source]]}

    base = node(graph, "Run", "tfm/base")
    assert base["labels"] == ["Activity", "Run"]
    assert base["positions"] == [log.run_base]
    assert (base["seed"], base["origin"], base["agent"], base["source_id"]) == (1, "import", "knobs-import",
                                                                                "vaswani2017")
    assert (base["cost_gpu_hours"], base["cost_tokens"]) == (12.0, 1e9)
    assert set(links(graph, "tfm/base", "USED_VALUE")) == {"lr=0.1", "layers=6"}
    assert links(graph, "tfm/base", "REPORTED_IN")["vaswani2017"]["positions"] == [log.run_base]
    assert set(links(graph, "tfm/base", "PART_OF")) == {"tfm"}

    # The re-recorded run: the last write wins, both positions are kept
    run_a = node(graph, "Run", "tfm/a")
    assert run_a["positions"] == [log.run_a, log.run_a_again]
    assert run_a["event_ids"] == [by_pos[log.run_a], by_pos[log.run_a_again]]
    assert (run_a["origin"], run_a["agent"], run_a["cost_gpu_hours"]) == ("train", "knobs-train", 14.0)
    assert "source_id" not in run_a
    used_values = links(graph, "tfm/a", "USED_VALUE")
    assert set(used_values) == {"lr=0.3", "layers=6"}
    assert used_values["layers=6"]["positions"] == [log.run_a, log.run_a_again]
    assert used_values["lr=0.3"]["positions"] == [log.run_a_again]
    assert links(graph, "tfm/a", "REPORTED_IN") == {}
    assert set(links(graph, "tfm/a", "WAS_ASSOCIATED_WITH")) == {"knobs-train"}
    assert links(graph, "tfm/a", "PART_OF")["tfm"]["positions"] == [log.run_a, log.run_a_again]

    score_a = node(graph, "Score", "tfm/a/bleu")
    assert score_a["labels"] == ["Entity", "Score"]
    assert (score_a["value"], score_a["n"], score_a["benchmark"]) == (24.5, 3000, "bleu")
    assert score_a["positions"] == [log.score_a, log.score_a_again]
    assert set(links(graph, "tfm/a/bleu", "WAS_GENERATED_BY")) == {"tfm/a"}
    assert set(links(graph, "tfm/a/bleu", "ON_BENCHMARK")) == {"bleu"}

    parameter_value = node(graph, "ParameterValue", "lr=0.3")
    assert (parameter_value["name"], parameter_value["value"]) == ("lr", 0.3)
    assert set(links(graph, "lr=0.3", "VALUE_OF")) == {"lr"}
    # Shared nodes list the first event that named them
    assert node(graph, "Experiment", "tfm")["positions"] == [log.run_base]
    assert node(graph, "Parameter", "lr")["positions"] == [log.run_base]
    assert node(graph, "Benchmark", "bleu")["positions"] == [log.score_base]
    assert node(graph, "Agent", "knobs-train")["positions"] == [log.run_a_again]

    ranking = node(graph, "Ranking", "rk-1")
    assert ranking["labels"] == ["Entity", "Ranking"]
    assert ranking["positions"] == [log.ranking]
    assert ranking["used_positions"] == [log.run_base, log.score_base, log.run_a_again, log.score_a_again]
    assert ranking["baseline"] == '{"layers":6,"lr":0.1}'
    assert set(links(graph, "rk-1", "WAS_DERIVED_FROM")) == {"tfm/base/bleu", "tfm/a/bleu"}
    assert set(links(graph, "rk-1", "USED_RUN")) == {"tfm/base", "tfm/a"}
    assert set(links(graph, "rk-1", "FOR_BENCHMARK")) == {"bleu"}
    assert set(links(graph, "rk-1", "ABOUT")) == {"tfm"}
    ranks = links(graph, "rk-1", "RANKS")
    assert (ranks["lr"]["rank"], ranks["lr"]["influence_lo"], ranks["lr"]["influence_hi"]) == (1, -0.5, 1.5)
    assert '"effect":0.5' in ranks["lr"]["values"]

    # The foreign event left no trace but the checkpoint
    records, _, _ = graph.execute_query(
        "MATCH (n) WHERE $p IN n.positions RETURN n UNION MATCH ()-[n]->() WHERE $p IN n.positions RETURN n",
        p=log.note,
    )
    assert records == []


def test_every_node_and_relationship_has_a_unique_id_and_sorted_positions(
    graph: neo4j.Driver, store: EventStore
) -> None:
    big_log(store, 400, seed=3)
    Projector(graph, store, batch_size=37).run_once()
    records, _, _ = graph.execute_query(
        "MATCH (n) WHERE NOT n:Projection RETURN 'node' AS kind, labels(n)[0] AS label, n.id AS id, "
        "n.positions AS positions, n.event_ids AS event_ids "
        "UNION ALL MATCH ()-[n]->() RETURN 'rel' AS kind, type(n) AS label, n.id AS id, "
        "n.positions AS positions, n.event_ids AS event_ids"
    )
    assert len(records) > 1000
    seen: set[tuple[str, str, str]] = set()
    for r in records:
        assert r["id"], f"{r['kind']} {r['label']} has no id"
        key = (r["kind"], r["label"], r["id"])
        assert key not in seen, f"duplicate id {key}"
        seen.add(key)
        positions = r["positions"]
        assert positions == sorted(set(positions)), f"{key}: positions {positions} not sorted/unique"
        assert len(r["event_ids"]) == len(positions)
    stored = {e.position: e.event_id for e in store.read_all()}
    for r in records:
        assert r["event_ids"] == [stored[p] for p in r["positions"]]


def test_run_once_again_changes_nothing(graph: neo4j.Driver, store: EventStore) -> None:
    small_log(store)
    projector = Projector(graph, store)
    projector.run_once()
    before = canonical_dump(graph)
    assert projector.run_once() == 0
    assert canonical_dump(graph) == before


@pytest.mark.parametrize("reset_to", [0, 3, 5])
def test_replaying_from_an_earlier_checkpoint_changes_nothing(
    graph: neo4j.Driver, store: EventStore, reset_to: int
) -> None:
    # Given a projected log
    small_log(store)
    projector = Projector(graph, store)
    projector.run_once()
    before = canonical_dump(graph)
    # When the checkpoint is moved back and the events after it are applied again
    at = store.read_positions([reset_to])
    graph.execute_query("MATCH (p:Projection) SET p.position = $p, p.hash = $h",
                        p=reset_to, h=at[0].hash if at else None)
    assert projector.run_once() == store.head() - reset_to
    # Then the graph is exactly what it was
    assert canonical_dump(graph) == before


def test_incremental_projection_equals_rebuild_byte_for_byte(graph: neo4j.Driver, store: EventStore) -> None:
    # Given a log projected in several sittings as it grew, with odd batch sizes
    big_log(store, 300, seed=1)
    Projector(graph, store, batch_size=7).run_once()
    big_log(store, 300, seed=2)
    Projector(graph, store, batch_size=64).run_once()
    big_log(store, 300, seed=3)
    projector = Projector(graph, store, batch_size=500)
    projector.run_once()
    incremental = canonical_dump(graph)
    # When the graph is rebuilt from the log
    assert projector.rebuild() == store.head()
    # Then it dumps byte for byte the same
    assert canonical_dump(graph) == incremental
    assert incremental.count("\n") > 1000


def test_batch_size_does_not_change_the_graph(graph: neo4j.Driver, store: EventStore) -> None:
    # A batch is applied type by type; one event per batch is strict log order.
    big_log(store, 500, seed=11)
    Projector(graph, store, batch_size=1).run_once()
    one_by_one = canonical_dump(graph)
    Projector(graph, store, batch_size=5000).rebuild()
    assert canonical_dump(graph) == one_by_one


def test_the_fast_path_for_new_nodes_draws_what_the_per_row_statements_draw(
    graph: neo4j.Driver, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # New runs, scores and rankings take their handler's `fast` statement after the hubs are
    # MERGEd once per batch; without them every row goes through the per-row statement.
    import dataclasses

    import graph.projector as projector_module

    big_log(store, 600, seed=21)
    Projector(graph, store, batch_size=200).run_once()
    fast = canonical_dump(graph)
    slow_handlers = {t: dataclasses.replace(h, fast=None) for t, h in projector_module.HANDLERS.items()}
    assert any(h.fast for h in projector_module.HANDLERS.values())
    monkeypatch.setattr(projector_module, "HANDLERS", slow_handlers)
    Projector(graph, store, batch_size=200).rebuild()
    assert canonical_dump(graph) == fast


def test_a_score_before_its_run_and_a_run_citing_a_later_source(
    graph: neo4j.Driver, store: EventStore
) -> None:
    from events.models import SourceCited

    score, run, source = append(
        store,
        BenchmarkScored(experiment="e", run_id="r", benchmark="b", value=1.0),
        RunRecorded(experiment="e", run_id="r", params={"x": 1}, source_id="later"),
        SourceCited(source_id="later", citation="A later paper"),
    )
    projector = Projector(graph, store, batch_size=1)
    projector.run_once()
    # The score made a bare run, the run filled it in; the run made a bare source, the
    # citation filled it in.
    run_node = node(graph, "Run", "e/r")
    assert run_node["positions"] == [run]
    assert run_node["params"] == '{"x":1}'
    assert node(graph, "Source", "later")["positions"] == [source]
    assert node(graph, "Source", "later")["citation"] == "A later paper"
    assert set(links(graph, "e/r/b", "WAS_GENERATED_BY")) == {"e/r"}
    one_by_one = canonical_dump(graph)
    projector.rebuild()
    assert canonical_dump(graph) == one_by_one
    assert score < run


def test_an_event_that_cannot_be_read_stops_the_projector_before_it(
    graph: neo4j.Driver, store: EventStore
) -> None:
    class FutureRunRecorded(RunRecorded):
        schema_version: ClassVar[int] = 99

    append(store, RunRecorded(experiment="e", run_id="ok", params={"x": 1}))
    store.append([NewEvent(event=FutureRunRecorded(experiment="e", run_id="new", params={"x": 2}))])
    append(store, RunRecorded(experiment="e", run_id="after", params={"x": 3}))
    projector = Projector(graph, store, batch_size=1)
    with pytest.raises(ProjectionFailed, match="log position 2"):
        projector.run_once()
    assert checkpoint(graph) == 1
    assert node_count(graph, "Run") == 1


def test_a_graph_without_a_checkpoint_is_not_built_on(graph: neo4j.Driver, store: EventStore) -> None:
    # Given nodes no projector vouches for (an interrupted rebuild, or someone else's data)
    graph.execute_query("CREATE (:Stranger {id: 'x'})")
    small_log(store)
    projector = Projector(graph, store)
    with pytest.raises(ProjectionFailed, match="knobs graph rebuild"):
        projector.run_once()
    # A rebuild wipes them and replays the log
    assert projector.rebuild() == store.head()
    assert node_count(graph, "Stranger") == 0


def test_lag_and_checkpoint(graph: neo4j.Driver, store: EventStore) -> None:
    projector = Projector(graph, store, batch_size=2)
    assert (projector.checkpoint(), projector.lag()) == (0, 0)
    small_log(store)
    assert projector.lag() == store.head()
    projector._project_batch()
    assert (projector.checkpoint(), projector.lag()) == (2, store.head() - 2)
    projector.run_once()
    assert projector.lag() == 0


def test_follow_projects_new_events_until_stopped(graph: neo4j.Driver, store: EventStore) -> None:
    projector = Projector(graph, store)
    stop = threading.Event()
    consumed: list[int] = []
    thread = threading.Thread(target=lambda: consumed.append(projector.follow(0.05, stop)))
    thread.start()
    try:
        small_log(store)
        deadline = time.monotonic() + 30
        while projector.checkpoint() < store.head() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert projector.checkpoint() == store.head()
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert consumed == [store.head()]


def test_two_projectors_at_once_neither_lose_nor_double(graph: neo4j.Driver, store: EventStore) -> None:
    big_log(store, 600, seed=5)
    errors: list[BaseException] = []

    def project(batch: int) -> None:
        try:
            Projector(graph, store, batch_size=batch).run_once()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=project, args=(b,)) for b in (25, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    together = canonical_dump(graph)
    Projector(graph, store).rebuild()
    assert canonical_dump(graph) == together


def test_rankings_link_only_events_the_log_holds_as_named(graph: neo4j.Driver, store: EventStore) -> None:
    from events.models import UsedEvent
    from tests.graph.logs import ranking

    run, score = append(
        store,
        RunRecorded(experiment="e", run_id="r", params={"x": 1}),
        BenchmarkScored(experiment="e", run_id="r", benchmark="b", value=1.0),
    )
    evidence = [*used(store, [run]), UsedEvent(position=score, event_id="not-the-real-id")]
    append(store, ranking("rk", "e", "b", evidence, as_of=score))
    Projector(graph, store).run_once()
    assert set(links(graph, "rk", "USED_RUN")) == {"e/r"}
    assert links(graph, "rk", "WAS_DERIVED_FROM") == {}


def test_an_interrupted_rebuild_blocks_projection_until_rebuilt(
    graph: neo4j.Driver, store: EventStore
) -> None:
    from graph.errors import RebuildInProgress
    from graph.projector import REBUILDING

    small_log(store)
    projector = Projector(graph, store)
    projector.run_once()
    expected = canonical_dump(graph)
    # Given a rebuild that stopped half-way through its wipe
    graph.execute_query("MATCH (p:Projection) SET p.position = $p", p=REBUILDING)
    graph.execute_query("MATCH (s:Score) DETACH DELETE s")
    # Then nothing projects onto the half-wiped graph
    with pytest.raises(RebuildInProgress, match="knobs graph rebuild"):
        projector.run_once()
    assert projector.checkpoint() == 0
    # And a rebuild restores it
    projector.rebuild()
    assert canonical_dump(graph) == expected


def test_a_follower_waits_out_a_rebuild(graph: neo4j.Driver, store: EventStore) -> None:
    # Given a projector following the log while another process rebuilds the graph
    big_log(store, 1500, seed=21)
    follower = Projector(graph, store, batch_size=50)
    stop = threading.Event()
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            follower.follow(0.02, stop)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        while follower.checkpoint() < 300:
            time.sleep(0.01)
        Projector(graph, store, batch_size=200).rebuild()
        big_log(store, 200, seed=22)
        deadline = time.monotonic() + 60
        while follower.checkpoint() < store.head() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    assert errors == []
    # Then the graph is the log's, as a rebuild alone would make it
    together = canonical_dump(graph)
    Projector(graph, store).rebuild()
    assert canonical_dump(graph) == together


def test_an_empty_log_projects_like_its_rebuild(graph: neo4j.Driver, store: EventStore) -> None:
    projector = Projector(graph, store)
    assert projector.run_once() == 0
    empty = canonical_dump(graph)
    assert projector.rebuild() == 0
    assert canonical_dump(graph) == empty
    assert empty == '{"kind":"node","labels":["Projection"],"properties":{"id":"main","position":0}}\n'


def test_a_graph_from_another_log_is_not_extended(
    graph: neo4j.Driver, store: EventStore, tmp_path: Path
) -> None:
    from events.store.sqlite import SQLiteEventStore

    # Given a graph projected from one log
    big_log(store, 100, seed=1)
    Projector(graph, store).run_once()
    # When a projector is pointed at another log, longer or shorter
    for n in (50, 300):
        other = SQLiteEventStore(tmp_path / f"other-{n}.sqlite3")
        try:
            big_log(other, n, seed=2)
            # Then it refuses to mix the two
            with pytest.raises(ProjectionFailed, match="different event log"):
                Projector(graph, other).run_once()
        finally:
            other.close()
    # And a rebuild from the other log is the way out
    other = SQLiteEventStore(tmp_path / "other-300.sqlite3")
    try:
        assert Projector(graph, other).rebuild() == other.head()
    finally:
        other.close()


def test_threads_sharing_one_projector_project_each_event_once(
    graph: neo4j.Driver, store: EventStore
) -> None:
    # Given a log of a few thousand events and one Projector shared by eight threads, as a
    # server's request threads share their Context's (small batches: many read-aheads)
    big_log(store, 3000)
    projector = Projector(graph, store, batch_size=50)
    head = store.head()
    results: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def catch_up() -> None:
        start.wait()
        try:
            results.append(projector.run_until(head))
        except BaseException as exc:
            failures.append(exc)

    # When all of them catch the graph up to the head at the same moment
    threads = [threading.Thread(target=catch_up) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then none failed, the work was done once in all (the others found the graph there), and
    # the graph is the one a rebuild draws
    assert not failures, failures
    assert sum(results) == head and checkpoint(graph) == head
    incremental = canonical_dump(graph)
    Projector(graph, store).rebuild()
    assert canonical_dump(graph) == incremental
