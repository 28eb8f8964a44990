"""The base of every event: a frozen pydantic model with a type name and a schema version.

Stored payloads are never rewritten; an older `schema_version` is upcast on read by a chain
of registered upcasters, one per version step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from events.errors import InvalidEvent, UnknownEventType

JSONScalar = str | bool | int | float
"""A parameter value: what a CSV cell or a JSON scalar can hold."""

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_TYPES: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}

E = TypeVar("E", bound="Event")


class Event(BaseModel):
    """A fact, in the past tense. Never edited, never deleted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def stream_id(self) -> str:
        """The stream (aggregate) this fact belongs to; optimistic concurrency is per stream."""
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        """The JSON-able payload that is stored and hashed."""
        return self.model_dump(mode="json")


def register(cls: type[E]) -> type[E]:
    """Class decorator: make an event type known to `decode` under its class name."""
    name = cls.__name__
    if name in _TYPES and _TYPES[name] is not cls:
        raise ValueError(f"event type {name!r} registered twice")
    cls.event_type = name
    _TYPES[name] = cls
    return cls


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning a payload of `from_version` into `from_version + 1`."""

    def wrap(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(event_type, from_version)] = fn
        return fn

    return wrap


def event_types() -> dict[str, type[Event]]:
    """Every registered event type by name."""
    return dict(_TYPES)


def model_for(event_type: str) -> type[Event]:
    try:
        return _TYPES[event_type]
    except KeyError:
        known = ", ".join(sorted(_TYPES))
        raise UnknownEventType(
            f"unknown event type {event_type!r}; known types: {known}"
        ) from None


def decode(event_type: str, schema_version: int, data: dict[str, Any]) -> Event:
    """Turn a stored payload into its current model, upcasting old versions step by step."""
    cls = model_for(event_type)
    if schema_version > cls.schema_version:
        raise InvalidEvent(
            f"{event_type} has schema_version {schema_version}, newer than this code's "
            f"{cls.schema_version}: upgrade knobs to read it"
        )
    version = schema_version
    while version < cls.schema_version:
        step = _UPCASTERS.get((event_type, version))
        if step is None:
            raise InvalidEvent(f"no upcaster for {event_type} from schema_version {version}")
        data = step(data)
        version += 1
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(f"{event_type} payload is invalid: {exc}") from exc
