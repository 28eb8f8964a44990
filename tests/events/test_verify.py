"""Tampering behind the store's back (raw SQL) is caught, and the first bad position is named."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from events.canonical import canonical_json, chain_hash
from events.errors import ChainBroken
from events.store import EventStore
from events.store.port import record_of
from events.store.sql import now_iso
from tests.events.backends import Backend, cited

ROWS = 6


@pytest.fixture
def filled(backend: Backend, store: EventStore) -> Backend:
    """A log of six rows across three streams, intact."""
    store.append([cited("a"), cited("b"), cited("a", citation="second")])
    store.append([cited("c"), cited("b", citation="second"), cited("c", citation="second")])
    assert store.verify().ok
    return backend


def forged_row(position: int, prev_hash: str, *, honest_hash: bool) -> tuple[object, ...]:
    """A row a forger could write; with `honest_hash` its own hash is computed correctly."""
    data = {"citation": "forged", "source_id": "forged"}
    fields: dict[str, Any] = {
        "position": position, "event_id": str(uuid.uuid4()), "stream_id": "source:forged",
        "stream_version": 1, "event_type": "SourceCited", "schema_version": 1,
        "recorded_at": now_iso(), "idempotency_key": None,
    }
    digest = chain_hash(prev_hash, record_of(data=data, **fields)) if honest_hash else "f" * 64
    return (*fields.values(), canonical_json(data), prev_hash, digest)


INSERT = (
    "INSERT INTO events (position, event_id, stream_id, stream_version, type, schema_version, "
    "recorded_at, idempotency_key, data, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def first_bad(store: EventStore) -> int | None:
    report = store.verify()
    assert report.ok is (report.first_bad_position is None)
    return report.first_bad_position


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("data", '{"citation":"rewritten","source_id":"a"}'),
        ("data", "not json at all"),
        ("type", "RunRecorded"),
        ("recorded_at", "2020-01-01T00:00:00.000000Z"),
        ("idempotency_key", "slipped-in"),
        ("event_id", "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_an_edited_row_is_named(filled: Backend, store: EventStore, column: str, value: str) -> None:
    filled.sql(f"UPDATE events SET {column} = %s WHERE position = 3", [value])
    assert first_bad(store) == 3
    with pytest.raises(ChainBroken) as caught:
        store.verify_or_raise()
    assert caught.value.position == 3


def test_a_deleted_row_is_named(filled: Backend, store: EventStore) -> None:
    filled.sql("DELETE FROM events WHERE position = 3")
    report = store.verify()
    assert (report.first_bad_position, report.checked) == (3, 2)


def test_a_deleted_first_row_is_named(filled: Backend, store: EventStore) -> None:
    filled.sql("DELETE FROM events WHERE position = 1")
    assert first_bad(store) == 1


def test_a_forged_row_appended_with_a_made_up_hash_is_named(filled: Backend, store: EventStore) -> None:
    [(head_hash,)] = filled.sql("SELECT hash FROM events WHERE position = %s", [ROWS])
    filled.sql(INSERT, forged_row(ROWS + 1, head_hash, honest_hash=False))
    assert first_bad(store) == ROWS + 1


def test_a_forged_row_slipped_into_the_middle_is_caught_at_the_row_after_it(
    filled: Backend, store: EventStore
) -> None:
    # Given a forger who renumbers rows 3..6 to 4..7 and writes a row at 3 whose own hash is
    # correct and chained to row 2
    filled.sql("UPDATE events SET position = -(position + 1) WHERE position >= 3")
    filled.sql("UPDATE events SET position = -position WHERE position < 0")
    [(hash_2,)] = filled.sql("SELECT hash FROM events WHERE position = 2")
    filled.sql(INSERT, forged_row(3, hash_2, honest_hash=True))
    # Then the forged row itself verifies, but the row after it no longer does
    assert first_bad(store) == 4


def test_a_forged_row_before_the_first_is_named(filled: Backend, store: EventStore) -> None:
    filled.sql(INSERT, forged_row(0, "0" * 64, honest_hash=True))
    assert first_bad(store) == 1


def test_two_swapped_rows_are_caught_at_the_first(filled: Backend, store: EventStore) -> None:
    filled.sql("UPDATE events SET position = -1 WHERE position = 2")
    filled.sql("UPDATE events SET position = 2 WHERE position = 5")
    filled.sql("UPDATE events SET position = 5 WHERE position = -1")
    assert first_bad(store) == 2


def test_a_truncated_tail_changes_the_head_hash(filled: Backend, store: EventStore) -> None:
    # A chain cannot see its own tail cut off; the head hash, kept elsewhere, can.
    before = store.verify().head_hash
    filled.sql("DELETE FROM events WHERE position = %s", [ROWS])
    after = store.verify()
    assert after.ok and after.checked == ROWS - 1 and after.head_hash != before
