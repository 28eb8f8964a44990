"""Fault-matrix rows W1 (RabbitMQ) and W2 (Redis): workers and dispatchers SIGKILLed at random.

Several workers and two dispatchers run as real processes over many short runs; a killer
SIGKILLs one of them at a random moment, restarts it, and goes on until it has killed N times
(`make test`: 6 per broker, `make soak`: 100), requesting a new run with every second kill so
that there is always work to be cut short. Then every requested run has ended exactly once and was
trained once in effect (`assert_each_run_ended_once_and_trained_once` says what that means).
"""

from __future__ import annotations

import random
import time

import pytest

from tests.faults import count, faults
from tests.workers.conftest import Log, Processes
from tests.workers.faults import Fleet, assert_each_run_ended_once_and_trained_once, broker_env

pytestmark = [pytest.mark.slow, faults, pytest.mark.timeout(3600)]

NAMES = ["worker1", "worker2", "dispatcher1", "dispatcher2"]


@pytest.mark.parametrize("broker", ["rabbitmq", "redis"], ids=["W1-rabbitmq", "W2-redis"])
def test_random_kills_of_workers_and_dispatchers_end_every_run_once(
    log: Log, broker: str, request: pytest.FixtureRequest
) -> None:
    kills = count(6, 100)
    rng = random.Random(f"{broker}-{kills}")
    url = str(request.getfixturevalue(f"{broker}_url"))
    # Dispatchers pause 1 s after each enqueue, so kills often land between the enqueue and its
    # RunDispatched: the window in which a restarted dispatcher enqueues the run again.
    procs = Processes(broker_env(log, broker, url, KNOBS_DISPATCH_PAUSE_AFTER_ENQUEUE="1"))
    fleet = Fleet(procs)
    runs = [f"r{i}" for i in range(3)]
    started = time.monotonic()
    try:
        # Given three short runs, two workers and two dispatchers (each enqueues every pending run)
        for i, run_id in enumerate(runs):
            log.request(run_id, d_model=32 + 8 * (i % 3))
        for name in NAMES:
            fleet.start(name)

        # When one of them is SIGKILLed at a random moment and restarted, `kills` times, a new
        # run requested with every second kill
        for k in range(kills):
            time.sleep(rng.uniform(0.5, 3.0))
            fleet.restart(rng.choice(NAMES))
            if k % 2:
                runs.append(f"r{len(runs)}")
                log.request(runs[-1], d_model=32 + 8 * (k % 3))

        # Then every run ends, exactly once, trained once in effect
        log.wait(lambda: all(log.terminals(r) for r in runs), 120 + 20 * len(runs), "every run to end")
    finally:
        procs.stop_all()
    assert_each_run_ended_once_and_trained_once(log, runs)
    assert sum(fleet.kills.values()) == kills
    starts = len(log.events("RunStarted"))
    print(f"\n{broker}: {kills} kills ({dict(fleet.kills)}), {len(runs)} runs, {starts} claims "
          f"({starts - len(runs)} taken over), {len(log.events('RunDispatched'))} RunDispatched, "
          f"{time.monotonic() - started:.0f} s")
