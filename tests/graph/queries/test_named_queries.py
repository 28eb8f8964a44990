"""The named queries: the loader, and each query's answer over a projected log."""

from __future__ import annotations

import json
from typing import Any

import neo4j
import pytest

from events.models.rankings import (
    CostEfficiency,
    Knee,
    LeverageFlag,
    NoiseVerdict,
    ParameterRanking,
    RankingDerived,
    UsedEvent,
    ValueEffect,
)
from events.models.shift import TrackedDocument, TrainingInfluenceRecorded
from events.store.port import EventStore
from graph.errors import UnknownQuery
from graph.projector import Projector
from graph.queries import NamedQuery, list_queries, load_query
from graph.readonly import run_readonly
from tests.graph.distillation_log import distillation_log
from tests.graph.logs import SmallLog, append, ranking, small_log, used
from tests.graph.test_shift_projection import DATA, shift_log

REQUIRED = {"runs_for_benchmark", "ranking_provenance", "rankings_using_run", "knobs_for_benchmark",
            "experiments", "influence_range", "underused_parameters", "rankings", "knobs_matrix"}


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


def test_every_named_query_passes_the_read_only_gate(
    projected: SmallLog, graph: neo4j.Driver, store: EventStore
) -> None:
    # A ranking that flags a parameter, so that underused_parameters has something to say.
    evidence = used(store, [projected.run_base, projected.score_base])
    append(store, assessed("rk-2", "tfm", "bleu", evidence, as_of=store.head()))
    # Shift measurements, a verdict and a run's tracked documents, for the shift_* queries.
    shift_log(store)
    append(store, TrainingInfluenceRecorded(
        experiment="tfm", run_id="a", every=5, steps=[5, 10],
        volatility_curve=[{"step": 5, "volatility": 0.3}],
        documents=[TrackedDocument(index=0, text="Anya was born", recordings=2, confidence=0.2,
                                   variability=0.1, correctness=0.5, forgetting_events=1,
                                   never_learned=False, final_loss=2.0,
                                   final_grad_norm=1.0)],
        influence_sha256="c" * 64))
    # Lenses, two distillations, their distillates, assessments and clouds, for distillation_*.
    distillation_log(store)
    Projector(graph, store).run_once()
    params = {"experiment": "tfm", "benchmark": "bleu", "ranking_id": "rk-1", "run_id": "a",
              "parameter": "lr", "method": None, "dataset": DATA, "verdict": "h1", "model": None,
              "measurement": None, "limit": None, "distillation": None, "pair": "q1"}
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


# ------------------------------------------------ the questions of "Asking the graph"


def assessed(
    ranking_id: str, experiment: str, benchmark: str, evidence: list[UsedEvent], as_of: int,
    method: str = "ofat", order: tuple[str, ...] = ("lr", "layers"), flag: str | None = "lr",
    without: tuple[str, ...] = (),
) -> RankingDerived:
    """A ranking with everything a current one carries: statistics, noise, knees, costs, flags."""
    values = [ValueEffect(value=0.1, mean=25.0, effect=0.0, n=2, runs=["base"], is_baseline=True),
              ValueEffect(value=0.3, mean=24.5, effect=-0.5, n=2, ci=(-0.9, -0.1), runs=["a"])]
    parameters = []
    for rank, name in enumerate(order, start=1):
        flagged = name == flag
        parameters.append(ParameterRanking(
            name=name, rank=rank, influence_range=(-0.5 / rank, 0.0), values=values,
            statistic=0.5 / rank,
            noise=NoiseVerdict(label="distinguishable" if rank == 1 else "indistinguishable",
                               effect=0.5 / rank, noise=0.2, basis="seed spread"),
            knee=Knee(status="found", value=0.2, ci=(0.15, 0.25), model="log_linear", threshold=0.1)
            if rank == 1 else Knee(status="too_few_values"),
            per_cost=[CostEfficiency(kind="flops", source="flops_6nd", value=0.3, gain=0.5,
                                     extra_cost=2e12, per_unit=2.5e-13)] if flagged else [],
            flags=[LeverageFlag(kind="best_at_edge", reason="best value 0.3 is the edge of [0.1, 0.3]"),
                   LeverageFlag(kind="few_runs", reason="2 runs")] if flagged else [],
        ))
    return RankingDerived(
        ranking_id=ranking_id, experiment=experiment, benchmark=benchmark, method=method,
        direction="higher", bootstrap_seed=0, baseline={"lr": 0.1, "layers": 6},
        settings={"ci_level": 0.95, **({"without": list(without)} if without else {})},
        baseline_runs=["base"], baseline_mean=25.0, code_version="test", as_of=as_of, used_events=evidence,
        parameters=parameters,
    )


