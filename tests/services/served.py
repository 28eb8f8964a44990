"""A real `knobs serve` in a subprocess on a free loopback port, for tests that talk HTTP to it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def knobs_serve(env: dict[str, str], start_timeout_s: float = 60) -> Iterator[str]:
    """Start `knobs serve` with `env`, wait until /v1/health answers, yield its base URL, stop it.
    A server that does not come up fails with its own output, so the cause is in the report."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "services.cli.main", "serve", "--port", str(port)],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_timeout_s
    while True:
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code < 500:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            out = server.stdout.read().decode() if server.stdout else ""
            server.kill()
            raise RuntimeError(f"knobs serve did not start on {url}:\n{out[-3000:]}")
        time.sleep(0.3)
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
