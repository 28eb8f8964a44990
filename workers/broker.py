"""The Dramatiq broker the settings name: StubBroker (embedded), RabbitMQ or Redis."""

from __future__ import annotations

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from workers.settings import WorkerSettings


def make_broker(settings: WorkerSettings) -> Broker:
    """A fresh broker with CurrentMessage added: actors need their message id and retry count."""
    url = settings.resolved_broker_url()
    broker: Broker
    if settings.broker == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # confirm_delivery: an enqueue returns only once RabbitMQ has the message, so the
        # dispatcher never records a dispatch the broker could still lose.
        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    elif settings.broker == "redis":
        from dramatiq.brokers.redis import RedisBroker

        # Redis has no connection-bound acks: a killed worker's messages come back only when a
        # live worker's maintenance finds its heartbeat older than the timeout.
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=url, heartbeat_timeout=int(settings.redis_heartbeat_timeout_s * 1000),
            maintenance_chance=settings.redis_maintenance_chance)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(CurrentMessage())
    return broker


def describe(settings: WorkerSettings) -> str:
    """The broker's kind and address without its password, for logs and events."""
    url = settings.broker_url if settings.broker == "stub" else settings.resolved_broker_url()
    if not url:
        return settings.broker
    if "@" in url:
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return f"{settings.broker} {url}"
