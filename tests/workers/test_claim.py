"""A run's claim, decided by the log: one holder at a time, taken over only from a silent one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from events.models.experiments import RunFailed
from tests.workers.conftest import Log
from tests.workers.faults import attempt_segments
from workers.attempt import Attempt
from workers.claim import ClaimHeld, ClaimLost


def attempt(log: Log, tmp_path: Path, name: str, lease_s: float) -> Attempt:
    return Attempt(log.store, experiment=log.experiment, run_id="r", attempt=name, worker=f"w-{name}",
                   artifacts=tmp_path / "artifacts", time_limit_s=60, lease_s=lease_s)


def test_a_second_delivery_does_not_claim_a_run_whose_holder_is_alive(log: Log, tmp_path: Path) -> None:
    # Given a requested run claimed by attempt a
    log.request("r")
    first, second = attempt(log, tmp_path, "a", 30), attempt(log, tmp_path, "b", 30)
    first.claim("cpu")

    # When a duplicate delivery (attempt b) tries to claim it
    with pytest.raises(ClaimHeld) as held:
        second.claim("cpu")

    # Then b is told who holds it and to come back within the lease, and a goes on appending
    assert held.value.holder == "a" and 0 < held.value.retry_in_s <= 30.5
    first.record_progress({"step": 1, "total_steps": 2, "loss": 1.0, "tokens": 64, "elapsed_s": 0.1})
    assert log.count("RunStarted", "r") == 1 and log.count("RunProgressed", "r") == 1


def test_a_silent_holder_is_taken_over_and_then_writes_nothing(log: Log, tmp_path: Path) -> None:
    # Given a run claimed by attempt a, which then says nothing for longer than its lease
    log.request("r")
    first, second = attempt(log, tmp_path, "a", 0.5), attempt(log, tmp_path, "b", 0.5)
    first.claim("cpu")
    time.sleep(0.7)

    # When attempt b claims it
    second.claim("cpu")

    # Then a learns at its next append that it lost the run, and its ending is refused
    with pytest.raises(ClaimLost, match="attempt b took the run over"):
        first.record_progress({"step": 5, "total_steps": 9, "loss": 1.0, "tokens": 64, "elapsed_s": 1})
    assert first.fail("error", "late").status == "skipped"

    # And b ends the run; the stream shows a then b, never interleaved
    assert second.fail("error", "b's ending").status == "failed"
    assert [e.data["attempt"] for e in log.terminals("r")] == ["b"]
    assert attempt_segments(log, "r") == ["a", "b"]


def test_a_claim_after_the_run_ended_is_refused(log: Log, tmp_path: Path) -> None:
    # Given a run that attempt a claimed and ended
    log.request("r")
    first = attempt(log, tmp_path, "a", 30)
    first.claim("cpu")
    first.fail("error", "done")

    # When a late delivery runs it, it skips without a claim
    outcome = attempt(log, tmp_path, "b", 30).run()
    assert outcome.status == "skipped"
    assert log.count("RunStarted", "r") == 1
    assert [e.event_type for e in log.terminals("r")] == [RunFailed.event_type]
