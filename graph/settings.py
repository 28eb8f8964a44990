"""Settings of the graph side (prefix KNOBS_NEO4J_) and the one place a driver is made."""

from __future__ import annotations

import neo4j
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph.errors import GraphUnavailable


class Neo4jSettings(BaseSettings):
    """Where Neo4j is. `uri=None` means "the Neo4j that `knobs services up` started".

    Resolving that default needs $KNOBS_HOME's runtime state, which services/ owns; graph/
    only refuses to guess (see `driver_from`).
    """

    model_config = SettingsConfigDict(env_prefix="KNOBS_NEO4J_")

    uri: str | None = None
    user: str = "neo4j"
    # A plain str (kept out of repr) so services can fill it from the runtime state file.
    password: str | None = Field(default=None, repr=False)
    database: str = "neo4j"
    connection_timeout_s: float = Field(default=10.0, gt=0)
    retry_time_s: float = Field(default=30.0, ge=0)
    """How long a transaction is retried while Neo4j is unreachable or busy (driver default)."""


def driver_from(settings: Neo4jSettings) -> neo4j.Driver:
    """A driver for `settings`; raises GraphUnavailable when no URI or password is known.

    The driver connects lazily: the first query reports an unreachable server.
    """
    if not settings.uri:
        raise GraphUnavailable(
            "no Neo4j configured: set KNOBS_NEO4J_URI (and KNOBS_NEO4J_PASSWORD), "
            "or run `knobs services up` to start one"
        )
    if settings.password is None:
        raise GraphUnavailable(
            f"no password for Neo4j at {settings.uri}: set KNOBS_NEO4J_PASSWORD"
        )
    try:
        return neo4j.GraphDatabase.driver(
            settings.uri,
            auth=(settings.user, settings.password),
            connection_timeout=settings.connection_timeout_s,
            max_transaction_retry_time=settings.retry_time_s,
            # "No such property/label" is expected on a sparse or empty graph (a run
            # without a seed, a database before its first import): not worth a warning.
            notifications_disabled_classifications=[neo4j.NotificationDisabledClassification.UNRECOGNIZED],
        )
    except (ValueError, neo4j.exceptions.ConfigurationError) as exc:
        raise GraphUnavailable(
            f"KNOBS_NEO4J_URI={settings.uri!r} is not a Neo4j URI ({exc}): "
            "write it like bolt://127.0.0.1:7687 or neo4j://host:7687"
        ) from exc
