"""Event logs for the graph tests: a small one whose graph is checked node by node, and a
generated one of any size with re-recorded runs, re-scored runs, sources, rankings and
events of a type the graph does not project."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

import neo4j

from events.models import (
    BenchmarkScored,
    ParameterRanking,
    RankingDerived,
    RunRecorded,
    SourceCited,
    UsedEvent,
    ValueEffect,
)
from events.models.base import Event
from events.models.experiments import ExperimentDeclared, RunCompleted, RunFailed
from events.store.port import EventStore, NewEvent, StoredEvent


class NoteTaken(Event):
    """A fact of another capability: the graph must skip it (deliberately not registered)."""

    event_type: ClassVar[str] = "GraphTestNoteTaken"
    note: str

    def stream_id(self) -> str:
        return "graph-test-notes"


def append(store: EventStore, *events: Event) -> list[int]:
    """Append events in one batch; their positions."""
    return [a.position for a in store.append([NewEvent(event=e) for e in events])]


def used(store: EventStore, positions: list[int]) -> list[UsedEvent]:
    return [UsedEvent(position=s.position, event_id=s.event_id) for s in store.read_positions(positions)]


def ranking(
    ranking_id: str, experiment: str, benchmark: str, evidence: list[UsedEvent], as_of: int,
    parameters: dict[str, tuple[int, float, float]] | None = None,
) -> RankingDerived:
    parameters = parameters or {"lr": (1, -0.5, 1.5), "layers": (2, -0.1, 0.2)}
    return RankingDerived(
        ranking_id=ranking_id,
        experiment=experiment,
        benchmark=benchmark,
        method="ofat",
        settings={"ci_level": 0.95, "baseline_run": None},
        baseline={"lr": 0.1, "layers": 6},
        baseline_runs=["base"],
        baseline_mean=25.0,
        code_version="test",
        as_of=as_of,
        used_events=evidence,
        parameters=[
            ParameterRanking(
                name=name, rank=rank, influence_range=(lo, hi),
                values=[ValueEffect(value=0.1, mean=25.0, effect=0.0, n=1, runs=["base"], is_baseline=True),
                        ValueEffect(value=0.2, mean=25.5, effect=0.5, n=2, ci=(0.1, 0.9), runs=["a"])],
            )
            for name, (rank, lo, hi) in parameters.items()
        ],
    )


@dataclass
class SmallLog:
    """Positions of the small log's events, by what they are."""

    source: int = 0
    run_base: int = 0
    score_base: int = 0
    run_a: int = 0
    score_a: int = 0
    note: int = 0
    run_a_again: int = 0
    score_a_again: int = 0
    ranking: int = 0
    all: list[StoredEvent] = field(default_factory=list)


def small_log(store: EventStore) -> SmallLog:
    """A source, two runs with scores, a corrected re-record of one, a note, a ranking."""
    log = SmallLog()
    [log.source] = append(
        store, SourceCited(source_id="vaswani2017", citation="Vaswani et al. 2017, Table 3")
    )
    [log.run_base, log.score_base] = append(
        store,
        RunRecorded(experiment="tfm", run_id="base", params={"lr": 0.1, "layers": 6}, seed=1,
                    source_id="vaswani2017", costs={"gpu_hours": 12.0, "tokens": 1e9}),
        BenchmarkScored(experiment="tfm", run_id="base", benchmark="bleu", value=25.8, stderr=0.1),
    )
    [log.run_a, log.score_a] = append(
        store,
        RunRecorded(experiment="tfm", run_id="a", params={"lr": 0.2, "layers": 6}, seed=1,
                    source_id="vaswani2017", costs={"gpu_hours": 13.0}),
        BenchmarkScored(experiment="tfm", run_id="a", benchmark="bleu", value=24.9, n=3000),
    )
    [log.note] = append(store, NoteTaken(note="not for the graph"))
    # A corrected import: run a had lr 0.3, not 0.2, and no source; its score changes too.
    [log.run_a_again, log.score_a_again] = append(
        store,
        RunRecorded(experiment="tfm", run_id="a", params={"lr": 0.3, "layers": 6}, seed=1,
                    costs={"gpu_hours": 14.0}, agent="knobs-train", origin="train"),
        BenchmarkScored(experiment="tfm", run_id="a", benchmark="bleu", value=24.5, n=3000),
    )
    evidence = used(store, [log.run_base, log.score_base, log.run_a_again, log.score_a_again])
    [log.ranking] = append(store, ranking("rk-1", "tfm", "bleu", evidence, as_of=log.score_a_again))
    log.all = store.read_all()
    return log


