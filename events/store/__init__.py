"""The append-only store: one port, two backends (SQLite default, PostgreSQL)."""

from events.store.port import Appended, EventStore, NewEvent, StoredEvent, VerifyReport

__all__ = ["Appended", "EventStore", "NewEvent", "StoredEvent", "VerifyReport"]
