"""The estimator checked against finished runs: leave-one-out predictions, recorded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.errors import BadInput
from services.estimate.check import check
from tests.services.estimate.runs import completed, store_with


def test_each_run_is_predicted_from_the_others_on_its_device(tmp_path: Path) -> None:
    # rates 6e10/10, 6e10/20, 6e10/30 FLOP/s; the GPU run is alone on its device
    store = store_with(tmp_path / "c.sqlite3",
                       completed("a", params=1e5, tokens=1e5, train_s=10.0),
                       completed("b", params=1e5, tokens=1e5, train_s=20.0),
                       completed("c", params=1e5, tokens=1e5, train_s=30.0, lora_rank=4),
                       completed("g", params=1e5, tokens=1e5, train_s=1.0, device="cuda (NVIDIA H200)"))
    result = check(store)
    by_run = {c["run"]: c for c in result["checks"]}
    assert set(by_run) == {"cal/a", "cal/b", "cal/c"}
    # a: the others' median rate is (3e9 + 4e10/30)/2 (c is LoRA: 4·N·D) -> 6e10 / that
    rate_a = (3e9 + 4e10 / 30) / 2
    assert by_run["cal/a"]["predicted_s"] == pytest.approx(6e10 / rate_a)
    assert by_run["cal/a"]["relative_error"] == pytest.approx((6e10 / rate_a - 10) / 10)
    assert set(by_run["cal/a"]) == {"run", "predicted_s", "measured_s", "relative_error"}
    assert result["summary"]["skipped"][0]["run"] == "cal/g"
    assert result["summary"]["new_events"] == 3

    # and a rerun appends nothing new
    head = store.head()
    assert check(store)["summary"]["new_events"] == 0
    assert store.head() == head
    recorded = store.read_all(types=["EstimateChecked"])
    assert len(recorded) == 3 and recorded[0].data["estimator_version"] == "1"


def test_no_runs_is_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no finished runs in the log"):
        check(store_with(tmp_path / "e.sqlite3"))


def test_a_lone_run_cannot_be_predicted_without_itself(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="alone on its device"):
        check(store_with(tmp_path / "l.sqlite3", completed("a", params=1e5, tokens=1e5, train_s=10.0)))
