"""One shift measurement, from its request to its data-set figures, as events in the log.

The model and the data are loaded and every example encoded before the request is appended,
so input that cannot be measured (not a causal LM, a bad line, an example too long with
truncation refused) writes nothing. Then the measurement's G (the data set's mean
gradient) is computed, and each chunk of examples becomes one `ShiftMeasured`, keyed by its
chunk number: a killed measurement, asked again, skips the chunks its stream already holds
and the store refuses a duplicate. Last comes one `DatasetShiftMeasured`, computed from the
chunks in the log, not from memory, so a resumed measurement sums exactly what was recorded.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from events.canonical import canonical_json
from events.errors import IdempotencyMismatch
from events.models.rankings import UsedEvent
from events.models.shift import (
    DatasetFigures,
    DatasetShiftMeasured,
    ExampleFigures,
    ShiftMeasured,
    ShiftRequested,
    chunk_key,
    shift_stream,
    summary_key,
)
from events.store import EventStore, NewEvent
from events.store.blobs import put_blob
from workers.jobs.shift import (
    Example,
    MeasuredModel,
    ShiftConfig,
    ShiftInputError,
    encode,
    load_model,
    mean_gradient,
    measure,
    probe_loss,
    read_examples,
    summarize,
)

EVENT_NAMESPACE = uuid.UUID("9d3e1f6a-4c2b-5d8e-a17f-2b6c9e0d4f13")
"""Fixed forever: measurement event ids are uuid5(EVENT_NAMESPACE, idempotency key)."""

Progress = Callable[[int, int], None]
"""(examples done, examples in all): called after every chunk, resumed chunks included."""


def request_key(measurement_id: str) -> str:
    return f"shift-requested:{measurement_id}"


def _keyed(event: ShiftRequested | ShiftMeasured | DatasetShiftMeasured, key: str) -> NewEvent:
    return NewEvent(event=event, event_id=uuid.uuid5(EVENT_NAMESPACE, key), idempotency_key=key)


def _append_once(store: EventStore, event: ShiftRequested | ShiftMeasured | DatasetShiftMeasured,
                 key: str) -> None:
    try:
        store.append([_keyed(event, key)])
    except IdempotencyMismatch as exc:
        raise ShiftInputError(f"measurement {event.measurement_id} is already in the log with other "
                              f"content under {key}: {exc}") from exc


class Prepared:
    """A request whose model and data were loaded and checked: nothing is logged yet."""

    def __init__(self, request: ShiftRequested, device: str) -> None:
        self.request = request
        self.device = device
        self.examples = _read_checked(Path(request.dataset.path), request.dataset.sha256, "data")
        if len(self.examples) != request.dataset.examples:
            raise ShiftInputError(f"{request.dataset.path}: {len(self.examples)} examples, the request "
                                  f"says {request.dataset.examples}")
        self.probe = _read_checked(Path(request.probe.path), request.probe.sha256, "probe") \
            if request.probe else []
        self.measured: MeasuredModel = load_model(Path(request.model.path), device)
        s = request.settings
        self.config = ShiftConfig(lr=s.lr, optimizer=s.optimizer, metrics=s.metrics, tokens=s.tokens,
                                  integrated_gradients=s.integrated_gradients, truncate=s.truncate)
        # Every example once through the tokenizer: a too-long one refused now, not at chunk 40.
        self.truncated = sum(encode(e, self.measured, s.truncate).truncated for e in self.examples)
        for e in self.probe:
            encode(e, self.measured, s.truncate)


def _read_checked(path: Path, sha256: str, what: str) -> list[Example]:
    if not path.is_file():
        raise ShiftInputError(f"{path}: the {what} file of this measurement is gone")
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise ShiftInputError(f"{path}: the {what} file changed since the measurement was requested "
                              "(its sha256 differs): ask again to measure the new contents")
    return read_examples(path)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare(request: ShiftRequested, device: str | None = None) -> Prepared:
    return Prepared(request, device or default_device())


def run(store: EventStore, prepared: Prepared, progress: Progress | None = None,
        blob_root: Path | None = None) -> DatasetShiftMeasured:
    """Append the request (once), every chunk the stream lacks, and the summary."""
    request = prepared.request
    mid = request.measurement_id
    _append_once(store, request, request_key(mid))
    done = {int(e.data["chunk"]) for e in store.read_stream(shift_stream(mid))
            if e.event_type == ShiftMeasured.event_type}
    size = request.settings.chunk
    n = len(prepared.examples)
    if progress:
        progress(min(n, len(done) * size), n)
    missing = [c for c in range(request.chunks) if c not in done]
    towards = mean_gradient(prepared.measured, prepared.examples, request.settings.truncate) \
        if missing and prepared.measured.lora else None
    for chunk in missing:
        started = time.perf_counter()
        first = chunk * size
        batch = prepared.examples[first:first + size]
        report = measure(prepared.measured, batch, prepared.probe, prepared.config, mean_gradient=towards)
        rows = [ExampleFigures(index=first + i, **{k: v for k, v in asdict(shift).items()
                                                     if k in ExampleFigures.model_fields and k != "index"})
                for i, shift in enumerate(report.examples)]
        tokens = None
        if request.settings.tokens:
            arrays = {shift.id: [asdict(t) for t in shift.token_level or []] for shift in report.examples}
            tokens = put_blob(canonical_json(arrays).encode(), blob_root)
        event = ShiftMeasured(measurement_id=mid, dataset_sha256=request.dataset.sha256, chunk=chunk,
                              examples=rows, tokens_sha256=tokens, device=prepared.device,
                              seconds=round(time.perf_counter() - started, 3))
        _append_once(store, event, chunk_key(mid, chunk))
        if progress:
            done.add(chunk)
            progress(min(n, first + len(batch)) if chunk == request.chunks - 1 else
                     min(n, len(done) * size), n)
    return _summary(store, prepared)


def _summary(store: EventStore, prepared: Prepared) -> DatasetShiftMeasured:
    request = prepared.request
    mid = request.measurement_id
    stored = [e for e in store.read_stream(shift_stream(mid)) if e.event_type == ShiftMeasured.event_type]
    for existing in store.read_stream(shift_stream(mid)):
        if existing.event_type == DatasetShiftMeasured.event_type:
            summary = existing.decode()
            assert isinstance(summary, DatasetShiftMeasured)
            return summary
    chunks = sorted(stored, key=lambda e: int(e.data["chunk"]))
    norms = [float(x["grad_norm"]) for e in chunks for x in e.data["examples"]]
    if len(norms) != len(prepared.examples):
        raise ShiftInputError(f"measurement {mid}: the log holds {len(norms)} examples' figures, the data "
                              f"set has {len(prepared.examples)}")
    # net_shift = ‖Σ g_i‖ = n‖G‖: one plain pass, not a sum kept across (possibly killed) chunks.
    G = mean_gradient(prepared.measured, prepared.examples, request.settings.truncate)
    net = len(norms) * float(torch.sqrt(sum((g.double() ** 2).sum() for g in G.values())))  # type: ignore[arg-type]
    figures = asdict(summarize(norms, net, prepared.truncated,
                               probe_loss(prepared.measured, prepared.probe, request.settings.truncate)))
    if not math.isfinite(figures["noise_scale"]):
        figures["noise_scale"] = None  # G = 0: no direction, the noise scale is undefined
    summary = DatasetShiftMeasured(
        measurement_id=mid, dataset_sha256=request.dataset.sha256, model_sha256=request.model.sha256,
        figures=DatasetFigures(**figures),
        used_events=[UsedEvent(position=e.position, event_id=e.event_id) for e in chunks],
    )
    _append_once(store, summary, summary_key(mid))
    return summary
