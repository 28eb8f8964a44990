"""Dramatiq actors. Each is declared on the broker it is given, with explicit limits.

Dramatiq's defaults (20 retries, a 10-minute limit) are wrong for training, so every actor
sets `queue_name`, `time_limit` and `max_retries`. A failed run is not retried — the
failure is a result (`RunFailed`); only infrastructure errors are. A delivery of a run that
another attempt is training (its claim is live, `workers/claim.py`) is deferred, not retried:
the actor puts the message back with a delay and returns, so deferrals spend no retries.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
from dramatiq import Actor, Broker
from dramatiq.middleware import CurrentMessage

from events.models.distillation import DistillationBatchFailed, LLMUnavailable
from events.settings import EventsSettings, knobs_home
from events.store import EventStore
from events.store.factory import open_store
from workers.attempt import Attempt, Outcome, RetryableError
from workers.claim import ClaimHeld
from workers.distillation import Job, Progress, keyed, run_batch
from workers.jobs.distill import ClientSettings, ResponseCache
from workers.jobs.distill_checks import Embedder
from workers.settings import LLMSettings, WorkerSettings

log = logging.getLogger("knobs.workers.actors")

GRACE_S = 300
"""The broker's own time limit is a backstop past ours: evaluation and saving come after training."""


def worker_name() -> str:
    return f"knobs-worker@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Actors:
    train_run: Actor[[str, str], None]
    distill_batch: Actor[[str, int, str], None]

    @property
    def queue(self) -> str:
        return self.train_run.queue_name


def declare_actors(broker: Broker, settings: WorkerSettings,
                   store_factory: Callable[[], EventStore] | None = None,
                   on_outcome: Callable[[str, str, Outcome], None] | None = None,
                   on_distill_progress: Progress | None = None) -> Actors:
    """Declare the actors on `broker`; `store_factory` opens the event log for each message."""
    open_log = store_factory or (lambda: open_store(EventsSettings()))

    def train_run(experiment: str, run_id: str) -> None:
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message else 0
        # Unique per delivery: a redelivery after a killed worker keeps the message id.
        attempt = f"{message.message_id if message else 'direct'}/r{retries}/{uuid.uuid4().hex[:8]}"
        store = open_log()
        try:
            job = Attempt(store, experiment=experiment, run_id=run_id, attempt=attempt,
                          worker=worker_name(), artifacts=settings.resolved_artifacts_dir(),
                          time_limit_s=settings.train_time_limit_s,
                          progress_every_s=settings.progress_every_s, lease_s=settings.lease_s)
            try:
                outcome = job.run()
            except ClaimHeld as exc:
                if message is None:
                    raise
                # Back in the queue once the holder's lease could have run out: by then it has
                # ended the run (this delivery skips), renewed (defer again) or died (take over).
                broker.enqueue(message, delay=max(1000, int(exc.retry_in_s * 1000)))
                outcome = Outcome("deferred", str(exc))
            except RetryableError as exc:
                if retries < settings.max_retries:
                    raise
                log.error("giving up on %s/%s after %d retries: %s", experiment, run_id, retries, exc)
                outcome = job.fail("gave_up", f"infrastructure error after {retries} retries: {exc}")
            log.info("%s/%s %s: %s", experiment, run_id, outcome.status, outcome.detail)
            if on_outcome is not None:
                on_outcome(experiment, run_id, outcome)
        finally:
            store.close()

    actor: Actor[[str, str], None] = dramatiq.actor(
        broker=broker,
        actor_name="train_run",
        queue_name=settings.queue,
        time_limit=(settings.train_time_limit_s + GRACE_S) * 1000,
        max_retries=settings.max_retries,
        min_backoff=1_000,
        max_backoff=30_000,
    )(train_run)
    return Actors(train_run=actor, distill_batch=declare_distill(broker, settings, open_log,
                                                                 on_distill_progress))


def distill_job(settings: WorkerSettings, progress: Progress | None = None) -> Job:
    llm = LLMSettings()
    home = knobs_home()
    return Job(api_key_for=llm.api_key_for, cache=ResponseCache(home / "cache" / "llm"),
               client=ClientSettings(concurrency=llm.concurrency, timeout_s=llm.timeout_s,
                                     max_retries=llm.max_retries),
               embedder_factory=lambda: Embedder(cache_root=home / "cache"), progress=progress)


def declare_distill(broker: Broker, settings: WorkerSettings, open_log: Callable[[], EventStore],
                    progress: Progress | None) -> Actor[[str, int, str], None]:
    """One message per batch of pairs. A redelivered batch resumes (its keys refuse copies); a
    batch that gives up on the server records DistillationBatchFailed, so whoever waits hears."""
    job = distill_job(settings, progress)

    def distill_batch(distillation: str, batch: int, base_url: str = "") -> None:
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message else 0
        store = open_log()
        try:
            try:
                run_batch(store, distillation, batch, job, base_url)
            except LLMUnavailable as exc:
                if retries < settings.max_retries and settings.broker != "stub":
                    raise
                attempt = f"{message.message_id if message else 'direct'}/r{retries}"
                store.append([keyed(DistillationBatchFailed(
                    distillation_id=distillation, batch=batch, reason=str(exc), worker=worker_name()),
                    f"distill-batch-failed:{distillation}:{batch}:{attempt}")])
                log.error("distillation %s batch %d gave up: %s", distillation, batch, exc)
                if settings.broker == "stub":
                    raise
        finally:
            store.close()

    return dramatiq.actor(
        broker=broker, actor_name="distill_batch", queue_name=settings.distill_queue,
        time_limit=(settings.distill_time_limit_s + GRACE_S) * 1000,
        max_retries=0 if settings.broker == "stub" else settings.max_retries,
        min_backoff=2_000, max_backoff=60_000,
    )(distill_batch)