def big_log(store: EventStore, n_events: int, seed: int = 0) -> None:
    """About `n_events` events: runs and scores over 3 experiments and 2 benchmarks, with
    re-recorded runs, re-scored runs, runs citing sources cited later, scores arriving
    before their run, foreign events, and a ranking every ~250 events."""
    rng = random.Random(seed)
    pending: list[Event] = []
    positions: dict[str, int] = {}
    count = 0
    run_ids: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal pending
        if pending:
            appended = store.append([NewEvent(event=e) for e in pending])
            for event, a in zip(pending, appended, strict=True):
                if isinstance(event, RunRecorded):
                    positions[f"run:{event.experiment}/{event.run_id}"] = a.position
                elif isinstance(event, BenchmarkScored):
                    positions[f"score:{event.experiment}/{event.run_id}/{event.benchmark}"] = a.position
            pending = []

    def add(event: Event) -> None:
        nonlocal count
        pending.append(event)
        count += 1
        if len(pending) >= 50:
            flush()

    def params() -> dict[str, str | bool | int | float]:
        return {
            "lr": rng.choice([1e-4, 3e-4, 1e-3]),
            "layers": rng.choice([2, 4, 6, 8]),
            "heads": rng.choice([4, 8, 16]),
            "tied": rng.choice([True, False]),
            "format": rng.choice(["qa", "lens", "raw"]),
        }

    for e in range(3):
        add(ExperimentDeclared(name=f"exp{e}", executor="train", design="ofat", spec={"name": f"exp{e}"},
                               spec_sha256=f"{e:064d}", run_ids=[], benchmarks=["bleu", "mmlu"]))
    i = 0
    while count < n_events:
        experiment = f"exp{i % 3}"
        run_id = f"r{i}"
        i += 1
        source = f"src{rng.randrange(5)}" if rng.random() < 0.3 else None
        run = RunRecorded(experiment=experiment, run_id=run_id, params=params(), seed=rng.randrange(3),
                          source_id=source, costs={"gpu_hours": round(rng.uniform(1, 9), 3)})
        scores = [BenchmarkScored(experiment=experiment, run_id=run_id, benchmark=b,
                                  value=round(rng.uniform(0, 100), 4)) for b in ("bleu", "mmlu")]
        if rng.random() < 0.05:
            for event in [*scores, run]:  # the scores arrive first
                add(event)
        else:
            for event in [run, *scores]:
                add(event)
        run_ids.append((experiment, run_id))
        ending = rng.random()
        if ending < 0.3:
            add(RunCompleted(experiment=experiment, run_id=run_id, attempt=f"m{i}/r0", config={"i": i},
                             costs={"wall_s": 1.0}, device="cpu", artifact=f"/tmp/{run_id}"))
        elif ending < 0.35:
            add(RunFailed(experiment=experiment, run_id=run_id, attempt=f"m{i}/r1", kind="timeout",
                          reason="too slow"))
        roll = rng.random()
        if roll < 0.04:
            old_exp, old_run = rng.choice(run_ids)
            add(RunRecorded(experiment=old_exp, run_id=old_run, params=params(), seed=0,
                            source_id=rng.choice([None, "src1"]), costs={"wall_s": 10.0}))
        elif roll < 0.08:
            old_exp, old_run = rng.choice(run_ids)
            add(BenchmarkScored(experiment=old_exp, run_id=old_run, benchmark="bleu",
                                value=round(rng.uniform(0, 100), 4), stderr=0.5))
        elif roll < 0.10:
            add(NoteTaken(note=f"note {count}"))
        if i % 40 == 0:
            add(SourceCited(source_id=f"src{rng.randrange(5)}", citation=f"Paper {count}"))
        if i % 80 == 0:
            flush()
            picks = rng.sample(run_ids, min(10, len(run_ids)))
            wanted = sorted({positions[k] for exp, run in picks
                             for k in (f"run:{exp}/{run}", f"score:{exp}/{run}/bleu") if k in positions})
            add(ranking(f"rk-{i}", "exp0", "bleu", used(store, wanted), as_of=store.head(),
                        parameters={"lr": (rng.randint(1, 3), -1.0, 1.0), "heads": (2, 0.0, 0.5)}))
    flush()


def node_count(driver: neo4j.Driver, label: str) -> int:
    records, _, _ = driver.execute_query(f"MATCH (n:{label}) RETURN count(n) AS c")
    return int(records[0]["c"])


def checkpoint(driver: neo4j.Driver) -> int:
    records, _, _ = driver.execute_query("MATCH (p:Projection {id: 'main'}) RETURN p.position AS p")
    return int(records[0]["p"]) if records else 0
