"""One error tree for the event log; every message says what to do next."""

from __future__ import annotations


class EventsError(Exception):
    """Base of every error raised by events/."""


class ConcurrencyConflict(EventsError):
    """A stream was not at the version the writer expected (optimistic concurrency)."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, not the expected {expected}: "
            "re-read the stream and retry the decision"
        )


class UnknownEventType(EventsError):
    """A stored or submitted event names a type this code does not know."""


class InvalidEvent(EventsError):
    """An event's payload does not match its schema."""


class StoreUnavailable(EventsError):
    """The store cannot be opened or reached."""


class StoreFull(StoreUnavailable):
    """The disk under the store (or its blobs) is full; nothing of the failed write was kept."""

    def __init__(self, where: str, doing: str) -> None:
        self.where = where
        super().__init__(
            f"{doing} failed: the disk under {where} is full, and nothing of this write was kept "
            "(what was acknowledged before is intact). Free space on that disk, or move KNOBS_HOME "
            "(or KNOBS_EVENTS_SQLITE_PATH) to a larger one, then retry"
        )


class IdempotencyMismatch(EventsError):
    """An idempotency key was reused for a different event."""


class ChainBroken(EventsError):
    """The hash chain does not verify; `position` is the first bad one."""

    def __init__(self, position: int, reason: str) -> None:
        self.position = position
        self.reason = reason
        super().__init__(f"hash chain broken at position {position}: {reason}")
