"""A measurement read back from the log: its request, every example's figures, the data set's.

The log, not the graph, is read: the figures are the measurement's own facts, and the
output of `knobs shift measure --json` is the same whether it measured now or resumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from events.models.shift import DatasetShiftMeasured, ShiftMeasured, ShiftRequested, shift_stream
from events.store import EventStore
from services.core.errors import NotFound


@dataclass
class Measurement:
    request: ShiftRequested
    examples: list[dict[str, Any]] = field(default_factory=list)  # in data-set order
    tokens_blobs: dict[str, str] = field(default_factory=dict)  # example id -> blob sha256
    summary: DatasetShiftMeasured | None = None
    chunks_done: int = 0
    positions: list[int] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        r = self.request
        return {
            "measurement_id": r.measurement_id,
            "model": r.model.model_dump(mode="json"),
            "data": r.dataset.model_dump(mode="json"),
            "probe": r.probe.model_dump(mode="json") if r.probe else None,
            "settings": r.settings.model_dump(mode="json"),
            "complete": self.summary is not None,
            "chunks": {"done": self.chunks_done, "of": r.chunks},
            "examples": self.examples,
            "dataset": self.summary.figures.model_dump(mode="json") if self.summary else None,
        }


def read_measurement(store: EventStore, measurement_id: str) -> Measurement:
    found: Measurement | None = None
    chunks: list[ShiftMeasured] = []
    summary: DatasetShiftMeasured | None = None
    positions: list[int] = []
    for stored in store.read_stream(shift_stream(measurement_id)):
        event = stored.decode()
        positions.append(stored.position)
        if isinstance(event, ShiftRequested):
            found = Measurement(event)
        elif isinstance(event, ShiftMeasured):
            chunks.append(event)
        elif isinstance(event, DatasetShiftMeasured):
            summary = event
    if found is None:
        raise NotFound(f"no measurement {measurement_id!r} in this log (`knobs shift list` lists them)")
    for chunk in sorted(chunks, key=lambda c: c.chunk):
        found.examples += [x.model_dump(mode="json") for x in chunk.examples]
        if chunk.tokens_sha256:
            found.tokens_blobs.update({x.id: chunk.tokens_sha256 for x in chunk.examples})
    found.summary = summary
    found.chunks_done = len(chunks)
    found.positions = positions
    return found


def list_measurements(store: EventStore) -> list[Measurement]:
    """Every measurement in the log, newest request last (one read of the whole log)."""
    ids: list[str] = []
    for stored in store.read_all(types=[ShiftRequested.event_type]):
        ids.append(str(stored.data["measurement_id"]))
    return [read_measurement(store, mid) for mid in dict.fromkeys(ids)]
