"""Audits at the same moment share one walk of the hash chain (services/ranking/audit.ChainWalks),
and an audit never takes a walk that began before it was asked: a row edited after one audit is
caught by the next."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from events.store import EventStore, VerifyReport
from events.store.sqlite import SQLiteEventStore
from services.ranking.audit import ChainWalks
from tests.events.backends import Backend, cited


class Counted(SQLiteEventStore):
    """A real SQLite store whose walks are counted and slowed, so that audits overlap."""

    walks = 0

    def verify(self) -> VerifyReport:
        Counted.walks += 1
        time.sleep(0.3)
        return super().verify()


def test_audits_at_the_same_moment_share_a_walk(tmp_path: Path) -> None:
    # Given a log and eight audits asked at the same moment
    store = Counted(tmp_path / "events.sqlite3")
    store.append([cited("a"), cited("b"), cited("a", citation="second")])
    walks, reports = ChainWalks(), []
    start = threading.Barrier(8)

    def audit() -> None:
        start.wait()
        reports.append(walks.verify(store))

    threads = [threading.Thread(target=audit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every audit has the chain verified, by two walks at most (the first, and one for
    # those who came while it ran), not eight
    assert len(reports) == 8 and all(r.ok and r.checked == 3 for r in reports)
    assert Counted.walks <= 2


def test_a_row_edited_after_an_audit_is_caught_by_the_next(tmp_path: Path) -> None:
    # Given a log an audit found intact
    backend = Backend("sqlite", str(tmp_path / "events.sqlite3"))
    store: EventStore = backend.open()
    store.append([cited("a"), cited("b"), cited("c")])
    walks = ChainWalks()
    assert walks.verify(store).ok

    # When a row is edited behind the store's back, without re-hashing
    backend.sql("UPDATE events SET data = %s WHERE position = 2", ['{"citation": "forged"}'])

    # Then the next audit walks again and names the row
    report = walks.verify(store)
    assert not report.ok and report.first_bad_position == 2