@pytest.fixture
def assessed_log(projected: SmallLog, graph: neo4j.Driver, store: EventStore) -> SmallLog:
    """The small log plus: rk-bleu-old (superseded by rk-bleu), rk-mmlu (layers first, lr
    flagged), rk-morris (another method on bleu, nothing flagged), rk-other (another experiment)."""
    ev = used(store, [projected.run_base, projected.score_base])
    append(store, assessed("rk-bleu-old", "tfm", "bleu", ev, as_of=store.head(), flag="layers"))
    append(store, assessed("rk-mmlu", "tfm", "mmlu", ev, as_of=store.head(), order=("layers", "lr")))
    append(store, assessed("rk-morris", "tfm", "bleu", ev, as_of=store.head(), method="morris", flag=None))
    append(store, assessed("rk-bleu", "tfm", "bleu", ev, as_of=store.head()))
    append(store, assessed("rk-other", "other", "bleu", [], as_of=store.head(), order=("heads",), flag=None))
    Projector(graph, store).run_once()
    return projected


def test_influence_range(assessed_log: SmallLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "influence_range", parameter="lr", benchmark=None)
    # rk-1 and rk-bleu-old are superseded by rk-bleu; rk-other does not rank lr
    assert [(r["benchmark"], r["method"], r["ranking_id"], r["rank"], r["ranked"]) for r in rows] == [
        ("bleu", "morris", "rk-morris", 1, 2), ("bleu", "ofat", "rk-bleu", 1, 2),
        ("mmlu", "ofat", "rk-mmlu", 2, 2),
    ]
    bleu = rows[1]
    assert (bleu["parameter"], bleu["experiment"], bleu["direction"]) == ("lr", "tfm", "higher")
    assert (bleu["influence_lo"], bleu["influence_hi"], bleu["statistic"]) == (-0.5, 0.0, 0.5)
    assert (bleu["noise_label"], bleu["knee_status"], bleu["knee_value"]) == ("distinguishable", "found", 0.2)
    assert json.loads(bleu["knee"])["ci"] == [0.15, 0.25]
    assert json.loads(bleu["values"])[1]["effect"] == -0.5
    assert rows[2]["noise_label"] == "indistinguishable" and rows[2]["knee_status"] == "too_few_values"
    only_mmlu = run(graph, "influence_range", parameter="lr", benchmark="mmlu")
    assert [r["ranking_id"] for r in only_mmlu] == ["rk-mmlu"]
    assert run(graph, "influence_range", parameter="no_such_knob", benchmark=None) == []


def test_influence_range_drops_a_parameter_the_newest_ranking_no_longer_ranks(
    assessed_log: SmallLog, graph: neo4j.Driver, store: EventStore
) -> None:
    append(store, assessed("rk-mmlu-2", "tfm", "mmlu", [], as_of=store.head(), order=("layers",)))
    Projector(graph, store).run_once()
    assert [r["ranking_id"] for r in run(graph, "influence_range", parameter="lr", benchmark="mmlu")] == []


def test_underused_parameters(assessed_log: SmallLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "underused_parameters", benchmark=None, experiment=None)
    # rk-bleu-old flagged layers but is superseded; rk-morris and rk-other flag nothing
    assert [(r["ranking_id"], r["parameter"], r["rank"]) for r in rows] == [
        ("rk-bleu", "lr", 1), ("rk-mmlu", "lr", 2)]
    first = rows[0]
    assert first["flag_kinds"] == ["best_at_edge", "few_runs"]
    assert [f["kind"] for f in json.loads(first["flags"])] == ["best_at_edge", "few_runs"]
    assert json.loads(first["per_cost"])[0]["per_unit"] == 2.5e-13
    assert (first["statistic"], first["noise_label"], first["method"]) == (0.5, "distinguishable", "ofat")
    only_mmlu = run(graph, "underused_parameters", benchmark="mmlu", experiment=None)
    assert [r["ranking_id"] for r in only_mmlu] == ["rk-mmlu"]
    assert run(graph, "underused_parameters", benchmark=None, experiment="other") == []
    # a ranking recorded before flags existed (rk-1) is never flagged
    assert run(graph, "underused_parameters", benchmark=None, experiment="nope") == []


def test_rankings(assessed_log: SmallLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "rankings", experiment=None, benchmark=None, method=None)
    assert [r["ranking_id"] for r in rows] == [
        "rk-other", "rk-bleu", "rk-morris", "rk-mmlu", "rk-bleu-old", "rk-1"]
    assert [r["latest"] for r in rows] == [True, True, True, True, False, False]
    assert rows == sorted(rows, key=lambda r: -r["position"])
    first_bleu = rows[-1]
    assert (first_bleu["used_events"], first_bleu["parameters"], first_bleu["top"]) == (4, 2, "lr")
    assert first_bleu["direction"] is None and rows[1]["direction"] == "higher"
    assert rows[0]["top"] == "heads" and rows[0]["used_events"] == 0
    bleu_ofat = run(graph, "rankings", experiment="tfm", benchmark="bleu", method="ofat")
    assert [r["ranking_id"] for r in bleu_ofat] == ["rk-bleu", "rk-bleu-old", "rk-1"]
    assert run(graph, "rankings", experiment="nope", benchmark=None, method=None) == []


