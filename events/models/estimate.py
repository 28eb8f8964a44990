"""Facts about the estimator's accuracy: each finished run checked against its prediction.

`knobs estimate --check` predicts every completed run's training time from the calibration
without that run (leave-one-out) and records one `EstimateChecked` per run and estimator
version; the idempotency key `estimate_key` makes a rerun append nothing new.
"""

from __future__ import annotations

from pydantic import Field

from events.models.base import Event, register


def estimate_stream(run: str) -> str:
    return f"estimate:{run}"


def estimate_key(run: str, estimator_version: str) -> str:
    return f"estimate-check:{estimator_version}:{run}"


@register
class EstimateChecked(Event):
    """The estimator's prediction of one finished run's training time, beside the measurement."""

    run: str = Field(min_length=1, description="'<experiment>/<run_id>'")
    estimator_version: str = Field(min_length=1)
    device: str
    mode: str = Field(description="'full' (6·N·D) or 'lora' (4·N·D)")
    flops: float = Field(ge=0)
    calibration_flops_per_s: float = Field(gt=0, description="from the other runs on this device")
    calibration_runs: int = Field(ge=1)
    predicted_s: float = Field(ge=0)
    measured_s: float = Field(gt=0)
    relative_error: float = Field(description="(predicted - measured) / measured")

    def stream_id(self) -> str:
        return estimate_stream(self.run)
