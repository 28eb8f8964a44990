"""Open the store the settings name: SQLite by default, PostgreSQL when asked for."""

from __future__ import annotations

from events.errors import StoreUnavailable
from events.settings import EventsSettings
from events.store.port import EventStore


def open_store(settings: EventsSettings | None = None) -> EventStore:
    settings = settings or EventsSettings()
    if settings.backend == "postgres":
        if not settings.postgres_url:
            raise StoreUnavailable(
                "KNOBS_EVENTS_BACKEND=postgres but no PostgreSQL URL is known: run "
                "`knobs services up --postgres` or set KNOBS_EVENTS_POSTGRES_URL"
            )
        # Imported here so the default SQLite path never loads psycopg.
        from events.store.postgres import PostgresEventStore

        return PostgresEventStore(settings.postgres_url)
    from events.store.sqlite import SQLiteEventStore

    path = settings.resolved_sqlite_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create {path.parent} for the event log: {exc}; set KNOBS_HOME or "
            "KNOBS_EVENTS_SQLITE_PATH to a writable place"
        ) from exc
    return SQLiteEventStore(path)