def test_knobs_matrix(assessed_log: SmallLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "knobs_matrix", experiment="tfm", method=None)
    assert [(r["parameter"], r["benchmark"], r["rank"], r["ranking_id"]) for r in rows] == [
        ("layers", "bleu", 2, "rk-bleu"), ("layers", "mmlu", 1, "rk-mmlu"),
        ("lr", "bleu", 1, "rk-bleu"), ("lr", "mmlu", 2, "rk-mmlu"),
    ]
    assert {(r["ranked"], r["direction"], r["method"]) for r in rows} == {(2, "higher", "ofat")}
    assert rows[2]["statistic"] == 0.5 and rows[2]["noise_label"] == "distinguishable"
    morris = run(graph, "knobs_matrix", experiment="tfm", method="morris")
    assert {(r["benchmark"], r["ranking_id"]) for r in morris} == {("bleu", "rk-morris")}
    assert run(graph, "knobs_matrix", experiment="nope", method=None) == []


def test_knobs_for_benchmark_carries_the_assessment(assessed_log: SmallLog, graph: neo4j.Driver) -> None:
    rows = run(graph, "knobs_for_benchmark", benchmark="bleu")
    assert [(r["experiment"], r["method"], r["ranking_id"], r["parameter"]) for r in rows] == [
        ("other", "ofat", "rk-other", "heads"), ("tfm", "morris", "rk-morris", "lr"),
        ("tfm", "morris", "rk-morris", "layers"), ("tfm", "ofat", "rk-bleu", "lr"),
        ("tfm", "ofat", "rk-bleu", "layers"),
    ]
    lr = rows[3]
    assert (lr["statistic"], lr["noise_label"], lr["knee_status"], lr["knee_value"], lr["flagged"],
            lr["direction"]) == (0.5, "distinguishable", "found", 0.2, True, "higher")
    assert rows[4]["flagged"] is False and rows[4]["knee_value"] is None


def _latest_bleu(graph: neo4j.Driver) -> dict[str, set[object]]:
    """The latest ofat ranking of tfm on bleu, as each query that decides "latest" reports it."""
    def kept(name: str, **params: Any) -> set[object]:
        return {r["ranking_id"] for r in run(graph, name, **params)
                if r.get("experiment", "tfm") == "tfm" and r.get("benchmark", "bleu") == "bleu"
                and r.get("method", "ofat") == "ofat" and r.get("latest", True)}

    return {
        "knobs_for_benchmark": kept("knobs_for_benchmark", benchmark="bleu"),
        "influence_range": kept("influence_range", parameter="lr", benchmark="bleu"),
        "underused_parameters": kept("underused_parameters", benchmark="bleu", experiment="tfm"),
        "knobs_matrix": kept("knobs_matrix", experiment="tfm", method="ofat"),
        "rankings": kept("rankings", experiment="tfm", benchmark="bleu", method="ofat"),
    }


def test_latest_skips_what_ifs_then_takes_the_newest_evidence_then_the_newest_record(
    assessed_log: SmallLog, graph: neo4j.Driver, store: EventStore
) -> None:
    readers = list(_latest_bleu(graph))
    assert _latest_bleu(graph) == {r: {"rk-bleu"} for r in readers}
    [bleu] = [r for r in run(graph, "rankings", experiment="tfm", benchmark="bleu", method="ofat")
              if r["ranking_id"] == "rk-bleu"]
    assert bleu["what_if"] is False

    # Given a what-if ranking of the newest evidence, then a ranking of older evidence, both recorded
    # after rk-bleu
    ev = used(store, [assessed_log.run_base, assessed_log.score_base])
    append(store, assessed("rk-what-if", "tfm", "bleu", ev, as_of=store.head(), without=("a",)))
    append(store, assessed("rk-as-of", "tfm", "bleu", ev, as_of=bleu["as_of"] - 1))
    Projector(graph, store).run_once()
    # Then rk-bleu is still the latest everywhere, and the what-if is marked as one
    assert _latest_bleu(graph) == {r: {"rk-bleu"} for r in readers}
    rows = {r["ranking_id"]: r for r in run(graph, "rankings", experiment="tfm", benchmark=None, method=None)}
    assert (rows["rk-what-if"]["what_if"], rows["rk-what-if"]["latest"]) == (True, False)
    assert (rows["rk-as-of"]["what_if"], rows["rk-as-of"]["latest"]) == (False, False)

    # When a ranking of the same evidence as rk-bleu is recorded later (newer code)
    append(store, assessed("rk-recoded", "tfm", "bleu", ev, as_of=bleu["as_of"]))
    Projector(graph, store).run_once()
    # Then it is the latest everywhere
    assert _latest_bleu(graph) == {r: {"rk-recoded"} for r in readers}


def test_a_what_if_ranking_alone_is_never_the_latest(graph: neo4j.Driver, store: EventStore) -> None:
    append(store, assessed("rk-only-what-if", "tfm", "bleu", [], as_of=0, without=("a",)))
    Projector(graph, store).run_once()
    assert run(graph, "knobs_for_benchmark", benchmark="bleu") == []
    assert run(graph, "knobs_matrix", experiment="tfm", method=None) == []
    [row] = run(graph, "rankings", experiment=None, benchmark=None, method=None)
    assert (row["ranking_id"], row["what_if"], row["latest"]) == ("rk-only-what-if", True, False)
