"""Events whose identity follows from their content: the same fact, appended twice, is stored once.

Imports and declared experiments (services) build their events here, so the id and the
idempotency key of a fact do not depend on which door it came in by. Workers derive theirs
from the attempt instead (workers/attempt.py): a run's outcome is a new fact each time.
"""

from __future__ import annotations

import hashlib
import uuid

from events.canonical import canonical_json
from events.models.base import Event
from events.store.port import NewEvent

CONTENT_NAMESPACE = uuid.UUID("6f1d3c52-8a57-4b8e-9a43-3a3c0c1b7e11")
"""Fixed forever: content-derived event ids are uuid5(CONTENT_NAMESPACE, idempotency key)."""


def new_event(event: Event, key_prefix: str) -> NewEvent:
    """A deterministic event: key `<prefix>:<type>:<digest of the payload>`, id derived from the key."""
    # surrogatepass: a lone surrogate gets an id here and is refused, with a reason, by append.
    digest = hashlib.sha256(canonical_json(event.payload()).encode("utf-8", "surrogatepass")).hexdigest()[:24]
    key = f"{key_prefix}:{event.event_type}:{digest}"
    return NewEvent(event=event, event_id=uuid.uuid5(CONTENT_NAMESPACE, key), idempotency_key=key)
