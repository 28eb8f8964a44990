"""The tokens a running process honours: the token file's (services/access/tokens.py), kept
parsed and re-read when the file's mtime, size or inode change, so a revocation is refused on
the next request without a restart; and the environment's (KNOBS_API_TOKEN is admin,
KNOBS_API_READ_TOKEN reads)."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Literal

from services.access.tokens import (
    CREATE_HINT,
    Entry,
    Grant,
    Scope,
    digest,
    now,
    path_of,
    read_entries,
    record_uses,
    stamp,
    used_path,
)

USED_EVERY_S = 60.0
"""How often a server writes when its tokens were last used: a token's first use at once, then
at most once a minute, in a file of its own, so the token file (and its readers' caches) stay put."""
log = logging.getLogger("knobs.access")

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
                self._entries = read_entries(self._path) if seen else []
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
            self._uses[token_id] = stamp(at)
            if not first and time.monotonic() - self._flushed < USED_EVERY_S:
                return
            pending, self._uses, self._flushed = self._uses, {}, time.monotonic()
        try:
            record_uses(self._home, pending)
        except OSError as exc:  # bookkeeping never refuses a request
            log.warning("could not record when tokens were last used in %s: %s", used_path(self._home), exc)
