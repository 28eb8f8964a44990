"""The store port: what every backend promises, checked by one shared contract test suite.

Promises:
- positions are a total order 1, 2, 3, ... that a reader never sees with a gap, even under
  concurrent writers (a writer takes the log's single append lock before choosing a
  position, so commits happen in position order);
- optimistic concurrency per stream (`expected_versions`);
- idempotency: an event whose `idempotency_key` (or `event_id`) is already stored is not
  stored again, and the append answers with the original position;
- a batch is all or nothing;
- every row carries the SHA-256 of its canonical record chained to the row before it.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from events.canonical import GENESIS_HASH, canonical_json, chain_hash
from events.errors import ChainBroken
from events.models.base import Event, decode


@dataclass(frozen=True)
class NewEvent:
    """An event on its way into the log."""

    event: Event
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    idempotency_key: str | None = None

    @property
    def stream_id(self) -> str:
        return self.event.stream_id()

    @property
    def event_type(self) -> str:
        return self.event.event_type

    @property
    def schema_version(self) -> int:
        return self.event.schema_version

    def data_json(self) -> str:
        return canonical_json(self.event.payload())


@dataclass(frozen=True)
class EventFields:
    """Some top-level fields of a stored payload (`EventStore.read_fields`): strings and numbers
    as stored, nested values as the backend returns them (use it for scalar fields only)."""

    position: int
    event_id: str
    event_type: str
    schema_version: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class StoredEvent:
    """An event as the log holds it."""

    position: int
    event_id: str
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    data: dict[str, Any]
    recorded_at: str
    idempotency_key: str | None
    prev_hash: str
    hash: str

    def record(self) -> dict[str, Any]:
        """The fields the hash covers (everything but the hashes themselves)."""
        return record_of(
            position=self.position,
            event_id=self.event_id,
            stream_id=self.stream_id,
            stream_version=self.stream_version,
            event_type=self.event_type,
            schema_version=self.schema_version,
            data=self.data,
            recorded_at=self.recorded_at,
            idempotency_key=self.idempotency_key,
        )

    def decode(self) -> Event:
        """The current model of this event, upcast from its stored version."""
        return decode(self.event_type, self.schema_version, self.data)

    def public(self) -> dict[str, Any]:
        """A JSON-able view for the CLI and the API."""
        return {
            "position": self.position,
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "type": self.event_type,
            "schema_version": self.schema_version,
            "data": self.data,
            "recorded_at": self.recorded_at,
            "idempotency_key": self.idempotency_key,
            "hash": self.hash,
        }


def record_of(
    *,
    position: int,
    event_id: str,
    stream_id: str,
    stream_version: int,
    event_type: str,
    schema_version: int,
    data: dict[str, Any],
    recorded_at: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    return {
        "position": position,
        "event_id": event_id,
        "stream_id": stream_id,
        "stream_version": stream_version,
        "type": event_type,
        "schema_version": schema_version,
        "data": data,
        "recorded_at": recorded_at,
        "idempotency_key": idempotency_key,
    }


@dataclass(frozen=True)
class Appended:
    """Where one submitted event lives; `duplicate` when it was already stored."""

    position: int
    event_id: str
    duplicate: bool


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of walking the hash chain."""

    checked: int
    head_hash: str
    first_bad_position: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_position is None


def verify_chain(rows: Iterator[StoredEvent]) -> VerifyReport:
    """Walk stored rows in position order; name the first one that breaks the chain.

    Catches edits (hash mismatch), deletions and insertions (positions not 1, 2, 3, ...;
    a prev_hash that is not the previous row's hash) and reorderings (both).
    """
    expected_position = 1
    prev = GENESIS_HASH
    checked = 0
    for row in rows:
        if row.position != expected_position:
            return VerifyReport(
                checked, prev, expected_position,
                f"expected position {expected_position}, found {row.position} "
                "(a row was deleted, inserted or renumbered)",
            )
        if row.prev_hash != prev:
            return VerifyReport(
                checked, prev, row.position,
                "prev_hash does not match the previous row's hash "
                "(a row was deleted, inserted or moved)",
            )
        if chain_hash(prev, row.record()) != row.hash:
            return VerifyReport(
                checked, prev, row.position,
                "stored hash does not match the row's content (the row was edited)",
            )
        prev = row.hash
        checked += 1
        expected_position += 1
    return VerifyReport(checked, prev)


class EventStore(ABC):
    """The port.

    Backends: `events.store.sqlite.SQLiteEventStore`, `events.store.postgres.PostgresEventStore`.
    """

    @abstractmethod
    def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
    ) -> list[Appended]:
        """Append a batch atomically; one `Appended` per input, in input order.

        `expected_versions[stream]` is the version (number of events) the stream must be at
        before this batch; 0 means the stream must not exist yet. A mismatch raises
        `ConcurrencyConflict` and nothing is written. Events whose idempotency key or event
        id is already stored answer with their original position (`duplicate=True`); reusing
        a key for different content raises `IdempotencyMismatch`.
        """

    @abstractmethod
    def read_all(
        self,
        after: int = 0,
        limit: int | None = None,
        types: Sequence[str] | None = None,
    ) -> list[StoredEvent]:
        """Events with position > `after`, in position order, optionally of some types only."""

    @abstractmethod
    def read_stream(self, stream_id: str) -> list[StoredEvent]:
        """One stream's events in order."""

    @abstractmethod
    def read_positions(self, positions: Sequence[int]) -> list[StoredEvent]:
        """The events at these positions, in position order (missing ones are left out)."""

    def read_fields(self, positions: Sequence[int], names: Sequence[str]) -> list[EventFields]:
        """Some top-level fields of the payloads at these positions, in position order (missing
        positions left out), without handing back whole payloads: projecting a ranking needs
        three string fields of each of its 20,000 (or 200,000) cited events. Backends override
        this to pick the fields in SQL; this default reads whole events."""
        return [EventFields(s.position, s.event_id, s.event_type, s.schema_version,
                            {name: s.data.get(name) for name in names})
                for s in self.read_positions(positions)]

    @abstractmethod
    def head(self) -> int:
        """The highest position (0 for an empty log)."""

    @abstractmethod
    def stream_version(self, stream_id: str) -> int:
        """Number of events in the stream (0 if none)."""

    @abstractmethod
    def iter_all(self, batch: int = 1000) -> Iterator[StoredEvent]:
        """Every stored row in position order, raw (as stored, for verification)."""

    def verify(self) -> VerifyReport:
        """Recompute the hash chain over every stored row."""
        return verify_chain(self.iter_all())

    def verify_or_raise(self) -> VerifyReport:
        report = self.verify()
        if not report.ok:
            assert report.first_bad_position is not None and report.reason is not None
            raise ChainBroken(report.first_bad_position, report.reason)
        return report

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
