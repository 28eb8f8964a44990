"""API bearer tokens: kept as SHA-256 hashes in $KNOBS_HOME/api-tokens.json (0600).

A token's scope is `write` (may append events) or `read` (may only read). Tokens from the
environment (KNOBS_API_TOKEN, KNOBS_API_READ_TOKEN) serve deployments.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from services.core.errors import BadInput

Scope = Literal["read", "write"]


def _path(home: Path) -> Path:
    return home / "api-tokens.json"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _load(home: Path) -> list[dict[str, str]]:
    path = _path(home)
    if not path.exists():
        return []
    data: list[dict[str, str]] = json.loads(path.read_text())
    return data


def create_token(home: Path, name: str, scope: Scope) -> str:
    if not name.strip():
        raise BadInput("--name must not be empty: say who or what the token is for")
    token = "knobs_" + secrets.token_urlsafe(32)
    entries = [*_load(home), {
        "name": name, "scope": scope, "sha256": _digest(token),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }]
    home.mkdir(parents=True, exist_ok=True)
    tmp = _path(home).with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(entries, fh, indent=2)
    os.replace(tmp, _path(home))
    return token


def scope_of(home: Path, token: str, env_write: str | None, env_read: str | None) -> Scope | None:
    """The scope a presented token grants, or None when it is unknown."""
    if env_write and hmac.compare_digest(token, env_write):
        return "write"
    if env_read and hmac.compare_digest(token, env_read):
        return "read"
    digest = _digest(token)
    for entry in _load(home):
        if hmac.compare_digest(digest, entry["sha256"]):
            return "write" if entry["scope"] == "write" else "read"
    return None
