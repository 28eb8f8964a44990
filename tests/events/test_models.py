"""Event models: frozen facts, validated on the way in, upcast from old schema versions on read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from events.errors import InvalidEvent, UnknownEventType
from events.models import BenchmarkScored, Event, RunRecorded, SourceCited, decode, event_types
from events.models import base as registry


@pytest.fixture
def private_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Types and upcasters registered by a test vanish after it (the registry is global)."""
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))
    monkeypatch.setattr(registry, "_UPCASTERS", dict(registry._UPCASTERS))
    yield


def test_events_are_frozen() -> None:
    event = SourceCited(source_id="s", citation="c")
    with pytest.raises(ValidationError):
        event.citation = "changed"  # type: ignore[misc]
    assert event.citation == "c"


@pytest.mark.parametrize(
    "build",
    [
        lambda: SourceCited(source_id="", citation="c"),
        lambda: SourceCited(source_id="s", citation="c", unexpected=1),  # type: ignore[call-arg]
        lambda: BenchmarkScored(experiment="e", run_id="r", benchmark="b", value=float("nan")),
        lambda: BenchmarkScored(experiment="e", run_id="r", benchmark="b", value=1.0, n=0),
        lambda: RunRecorded(experiment="e", run_id="r", params={}, costs={"gpu_hours": -1.0}),
        lambda: RunRecorded(experiment="e", run_id="r", params={}, costs={"gpu_hours": float("inf")}),
        lambda: RunRecorded(experiment="e", run_id="r", params={}, origin="guessed"),
    ],
    ids=["empty id", "extra field", "nan score", "zero n", "negative cost", "infinite cost", "bad origin"],
)
def test_invalid_events_are_refused_on_construction(build: Any) -> None:
    with pytest.raises(ValidationError):
        build()


def test_the_known_types_and_their_streams() -> None:
    assert {"SourceCited", "RunRecorded", "BenchmarkScored", "RankingDerived"} <= set(event_types())
    assert SourceCited(source_id="s", citation="c").stream_id() == "source:s"
    run = RunRecorded(experiment="e", run_id="r", params={"lr": 0.1})
    score = BenchmarkScored(experiment="e", run_id="r", benchmark="b", value=1.0)
    assert run.stream_id() == score.stream_id() == "run:e/r"


def test_decode_round_trips_the_current_version() -> None:
    event = RunRecorded(experiment="e", run_id="r", params={"layers": 6, "act": "gelu", "tied": True})
    assert decode("RunRecorded", 1, event.payload()) == event


def test_decode_refuses_unknown_types_and_naming_the_known_ones() -> None:
    with pytest.raises(UnknownEventType, match="SourceCited"):
        decode("RunDeleted", 1, {})


def test_decode_refuses_an_invalid_stored_payload() -> None:
    with pytest.raises(InvalidEvent, match="SourceCited"):
        decode("SourceCited", 1, {"source_id": "s"})


def test_decode_refuses_a_version_newer_than_the_code() -> None:
    with pytest.raises(InvalidEvent, match="upgrade knobs"):
        decode("SourceCited", 2, {"source_id": "s", "citation": "c"})


@pytest.mark.usefixtures("private_registry")
def test_old_versions_are_upcast_step_by_step() -> None:
    # Given a type at schema_version 3 whose field was renamed (1 -> 2) and then gained a unit (2 -> 3)
    @registry.register
    class WidgetMeasured(Event):
        schema_version: ClassVar[int] = 3
        widget: str
        width_mm: float

        def stream_id(self) -> str:
            return f"widget:{self.widget}"

    @registry.upcaster("WidgetMeasured", 1)
    def rename(data: dict[str, Any]) -> dict[str, Any]:
        return {"widget": data["name"], "width": data["width"]}

    @registry.upcaster("WidgetMeasured", 2)
    def to_mm(data: dict[str, Any]) -> dict[str, Any]:
        return {"widget": data["widget"], "width_mm": data["width"] * 10}

    # When payloads stored at versions 1, 2 and 3 are read
    # Then each comes back as the current model
    expected = WidgetMeasured(widget="w", width_mm=25.0)
    assert decode("WidgetMeasured", 1, {"name": "w", "width": 2.5}) == expected
    assert decode("WidgetMeasured", 2, {"widget": "w", "width": 2.5}) == expected
    assert decode("WidgetMeasured", 3, {"widget": "w", "width_mm": 25.0}) == expected


@pytest.mark.usefixtures("private_registry")
def test_a_missing_upcaster_is_reported() -> None:
    @registry.register
    class GadgetSeen(Event):
        schema_version: ClassVar[int] = 2
        gadget: str

        def stream_id(self) -> str:
            return f"gadget:{self.gadget}"

    with pytest.raises(InvalidEvent, match="no upcaster for GadgetSeen from schema_version 1"):
        decode("GadgetSeen", 1, {"gadget": "g"})


@pytest.mark.usefixtures("private_registry")
def test_registering_two_types_under_one_name_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(type("SourceCited", (Event,), {"__annotations__": {}}))
