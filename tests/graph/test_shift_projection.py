"""Shift measurements and verdicts in the graph: what they make, and that a rebuild equals the
incremental graph whatever the batch size."""

from __future__ import annotations

import neo4j

from events.models import RunRecorded
from events.models.shift import (
    DataSet,
    DatasetFigures,
    DatasetShiftMeasured,
    ExampleFigures,
    HypothesisTested,
    ModelState,
    OutcomeCorrelation,
    ShiftMeasured,
    ShiftRequested,
    ShiftSettings,
)
from events.store.port import EventStore
from graph.dump import canonical_dump
from graph.projector import Projector
from tests.graph.logs import append, used

DATA = "d" * 64
OTHER = "e" * 64


def _figures(n: int, volatility: float) -> DatasetFigures:
    return DatasetFigures(examples=n, total_shift=3.0 * n, net_shift=2.0 * n, coherence=2 / 3,
                          volatility=volatility, grad_norm_mean=3.0, grad_norm_p50=3.0, grad_norm_p90=4.0,
                          grad_norm_max=5.0, noise_scale=0.5, truncated=0)


def measurement(store: EventStore, mid: str, model: ModelState, dataset: str, n: int,
                volatility: float) -> int:
    """A request, one chunk per two examples, and the summary; the summary's position."""
    data = DataSet(sha256=dataset, name=f"{dataset[:4]}.jsonl", path="/data.jsonl", examples=n)
    append(store, ShiftRequested(measurement_id=mid, model=model, dataset=data,
                                 probe=DataSet(sha256=OTHER, name="probe.jsonl", path="/p.jsonl", examples=2),
                                 settings=ShiftSettings(lr=0.01, chunk=2), chunks=(n + 1) // 2))
    chunks = []
    for chunk in range((n + 1) // 2):
        rows = [ExampleFigures(id=f"x{i}", index=i, tokens=5, targets=4, loss_before=2.0 + i,
                               grad_norm=1.0 + i * volatility, grad_norm_groups={"head": 1.0},
                               update_norm=0.01, loss_after=1.9, loss_drop=0.1 + i)
                for i in range(2 * chunk, min(n, 2 * chunk + 2))]
        chunks += append(store, ShiftMeasured(measurement_id=mid, dataset_sha256=dataset, chunk=chunk,
                                              examples=rows))
    [summary] = append(store, DatasetShiftMeasured(measurement_id=mid, dataset_sha256=dataset,
                                                   model_sha256=model.sha256, figures=_figures(n, volatility),
                                                   used_events=used(store, chunks)))
    return summary


def shift_log(store: EventStore) -> None:
    """A run, two measurements of one data set on the run's model, one of another data set on
    a directory, and a verdict citing all three."""
    append(store, RunRecorded(experiment="base", run_id="r1", params={"lr": 0.1}, seed=0))
    run_model = ModelState(kind="run", ref="base/r1", path="/a/r1", sha256="a" * 64)
    dir_model = ModelState(kind="directory", ref="gpt2", path="/m/gpt2", sha256="b" * 64)
    summaries = [
        measurement(store, "m1", run_model, DATA, 5, 0.2),
        measurement(store, "m2", dir_model, DATA, 5, 0.6),
        measurement(store, "m3", run_model, OTHER, 3, 0.9),
    ]
    append(store, HypothesisTested(
        test_id="h1", name="compat", spec={"seeds": [0, 1]}, verdict="supported",
        correlations=[OutcomeCorrelation(outcome="learned", expected_sign=-1, spearman=-1.0, pearson=-0.9,
                                         ci=(-1.0, -0.5), verdict="supported")],
        candidates=[{"name": n, "measurement_id": m} for n, m in (("a", "m1"), ("b", "m2"), ("c", "m3"))],
        used_events=used(store, summaries)))


def test_measurements_make_datasets_examples_and_figures(graph: neo4j.Driver, store: EventStore) -> None:
    shift_log(store)
    Projector(graph, store).run_once()
    records, _, _ = graph.execute_query(
        "MATCH (m:Measurement)-[me:MEASURED]->(x:Example)-[:PART_OF]->(d:Dataset) "
        "RETURN m.id AS m, count(x) AS n, collect(DISTINCT d.id) AS d, min(size(me.positions)) AS p "
        "ORDER BY m")
    assert [(r["m"], r["n"], r["d"], r["p"]) for r in records] == [
        ("m1", 5, [DATA], 1), ("m2", 5, [DATA], 1), ("m3", 3, [OTHER], 1)]
    # Two measurements of one data set share its Example nodes.
    [[examples]] = graph.execute_query("MATCH (x:Example) RETURN count(x)")[0]
    assert examples == 5 + 3
    # The run's model state links to the run; the verdict to each volatility it cites.
    [[run]] = graph.execute_query(
        "MATCH (:Measurement {id: 'm1'})-[:USED_MODEL]->(:ModelState)-[:WAS_GENERATED_BY]->(r:Run) "
        "RETURN r.id")[0]
    assert run == "base/r1"
    cited, _, _ = graph.execute_query(
        "MATCH (:Verdict {id: 'h1'})-[d:WAS_DERIVED_FROM]->(v:Volatility)-[:SUMMARIZES]->(m) "
        "RETURN d.candidate AS c, v.volatility AS v ORDER BY c")
    assert [(r["c"], r["v"]) for r in cited] == [("a", 0.2), ("b", 0.6), ("c", 0.9)]


def test_a_rebuild_equals_the_graph_built_one_event_at_a_time(graph: neo4j.Driver, store: EventStore) -> None:
    shift_log(store)
    Projector(graph, store, batch_size=1).run_once()
    one_by_one = canonical_dump(graph)
    Projector(graph, store, batch_size=5000).rebuild()
    assert canonical_dump(graph) == one_by_one
    Projector(graph, store, batch_size=3).rebuild()
    assert canonical_dump(graph) == one_by_one
