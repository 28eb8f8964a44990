"""API bearer tokens: kept as SHA-256 hashes in $KNOBS_HOME/api-tokens.json (0600).

Scopes are ordered: `read` < `append` (may append events, rankings, distillations) < `admin`
(may also list and revoke tokens). Entries written before scopes were named so carry `write`,
read as `append`. Each token has a short public id, also the token's visible prefix
(`knobs_<id>_<secret>`), so a person holding one can tell which entry it is without the
secret ever being shown again. Tokens from the environment serve deployments:
KNOBS_API_TOKEN is admin, KNOBS_API_READ_TOKEN reads.

Writers take a file lock and replace the file atomically; readers (a running server) keep a
parsed copy and re-read it when its mtime, size or inode change, so a revocation is refused
on the next request without a restart.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
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
USED_EVERY_S = 60.0
"""How often a server writes when its tokens were last used: a token's first use at once, then
at most once a minute, in a file of its own, so the token file (and its readers' caches) stay put."""
log = logging.getLogger("knobs.access")


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


def _stamp(at: datetime) -> str:
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


def _read(path: Path) -> list[Entry]:
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
        entries = _read(path)
        taken = {e.id for e in entries}
        token_id = secrets.token_hex(4)
        while token_id in taken:
            token_id = secrets.token_hex(4)
        token = f"knobs_{token_id}_{secrets.token_urlsafe(32)}"
        created = now()
        entries.append(Entry(
            id=token_id, name=name.strip(), scope=as_scope(scope), sha256=digest(token),
            created=_stamp(created), expires=_stamp(created + expires_in) if expires_in else None,
            rate_per_s=rate_per_s, burst=burst,
        ))
        _write(path, entries)
    return token


def list_tokens(home: Path) -> list[Entry]:
    return _read(path_of(home))


def revoke(home: Path, id_or_name: str) -> Entry:
    """Mark one token revoked (kept, so `list` shows when); by id, or by a name only one token has."""
    wanted = id_or_name.strip()
    with _locked(home) as path:
        entries = _read(path)
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
        done = replace(target, revoked=_stamp(now()))
        _write(path, [done if e.id == target.id else e for e in entries])
    return done


Reason = Literal["unknown", "expired", "revoked"]


class TokenRefused(Exception):
    """A presented token that grants nothing, with the reason to show (never the token)."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


class Registry:
    """The tokens a running process honours: the file's, re-read when it changes, and the env's."""

    def __init__(self, home: Path, env_admin: str | None = None, env_read: str | None = None) -> None:
        self._home = home
        self._path = path_of(home)
        self._uses: dict[str, str] = {}
        self._seen_ids: set[str] = set()
        self._flushed = time.monotonic()
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._entries: list[Entry] = []
        env: list[tuple[str | None, Scope, str]] = [(env_admin, "admin", "KNOBS_API_TOKEN"),
                                                    (env_read, "read", "KNOBS_API_READ_TOKEN")]
        self._env = [(digest(t), Grant(id=f"env-{scope}", name=label, scope=scope))
                     for t, scope, label in env if t]

    def entries(self) -> list[Entry]:
        try:
            st = self._path.stat()
            seen: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen:
                # os.replace gives the new file a new inode, so even a same-mtime rewrite shows
                self._entries = _read(self._path) if seen else []
                self._seen = seen
            return self._entries

    def check(self, token: str, at: datetime | None = None) -> Grant:
        """The grant of a presented token, or TokenRefused saying why.

        Constant time in the secret: the SHA-256 of the presented token is compared with
        hmac.compare_digest against every entry, without stopping at a match, so neither which
        entry matched nor how many bytes of a hash agreed shows in the time taken. (A dict keyed
        by digest would also be safe, as hashing first removes any relation between a guess and
        the stored secret; the scan keeps one rule for file and environment tokens alike.)
        """
        presented = digest(token)
        found: Entry | Grant | None = None
        for stored, grant in self._env:
            if hmac.compare_digest(presented, stored):
                found = grant
        for entry in self.entries():
            if hmac.compare_digest(presented, entry.sha256):
                found = entry
        if found is None:
            raise TokenRefused(f"this token is not known here; {CREATE_HINT}", "unknown")
        if isinstance(found, Grant):
            return found
        if found.revoked:
            raise TokenRefused(f"token {found.id} ({found.name!r}) was revoked on {found.revoked}; "
                               f"{CREATE_HINT}", "revoked")
        if found.expired(at or now()):
            raise TokenRefused(f"token {found.id} ({found.name!r}) expired on {found.expires}; "
                               f"{CREATE_HINT}", "expired")
        self._used(found.id, at or now())
        return Grant(id=found.id, name=found.name, scope=found.scope, rate_per_s=found.rate_per_s,
                     burst=found.burst)

    def _used(self, token_id: str, at: datetime) -> None:
        with self._lock:
            first = token_id not in self._seen_ids
            self._seen_ids.add(token_id)
            self._uses[token_id] = _stamp(at)
            if not first and time.monotonic() - self._flushed < USED_EVERY_S:
                return
            pending, self._uses, self._flushed = self._uses, {}, time.monotonic()
        try:
            record_uses(self._home, pending)
        except OSError as exc:  # bookkeeping never refuses a request
            log.warning("could not record when tokens were last used in %s: %s", used_path(self._home), exc)
