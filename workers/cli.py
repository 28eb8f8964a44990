"""`knobs worker` and `knobs dispatcher`: the long-running processes of the distributed path.

The `knobs` command finds these through the `knobs.commands` entry point, so services/
never imports workers/ (an import-linter contract).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import typer

from workers.settings import BrokerKind, BrokerNotConfigured, WorkerSettings


def _settings(broker: BrokerKind | None, threads: int | None) -> WorkerSettings:
    updates: dict[str, Any] = {}
    if broker:
        updates["broker"] = broker
    if threads:
        updates["threads"] = threads
    settings = WorkerSettings().model_copy(update=updates)
    if settings.broker != "stub":
        try:
            settings.resolved_broker_url()
        except BrokerNotConfigured as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from exc
    if settings.broker == "stub":
        raise typer.BadParameter(
            "a separate worker needs a real broker: pass --broker rabbitmq (after `knobs services up "
            "--rabbitmq`) or --broker redis, or set KNOBS_WORKERS_BROKER; the embedded StubBroker "
            "runs inside `knobs experiment run` itself", param_hint="--broker")
    return settings


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def worker(
    broker: BrokerKind = typer.Option(None, help="rabbitmq or redis (default KNOBS_WORKERS_BROKER)."),
    threads: int = typer.Option(None, min=1, help="Concurrent runs (default 1: one per GPU)."),
) -> None:
    """Consume training runs from the broker until SIGINT/SIGTERM."""
    from dramatiq import Worker

    from workers.actors import declare_actors, worker_name
    from workers.broker import describe, make_broker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = _settings(broker, threads)
    dramatiq_broker = make_broker(settings)
    declare_actors(dramatiq_broker, settings)
    consumer = Worker(dramatiq_broker, worker_threads=settings.threads)
    # Prefetch 1 per thread: an unstarted run must stay in the queue for another worker.
    consumer.queue_prefetch = settings.threads
    stop = _stop_event()
    consumer.start()
    typer.echo(f"{worker_name()} consuming from {describe(settings)} with {settings.threads} thread(s)")
    stop.wait()
    consumer.stop()
    dramatiq_broker.close()


def dispatcher(
    broker: BrokerKind = typer.Option(None, help="rabbitmq or redis (default KNOBS_WORKERS_BROKER)."),
    poll_s: float = typer.Option(1.0, min=0.05, help="Seconds between looks at the log."),
) -> None:
    """Follow RunRequested events and enqueue each run once, until SIGINT/SIGTERM."""
    from events.settings import EventsSettings
    from events.store.factory import open_store
    from workers.actors import declare_actors
    from workers.broker import describe, make_broker
    from workers.dispatch import Dispatcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = _settings(broker, None)
    dramatiq_broker = make_broker(settings)
    actors = declare_actors(dramatiq_broker, settings)
    stop = _stop_event()
    with open_store(EventsSettings()) as store:
        typer.echo(f"dispatcher following the log into {describe(settings)}")
        Dispatcher(store, dramatiq_broker, actors, describe(settings)).follow(poll_s, stop.is_set)
    dramatiq_broker.close()


COMMANDS = {"worker": worker, "dispatcher": dispatcher}
"""Registered as `knobs <name>` through the `knobs.commands` entry point."""
