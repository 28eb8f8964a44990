"""Kill the projector process (SIGKILL, no goodbye) mid-transaction and at random moments:
after a restart the graph equals a rebuild from the log, nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import neo4j
import pytest

from events.models import BenchmarkScored, RunRecorded
from events.store.port import EventStore, NewEvent
from graph.dump import canonical_dump
from graph.handlers import run_node_id, score_node_id
from graph.projector import PAUSE_ENV, Projector
from tests.faults import count, faults, report
from tests.graph.logs import big_log, checkpoint, node_count

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class ProjectorProcess:
    """`python -m graph.projector` as a child process, its stderr in a file (a pipe nobody
    reads could fill up and stall it)."""

    def __init__(self, store_path: Path, env: dict[str, str], *extra: str, pause: float | None = None,
                 batch_size: int = 100) -> None:
        env = dict(env)
        if pause is not None:
            env[PAUSE_ENV] = str(pause)
        self.log = store_path.parent / f"projector-{time.monotonic_ns()}.log"
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "graph.projector", "--sqlite", str(store_path),
                 "--batch-size", str(batch_size), *extra],
                cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=err,
            )

    def stderr(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if needle in self.stderr():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"projector never logged {needle!r}; stderr:\n{self.stderr()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=30)

    def finish(self, timeout_s: float = 300) -> str:
        out, _ = self.proc.communicate(timeout=timeout_s)
        assert self.proc.returncode == 0, self.stderr()
        return out


def finish(store_path: Path, env: dict[str, str]) -> None:
    ProjectorProcess(store_path, env, batch_size=250).finish()


def expected_positions(store: EventStore) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """From the log alone: the positions each Run and Score node must list."""
    runs: dict[str, list[int]] = defaultdict(list)
    scores: dict[str, list[int]] = defaultdict(list)
    for e in store.read_all():
        if e.event_type == "RunRecorded":
            runs[run_node_id(e.data["experiment"], e.data["run_id"])].append(e.position)
        elif e.event_type == "BenchmarkScored":
            key = score_node_id(e.data["experiment"], e.data["run_id"], e.data["benchmark"])
            scores[key].append(e.position)
    return runs, scores


def assert_nothing_lost_or_doubled(driver: neo4j.Driver, store: EventStore) -> None:
    runs, scores = expected_positions(store)
    records, _, _ = driver.execute_query("MATCH (r:Run) RETURN r.id AS id, r.positions AS positions")
    # A run that only ever had scores (its RunRecorded comes later) cannot exist at the head.
    assert {r["id"]: r["positions"] for r in records} == dict(runs)
    records, _, _ = driver.execute_query("MATCH (s:Score) RETURN s.id AS id, s.positions AS positions")
    assert {r["id"]: r["positions"] for r in records} == dict(scores)
    rankings = sum(1 for e in store.read_all() if e.event_type == "RankingDerived")
    assert node_count(driver, "Ranking") == rankings
    assert checkpoint(driver) == store.head()


def test_killed_while_paused_before_commit_leaves_the_last_checkpoint(
    graph: neo4j.Driver, store: EventStore, store_path: Path, neo4j_env: dict[str, str]
) -> None:
    # Given a log, of which the first batch is already projected
    big_log(store, 400, seed=7)
    Projector(graph, store, batch_size=100)._project_batch()
    assert checkpoint(graph) == 100
    committed = canonical_dump(graph)

    # When a projector process has written the next batch and is killed before its commit
    proc = ProjectorProcess(store_path, neo4j_env, pause=120)
    proc.wait_for("paused")
    proc.kill()

    # Then the graph is exactly the committed one: the open transaction left nothing
    assert checkpoint(graph) == 100
    assert canonical_dump(graph) == committed

    # And a restarted projector finishes to the same graph as a rebuild from the log
    finish(store_path, neo4j_env)
    assert_nothing_lost_or_doubled(graph, store)
    incremental = canonical_dump(graph)
    Projector(graph, store).rebuild()
    assert canonical_dump(graph) == incremental


def more_runs(store: EventStore, round_: int, n_runs: int = 150) -> None:
    """More work for the projector when it caught up before all the kills were made: runs and
    scores of a fresh experiment, as a log keeps growing while it is projected."""
    events = []
    for j in range(n_runs):
        run_id = f"x{round_}-{j}"
        events.append(NewEvent(RunRecorded(experiment="extra", run_id=run_id, params={"lr": j % 7},
                                           seed=round_)))
        events.append(NewEvent(BenchmarkScored(experiment="extra", run_id=run_id, benchmark="bleu",
                                               value=float(j))))
    store.append(events)


def wait_for_progress(graph: neo4j.Driver, proc: ProjectorProcess, since: int, timeout_s: float = 60) -> bool:
    """Wait until the checkpoint moves past `since` (the process projects, it is not starting up);
    False when the process exited first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if checkpoint(graph) > since:
            return True
        if proc.proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise AssertionError(f"the projector made no progress past {since} in {timeout_s} s:\n{proc.stderr()}")


