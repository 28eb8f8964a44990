"""Fault-matrix row W3: the broker stopped and restarted mid-work (RabbitMQ and Redis).

The test starts a private broker (not the session's shared one), runs workers and a dispatcher
on it, and stops the broker while runs train, `count(1, 5)` times. While it is down the runs
that were training go on appending to the log, and a run requested meanwhile waits; once it is
back (on the same port: `start_rabbitmq`/`start_redis` keep a restarted server's address) the
workers' consumers and the dispatcher's loop reconnect by themselves, and every run ends once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.infra.rabbitmq import start_rabbitmq, stop_rabbitmq
from services.infra.redis import start_redis, stop_redis
from tests.conftest import server_home
from tests.faults import count, faults
from tests.workers.conftest import Log, Processes
from tests.workers.faults import Fleet, assert_each_run_ended_once_and_trained_once, broker_env

pytestmark = [pytest.mark.slow, faults, pytest.mark.timeout(3600)]

SERVERS: dict[str, tuple[Callable[[Path], dict[str, Any]], Callable[[Path], bool]]] = {
    "rabbitmq": (start_rabbitmq, stop_rabbitmq),
    "redis": (start_redis, stop_redis),
}


@pytest.mark.parametrize("broker", ["rabbitmq", "redis"], ids=["W3-rabbitmq", "W3-redis"])
def test_a_broker_stopped_and_restarted_mid_work_loses_no_run(log: Log, broker: str) -> None:
    restarts = count(1, 5)
    start, stop = SERVERS[broker]
    with server_home() as home:
        url = str(start(home)["url"])
        procs = Processes(broker_env(log, broker, url))
        fleet = Fleet(procs)
        runs: list[str] = []
        during = 0
        started = time.monotonic()
        try:
            # Given runs that train for a while, two workers and a dispatcher on a private broker
            for name in ("worker1", "worker2", "dispatcher1"):
                fleet.start(name)
            for i in range(restarts):
                runs += [f"r{i}a", f"r{i}b"]
                log.request(runs[-2], train_tokens=100_000)
                log.request(runs[-1], train_tokens=100_000, d_model=40)

                # When the broker stops while a run trains
                pair = runs[-2:]
                log.wait(lambda pair=pair: any(log.count("RunProgressed", r) >= 2 for r in pair), 180,
                         "a run to train")
                head = log.store.head()
                stop(home)

                # Then the log still takes appends: a request lands, and the training attempts go
                # on appending (how much of their training is left when the broker has stopped is
                # the machine's timing, so only the request is required)
                runs.append(f"r{i}-during")
                log.request(runs[-1])
                log.wait(lambda h=head: log.store.head() > h, 60, "appends while the broker is down")
                time.sleep(3)
                during += log.store.head() - head

                # And once the broker is back, at the same address, the processes reconnect
                assert str(start(home)["url"]) == url
            log.wait(lambda: all(log.terminals(r) for r in runs), 240 + 60 * len(runs), "every run to end")
            died = [name for name, proc in fleet.running.items() if proc.poll() is not None]
            assert not died, f"{died} exited: a broker outage must not end a worker or dispatcher"
        finally:
            procs.stop_all()
            stop(home)
    assert_each_run_ended_once_and_trained_once(log, runs)
    starts = len(log.events("RunStarted"))
    print(f"\n{broker}: {restarts} restarts, {len(runs)} runs, {starts} claims ({starts - len(runs)} taken "
          f"over), {during} events appended while it was down, {time.monotonic() - started:.0f} s")
