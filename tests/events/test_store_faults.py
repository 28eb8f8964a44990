"""Fault rows F1 (SQLite) and F2 (PostgreSQL): appender processes SIGKILLed at random moments.

Several real processes append batches while a killer SIGKILLs one of them at a time and starts
it again. Afterwards every acknowledged event is in the log, positions are 1..n without a gap,
the hash chain verifies, and every batch is in the log whole or not at all.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.events.backends import Backend
from tests.faults import count, faults, report

ROOT = Path(__file__).resolve().parents[2]
APPENDERS = 3


class Appender:
    """`python -m tests.events.appender` as a child process, with its acknowledgement file."""

    def __init__(self, backend: Backend, acks: Path, seed: int) -> None:
        self.acks = acks
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(acks.with_suffix(".err"), "a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.events.appender", backend.name, backend.target,
                 str(acks), str(seed)],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
            )

    def acknowledged(self) -> int:
        return self.acks.stat().st_size if self.acks.exists() else 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def acknowledged(files: list[Path]) -> dict[str, tuple[int, str, int]]:
    """event id -> (position, batch, batch size) from every acknowledgement file. A line cut short
    by a kill between write and fsync was never complete, so it is left out."""
    acks: dict[str, tuple[int, str, int]] = {}
    for path in files:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[3].isdigit() and len(parts[2]) == 32:
                acks[parts[1]] = (int(parts[0]), parts[2], int(parts[3]))
    return acks


def kill_appenders_at_random(backend: Backend, workdir: Path, kills: int, seed: int) -> list[Path]:
    """Run APPENDERS appenders; SIGKILL a random one `kills` times, restarting it each time."""
    rng = random.Random(seed)
    files = [workdir / f"acks-{i}.txt" for i in range(APPENDERS)]
    appenders = [Appender(backend, f, seed * 100 + i) for i, f in enumerate(files)]
    try:
        for k in range(kills):
            i = rng.randrange(APPENDERS)
            victim = appenders[i]
            # Kill while it appends, not while Python starts: wait for its next acknowledgement.
            before = victim.acknowledged()
            deadline = time.monotonic() + 60
            while victim.acknowledged() == before and time.monotonic() < deadline:
                assert victim.proc.poll() is None, (
                    f"appender {i} died on its own:\n{files[i].with_suffix('.err').read_text()}")
                time.sleep(0.01)
            assert victim.acknowledged() > before, f"appender {i} acknowledged nothing in 60 s"
            time.sleep(rng.uniform(0, 0.2))
            victim.kill()
            appenders[i] = Appender(backend, files[i], seed * 100 + APPENDERS * (k + 1) + i)
    finally:
        for appender in appenders:
            appender.kill()
    return files


def check_log_after_kills(backend: Backend, files: list[Path]) -> int:
    """The row's assertions; returns the number of events in the log."""
    acks = acknowledged(files)
    with backend.open() as store:
        rows = list(store.iter_all())
        report = store.verify()
    # Then positions are 1..n, the chain verifies, and nothing acknowledged is missing or moved
    assert [r.position for r in rows] == list(range(1, len(rows) + 1))
    assert report.ok, report.reason
    stored = {r.event_id: r for r in rows}
    lost = [event_id for event_id in acks if event_id not in stored]
    assert lost == [], f"{len(lost)} acknowledged events are not in the log"
    assert all(stored[event_id].position == ack[0] for event_id, ack in acks.items())
    # And every batch in the log is whole: all its members or none
    members = Counter(r.data["source_id"].split(":")[0] for r in rows)
    sizes = {r.data["source_id"].split(":")[0]: int(r.data["source_id"].rsplit("/")[1]) for r in rows}
    torn = {batch: (members[batch], size) for batch, size in sizes.items() if members[batch] != size}
    assert torn == {}, f"batches stored in part: {torn}"
    assert len(acks) > 0
    return len(rows)


@faults
def test_appenders_killed_at_random_lose_nothing_acknowledged(backend: Backend, tmp_path: Path) -> None:
    # Given a log, and appender processes that record what was acknowledged to them
    backend.open().close()
    kills = count(6, 50)
    # When a random appender is SIGKILLed (and restarted) `kills` times while they all append
    files = kill_appenders_at_random(backend, tmp_path, kills, seed=15)
    # Then (check_log_after_kills) nothing acknowledged is lost and the log is whole
    events = check_log_after_kills(backend, files)
    report("F1" if backend.name == "sqlite" else "F2", kills=kills, events=events,
           acknowledged=len(acknowledged(files)))
    if backend.name == "sqlite":
        assert backend.sql("PRAGMA integrity_check") == [("ok",)]
