"""Ask for a shift measurement: name the model state and the data exactly, then have it done.

A model is a run knobs trained (`<experiment>/<run_id>`: its artifact, from the run's
`RunCompleted`) or a local directory; either is named by the sha256 of its files, a data set
by the sha256 of its bytes. The measurement id is a hash of both and the settings, so asking
twice is asking once: the second request resumes the first where it stopped.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.models.experiments import RunCompleted, run_stream
from events.models.shift import (
    DataSet,
    DatasetShiftMeasured,
    ModelState,
    ShiftInputRejected,
    ShiftRequested,
    ShiftSettings,
    measurement_id,
)
from events.store import EventStore
from events.store.blobs import tree_sha256
from services.core import plugins
from services.core.errors import BadInput

DEFAULT_CHUNK = 32
"""Examples per ShiftMeasured event: small enough that a killed measurement loses little."""

Progress = Callable[[int, int], None]


class ShiftRequestError(BadInput):
    """The model, data or settings of a measurement cannot be used; nothing was logged."""


@dataclass(frozen=True)
class ShiftOptions:
    lr: float = 1e-3
    optimizer: str = "sgd"
    metrics: str = "full"
    tokens: bool = False
    integrated_gradients: bool = False
    truncate: bool = True
    chunk: int = DEFAULT_CHUNK


def resolve_model(store: EventStore, ref: str) -> ModelState:
    """A directory as given, else a run's artifact; a clear error for neither."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return ModelState(kind="directory", ref=ref, path=str(path.resolve()),
                          sha256=tree_sha256(path))
    if path.exists():
        raise ShiftRequestError(f"{ref}: not a directory (give a model directory or a run as "
                                "'<experiment>/<run_id>')")
    experiment, _, run_id = ref.rpartition("/")
    if not experiment or not run_id:
        raise ShiftRequestError(f"{ref!r} is neither a directory nor a run ('<experiment>/<run_id>')")
    completed = [e for e in store.read_stream(run_stream(experiment, run_id))
                 if e.event_type == RunCompleted.event_type]
    if not completed:
        raise ShiftRequestError(f"{ref!r}: no directory of that name, and no completed run {run_id!r} in "
                       f"experiment {experiment!r} in this log (see `knobs experiment status {experiment}`)")
    artifact = completed[-1].data.get("artifact")
    if not artifact:
        raise ShiftRequestError(f"run {ref} completed without an artifact: there are no weights to measure")
    artifact_dir = Path(artifact)
    if not artifact_dir.is_dir():
        raise ShiftRequestError(f"run {ref}: its artifact {artifact} is gone from this machine")
    return ModelState(kind="run", ref=ref, path=str(artifact_dir), sha256=tree_sha256(artifact_dir))


def describe_data(path: Path, what: str = "data") -> DataSet:
    if not path.is_file():
        raise ShiftRequestError(f"{path}: no such {what} file (give a .jsonl file, one example per line)")
    data = path.read_bytes()
    examples = sum(1 for line in data.splitlines() if line.strip())
    if not examples:
        raise ShiftRequestError(f"{path}: the {what} set is empty")
    return DataSet(sha256=hashlib.sha256(data).hexdigest(), name=path.name, path=str(path.resolve()),
                   examples=examples)


def resolve_data(data: str, home: Path) -> Path:
    """A JSONL file as given, or a generated corpus ('biographies[:n_people=...]') rendered to one
    under $KNOBS_HOME/data by the workers (the same options give the same bytes)."""
    if data.startswith("biographies"):
        render: Callable[..., Any] = plugins.executor("corpus")
        try:
            return Path(render(data, home / "data"))
        except ShiftInputRejected as exc:
            raise ShiftRequestError(str(exc)) from exc
    return Path(data)


def build_request(store: EventStore, model: str, data: Path, probe: Path | None,
                  options: ShiftOptions) -> ShiftRequested:
    if options.chunk < 1:
        raise ShiftRequestError("--chunk must be at least 1")
    if not (options.lr > 0 and math.isfinite(options.lr)):
        raise ShiftRequestError(f"--lr {options.lr}: must be a positive number")
    if options.optimizer not in ("sgd", "adam"):
        raise ShiftRequestError(f"--optimizer {options.optimizer!r}: choose sgd or adam")
    if options.metrics not in ("full", "norms"):
        raise ShiftRequestError(f"--metrics {options.metrics!r}: choose full or norms")
    dataset = describe_data(Path(data))
    probe_set = describe_data(Path(probe), "probe") if probe else None
    state = resolve_model(store, model)
    settings = ShiftSettings(lr=options.lr, optimizer=options.optimizer,
                             metrics=options.metrics, tokens=options.tokens or options.integrated_gradients,
                             integrated_gradients=options.integrated_gradients,
                             truncate=options.truncate, chunk=options.chunk)
    return ShiftRequested(
        measurement_id=measurement_id(state.sha256, dataset.sha256, probe_set.sha256 if probe_set else None,
                                      settings),
        model=state, dataset=dataset, probe=probe_set, settings=settings,
        chunks=math.ceil(dataset.examples / options.chunk),
    )


def measure(store: EventStore, request: ShiftRequested,
            progress: Progress | None = None) -> DatasetShiftMeasured:
    """Have the measurement done (the embedded executor: in this process), resuming if begun."""
    run: Callable[..., Any] = plugins.executor("shift")
    try:
        summary = run(request, progress=progress, store=store)
    except ShiftInputRejected as exc:
        raise ShiftRequestError(str(exc)) from exc
    assert isinstance(summary, DatasetShiftMeasured)
    return summary
