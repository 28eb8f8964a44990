"""An LLM judge's reliability in the graph: the Judgement node, ABOUT its experiment, JUDGED its
runs; the judge's scores as ordinary scores; a rebuild equals the incremental graph."""

from __future__ import annotations

import uuid

import neo4j

from events.models import BenchmarkScored, RunRecorded
from events.models.base import Event
from events.models.judging import JUDGE_BENCHMARK, JudgeReliabilityMeasured, KindAgreement
from events.store.port import EventStore, NewEvent
from graph.dump import canonical_dump
from graph.projector import Projector

RUNS = ("base-s0", "lr=0.003-s0")


def keyed(event: Event, key: str) -> NewEvent:
    return NewEvent(event=event, event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"knobs-test:{key}"),
                    idempotency_key=key)


def judged_log(store: EventStore) -> None:
    """Two runs, their exact match, then two judgements (a second judge model) of both."""
    store.append([keyed(RunRecorded(experiment="judged", run_id=r, params={"lr": lr}, seed=0, origin="train"),
                        f"run:{r}") for r, lr in zip(RUNS, (0.01, 0.003), strict=True)])
    for n, model in enumerate(("smollm2-135m-instruct", "other-judge")):
        jid = f"j{n}"
        store.append([
            *(keyed(BenchmarkScored(experiment="judged", run_id=r, benchmark=JUDGE_BENCHMARK,
                                    value=0.25 * (i + 1), n=48, stderr=0.05), f"score:{jid}/{r}")
              for i, r in enumerate(RUNS)),
            keyed(JudgeReliabilityMeasured(
                judgement_id=jid, experiment="judged", judge_model=model, judge_host="127.0.0.1:8088",
                prompt_version="judge-v1", runs=list(RUNS), settings={"questions": 48, "repeats": 2},
                exact_match={r: 0.1 for r in RUNS}, items=192, judgements=384,
                agreement_with_exact_match=0.55, kappa=None if n else 0.04,
                by_kind={"student": KindAgreement(judgements=190, agreement=0.6, judged_yes=0.4)},
                self_agreement=0.5, position_pairs=60, position_consistency=0.1, first_position_share=0.95,
                unparsable=12, seconds=80.0, requests=500, cached=0, prompt_tokens=40000,
                completion_tokens=2000), f"reliability:{jid}")])


def test_a_judgement_is_about_its_experiment_and_judged_its_runs(graph: neo4j.Driver,
                                                                  store: EventStore) -> None:
    judged_log(store)
    Projector(graph, store).run_once()
    rows = [r.data() for r in graph.execute_query(
        "MATCH (j:Judgement)-[:ABOUT]->(e:Experiment), (j)-[:JUDGED]->(r:Run) "
        "RETURN j.id AS id, j.judge_model AS model, e.id AS experiment, j.kappa AS kappa, "
        "j.position_consistency AS pc, collect(r.run_id) AS runs, size(r.positions) AS run_events "
        "ORDER BY id")[0]]
    assert [(r["id"], r["model"], r["experiment"], r["kappa"], r["pc"], sorted(r["runs"])) for r in rows] == [
        ("j0", "smollm2-135m-instruct", "judged", 0.04, 0.1, list(RUNS)),
        ("j1", "other-judge", "judged", None, 0.1, list(RUNS))]
    # The runs are the recorded ones (not bare copies), and the judge's scores are their scores
    assert all(r["run_events"] == 1 for r in rows)
    [scores] = [r.data() for r in graph.execute_query(
        "MATCH (s:Score)-[:ON_BENCHMARK]->(:Benchmark {id: $b}) RETURN count(s) AS n",
        {"b": JUDGE_BENCHMARK})[0]]
    assert scores == {"n": 2}  # one per run: the second judgement's is the newest


def test_a_rebuild_equals_the_graph_built_one_event_at_a_time(graph: neo4j.Driver, store: EventStore) -> None:
    judged_log(store)
    Projector(graph, store, batch_size=1).run_once()
    one_by_one = canonical_dump(graph)
    for batch_size in (5000, 2):
        Projector(graph, store, batch_size=batch_size).rebuild()
        assert canonical_dump(graph) == one_by_one, batch_size
