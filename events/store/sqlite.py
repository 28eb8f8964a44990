"""The default backend: one SQLite file in WAL mode, shared safely by threads and processes.

`BEGIN IMMEDIATE` is the log-wide append lock: writers of every process queue on it (up to
the busy timeout) and so commit in position order, which keeps the log gapless for readers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from events.errors import StoreFull, StoreUnavailable
from events.store.sql import INSERT, Row, SQLEventStore, schema

BUSY_TIMEOUT_S = 30.0


def _sqlite(sql: str) -> str:
    return sql.replace("%s", "?")


class _SQLiteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return self._conn.execute(_sqlite(sql), params).fetchall()

    def insert(self, rows: list[Row]) -> None:
        self._conn.executemany(_SQLITE_INSERT, rows)


_SQLITE_INSERT = _sqlite(INSERT)


class SQLiteEventStore(SQLEventStore):
    """One connection per store object, guarded by a lock so threads may share the store."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            if _disk_full(exc):
                raise StoreFull(str(self.path.parent), f"opening the event log {self.path}") from exc
            raise StoreUnavailable(
                f"cannot open the event log {self.path}: {exc}; check that its directory exists "
                "and is writable, or point KNOBS_EVENTS_SQLITE_PATH elsewhere"
            ) from exc
        with self._guard("opening") as conn:
            _enable_wal(conn)
            # FULL: an acknowledged append survives a power cut, not only a process crash;
            # in WAL mode that costs one fsync per batch.
            conn.execute("PRAGMA synchronous = FULL")
            for statement in schema("INTEGER"):  # INTEGER PRIMARY KEY: the rowid, no extra index
                conn.execute(statement)

    @contextmanager
    def _guard(self, doing: str) -> Iterator[sqlite3.Connection]:
        """Serialise this object's connection across threads; translate driver errors."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                if _disk_full(exc):
                    raise StoreFull(str(self.path.parent), f"{doing} the event log {self.path}") from exc
                raise StoreUnavailable(
                    f"{doing} the event log {self.path} failed: {exc}. If it is locked, another "
                    f"process held it for over {BUSY_TIMEOUT_S:.0f} s; otherwise check the disk "
                    "and the file's permissions, then `knobs log verify`"
                ) from exc

    @contextmanager
    def _locked_transaction(self) -> Iterator[_SQLiteTransaction]:
        with self._guard("appending to") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTransaction(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        with self._guard("reading") as conn:
            return conn.execute(_sqlite(sql), params).fetchall()

    def _member(self, column: str) -> str:
        # One JSON parameter instead of N placeholders: no limit on the list's length.
        return f"{column} IN (SELECT value FROM json_each(%s))"

    def _list(self, values: Sequence[Any]) -> Any:
        return json.dumps(list(values))

    def _json_field(self, name: str) -> str:
        return f"json_extract(data, '$.{name}')"

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _disk_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL; an I/O error on a WAL or journal write to a full disk says less, hence the text."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the log to WAL, which then persists in the file, so only its first openers switch.

    When several connections open a new log at once, SQLite refuses all but one switch with
    "database is locked" at once, without waiting on the busy timeout (measured: 3 of 200
    trials of 8 threads); so a refused switch is retried until the timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
