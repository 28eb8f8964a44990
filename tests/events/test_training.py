"""The training contract's influence-recording knobs: off by default, validated with clear messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from events.models.training import RECORDED_IN_TRAINING, TRAINING_BENCHMARKS, TRAINING_KNOBS, TrainingParams


def test_recording_is_off_by_default_and_leaves_resolved_params_as_they_were() -> None:
    params = TrainingParams()
    assert params.influence_every is None and params.influence_examples is None
    # absent from a run's resolved params (knobs.resolve drops None), so no run id changes
    dumped = params.model_dump(mode="json", exclude_none=True)
    assert "influence_every" not in dumped and "influence_examples" not in dumped


def test_recording_knobs_are_knobs_and_recorded_benchmarks_are_benchmarks() -> None:
    assert {"influence_every", "influence_examples"} <= set(TRAINING_KNOBS)
    assert set(RECORDED_IN_TRAINING) <= set(TRAINING_BENCHMARKS)
    assert all("lower is better" in TRAINING_BENCHMARKS[b] for b in RECORDED_IN_TRAINING)


@pytest.mark.parametrize(("params", "message"), [
    ({"influence_every": 0}, "greater than or equal to 1"),
    ({"influence_every": 10, "influence_examples": 1}, "greater than or equal to 2"),
    ({"influence_every": 10, "influence_examples": 5000}, "less than or equal to 4096"),
    ({"influence_examples": 16}, "influence_examples needs influence_every"),
])
def test_bad_recording_settings_are_refused_clearly(params: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingParams.model_validate(params)


def test_recording_settings_that_make_sense_are_kept() -> None:
    params = TrainingParams(influence_every=5, influence_examples=8)
    assert (params.influence_every, params.influence_examples) == (5, 8)
