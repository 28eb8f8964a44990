"""PostgreSQL provisioned by the project: idempotent, two homes side by side, loopback, 0600 secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import psycopg
import pytest

from services.infra import postgres as provision
from services.infra import runtime


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_two_homes_run_side_by_side_and_stop(postgres_home: Path) -> None:
    first, second = postgres_home / "a", postgres_home / "b"
    try:
        # Given a home started twice
        a = provision.start_postgres(first)
        assert provision.start_postgres(first)["pid"] == a["pid"]
        # When a second home starts while the first runs
        b = provision.start_postgres(second)
        # Then each has its own server, port and password, recorded in a 0600 state file
        assert a["port"] != b["port"] and a["pid"] != b["pid"]
        assert runtime.read_state(first, "postgres") == a
        for home in (first, second):
            assert mode(home / "run" / "postgres.json") == 0o600
            assert mode(home / "postgres" / "password") == 0o600
        with psycopg.connect(a["url"]) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == ("knobs", "knobs")
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        wrong_password = a["url"].replace(a["password"], b["password"])
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong_password).close()
        assert provision.postgres_status(first)["running"] is True
        assert "password" not in provision.postgres_status(first)
        # And stopping the first leaves the second running
        provision.stop_postgres(first)
        assert provision.postgres_status(first) == {"running": False}
        assert provision.exited(a["pid"])
        assert provision.postgres_status(second)["running"] is True
    finally:
        provision.stop_postgres(first)
        provision.stop_postgres(second)
    assert provision.exited(b["pid"])


@pytest.mark.slow
def test_restart_keeps_the_data_and_a_lost_state_file_is_recovered(postgres_home: Path) -> None:
    home = postgres_home / "home"
    try:
        state = provision.start_postgres(home)
        with psycopg.connect(state["url"], autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
        # A server whose state file was lost is adopted, not started twice
        runtime.clear_state(home, "postgres")
        assert provision.start_postgres(home)["pid"] == state["pid"]
        # A stopped server starts again on the same cluster, with the same password
        provision.stop_postgres(home)
        again = provision.start_postgres(home)
        assert again["password"] == state["password"] and again["pid"] != state["pid"]
        with psycopg.connect(again["url"]) as conn:
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    finally:
        provision.stop_postgres(home)


def test_stopping_a_home_that_never_started_is_a_no_op(tmp_path: Path) -> None:
    provision.stop_postgres(tmp_path)
    assert provision.postgres_status(tmp_path) == {"running": False}


def test_the_newest_installed_server_is_used() -> None:
    found = provision.bin_dir()
    assert (found / "pg_ctl").exists() and found.parent.parent == provision.DEBIAN_ROOT
