"""A real `knobs serve` at debug level, bound beyond loopback: it warns that tokens travel in
clear, and no token it is shown, valid, invalid or revoked, by header, cookie, login form or
URL, appears anywhere in what it prints."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.access.tokens import create_token, revoke
from services.cli.serve_cmd import is_loopback, plaintext_warning

ROOT = Path(__file__).resolve().parents[3]
ENV_ADMIN = "deployment-admin-secret-4f9a1c"


def test_only_loopback_or_tls_goes_without_a_warning() -> None:
    for host in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"):
        assert is_loopback(host) and plaintext_warning(host, None) is None
    for host in ("0.0.0.0", "::", "192.168.1.5", "knobs.example.org"):
        warning = plaintext_warning(host, None)
        assert warning and "travel in clear" in warning and "--ssl-certfile" in warning
        assert plaintext_warning(host, Path("cert.pem")) is None


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_no_token_appears_in_the_servers_output(knobs_env: dict[str, str]) -> None:
    home = Path(knobs_env["KNOBS_HOME"])
    valid = create_token(home, "valid", "append")
    revoked = create_token(home, "revoked", "read")
    revoke(home, "revoked")
    invalid = "knobs_0badc0de_thisIsNotAKnownTokenButLooksLikeOne"
    port = _port()
    env = {**knobs_env, "KNOBS_API_TOKEN": ENV_ADMIN, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "serve", "--host", "0.0.0.0", "--port", str(port),
         "--log-level", "debug"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "knobs serve did not start"
                time.sleep(0.3)
        statuses = []
        with httpx.Client(base_url=url, timeout=30) as c:
            for token in (valid, invalid, revoked, ENV_ADMIN):
                statuses.append(c.get("/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code)
                c.cookies.set("knobs_token", token)
                statuses.append(c.get("/ui/").status_code)
                c.cookies.clear()
                statuses.append(c.get(f"/v1/events?token={token}&access_token={token}").status_code)
                statuses.append(c.post("/ui/login", data={"token": token, "next": "/ui/"}).status_code)
            statuses.append(c.post("/v1/events", json={"events": "not a list"},
                                   headers={"Authorization": f"Bearer {valid}"}).status_code)
        assert 401 in statuses and 400 in statuses and 200 in statuses and 422 in statuses
    finally:
        server.terminate()
        stdout, stderr = server.communicate(timeout=30)
    out = stdout.decode() + stderr.decode()
    # The log did record the requests (so the check below looks at something)...
    assert "GET /v1/events" in out and "token=***" in out and "401 Unauthorized" in out
    # ...the warning about plain HTTP beyond loopback was printed...
    assert "without TLS" in stderr.decode() and "travel in clear" in stderr.decode()
    # ...and no secret, nor the secret part of any token, is anywhere in it
    for token in (valid, invalid, revoked, ENV_ADMIN):
        secret = token.split("_", 2)[-1]
        assert token not in out and secret not in out, f"a token leaked into the log:\n{out[-3000:]}"
    assert os.environ.get("KNOBS_API_TOKEN") != ENV_ADMIN
