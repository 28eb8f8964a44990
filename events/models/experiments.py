"""Facts about experiments we run ourselves: declared designs, requested runs and their lifecycle.

A service declares an experiment and requests its runs; the dispatcher records that it
handed a run to the broker; a worker records each attempt's start and progress and exactly
one terminal fact per run (`RunCompleted` or `RunFailed`), which it appends in the same
batch as the run's `RunRecorded` and `BenchmarkScored` facts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from events.models.base import Event, JSONScalar, register

Executor = Literal["train", "external"]


def run_stream(experiment: str, run_id: str) -> str:
    """The stream every fact about one run shares (RunRecorded and BenchmarkScored use it too)."""
    return f"run:{experiment}/{run_id}"


def terminal_key(experiment: str, run_id: str) -> str:
    """The idempotency key both terminal events use, so a run can only ever end once."""
    return f"run-terminal:{experiment}/{run_id}"


@register
class ExperimentDeclared(Event):
    """An experiment's validated spec and its design, before any run was requested."""

    name: str = Field(min_length=1)
    executor: Executor
    design: str
    spec: dict[str, Any]
    spec_sha256: str = Field(min_length=64, max_length=64)
    run_ids: list[str]
    benchmarks: list[str]
    estimated_cost: dict[str, float] = Field(default_factory=dict)

    def stream_id(self) -> str:
        return f"experiment:{self.name}"


@register
class RunRequested(Event):
    """A run of an experiment should happen with exactly these parameters."""

    experiment: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    executor: Executor
    params: dict[str, JSONScalar]
    varied: list[str] = Field(default_factory=list, description="the parameters this run changes")
    seed: int
    benchmarks: list[str]
    estimated_cost: dict[str, float] = Field(default_factory=dict)

    def stream_id(self) -> str:
        return run_stream(self.experiment, self.run_id)


@register
class RunDispatched(Event):
    """The dispatcher handed the run to the broker (at least once; workers dedupe)."""

    experiment: str
    run_id: str
    broker: str
    queue: str
    message_id: str

    def stream_id(self) -> str:
        return run_stream(self.experiment, self.run_id)


@register
class RunStarted(Event):
    """One attempt of a run began on a worker."""

    experiment: str
    run_id: str
    attempt: str = Field(description="unique per delivery: message id and retry count")
    worker: str
    device: str

    def stream_id(self) -> str:
        return run_stream(self.experiment, self.run_id)


@register
class RunProgressed(Event):
    """How far an attempt got: step, loss and tokens so far."""

    experiment: str
    run_id: str
    attempt: str
    step: int = Field(ge=0)
    total_steps: int = Field(ge=1)
    loss: float | None = None
    tokens: int = Field(ge=0)
    elapsed_s: float = Field(ge=0)

    def stream_id(self) -> str:
        return run_stream(self.experiment, self.run_id)


@register
class RunLeaseRenewed(Event):
    """The attempt holding a run's claim is alive: written when it has appended nothing else for
    a while (while its model builds, or while it evaluates), so that a duplicate delivery waits
    for it instead of taking the run over. `lease_s` is how long the claim lasts without another."""

    experiment: str
    run_id: str
    attempt: str
    lease_s: float = Field(gt=0)

    def stream_id(self) -> str:
        return run_stream(self.experiment, self.run_id)


@register
class RunCompleted(Event):
    """The run finished; `config` is the trainer's resolved config, `costs` what it spent."""

    experiment: str
    run_id: str
    attempt: str
    config: dict[str, Any]
    costs: dict[str, float]
    device: str
    artifact: str | None = None
    scores: dict[str, float] = Field(default_factory=dict)

    def stream_id(self) -> str:
        return run_stream(self.experiment, self.run_id)


FailureKind = Literal["error", "invalid", "timeout", "out_of_memory", "killed", "gave_up"]


@register
class RunFailed(Event):
    """The run ended without results, and why."""

    experiment: str
    run_id: str
    attempt: str
    kind: FailureKind
    reason: str
    retryable: bool = False

    def stream_id(self) -> str:
        return run_stream(self.experiment, self.run_id)


TERMINAL_TYPES: tuple[str, ...] = ("RunCompleted", "RunFailed")

__all__ = [
    "TERMINAL_TYPES",
    "Executor",
    "ExperimentDeclared",
    "FailureKind",
    "JSONScalar",
    "RunCompleted",
    "RunDispatched",
    "RunFailed",
    "RunLeaseRenewed",
    "RunProgressed",
    "RunRequested",
    "RunStarted",
    "run_stream",
    "terminal_key",
]
