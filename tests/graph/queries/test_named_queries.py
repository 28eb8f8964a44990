"""The named queries: the loader, and each query's answer over a projected log."""

from __future__ import annotations

import json
from typing import Any

import neo4j
import pytest

from events.store.port import EventStore
from graph.errors import UnknownQuery
from graph.projector import Projector
from graph.queries import NamedQuery, list_queries, load_query
from graph.readonly import run_readonly
from tests.graph.logs import SmallLog, append, ranking, small_log, used

REQUIRED = {"runs_for_benchmark", "ranking_provenance", "rankings_using_run", "knobs_for_benchmark",
            "experiments"}


def ids(rows: list[dict[str, Any]]) -> list[object]:
    return [r["ranking_id"] for r in rows]


def ranks(rows: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    return [(r["ranking_id"], r["parameter"], r["rank"]) for r in rows]


def run(driver: neo4j.Driver, name: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(load_query(name).cypher, params, routing_=neo4j.RoutingControl.READ)
    return [r.data() for r in records]


@pytest.fixture
def projected(graph: neo4j.Driver, store: EventStore) -> SmallLog:
    log = small_log(store)
    Projector(graph, store).run_once()
    return log


def test_every_query_file_describes_itself() -> None:
    queries = list_queries()
    assert {q.name for q in queries} >= REQUIRED
    for q in queries:
        assert isinstance(q, NamedQuery)
        assert q.cypher.startswith("// "), f"{q.name} must begin with a // comment"
        assert q.description and "Parameters:" in q.description, q.name
        assert not q.description.startswith("/"), q.name
        assert len(q.description.splitlines()[0]) <= 100, f"{q.name}: keep the first line a short summary"


def test_load_query_refuses_unknown_and_odd_names() -> None:
    with pytest.raises(UnknownQuery, match=r"known queries: .*runs_for_benchmark"):
        load_query("no_such_query")
    with pytest.raises(UnknownQuery):
        load_query("../projector")


def test_every_named_query_passes_the_read_only_gate(projected: SmallLog, graph: neo4j.Driver) -> None:
    params = {"experiment": "tfm", "benchmark": "bleu", "ranking_id": "rk-1", "run_id": "a"}
    for q in list_queries():
        result = run_readonly(graph, q.cypher, params)
        assert result.rows, f"{q.name} returned nothing over the small log"


def test_runs_for_benchmark(projected: SmallLog, graph: neo4j.Driver, store: EventStore) -> None:
    rows = run(graph, "runs_for_benchmark", experiment="tfm", benchmark="bleu")
    by_pos = {e.position: e.event_id for e in store.read_all()}
    assert [r["run_id"] for r in rows] == ["a", "base"]
    a, base = rows
    assert dict(a["params"]) == {"lr": 0.3, "layers": 6}
    assert dict(base["costs"]) == {"gpu_hours": 12.0, "tokens": 1e9}
    assert (base["seed"], base["source_id"], base["value"], base["stderr"]) == (1, "vaswani2017", 25.8, 0.1)
    assert (a["value"], a["n"], a["source_id"]) == (24.5, 3000, None)
    assert a["run_positions"] == [projected.run_a, projected.run_a_again]
    assert a["score_positions"] == [projected.score_a, projected.score_a_again]
    assert a["run_event_ids"] == [by_pos[projected.run_a], by_pos[projected.run_a_again]]
    assert a["score_event_ids"] == [by_pos[projected.score_a], by_pos[projected.score_a_again]]
    assert run(graph, "runs_for_benchmark", experiment="tfm", benchmark="nope") == []
    assert run(graph, "runs_for_benchmark", experiment="nope", benchmark="bleu") == []


def test_ranking_provenance(projected: SmallLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "ranking_provenance", ranking_id="rk-1")
    assert [r["run_id"] for r in rows] == ["a", "base"]
    first = rows[0]
    assert (first["experiment"], first["benchmark"], first["method"]) == ("tfm", "bleu", "ofat")
    assert first["ranking_positions"] == [projected.ranking]
    assert [p["name"] for p in first["parameters"]] == ["lr", "layers"]
    assert json.loads(first["parameters"][0]["values"])[1]["effect"] == 0.5
    base = rows[1]
    assert (base["source_id"], base["citation"]) == ("vaswani2017", "Vaswani et al. 2017, Table 3")
    assert base["source_positions"] == [projected.source]
    assert base["run_positions"] == [projected.run_base]
    assert base["score_positions"] == [projected.score_base]
    linked = {p for r in rows for key in ("run_positions", "score_positions") for p in r[key]}
    assert set(first["used_positions"]) <= linked
    assert run(graph, "ranking_provenance", ranking_id="nope") == []


def test_ranking_provenance_of_a_ranking_without_evidence(graph: neo4j.Driver, store: EventStore) -> None:
    append(store, ranking("empty", "e", "b", [], as_of=0))
    Projector(graph, store).run_once()
    [row] = run(graph, "ranking_provenance", ranking_id="empty")
    assert row["ranking_id"] == "empty" and row["run"] is None


def test_rankings_using_run(projected: SmallLog, graph: neo4j.Driver, store: EventStore) -> None:
    assert ids(run(graph, "rankings_using_run", experiment="tfm", run_id="a")) == ["rk-1"]
    # A newer ranking that used only run base comes first for base, and not at all for a
    evidence = used(store, [projected.run_base, projected.score_base])
    append(store, ranking("rk-2", "tfm", "bleu", evidence, as_of=store.head()))
    Projector(graph, store).run_once()
    assert ids(run(graph, "rankings_using_run", experiment="tfm", run_id="base")) == ["rk-2", "rk-1"]
    assert ids(run(graph, "rankings_using_run", experiment="tfm", run_id="a")) == ["rk-1"]


def test_knobs_for_benchmark_takes_the_latest_ranking(
    projected: SmallLog, graph: neo4j.Driver, store: EventStore
) -> None:
    rows = run(graph, "knobs_for_benchmark", benchmark="bleu")
    assert ranks(rows) == [("rk-1", "lr", 1), ("rk-1", "layers", 2)]
    evidence = used(store, [projected.run_base, projected.score_base])
    append(store, ranking("rk-2", "tfm", "bleu", evidence, as_of=store.head(),
                          parameters={"layers": (1, 0.0, 2.0), "lr": (2, 0.0, 0.1)}))
    Projector(graph, store).run_once()
    rows = run(graph, "knobs_for_benchmark", benchmark="bleu")
    assert ranks(rows) == [("rk-2", "layers", 1), ("rk-2", "lr", 2)]
    assert (rows[0]["influence_lo"], rows[0]["influence_hi"]) == (0.0, 2.0)


def test_experiments(projected: SmallLog, graph: neo4j.Driver) -> None:
    assert run(graph, "experiments") == [{
        "name": "tfm", "runs": 2, "scores": 2, "benchmarks": ["bleu"], "parameters": ["layers", "lr"],
        "sources": 1, "rankings": 1,
    }]
