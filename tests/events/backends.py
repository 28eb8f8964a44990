"""The backends the shared suites run on, as picklable specs: writer processes open their own store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from events.models import SourceCited
from events.store import EventStore, NewEvent
from events.store.postgres import PostgresEventStore
from events.store.sqlite import SQLiteEventStore


@dataclass(frozen=True)
class Backend:
    name: str
    """"sqlite" or "postgres"."""
    target: str
    """The SQLite file, or a libpq conninfo."""

    def open(self) -> EventStore:
        if self.name == "sqlite":
            return SQLiteEventStore(Path(self.target))
        return PostgresEventStore(self.target)

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Raw SQL behind the store's back (`%s` placeholders), to inspect or tamper with rows."""
        if self.name == "sqlite":
            with closing(sqlite3.connect(self.target)) as conn:
                rows = conn.execute(statement.replace("%s", "?"), params).fetchall()
                conn.commit()
                return rows
        with psycopg.connect(self.target, autocommit=True) as pg, pg.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []


def cited(source_id: str, citation: str = "a citation", key: str | None = None) -> NewEvent:
    return NewEvent(SourceCited(source_id=source_id, citation=citation), idempotency_key=key)
