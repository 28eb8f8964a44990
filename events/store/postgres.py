"""The PostgreSQL backend (psycopg 3 and a connection pool), for several hosts sharing one log.

`LOCK TABLE events IN EXCLUSIVE MODE` is the log-wide append lock: it queues writers but not
plain readers, and since a transaction becomes visible before its locks are released, commits
appear in position order and a reader tailing `position > last` never skips a row. (A
sequence would not do: a later position could commit before an earlier one.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from events.errors import StoreUnavailable
from events.store.sql import COLUMNS, Row, SQLEventStore, schema

# Serialises concurrent `CREATE TABLE IF NOT EXISTS` (which can otherwise fail on a race).
_SCHEMA_LOCK_KEY = 0x6B6E6F6273  # "knobs"
LOCK_TIMEOUT = "30s"


class _PostgresTransaction:
    def __init__(self, cur: psycopg.Cursor[Row]) -> None:
        self._cur = cur

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return self._cur.execute(sql, params).fetchall()

    def insert(self, rows: list[Row]) -> None:
        # COPY: one round trip for the whole batch, several times faster than executemany.
        with self._cur.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _where(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unparsable URL)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _configure(conn: psycopg.Connection[Any]) -> None:
    # A writer stuck behind a lock fails with a message instead of hanging forever.
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")


class PostgresEventStore(SQLEventStore):
    """A pool of autocommit connections; appends open an explicit transaction."""

    def __init__(self, url: str, *, max_connections: int = 8, timeout_s: float = 10.0) -> None:
        self.where = _where(url)
        with self._guard("opening"):
            # A direct connection first: its error says why (auth, host, database) where
            # the pool would only time out.
            with psycopg.connect(url, connect_timeout=max(1, int(timeout_s)), autocommit=True) as conn:
                self._create_schema(conn)
            self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
                url, min_size=1, max_size=max_connections, timeout=timeout_s, open=True,
                kwargs={"autocommit": True}, configure=_configure, name="knobs-events",
            )

    @staticmethod
    def _create_schema(conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK_KEY])
            for statement in schema("BIGINT"):
                conn.execute(statement)

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"{doing} the event log in PostgreSQL at {self.where} failed: {exc}. Run "
                "`knobs services up --postgres`, or set KNOBS_EVENTS_POSTGRES_URL to a reachable "
                "database this user may create tables in"
            ) from exc

    @contextmanager
    def _locked_transaction(self) -> Iterator[_PostgresTransaction]:
        with (
            self._guard("appending to"),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            cur.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            yield _PostgresTransaction(cur)

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        with self._guard("reading"), self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _member(self, column: str) -> str:
        return f"{column} = ANY(%s)"

    def _list(self, values: Sequence[Any]) -> Any:
        return list(values)

    def _json_field(self, name: str) -> str:
        return f"(data::jsonb) ->> '{name}'"

    def close(self) -> None:
        self._pool.close()
