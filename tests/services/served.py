"""A real `knobs serve` in a subprocess on a free loopback port, for tests that talk HTTP to it."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(server: subprocess.Popen[bytes], url: str, output: IO[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            server.wait()
            output.seek(0)
            out = output.read().decode(errors="replace")
            raise RuntimeError(f"knobs serve did not start on {url}:\n{out[-3000:]}")
        time.sleep(0.3)


@contextmanager
def knobs_serve(env: dict[str, str], start_timeout_s: float = 60) -> Iterator[str]:
    """Start `knobs serve` with `env`, wait until /v1/health answers, yield its base URL, stop it.
    A server that does not come up fails with its own output, so the cause is in the report.

    Its output goes to a file, not a pipe: nobody reads a pipe while the tests run, and once
    uvicorn's access log filled the pipe's 64 KiB the server blocked on its next log line."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen([sys.executable, "-m", "services.cli.main", "serve", "--port", str(port)],
                                  env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        _wait_until_up(server, url, output, start_timeout_s)
        try:
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
