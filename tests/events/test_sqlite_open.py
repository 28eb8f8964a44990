"""Several processes' first opening of a new SQLite log: none is refused.

SQLite refuses a concurrent switch to WAL as "database is locked" at once, without waiting on
the busy timeout; before the store retried it, about one in seventy openings of a new log by
eight threads at once failed (3 of 200 trials)."""

from __future__ import annotations

import threading
from pathlib import Path

from events.store.sqlite import SQLiteEventStore

TRIALS = 150
OPENERS = 8


def test_concurrent_first_openings_of_a_new_log_all_succeed(tmp_path: Path) -> None:
    failures: list[BaseException] = []
    for trial in range(TRIALS):
        path = tmp_path / f"log-{trial}.sqlite3"
        start = threading.Barrier(OPENERS)

        def open_it(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                SQLiteEventStore(path).close()
            except BaseException as exc:  # collected and reported below, with the trial
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(OPENERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures, f"{len(failures)} of {TRIALS * OPENERS} openings failed: {failures[0]}"
