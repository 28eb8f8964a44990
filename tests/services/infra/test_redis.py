"""Redis provisioned by the project: a private server per home, loopback, a password, 0600 secrets."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.infra import redis as provision
from services.infra import runtime


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listening(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
                found.add(socket.inet_ntop(family, words))
    return found


def round_trip(url: str) -> bytes | None:
    """Push a message onto a list and pop it back, as Dramatiq's Redis broker does."""
    with redis.Redis.from_url(url) as client:
        client.delete("knobs-test")
        client.rpush("knobs-test", b"hello")
        body: bytes | None = client.lpop("knobs-test")
    return body


def test_the_session_server_delivers_a_message(redis_url: str) -> None:
    assert redis_url.startswith("redis://:") and redis_url.endswith("/0")
    assert round_trip(redis_url) == b"hello"


def test_two_homes_run_side_by_side_and_stop_leaves_nothing_listening(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    try:
        # Given a home started twice
        a = provision.start_redis(first)
        assert provision.start_redis(first)["pid"] == a["pid"]
        # When a second home starts while the first runs
        b = provision.start_redis(second)
        # Then each has its own server, port and password, recorded in 0600 files
        assert a["port"] != b["port"] and a["pid"] != b["pid"] and a["password"] != b["password"]
        assert runtime.read_state(first, "redis") == a
        for home in (first, second):
            assert mode(home / "run" / "redis.json") == 0o600
            assert mode(home / "redis" / "password") == 0o600
            assert mode(home / "redis" / "redis.conf") == 0o600
        assert listening(a["port"]) == {"127.0.0.1"}
        assert round_trip(a["url"]) == b"hello" and round_trip(b["url"]) == b"hello"
        with redis.Redis.from_url(a["url"]) as client:
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert Path(client.config_get("dir")["dir"]) == (first / "redis" / "data").resolve()
        wrong_password = a["url"].replace(a["password"], b["password"])
        once = Retry(NoBackoff(), 0)  # a refused login is retried for seconds otherwise
        with pytest.raises(redis.AuthenticationError), \
                redis.Redis.from_url(wrong_password, retry=once) as client:
            client.ping()
        with pytest.raises(redis.AuthenticationError), redis.Redis(port=a["port"], retry=once) as client:
            client.ping()
        assert provision.redis_status(first)["running"] is True
        assert not {"password", "url"} & provision.redis_status(first).keys()
        # When the first stops
        assert provision.stop_redis(first) is True
        # Then it no longer runs or listens, and the second is untouched
        assert provision.redis_status(first) == {"running": False}
        assert provision.exited(a["pid"])
        assert listening(a["port"]) == set()
        assert provision.redis_status(second)["running"] is True
    finally:
        provision.stop_redis(first)
        provision.stop_redis(second)
    assert listening(b["port"]) == set()


def test_restart_keeps_the_data_and_a_lost_state_file_is_recovered(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        state = provision.start_redis(home)
        with redis.Redis.from_url(state["url"]) as client:
            client.rpush("kept", b"survives")
        # A server whose state file was lost is adopted, not started twice
        runtime.clear_state(home, "redis")
        assert provision.start_redis(home)["pid"] == state["pid"]
        # A stopped server starts again on the same append-only file, with the same password
        provision.stop_redis(home)
        again = provision.start_redis(home)
        assert again["password"] == state["password"] and again["pid"] != state["pid"]
        with redis.Redis.from_url(again["url"]) as client:
            assert client.lpop("kept") == b"survives"
    finally:
        provision.stop_redis(home)


def test_stopping_a_home_that_never_started_is_a_no_op(tmp_path: Path) -> None:
    assert provision.stop_redis(tmp_path) is False
    assert provision.redis_status(tmp_path) == {"running": False}
