"""Real processes on a real RabbitMQ: kill a worker or the dispatcher mid-flight, lose nothing.

Each story ends the same way: every requested run ends with exactly one terminal event,
and its facts (RunRecorded, BenchmarkScored) exist exactly once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.workers.conftest import BENCHMARKS, Log, Processes, pid_alive
from tests.workers.faults import assert_each_run_ended_once_and_trained_once

pytestmark = pytest.mark.slow


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def assert_ended_once(log: Log, run_ids: list[str]) -> None:
    for run_id in run_ids:
        terminals = log.terminals(run_id)
        assert len(terminals) == 1, f"{run_id}: {len(terminals)} terminal events"
        assert terminals[0].event_type == "RunCompleted", terminals[0].data
        assert log.count("RunRecorded", run_id) == 1
        assert log.count("BenchmarkScored", run_id) == len(BENCHMARKS)


def test_a_worker_killed_mid_run_is_redelivered_and_ends_once(log: Log, processes: Processes) -> None:
    # Given a requested run that trains for a while, a dispatcher and one worker
    log.request("slow", train_tokens=300_000)
    processes.start("dispatcher")
    first = processes.start("worker")
    log.wait(lambda: log.count("RunProgressed", "slow") >= 2, 120, "the first attempt to make progress")
    trainers = children_of(first.pid)
    assert trainers, "the worker trains in a child process"

    # When the worker is SIGKILLed mid-run and another worker starts
    first.send_signal(signal.SIGKILL)
    first.wait()
    log.wait(lambda: not any(pid_alive(p) for p in trainers), 10, "the orphaned trainer to die")
    processes.start("worker")

    # Then RabbitMQ redelivers the unacknowledged message, and the run ends exactly once
    log.wait(lambda: bool(log.terminals("slow")), 240, "the redelivered run to end")
    assert log.count("RunStarted", "slow") == 2
    assert_ended_once(log, ["slow"])


def test_a_dispatcher_killed_between_enqueue_and_record_loses_nothing(
    log: Log, processes: Processes
) -> None:
    # Given three requested runs and a dispatcher that pauses after each enqueue
    runs = ["a", "b", "c"]
    for i, run_id in enumerate(runs):
        log.request(run_id, d_model=32 + 16 * i)
    paused = processes.start("dispatcher", extra_env={"KNOBS_DISPATCH_PAUSE_AFTER_ENQUEUE": "30"})

    # When it is killed after enqueueing the first run but before recording that it did
    processes.start("worker")
    log.wait(lambda: log.count("RunStarted", "a") >= 1, 60, "the first enqueued run to start")
    assert not log.events("RunDispatched")
    paused.send_signal(signal.SIGKILL)
    paused.wait()
    processes.start("dispatcher")

    # Then every run is dispatched, the re-enqueued one is not run twice to an end, and
    # each run's facts exist exactly once
    log.wait(lambda: all(log.terminals(r) for r in runs), 240, "every run to end")
    assert_ended_once(log, runs)
    assert {e.data["run_id"] for e in log.events("RunDispatched")} == set(runs)


def test_runs_also_go_through_redis(log: Log, redis_url: str) -> None:
    # Given two requested runs, a dispatcher and a worker on Redis instead of RabbitMQ
    log.request("r1")
    log.request("r2", n_layer=2)
    env = {**os.environ, "KNOBS_HOME": str(log.home), "KNOBS_WORKERS_BROKER": "redis",
           "KNOBS_WORKERS_BROKER_URL": redis_url, "KNOBS_WORKERS_QUEUE": f"q-{log.experiment}"}
    procs = Processes(env)
    try:
        procs.start("dispatcher")
        procs.start("worker")
        # Then both train and end once
        log.wait(lambda: all(log.terminals(r) for r in ("r1", "r2")), 180, "both runs to end")
    finally:
        procs.stop_all()
    assert_ended_once(log, ["r1", "r2"])
    assert {e.data["broker"].split()[0] for e in log.events("RunDispatched")} == {"redis"}


def test_a_run_enqueued_twice_in_the_dispatch_window_trains_once(log: Log, processes: Processes) -> None:
    # Given a run that trains for a while, two idle workers, and a dispatcher that pauses after
    # enqueueing it, before recording RunDispatched
    log.request("twice", train_tokens=150_000)
    processes.start("worker")
    processes.start("worker")
    paused = processes.start("dispatcher", extra_env={"KNOBS_DISPATCH_PAUSE_AFTER_ENQUEUE": "60"})
    log.wait(lambda: log.count("RunProgressed", "twice") >= 1, 120, "the first delivery to train")

    # When the dispatcher is killed in that window and a new one enqueues the run again, while
    # the other worker is idle to take the second delivery
    paused.send_signal(signal.SIGKILL)
    paused.wait()
    processes.start("dispatcher")
    log.wait(lambda: bool(log.events("RunDispatched")), 60, "the run to be dispatched again")

    # Then the second delivery finds the first attempt's live claim and does not train: one
    # claim, one ending, the run's facts once, and the artifacts of that one attempt alone
    log.wait(lambda: bool(log.terminals("twice")), 240, "the run to end")
    assert log.count("RunStarted", "twice") == 1
    assert_each_run_ended_once_and_trained_once(log, ["twice"])
