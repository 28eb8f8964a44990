"""Tokens on disk: scopes, ids, expiry, revocation seen by a running registry, and two writers."""

from __future__ import annotations

import json
import multiprocessing
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from services.access.registry import Registry, TokenRefused
from services.access.tokens import (
    allows,
    create_token,
    digest,
    list_tokens,
    now,
    parse_expiry,
    path_of,
    revoke,
)
from services.core.errors import BadInput, NotFound


def test_scopes_are_ordered_and_a_token_shows_its_public_id(tmp_path: Path) -> None:
    assert allows("admin", "append") and allows("append", "read") and allows("read", "read")
    assert not allows("read", "append") and not allows("append", "admin")
    # Given one token of each scope
    made = {scope: create_token(tmp_path, f"for-{scope}", scope) for scope in ("read", "append", "admin")}
    registry = Registry(tmp_path)
    for scope, token in made.items():
        grant = registry.check(token)
        # Then each grants its scope, and its id is the visible part of the token
        assert grant.scope == scope and token.startswith(f"knobs_{grant.id}_")
    # And the file keeps hashes only, readable by its owner alone
    text = path_of(tmp_path).read_text()
    assert not any(token in text or token.split("_", 2)[2] in text for token in made.values())
    assert stat.S_IMODE(path_of(tmp_path).stat().st_mode) == 0o600


def test_entries_written_before_scopes_were_split_keep_working(tmp_path: Path) -> None:
    # Given a file from before: scope "write", no id
    old, reader = "knobs_old-write-token-from-2025", "knobs_old-read-token-from-2025"
    path_of(tmp_path).write_text(json.dumps([
        {"name": "ci", "scope": "write", "sha256": digest(old), "created": "2025-01-01T00:00:00+00:00"},
        {"name": "look", "scope": "read", "sha256": digest(reader), "created": "2025-01-01T00:00:00+00:00"},
    ]))
    # Then "write" reads as append and each gets a stable id
    registry = Registry(tmp_path)
    assert registry.check(old).scope == "append" and registry.check(reader).scope == "read"
    assert registry.check(old).id == digest(old)[:8]
    # And a new token written beside them leaves them valid
    create_token(tmp_path, "new", "admin")
    assert Registry(tmp_path).check(old).scope == "append"


def test_environment_tokens_are_admin_and_read(tmp_path: Path) -> None:
    registry = Registry(tmp_path, env_admin="deploy-admin-secret", env_read="deploy-read-secret")
    assert registry.check("deploy-admin-secret").scope == "admin"
    assert registry.check("deploy-read-secret").scope == "read"
    with pytest.raises(TokenRefused, match="not known here"):
        registry.check("deploy-admin-secreT")


def test_an_expired_token_is_refused_with_its_date(tmp_path: Path) -> None:
    token = create_token(tmp_path, "short", "read", expires_in=timedelta(hours=12))
    registry = Registry(tmp_path)
    [entry] = list_tokens(tmp_path)
    assert entry.expires is not None
    assert registry.check(token).scope == "read"
    # When the clock passes the expiry
    with pytest.raises(TokenRefused) as refused:
        registry.check(token, at=now() + timedelta(hours=13))
    # Then the reason names the date and what to do, and never the token
    assert f"expired on {entry.expires}; create a new one" in str(refused.value)
    assert token not in str(refused.value)


def test_revoking_by_id_or_unique_name_is_seen_by_a_running_registry(tmp_path: Path) -> None:
    first = create_token(tmp_path, "ci", "append")
    second = create_token(tmp_path, "ci", "append")
    registry = Registry(tmp_path)
    assert registry.check(first).scope == "append"  # the registry has read the file
    # A name two tokens share is refused, naming both ids
    with pytest.raises(BadInput, match="2 tokens are named 'ci'") as ambiguous:
        revoke(tmp_path, "ci")
    ids = [e.id for e in list_tokens(tmp_path)]
    assert all(i in str(ambiguous.value) for i in ids)
    with pytest.raises(NotFound, match="knobs token list"):
        revoke(tmp_path, "nobody")
    # When one is revoked by its id, the same registry refuses it at the next check
    done = revoke(tmp_path, registry.check(first).id)
    with pytest.raises(TokenRefused, match=re.escape(f"revoked on {done.revoked}; create a new one")):
        registry.check(first)
    assert registry.check(second).scope == "append"
    # And the other, now the only active "ci", can be revoked by name
    assert revoke(tmp_path, "ci").id != done.id
    with pytest.raises(TokenRefused, match="revoked"):
        registry.check(second)
    assert [e.revoked is not None for e in list_tokens(tmp_path)] == [True, True]


@pytest.mark.parametrize("text,hours", [("30d", 720), ("12h", 12), ("90m", 1.5), ("2w", 336)])
def test_expiry_durations(text: str, hours: float) -> None:
    assert parse_expiry(text) == timedelta(hours=hours)


def test_bad_expiry_and_never() -> None:
    assert parse_expiry("never") is None
    for bad in ("30", "0d", "tomorrow", "-1d"):
        with pytest.raises(BadInput, match="30d, 12h"):
            parse_expiry(bad)


def _create_many(home: str, who: str) -> None:
    for i in range(25):
        create_token(Path(home), f"{who}-{i}", "read")


def test_two_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    # Given two processes creating tokens in the same home at the same time
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_create_many, args=(str(tmp_path), who)) for who in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    # Then every token of both is kept, each with its own id
    entries = list_tokens(tmp_path)
    assert len(entries) == 50 and len({e.id for e in entries}) == 50
    assert {e.name for e in entries} == {f"{w}-{i}" for w in "ab" for i in range(25)}
