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


INT64 = (-(2**63), 2**63 - 1)
"""The integers every reader of the log can hold: Neo4j's and PostgreSQL's are 64-bit."""


def unstorable(value: Any, at: str = "data") -> str | None:
    """Why `value` cannot go into the log as it is, naming where: an integer beyond 64 bits (the
    projector could never write it to Neo4j, and the graph would stop at it for good) or text
    with a lone surrogate (not UTF-8). None when all of it can."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT64[0] <= value <= INT64[1] else f"{at} is {value}, beyond a 64-bit integer"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{at} holds a lone surrogate ({value!r}), which is not UTF-8 text"
        return None
    if isinstance(value, dict):
        for key, inner in value.items():
            problem = unstorable(key, f"a key in {at}") or unstorable(inner, f"{at}.{key}")
            if problem:
                return problem
    if isinstance(value, list):
        for i, inner in enumerate(value):
            problem = unstorable(inner, f"{at}[{i}]")
            if problem:
                return problem
    return None


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    """Hash of one stored record, linked to the hash of the record before it."""
    payload = prev_hash + "\n" + canonical_json(record)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
