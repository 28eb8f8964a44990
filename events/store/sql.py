"""What the SQL backends share: turning a batch into rows, and the read queries.

Deciding duplicates, stream versions, positions and the hash chain is written once here, so
SQLite and PostgreSQL decide alike; a backend supplies connections, its dialect and the
log-wide append lock (`_locked_transaction`).
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from events.canonical import GENESIS_HASH, canonical_json, chain_hash, unstorable
from events.errors import ConcurrencyConflict, IdempotencyMismatch, InvalidEvent
from events.store.port import Appended, EventFields, EventStore, NewEvent, StoredEvent, record_of

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

COLUMNS = (
    "position, event_id, stream_id, stream_version, type, schema_version, data, "
    "recorded_at, idempotency_key, prev_hash, hash"
)
# Placeholders are psycopg's `%s`; the SQLite backend swaps them for `?`.
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"

Row = tuple[Any, ...]


def schema(position_type: str) -> list[str]:
    """The DDL of the log; `data` is TEXT, not jsonb, so the bytes read back are the bytes hashed."""
    return [
        f"""CREATE TABLE IF NOT EXISTS events (
            position {position_type} PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            stream_id TEXT NOT NULL,
            stream_version INTEGER NOT NULL,
            type TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            data TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            UNIQUE (stream_id, stream_version)
        )""",
        "CREATE INDEX IF NOT EXISTS events_type_position ON events (type, position)",
    ]


class Transaction(Protocol):
    """An open transaction that holds the log's append lock."""

    def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]: ...

    def insert(self, rows: list[Row]) -> None: ...


@dataclass(frozen=True)
class Pending:
    """A submitted event, serialised before the lock is taken (the lock is held briefly)."""

    event_id: str
    idempotency_key: str | None
    stream_id: str
    event_type: str
    schema_version: int
    payload: dict[str, Any]
    data: str


@dataclass(frozen=True)
class Existing:
    """The columns of a stored row that decide whether a submitted event repeats it."""

    position: int
    event_id: str
    idempotency_key: str | None
    event_type: str
    data: str


def prepare(events: Sequence[NewEvent]) -> list[Pending]:
    pending = []
    for new in events:
        payload = new.event.payload()
        problem = unstorable(payload)
        if problem:
            raise InvalidEvent(f"{new.event_type} cannot be stored: {problem}; nothing was appended")
        try:
            data = canonical_json(payload)
        except ValueError as exc:
            raise InvalidEvent(
                f"{new.event_type} cannot be stored: {exc}; replace NaN or infinity by a "
                "finite number or null"
            ) from exc
        pending.append(
            Pending(str(new.event_id), new.idempotency_key, new.stream_id, new.event_type,
                    new.schema_version, payload, data)
        )
    return pending


