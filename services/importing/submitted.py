"""Append events submitted by programs (the API's POST /v1/events): validate all, then append all."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from events.errors import UnknownEventType
from events.models.base import model_for
from events.store import Appended, NewEvent
from services.core.context import Context
from services.core.errors import BadInput


def build_events(items: Sequence[Mapping[str, Any]]) -> list[NewEvent]:
    """Turn submitted `{type, data, idempotency_key?, event_id?}` items into events.

    Every item is checked before anything is appended; the error lists each bad item by index.
    """
    errors: list[str] = []
    built: list[NewEvent] = []
    for i, item in enumerate(items):
        try:
            cls = model_for(str(item["type"]))
            event = cls.model_validate(item.get("data") or {})
            event_id = uuid.UUID(str(item["event_id"])) if item.get("event_id") else uuid.uuid4()
        except UnknownEventType as exc:
            errors.append(f"events[{i}]: {exc}")
            continue
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()
            )
            errors.append(f"events[{i}] ({item['type']}): {detail}")
            continue
        except ValueError as exc:
            errors.append(f"events[{i}]: event_id is not a UUID ({exc})")
            continue
        built.append(NewEvent(event=event, event_id=event_id, idempotency_key=item.get("idempotency_key")))
    if errors:
        raise BadInput(f"{len(errors)} invalid event(s), nothing was appended: " + " | ".join(errors[:20]))
    return built


def append_events(
    ctx: Context, items: Sequence[Mapping[str, Any]], expected_versions: Mapping[str, int] | None = None
) -> list[Appended]:
    events = build_events(items)
    appended = ctx.store().append(events, expected_versions=expected_versions)
    return appended
