"""Fault row F6: the disk under KNOBS_HOME fills up (a real 4 MiB tmpfs).

Appends then fail with StoreFull, which says where the disk is full and what to do; nothing
acknowledged is lost, the chain verifies, the SQLite file passes its integrity check, a blob
written meanwhile leaves no half file behind, and appends resume once space returns.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from events.errors import StoreFull
from events.store.blobs import blob_path, put_blob
from events.store.sqlite import SQLiteEventStore
from tests.conftest import fill
from tests.events.backends import cited
from tests.faults import faults, report

PAYLOAD = "x" * 2000  # a large citation: the disk fills in tens of appends, not thousands


def append_until_full(store: SQLiteEventStore, prefix: str) -> tuple[list[str], StoreFull]:
    """Append batches of three until the disk is full; the acknowledged event ids and the error."""
    acked: list[str] = []
    for i in range(10_000):
        try:
            appended = store.append([cited(f"{prefix}-{i}-{j}", PAYLOAD) for j in range(3)])
        except StoreFull as exc:
            return acked, exc
        acked += [a.event_id for a in appended]
    raise AssertionError("the disk never filled up")


def integrity(path: Path) -> list[tuple[str]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


@faults
def test_a_full_disk_fails_appends_clearly_corrupts_nothing_and_appends_resume(small_disk: Path) -> None:
    # Given a log on a small disk, with some events in it, and the disk then nearly filled
    path = small_disk / "events.sqlite3"
    store = SQLiteEventStore(path)
    first = store.append([cited(f"before-{i}", PAYLOAD) for i in range(10)])
    filler = fill(small_disk, leave=256 * 1024)

    # When appends go on until the disk is full
    acked, error = append_until_full(store, "filling")

    # Then the append fails with StoreFull, saying where and what to do
    assert str(small_disk) in str(error) and "is full" in str(error) and "Free space" in str(error)
    assert "nothing of this write was kept" in str(error)
    # And a blob written now fails the same way, without leaving a half file behind
    with pytest.raises(StoreFull):
        put_blob(os.urandom(512 * 1024), root=small_disk / "blobs")
    assert [p.name for p in (small_disk / "blobs").rglob("*") if p.is_file()] == []
    # And retrying on the full disk keeps failing cleanly
    with pytest.raises(StoreFull):
        store.append([cited("still-full", PAYLOAD)])
    # And nothing acknowledged is lost, the chain verifies, the file is sound
    stored = {row.event_id for row in store.iter_all()}
    assert {a.event_id for a in first} | set(acked) <= stored
    assert store.verify().ok
    assert integrity(path) == [("ok",)]

    # When space returns
    filler.unlink()

    # Then appends resume on the same store object, and the log is whole
    resumed = store.append([cited(f"after-{i}", PAYLOAD) for i in range(5)])
    assert [a.position for a in resumed] == list(range(store.head() - 4, store.head() + 1))
    sha = put_blob(b"a blob after the disk was freed", root=small_disk / "blobs")
    assert blob_path(sha, small_disk / "blobs").read_bytes() == b"a blob after the disk was freed"
    report_ = store.verify()
    assert report_.ok and report_.checked == store.head() == 10 + len(acked) + 5
    store.close()
    assert integrity(path) == [("ok",)]
    report("F6", disk="4 MiB tmpfs", acknowledged_before_full=10 + len(acked), events=report_.checked)
