"""Canonical JSON and the SHA-256 hash chain over stored events.

Canonical JSON is what gets hashed and what gets stored (as text, never as jsonb, so the
bytes read back are the bytes hashed): sorted keys, no whitespace, UTF-8, no NaN.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Serialise `value` deterministically; raises ValueError on NaN or infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    """Hash of one stored record, linked to the hash of the record before it."""
    payload = prev_hash + "\n" + canonical_json(record)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
