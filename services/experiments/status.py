"""Where an experiment's runs stand, read from the log: requested, dispatched, running, ended.

`Tracker` reads only the lifecycle events appended since its last look, so a progress bar
can poll it every fraction of a second without rereading the log.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

from events.models.experiments import (
    ExperimentDeclared,
    RunCompleted,
    RunDispatched,
    RunFailed,
    RunProgressed,
    RunRequested,
    RunStarted,
)
from events.store import EventStore
from services.core.errors import NotFound

RunState = Literal["requested", "dispatched", "running", "completed", "failed"]
LIFECYCLE = [t.event_type for t in (RunRequested, RunDispatched, RunStarted, RunProgressed,
                                    RunCompleted, RunFailed)]


@dataclass
class RunStatus:
    run_id: str
    state: RunState = "requested"
    attempts: int = 0
    step: int = 0
    total_steps: int | None = None
    loss: float | None = None
    wall_s: float | None = None
    failure: str | None = None
    estimated_s: float | None = None
    scores: dict[str, float] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Summary:
    experiment: str
    total: int
    counts: dict[str, int]
    eta_s: float | None
    runs: list[RunStatus]

    @property
    def done(self) -> int:
        return self.counts.get("completed", 0) + self.counts.get("failed", 0)

    @property
    def finished(self) -> bool:
        return self.total > 0 and self.done == self.total

    def public(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "total": self.total, "done": self.done,
                "counts": self.counts, "eta_s": self.eta_s, "runs": [r.public() for r in self.runs]}


@dataclass
class Tracker:
    store: EventStore
    experiment: str
    position: int = 0
    runs: dict[str, RunStatus] = field(default_factory=dict)

    def poll(self) -> Summary:
        while True:
            batch = self.store.read_all(after=self.position, limit=5000, types=LIFECYCLE)
            if not batch:
                break
            for stored in batch:
                if stored.data.get("experiment") == self.experiment:
                    self._apply(stored.event_type, stored.data)
            self.position = batch[-1].position
        return self.summary()

    def _apply(self, event_type: str, data: dict[str, Any]) -> None:
        run = self.runs.setdefault(str(data["run_id"]), RunStatus(str(data["run_id"])))
        if run.state in ("completed", "failed"):
            return  # a run ends once; later lifecycle noise (a late progress line) changes nothing
        if event_type == "RunRequested":
            estimate = data.get("estimated_cost", {})
            run.estimated_s = float(estimate["seconds"]) if "seconds" in estimate else None
        elif event_type == "RunDispatched":
            run.state = "dispatched"
        elif event_type == "RunStarted":
            run.state, run.attempts, run.step = "running", run.attempts + 1, 0
        elif event_type == "RunProgressed":
            run.step, run.total_steps, run.loss = data["step"], data["total_steps"], data.get("loss")
        elif event_type == "RunCompleted":
            run.state, run.scores = "completed", dict(data.get("scores", {}))
            run.wall_s = data.get("costs", {}).get("wall_s")
        elif event_type == "RunFailed":
            run.state, run.failure = "failed", f"{data['kind']}: {str(data['reason'])[:300]}"

    def summary(self) -> Summary:
        counts: dict[str, int] = {}
        for run in self.runs.values():
            counts[run.state] = counts.get(run.state, 0) + 1
        return Summary(self.experiment, len(self.runs), counts, self._eta(), sorted(
            self.runs.values(), key=lambda r: r.run_id))

    def _eta(self) -> float | None:
        """Seconds left if runs go one at a time: measured mean run time, else the estimates."""
        left = [r for r in self.runs.values() if r.state not in ("completed", "failed")]
        if not left:
            return 0.0
        measured = [r.wall_s for r in self.runs.values() if r.wall_s]
        if measured:
            per_run = statistics.fmean(measured)
            return sum(per_run * (1 - _fraction(r)) for r in left)
        estimates = [r.estimated_s for r in left]
        if all(e is not None for e in estimates):
            return sum(e * (1 - _fraction(r)) for e, r in zip(estimates, left, strict=True) if e is not None)
        return None


def _fraction(run: RunStatus) -> float:
    return run.step / run.total_steps if run.state == "running" and run.total_steps else 0.0


def experiment_status(store: EventStore, experiment: str) -> Summary:
    """The status of every run of a declared experiment; NotFound names the known ones."""
    if not store.read_stream(f"experiment:{experiment}"):
        declared = store.read_all(types=[ExperimentDeclared.event_type])
        known = ", ".join(sorted({str(e.data["name"]) for e in declared})) or "none yet"
        raise NotFound(f"no experiment {experiment!r} was declared; declared experiments: {known} "
                       "(declare one with `knobs experiment run SPEC`)")
    return Tracker(store, experiment).poll()
