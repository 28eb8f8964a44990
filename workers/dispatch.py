"""The dispatcher: follows `RunRequested` events and hands each run to the broker once.

Its memory is the log itself: a run is pending while it has a `RunRequested` and neither a
`RunDispatched` nor a terminal event. It enqueues first and records `RunDispatched` after
(with a broker that confirms delivery), so a dispatcher killed in between re-enqueues that
one run when it restarts: at least once, never lost. The duplicate delivery (same message id)
does not train the run a second time: an attempt trains only under the run's claim, a
`RunStarted` appended at the stream version it read (`workers/claim.py`), so the delivery that
finds the other's live claim is deferred until that claim has ended the run (it then skips) or
its holder has gone silent past the lease (it takes over); the terminal key lets only one
attempt end it.

A broker that is down does not stop the dispatcher: the enqueue fails, the run stays pending,
and the loop tries again with a growing pause until the broker is back.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from dramatiq import Broker

from events.models.experiments import TERMINAL_TYPES, RunDispatched, RunRequested
from events.store import EventStore, NewEvent
from workers.actors import Actors
from workers.attempt import keyed, run_key

log = logging.getLogger("knobs.workers.dispatch")

FOLLOWED = [RunRequested.event_type, RunDispatched.event_type, *TERMINAL_TYPES]
PAUSE_ENV = "KNOBS_DISPATCH_PAUSE_AFTER_ENQUEUE"
"""Seconds to sleep between enqueueing a run and recording it (tests kill the dispatcher there)."""
MESSAGE_NAMESPACE = uuid.UUID("9a1c2e3f-4b5d-5c6e-8f70-1a2b3c4d5e6f")


def message_id_for(experiment: str, run_id: str) -> str:
    """Deterministic: a re-enqueued run carries the same message id as the first time."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{experiment}/{run_id}"))


@dataclass
class Dispatcher:
    store: EventStore
    broker: Broker
    actors: Actors
    broker_name: str
    experiment: str | None = None
    """Only this experiment's runs (the embedded runner); None follows every experiment."""
    redispatch_unfinished: bool = False
    """Treat dispatched-but-unended runs as pending (an in-memory broker lost their messages)."""
    position: int = 0
    pending: dict[tuple[str, str], RunRequested] = field(default_factory=dict)
    settled: set[tuple[str, str]] = field(default_factory=set)

    def catch_up(self) -> None:
        """Read what the log says happened since the last look."""
        while True:
            batch = self.store.read_all(after=self.position, limit=5000, types=FOLLOWED)
            if not batch:
                return
            for stored in batch:
                data = stored.data
                key = (str(data["experiment"]), str(data["run_id"]))
                if self.experiment is not None and key[0] != self.experiment:
                    continue
                if stored.event_type == RunRequested.event_type:
                    event = stored.decode()
                    assert isinstance(event, RunRequested)
                    if event.executor == "train" and key not in self.settled:
                        self.pending[key] = event
                elif stored.event_type == RunDispatched.event_type and self.redispatch_unfinished:
                    continue
                else:
                    self.settled.add(key)
                    self.pending.pop(key, None)
            self.position = batch[-1].position

    def dispatch_once(self) -> int:
        """Enqueue every pending run, in log order; how many were enqueued."""
        self.catch_up()
        sent = 0
        for key, request in list(self.pending.items()):
            message = self.actors.train_run.message(request.experiment, request.run_id)
            message = message.copy(message_id=message_id_for(*key))
            self.broker.enqueue(message)
            if pause := float(os.environ.get(PAUSE_ENV, "0") or 0):
                time.sleep(pause)
            record: NewEvent = keyed(
                RunDispatched(experiment=request.experiment, run_id=request.run_id,
                              broker=self.broker_name, queue=self.actors.queue,
                              message_id=message.message_id),
                run_key("dispatched", request.experiment, request.run_id),
            )
            self.store.append([record])
            self.pending.pop(key)
            self.settled.add(key)
            sent += 1
        if sent:
            log.info("dispatched %d run(s)", sent)
        return sent

    def follow(self, poll_s: float = 1.0, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Dispatch forever (until `should_stop`), polling the log, outliving broker outages."""
        pause = poll_s
        while not should_stop():
            try:
                sent = self.dispatch_once()
            except Exception as exc:  # the broker's or the store's connection errors, whichever
                pause = min(10.0, pause * 2)
                log.warning("cannot dispatch (%s: %s); the runs stay pending, trying again in %.1f s "
                            "(is the broker running?)", type(exc).__name__, exc, pause)
                time.sleep(pause)
                continue
            pause = poll_s
            if sent == 0:
                time.sleep(poll_s)