def now_iso() -> str:
    """ISO-8601 UTC with microseconds: sorts as text and round-trips through every backend."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _same_content(new: Pending, event_type: str, data: str, where: str) -> None:
    if new.event_type != event_type or new.data != data:
        raise IdempotencyMismatch(
            f"idempotency key {new.idempotency_key!r} / event id {new.event_id} already names "
            f"a different {event_type} event ({where}); nothing was written: give new content "
            "a new key and a new event id"
        )


def match_duplicates(pending: Sequence[Pending], stored: Sequence[Existing]) -> list[Existing | int | None]:
    """Per submitted event: the stored row it repeats, the index of the earlier batch member
    it repeats (always a root: itself new or stored), or None when it is new."""
    by_key = {s.idempotency_key: s for s in stored if s.idempotency_key is not None}
    by_id = {s.event_id: s for s in stored}
    first_key: dict[str, int] = {}
    first_id: dict[str, int] = {}
    matches: list[Existing | int | None] = []
    for i, new in enumerate(pending):
        key = new.idempotency_key
        found = by_key.get(key) if key is not None else None
        if found is None:
            found = by_id.get(new.event_id)
        earlier = first_key.get(key) if key is not None else None
        if earlier is None:
            earlier = first_id.get(new.event_id)
        if found is not None:
            _same_content(new, found.event_type, found.data, f"stored at position {found.position}")
            matches.append(found)
        elif earlier is not None:
            _same_content(new, pending[earlier].event_type, pending[earlier].data,
                          "earlier in the same batch")
            matches.append(earlier)
        else:
            matches.append(None)
        root = i if earlier is None else earlier
        if key is not None:
            first_key.setdefault(key, root)
        first_id.setdefault(new.event_id, root)
    return matches


def check_expected(
    expected: Mapping[str, int], versions: Mapping[str, int], exempt: set[str]
) -> None:
    """Streams whose batch members are all already stored are exempt: a retried batch that
    was acknowledged before is answered with its positions, not refused."""
    for stream_id in sorted(expected):
        if stream_id in exempt:
            continue
        actual = versions.get(stream_id, 0)
        if actual != expected[stream_id]:
            raise ConcurrencyConflict(stream_id, expected[stream_id], actual)


class SQLEventStore(EventStore):
    """The port over one `events` table; subclasses give the dialect and the transactions."""

    @abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """Run one read query on a connection of its own (no append lock)."""

    @abstractmethod
    def _locked_transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction holding the log-wide append lock; committed on clean exit."""

    @abstractmethod
    def _member(self, column: str) -> str:
        """SQL testing `column` against one list parameter (made by `_list`)."""

    @abstractmethod
    def _list(self, values: Sequence[Any]) -> Any:
        """A list of values as the driver passes it to `_member`'s placeholder."""

    @abstractmethod
    def _json_field(self, name: str) -> str:
        """SQL reading the top-level field `name` (checked to be a plain identifier) of `data`."""

    def read_fields(self, positions: Sequence[int], names: Sequence[str]) -> list[EventFields]:
        if not positions:
            return []
        for name in names:
            if not _FIELD_NAME.fullmatch(name):
                raise ValueError(f"not a plain field name: {name!r}")
        picked = "".join(f", {self._json_field(name)}" for name in names)
        sql = (f"SELECT position, event_id, type, schema_version{picked} FROM events "
               f"WHERE {self._member('position')} ORDER BY position")
        return [EventFields(int(row[0]), row[1], row[2], int(row[3]), dict(zip(names, row[4:], strict=True)))
                for row in self._fetch(sql, [self._list(sorted(set(positions)))])]

    def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
    ) -> list[Appended]:
        pending = prepare(events)
        if not pending:
            return []
        with self._locked_transaction() as tx:
            rows, appended = self._plan(pending, expected_versions or {}, tx)
            if rows:
                tx.insert(rows)
        return appended

    def _plan(
        self, pending: list[Pending], expected: Mapping[str, int], tx: Transaction
    ) -> tuple[list[Row], list[Appended]]:
        """Rows to insert and the answer per event; must run under the append lock."""
        matches = match_duplicates(pending, self._stored_matching(pending, tx))
        new = [i for i, match in enumerate(matches) if match is None]
        rows: list[Row] = []
        positions: dict[int, int] = {}
        if new:
            new_streams = {pending[i].stream_id for i in new}
            exempt = {p.stream_id for p in pending} - new_streams
            versions = self._versions(new_streams | set(expected), tx)
            check_expected(expected, versions, exempt)
            rows, positions = self._rows(pending, new, versions, tx)
        return rows, [self._answer(i, pending, matches, positions) for i in range(len(pending))]

    @staticmethod
    def _answer(
        i: int, pending: list[Pending], matches: list[Existing | int | None], positions: dict[int, int]
    ) -> Appended:
        match = matches[i]
        root = match if isinstance(match, int) else i
        target = matches[root]
        if isinstance(target, Existing):
            return Appended(target.position, target.event_id, duplicate=True)
        return Appended(positions[root], pending[root].event_id, duplicate=match is not None)

    def _stored_matching(self, pending: list[Pending], tx: Transaction) -> list[Existing]:
        keys = [p.idempotency_key for p in pending if p.idempotency_key is not None]
        sql = (
            "SELECT position, event_id, idempotency_key, type, data FROM events "
            f"WHERE {self._member('event_id')}"
        )
        params = [self._list([p.event_id for p in pending])]
        if keys:
            sql += f" OR {self._member('idempotency_key')}"
            params.append(self._list(keys))
        return [Existing(*row) for row in tx.fetch(sql, params)]

    def _versions(self, streams: set[str], tx: Transaction) -> dict[str, int]:
        sql = (
            "SELECT stream_id, MAX(stream_version) FROM events "
            f"WHERE {self._member('stream_id')} GROUP BY stream_id"
        )
        return {stream: int(version) for stream, version in tx.fetch(sql, [self._list(sorted(streams))])}

    def _rows(
        self,
        pending: list[Pending],
        new: list[int],
        versions: dict[str, int],
        tx: Transaction,
    ) -> tuple[list[Row], dict[int, int]]:
        """Number the new events after the head and chain their hashes; also returns the
        position given to each new event, by its index in the batch."""
        head = tx.fetch("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1", [])
        position, prev_hash = (int(head[0][0]), str(head[0][1])) if head else (0, GENESIS_HASH)
        stream_versions = dict(versions)
        recorded_at = now_iso()
        rows: list[Row] = []
        positions: dict[int, int] = {}
        for i in new:
            p = pending[i]
            position += 1
            version = stream_versions.get(p.stream_id, 0) + 1
            stream_versions[p.stream_id] = version
            record = record_of(
                position=position, event_id=p.event_id, stream_id=p.stream_id,
                stream_version=version, event_type=p.event_type, schema_version=p.schema_version,
                data=p.payload, recorded_at=recorded_at, idempotency_key=p.idempotency_key,
            )
            digest = chain_hash(prev_hash, record)
            rows.append((position, p.event_id, p.stream_id, version, p.event_type, p.schema_version,
                         p.data, recorded_at, p.idempotency_key, prev_hash, digest))
            positions[i] = position
            prev_hash = digest
        return rows, positions

    def read_all(
        self,
        after: int = 0,
        limit: int | None = None,
        types: Sequence[str] | None = None,
    ) -> list[StoredEvent]:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        if types is not None and not types:
            return []
        sql = f"SELECT {COLUMNS} FROM events WHERE position > %s"
        params: list[Any] = [after]
        if types is not None:
            sql += f" AND {self._member('type')}"
            params.append(self._list(list(types)))
        sql += " ORDER BY position"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        return [stored_event(row) for row in self._fetch(sql, params)]

    def read_stream(self, stream_id: str) -> list[StoredEvent]:
        sql = f"SELECT {COLUMNS} FROM events WHERE stream_id = %s ORDER BY stream_version"
        return [stored_event(row) for row in self._fetch(sql, [stream_id])]

    def read_positions(self, positions: Sequence[int]) -> list[StoredEvent]:
        if not positions:
            return []
        sql = f"SELECT {COLUMNS} FROM events WHERE {self._member('position')} ORDER BY position"
        return [stored_event(row) for row in self._fetch(sql, [self._list(sorted(set(positions)))])]

    def head(self) -> int:
        return int(self._fetch("SELECT COALESCE(MAX(position), 0) FROM events", [])[0][0])

    def stream_version(self, stream_id: str) -> int:
        sql = "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = %s"
        return int(self._fetch(sql, [stream_id])[0][0])

    def iter_all(self, batch: int = 1000) -> Iterator[StoredEvent]:
        """Keyset pages from the lowest stored position (even a forged 0 or negative one), so a
        consumer may append while iterating and verification sees every row."""
        rows = self._fetch(f"SELECT {COLUMNS} FROM events ORDER BY position LIMIT %s", [batch])
        while rows:
            yield from (stored_event(row, raw=True) for row in rows)
            sql = f"SELECT {COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s"
            rows = self._fetch(sql, [rows[-1][0], batch])


def stored_event(row: Row, *, raw: bool = False) -> StoredEvent:
    """A row as a `StoredEvent`. With `raw`, data that is not JSON (a hand-edited row) comes
    back as {"__undecodable__": text}, so verification flags the row instead of crashing."""
    try:
        data = json.loads(row[6])
    except json.JSONDecodeError:
        if not raw:
            raise
        data = {"__undecodable__": row[6]}
    return StoredEvent(
        position=int(row[0]), event_id=row[1], stream_id=row[2], stream_version=int(row[3]),
        event_type=row[4], schema_version=int(row[5]), data=data, recorded_at=row[7],
        idempotency_key=row[8], prev_hash=row[9], hash=row[10],
    )
