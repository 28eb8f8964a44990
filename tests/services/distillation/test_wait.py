"""Waiting for a distillation on a broker: a batch that gave up in an earlier attempt does not
fail the resume that redoes it; one that gives up during this attempt does."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.models.distillation import DistillationBatchFailed, DistillationCompleted
from events.store.sqlite import SQLiteEventStore
from services.distillation.request import LLMServerError, wait
from tests.graph.distillation_log import keyed


def failed(distillation: str, attempt: int) -> DistillationBatchFailed:
    return DistillationBatchFailed(distillation_id=distillation, batch=0, reason="server unreachable",
                                   worker=f"attempt-{attempt}")


def completed(distillation: str) -> DistillationCompleted:
    return DistillationCompleted(distillation_id=distillation, distillates=4, accepted=4, requests=4,
                                 cached=0, prompt_tokens=40, completion_tokens=40)


def test_a_failure_before_the_resume_does_not_fail_the_resume(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "events.sqlite3") as store:
        # Given a first attempt whose batch gave up
        store.append([keyed(failed("d1", 1), "failed-1")])
        resumed_at = store.head()
        # When the resume completes
        store.append([keyed(completed("d1"), "completed")])
        # Then waiting from the resume's start sees the completion
        assert wait(store, "d1", timeout_s=1, poll_s=0.01, after=resumed_at)["accepted"] == 4


def test_a_failure_during_this_attempt_is_reported(tmp_path: Path) -> None:
    with SQLiteEventStore(tmp_path / "events.sqlite3") as store:
        store.append([keyed(failed("d1", 1), "failed-1")])
        resumed_at = store.head()
        store.append([keyed(failed("d1", 2), "failed-2")])
        with pytest.raises(LLMServerError, match="server unreachable"):
            wait(store, "d1", timeout_s=1, poll_s=0.01, after=resumed_at)
