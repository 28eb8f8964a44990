"""The append-only store: one port, two backends (SQLite default, PostgreSQL)."""

from events.store.port import Appended, EventFields, EventStore, NewEvent, StoredEvent, VerifyReport

__all__ = ["Appended", "EventFields", "EventStore", "NewEvent", "StoredEvent", "VerifyReport"]
