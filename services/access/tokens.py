"""API bearer tokens: kept as SHA-256 hashes in $KNOBS_HOME/api-tokens.json (0600).

Scopes are ordered: `read` < `append` (may append events, rankings, distillations) < `admin`
(may also list and revoke tokens). Entries written before scopes were named so carry `write`,
read as `append`. Each token has a short public id, also the token's visible prefix
(`knobs_<id>_<secret>`), so a person holding one can tell which entry it is without the
secret ever being shown again. Tokens from the environment serve deployments:
KNOBS_API_TOKEN is admin, KNOBS_API_READ_TOKEN reads.

Writers take a file lock and replace the file atomically; a running server reads it through
services/access/registry.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from services.core.errors import BadInput, NotFound

Scope = Literal["read", "append", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "append", "admin")
LEVEL: dict[str, int] = {"read": 0, "append": 1, "admin": 2}
CREATE_HINT = "create a new one with `knobs token create --name NAME`"


def allows(granted: Scope, needed: Scope) -> bool:
    return LEVEL[granted] >= LEVEL[needed]


def as_scope(value: str) -> Scope:
    """A scope from a file or a flag: `write` (the name before scopes were split) means append."""
    value = "append" if value == "write" else value
    if value not in LEVEL:
        raise BadInput(f"unknown scope {value!r}; choose one of {', '.join(SCOPES)}")
    return cast(Scope, value)


def now() -> datetime:
    return datetime.now(UTC)


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


@dataclass(frozen=True)
class Entry:
    """One token as kept on disk: never the secret, only its SHA-256."""

    id: str
    name: str
    scope: Scope
    sha256: str
    created: str
    expires: str | None = None
    revoked: str | None = None
    rate_per_s: float | None = None
    """Per-token override of KNOBS_API_RATE_PER_S / KNOBS_API_BURST (None: the server's)."""
    burst: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Entry:
        return cls(
            # Entries from before ids existed get a stable one from their hash: the hash of a
            # 256-bit random secret reveals nothing of it.
            id=str(raw.get("id") or raw["sha256"][:8]), name=str(raw["name"]),
            scope=as_scope(str(raw["scope"])), sha256=str(raw["sha256"]), created=str(raw["created"]),
            expires=raw.get("expires"), revoked=raw.get("revoked"),
            rate_per_s=raw.get("rate_per_s"), burst=raw.get("burst"),
        )

    def expired(self, at: datetime) -> bool:
        return self.expires is not None and datetime.fromisoformat(self.expires) <= at


@dataclass(frozen=True)
class Grant:
    """Who a presented token is: what a request may do and whose rate limit it spends."""

    id: str
    name: str
    scope: Scope
    rate_per_s: float | None = None
    burst: int | None = None


def path_of(home: Path) -> Path:
    return home / "api-tokens.json"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_entries(path: Path) -> list[Entry]:
    if not path.exists():
        return []
    try:
        return [Entry.parse(raw) for raw in json.loads(path.read_text())]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{path} is not a token file ({exc}); restore it from a backup or move it away "
                       f"and create new tokens") from exc


@contextmanager
def _locked(home: Path) -> Iterator[Path]:
    """Two `knobs token` commands at once: the second waits, then reads what the first wrote."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / "api-tokens.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path_of(home)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write(path: Path, entries: list[Entry]) -> None:
    _write_json(path, [{k: v for k, v in asdict(e).items() if v is not None} for e in entries])


def used_path(home: Path) -> Path:
    return home / "api-tokens-used.json"


def last_used(home: Path) -> dict[str, str]:
    """When each token was last accepted, to the minute (USED_EVERY_S), by id."""
    path = used_path(home)
    try:
        data: dict[str, str] = json.loads(path.read_text())
        return data
    except (FileNotFoundError, ValueError):
        return {}


def record_uses(home: Path, uses: dict[str, str]) -> None:
    with _locked(home):
        merged = last_used(home)
        for token_id, at in uses.items():  # ISO stamps in UTC compare as text
            merged[token_id] = max(at, merged.get(token_id, ""))
        _write_json(used_path(home), merged)


_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_expiry(text: str) -> timedelta | None:
    """`30d`, `12h`, `90m`, `2w` or `never` (None)."""
    if text.strip().lower() == "never":
        return None
    match = _DURATION.match(text.lower())
    if not match or int(match.group(1)) == 0:
        raise BadInput(f"--expires-in {text!r} is not a duration: write e.g. 30d, 12h, 90m, 2w or never")
    return int(match.group(1)) * _UNIT[match.group(2)]


def create_token(home: Path, name: str, scope: str, expires_in: timedelta | None = None,
                 rate_per_s: float | None = None, burst: int | None = None) -> str:
    """A new token, returned once; only its hash is kept."""
    if not name.strip():
        raise BadInput("--name must not be empty: say who or what the token is for")
    if (rate_per_s is not None and rate_per_s <= 0) or (burst is not None and burst < 1):
        raise BadInput("--rate-per-s must be above 0 and --burst at least 1")
    with _locked(home) as path:
        entries = read_entries(path)
        taken = {e.id for e in entries}
        token_id = secrets.token_hex(4)
        while token_id in taken:
            token_id = secrets.token_hex(4)
        token = f"knobs_{token_id}_{secrets.token_urlsafe(32)}"
        created = now()
        entries.append(Entry(
            id=token_id, name=name.strip(), scope=as_scope(scope), sha256=digest(token),
            created=stamp(created), expires=stamp(created + expires_in) if expires_in else None,
            rate_per_s=rate_per_s, burst=burst,
        ))
        _write(path, entries)
    return token


def list_tokens(home: Path) -> list[Entry]:
    return read_entries(path_of(home))


def revoke(home: Path, id_or_name: str) -> Entry:
    """Mark one token revoked (kept, so `list` shows when); by id, or by a name only one token has."""
    wanted = id_or_name.strip()
    with _locked(home) as path:
        entries = read_entries(path)
        by_id = [e for e in entries if e.id == wanted]
        # By name, only tokens still active: an old revoked "ci" does not make "ci" ambiguous
        matches = by_id or [e for e in entries if e.name == wanted and not e.revoked]
        if not matches:
            raise NotFound(f"no token with id or name {wanted!r}; `knobs token list` shows them")
        if len(matches) > 1:
            ids = ", ".join(f"{e.id} ({e.scope}, created {e.created})" for e in matches)
            raise BadInput(f"{len(matches)} tokens are named {wanted!r}: {ids}; revoke one by its id")
        [target] = matches
        if target.revoked:
            return target
        done = replace(target, revoked=stamp(now()))
        _write(path, [done if e.id == target.id else e for e in entries])
    return done
