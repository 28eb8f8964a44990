"""`knobs token create | list | revoke`: scopes, expiry, ids; the secret printed once and never again."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.access.registry import Registry, TokenRefused
from services.cli.main import app
from services.core.errors import BadInput


def knobs(home: Path, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"KNOBS_HOME": str(home)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_create_list_and_revoke(tmp_path: Path) -> None:
    assert "no tokens yet" in knobs(tmp_path, "token", "list")
    # Given tokens of each scope, one expiring, one made with the old --read-only flag
    admin = knobs(tmp_path, "token", "create", "--name", "ops", "--scope", "admin",
                  "--expires-in", "12h").strip()
    reader = knobs(tmp_path, "token", "create", "--name", "dash", "--read-only").strip()
    ci = knobs(tmp_path, "token", "create", "--name", "ci").strip()
    registry = Registry(tmp_path)
    assert [registry.check(t).scope for t in (admin, reader, ci)] == ["admin", "read", "append"]
    # Then `list` shows ids, names, scopes and expiry, and no secret
    listed = knobs(tmp_path, "token", "list")
    lines = listed.splitlines()
    assert lines[0].split() == ["ID", "NAME", "SCOPE", "CREATED", "EXPIRES", "LAST", "USED", "STATE"]
    ops = next(line for line in lines if " ops " in line)
    # (the registry's first check above recorded a use at once: a date, not "never")
    assert registry.check(admin).id in ops and "admin" in ops and "never" not in ops and "active" in ops
    assert not any(t.split("_", 2)[2] in listed for t in (admin, reader, ci))
    # When one is revoked by name, it is refused and listed as revoked
    assert "revoked" in knobs(tmp_path, "token", "revoke", "dash")
    with pytest.raises(TokenRefused, match="revoked"):
        registry.check(reader)
    dash = next(line for line in knobs(tmp_path, "token", "list").splitlines() if "dash" in line)
    assert "revoked 20" in dash


def test_unclear_requests_are_refused_with_what_to_do(tmp_path: Path) -> None:
    knobs(tmp_path, "token", "create", "--name", "ci")
    knobs(tmp_path, "token", "create", "--name", "ci")
    for args, message in [
        (["revoke", "ci"], "revoke one by its id"),
        (["create", "--name", "x", "--scope", "write-all"], "choose one of read, append, admin"),
        (["create", "--name", "x", "--expires-in", "soon"], "30d, 12h"),
        (["create", "--name", "x", "--read-only", "--scope", "admin"], "disagree"),
    ]:
        result = CliRunner().invoke(app, ["token", *args], env={"KNOBS_HOME": str(tmp_path)})
        assert isinstance(result.exception, BadInput) and message in str(result.exception), args
