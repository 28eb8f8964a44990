"""RabbitMQ provisioned by the project: a private node per home, loopback, 0600 secrets, clean stop."""

from __future__ import annotations

import socket
import stat
import uuid
from pathlib import Path

import pika
import pytest
from pika.exceptions import ProbableAuthenticationError

from services.infra import rabbitmq as provision
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


def gone(pid: int) -> bool:
    """Exited; a zombie has (reaping an orphan is PID 1's job, slow in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def round_trip(url: str) -> bytes:
    """Publish a persistent message to a fresh queue and fetch it back."""
    queue = f"knobs-test-{uuid.uuid4().hex}"
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        channel = conn.channel()
        channel.queue_declare(queue, auto_delete=True)
        channel.basic_publish("", queue, b"hello", pika.BasicProperties(delivery_mode=2))
        method, _, body = channel.basic_get(queue, auto_ack=True)
        channel.queue_delete(queue)
    assert method is not None, "the message published was not delivered"
    return bytes(body)


def test_the_session_broker_delivers_a_message(rabbitmq_url: str) -> None:
    assert rabbitmq_url.startswith("amqp://knobs:") and rabbitmq_url.endswith("/%2F")
    assert round_trip(rabbitmq_url) == b"hello"


@pytest.mark.slow
def test_two_homes_run_side_by_side_and_stop_leaves_nothing_listening(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    try:
        # Given a home started twice
        a = provision.start_rabbitmq(first)
        assert provision.start_rabbitmq(first)["pid"] == a["pid"]
        # When a second home starts while the first runs
        b = provision.start_rabbitmq(second)
        # Then each has its own node, ports, epmd and password, recorded in a 0600 state file
        assert a["node"] != b["node"] and a["pid"] != b["pid"]
        for key in ("port", "dist_port", "epmd_port"):
            assert a[key] != b[key], key
        assert runtime.read_state(first, "rabbitmq") == a
        for home in (first, second):
            assert mode(home / "run" / "rabbitmq.json") == 0o600
            assert mode(home / "rabbitmq" / "password") == 0o600
            assert mode(home / "rabbitmq" / ".erlang.cookie") == 0o400
        assert (first / "rabbitmq" / ".erlang.cookie").read_text() != (
            second / "rabbitmq" / ".erlang.cookie").read_text()
        # And every port it opened listens on loopback only
        for key in ("port", "dist_port", "epmd_port"):
            assert listening(a[key]) and listening(a[key]) <= {"127.0.0.1", "::1"}, key
        assert round_trip(a["url"]) == b"hello" and round_trip(b["url"]) == b"hello"
        wrong_password = a["url"].replace(a["password"], b["password"])
        with pytest.raises(ProbableAuthenticationError):
            pika.BlockingConnection(pika.URLParameters(wrong_password)).close()
        assert provision.rabbitmq_status(first)["running"] is True
        assert not {"password", "url"} & provision.rabbitmq_status(first).keys()
        # When the first stops
        assert provision.stop_rabbitmq(first) is True
        # Then nothing of it runs or listens, and the second is untouched
        assert provision.rabbitmq_status(first) == {"running": False}
        assert gone(a["pid"]) and gone(a["epmd_pid"])
        for key in ("port", "dist_port", "epmd_port"):
            assert listening(a[key]) == set(), key
        assert provision.rabbitmq_status(second)["running"] is True
    finally:
        provision.stop_rabbitmq(first)
        provision.stop_rabbitmq(second)
    for key in ("port", "dist_port", "epmd_port"):
        assert listening(b[key]) == set(), key


@pytest.mark.slow
def test_restart_keeps_durable_messages_and_a_lost_state_file_is_recovered(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        # Given a durable queue holding a persistent message
        state = provision.start_rabbitmq(home)
        with pika.BlockingConnection(pika.URLParameters(state["url"])) as conn:
            channel = conn.channel()
            channel.queue_declare("kept", durable=True)
            channel.basic_publish("", "kept", b"survives", pika.BasicProperties(delivery_mode=2))
        # A node whose state file was lost is adopted, not started twice
        runtime.clear_state(home, "rabbitmq")
        assert provision.start_rabbitmq(home)["pid"] == state["pid"]
        # When the node stops and starts again
        provision.stop_rabbitmq(home)
        again = provision.start_rabbitmq(home)
        # Then it has the same password and node, and the message is still there
        assert again["password"] == state["password"] and again["node"] == state["node"]
        assert again["pid"] != state["pid"]
        with pika.BlockingConnection(pika.URLParameters(again["url"])) as conn:
            _, _, body = conn.channel().basic_get("kept", auto_ack=True)
        assert body == b"survives"
    finally:
        provision.stop_rabbitmq(home)


def test_stopping_a_home_that_never_started_is_a_no_op(tmp_path: Path) -> None:
    assert provision.stop_rabbitmq(tmp_path) is False
    assert provision.rabbitmq_status(tmp_path) == {"running": False}


def test_the_node_name_is_private_to_the_home(tmp_path: Path) -> None:
    name = provision.node_name(tmp_path / "a")
    assert name.startswith("knobs-") and name.endswith("@localhost")
    assert name == provision.node_name(tmp_path / "a")
    assert name != provision.node_name(tmp_path / "b")
