"""The embedded default: dispatcher and worker in this process, on Dramatiq's StubBroker.

Nothing else has to run: `knobs experiment run` and `make demo` use it. The stub's queue
lives in memory, so a run that was dispatched by an earlier process but never ended is
dispatched again here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dramatiq import Worker

from events.models.shift import DatasetShiftMeasured, ShiftRequested
from events.settings import EventsSettings
from events.store import EventStore
from events.store.factory import open_store
from workers import measurement
from workers.actors import declare_actors
from workers.attempt import Outcome
from workers.broker import make_broker
from workers.dispatch import Dispatcher
from workers.measurement import Progress
from workers.settings import WorkerSettings

log = logging.getLogger("knobs.workers.embedded")


def run_embedded(experiment: str, *, threads: int = 1,
                 on_outcome: Callable[[str, str, Outcome], None] | None = None) -> int:
    """Train every unfinished requested run of `experiment`; returns how many were dispatched."""
    settings = WorkerSettings(broker="stub", threads=threads)
    broker = make_broker(settings)
    actors = declare_actors(broker, settings, on_outcome=on_outcome)
    worker = Worker(broker, worker_threads=threads)
    worker.queue_prefetch = 1
    worker.start()
    store = open_store(EventsSettings())
    try:
        dispatcher = Dispatcher(store, broker, actors, "stub", experiment=experiment,
                                redispatch_unfinished=True)
        sent = dispatcher.dispatch_once()
        broker.join(actors.queue)
        worker.join()
        return sent
    finally:
        worker.stop()
        broker.close()
        store.close()


def measure_shift(request: ShiftRequested, *, progress: Progress | None = None,
                  store: EventStore | None = None) -> DatasetShiftMeasured:
    """Measure in this process: check the model and data (raising ShiftInputRejected before
    anything is logged), then append the request, each chunk missing from its stream, and
    the data-set figures. The figures come back; every event is in the log."""
    prepared = measurement.prepare(request)
    own = store is None
    log_store = store or open_store(EventsSettings())
    try:
        return measurement.run(log_store, prepared, progress)
    finally:
        if own:
            log_store.close()