@faults
def test_killed_at_random_moments_while_projecting(
    graph: neo4j.Driver, store: EventStore, store_path: Path, neo4j_env: dict[str, str]
) -> None:
    """Fault row F3: a projector process SIGKILLed `kills` times at random moments."""
    # Given a log of about 5000 events
    big_log(store, 5000, seed=42)
    assert store.head() >= 5000
    rng = random.Random(20240611)
    kills = count(6, 100)

    # When projector processes are killed at random moments while they project, one after another
    # (the log grows whenever a projector has caught up, so every kill finds work in progress)
    checkpoints = [0]
    killed_mid_way = 0
    for k in range(kills):
        if checkpoints[-1] >= store.head() - 100:
            more_runs(store, k)
        # Small batches: a kill must land mid-way (a batch of 25 is one transaction of ~10 ms).
        proc = ProjectorProcess(store_path, neo4j_env, batch_size=rng.choice([5, 10, 25, 37]))
        progressing = wait_for_progress(graph, proc, checkpoints[-1])
        time.sleep(rng.uniform(0, 0.3))
        exited_alone = proc.proc.poll() is not None
        proc.kill()
        position = checkpoint(graph)
        assert position >= checkpoints[-1], "the checkpoint went backwards"
        checkpoints.append(position)
        killed_mid_way += int(progressing and not exited_alone and position < store.head())
    # and one is killed mid-transaction for good measure
    more_runs(store, kills)
    proc = ProjectorProcess(store_path, neo4j_env, pause=120)
    proc.wait_for("paused")
    proc.kill()
    assert killed_mid_way >= kills // 2 + 1, f"the kills did not land mid-projection: {checkpoints}"

    # Then a restarted projector finishes, and nothing is lost or doubled
    finish(store_path, neo4j_env)
    assert_nothing_lost_or_doubled(graph, store)
    incremental = canonical_dump(graph)

    # And the graph is byte for byte the one a rebuild from the log makes
    Projector(graph, store, batch_size=1000).rebuild()
    assert canonical_dump(graph) == incremental
    report("F3", kills=kills + 1, killed_mid_way=killed_mid_way + 1, events=store.head())


def test_projector_process_exits_cleanly_on_sigterm_when_following(
    graph: neo4j.Driver, store: EventStore, store_path: Path, neo4j_env: dict[str, str]
) -> None:
    big_log(store, 200, seed=9)
    proc = ProjectorProcess(store_path, neo4j_env, "--follow", "--poll", "0.1")
    deadline = time.monotonic() + 60
    while checkpoint(graph) < store.head() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checkpoint(graph) == store.head()
    os.kill(proc.proc.pid, signal.SIGTERM)
    assert f"checkpoint {store.head()}" in proc.finish(timeout_s=30)
