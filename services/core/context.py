"""The connections one command or request needs: the event store and the Neo4j driver.

Opened lazily, so `knobs events` works without Neo4j and `knobs query` without the store; and
imported lazily too (the store's backends, the driver, the projector), so that importing this
module, as every `knobs` command does to be listed in `knobs --help`, loads none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from events.errors import StoreUnavailable
from events.home import knobs_home
from graph.errors import GraphUnavailable
from services.core.errors import Unavailable
from services.infra import runtime

if TYPE_CHECKING:
    from events.settings import EventsSettings
    from events.store import EventStore
    from graph.projector import Projector
    from graph.settings import Neo4jSettings

T = TypeVar("T")


def events_settings(home: Path) -> EventsSettings:
    from events.settings import EventsSettings

    settings = EventsSettings()
    if settings.backend == "sqlite" and settings.sqlite_path is None:
        # The log of the Context's own home, not of $KNOBS_HOME: `Context(other_home)` must not
        # read or append to the log the environment points at.
        settings = settings.model_copy(update={"sqlite_path": home / "events.sqlite3"})
    if settings.backend == "postgres" and not settings.postgres_url:
        state = runtime.read_state(home, "postgres")
        if state is None:
            raise Unavailable(
                "KNOBS_EVENTS_BACKEND=postgres but no PostgreSQL is configured or running: "
                "run `knobs services up --postgres` or set KNOBS_EVENTS_POSTGRES_URL"
            )
        settings = settings.model_copy(update={"postgres_url": state["url"]})
    return settings


def neo4j_settings(home: Path) -> Neo4jSettings:
    from graph.settings import Neo4jSettings

    settings = Neo4jSettings()
    if settings.uri:
        return settings
    state = runtime.read_state(home, "neo4j")
    if state is None:
        raise Unavailable(
            f"Neo4j is not running for KNOBS_HOME={home}: run `knobs services up`, "
            "or point KNOBS_NEO4J_URI (and _USER, _PASSWORD) at another Neo4j"
        )
    return settings.model_copy(
        update={"uri": state["uri"], "user": state["user"], "password": state["password"]}
    )


@dataclass
class Context:
    home: Path = field(default_factory=knobs_home)
    _store: EventStore | None = None
    _driver: Any = None
    neo4j_retry_time_s: float | None = None
    """Overrides KNOBS_NEO4J_RETRY_TIME_S for this context's driver (the API's is shorter)."""
    _attachments: dict[str, Any] = field(default_factory=dict)
    """Things kept for as long as the connections (a read model of the log): see `attachment`."""

    def store(self) -> EventStore:
        if self._store is None:
            from events.store.factory import open_store

            try:
                self._store = open_store(events_settings(self.home))
            except StoreUnavailable as exc:
                raise Unavailable(str(exc)) from exc
        return self._store

    def driver(self) -> Any:
        if self._driver is None:
            from graph.settings import driver_from

            settings = neo4j_settings(self.home)
            if self.neo4j_retry_time_s is not None:
                settings = settings.model_copy(update={"retry_time_s": self.neo4j_retry_time_s})
            self._driver = driver_from(settings)
        return self._driver

    def projector(self) -> Projector:
        from graph.projector import Projector

        # One per Context: a Projector checks the graph's constraints and indexes once, and
        # every request that catches the graph up would pay that again.
        return self.attachment("projector", lambda: Projector(self.driver(), self.store()))

    def catch_up(self) -> int:
        """Project every event not yet in the graph; returns how many were projected."""
        try:
            return self.projector().run_until(self.store().head())
        except GraphUnavailable:
            # The Neo4j that comes back may be a new one: check its schema again then.
            self._attachments.pop("projector", None)
            raise

    def attachment(self, name: str, make: Callable[[], T]) -> T:
        """The object kept under `name`, made by `make()` on first use; dropped by `close()`, since
        what it holds was read through the connections being closed."""
        if name not in self._attachments:
            self._attachments[name] = make()
        found: T = self._attachments[name]
        return found

    def close(self) -> None:
        self._attachments.clear()
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
