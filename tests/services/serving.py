"""A real `knobs serve` (a child process on a free port) and a client that appends through it
without pause, recording every answer: the fault rows that stop a backing service mid-work."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def knobs_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment of a `knobs` process on `home`: none of the caller's KNOBS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNOBS_")}
    return {**env, "PYTHONPATH": str(ROOT), "KNOBS_HOME": str(home), **settings}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    """`knobs serve` on a free port, its output in a file under `home`."""

    def __init__(self, env: dict[str, str], home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"serve-{self.port}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli.main", "serve", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def __enter__(self) -> Served:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"knobs serve exited:\n{self.log.read_text()}")
            try:
                self.client.get("/v1/health")
                return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.__exit__(None)  # `with` calls __exit__ only after __enter__ returned
        raise AssertionError(f"knobs serve did not answer in 120 s:\n{self.log.read_text()}")

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


@dataclass
class Answer:
    status: int
    retry_after: str | None
    body: dict[str, Any]
    at: float


@dataclass
class AppendingClient:
    """Appends a run and its score per request, in a thread, until stopped; keeps every answer
    and every acknowledged event id."""

    served: Served
    headers: dict[str, str]
    answers: list[Answer] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> AppendingClient:
        self._thread = threading.Thread(target=self._loop, name="appending-client", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)

    def _loop(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            run = f"r{i}-{uuid.uuid4().hex[:8]}"
            events = [
                {"type": "RunRecorded", "data": {"experiment": "faults", "run_id": run,
                                                 "params": {"lr": [0.1, 0.01, 0.001][i % 3]}}},
                {"type": "BenchmarkScored", "data": {"experiment": "faults", "run_id": run,
                                                     "benchmark": "acc", "value": i % 17 / 17}},
            ]
            try:
                resp = self.served.client.post("/v1/events", json={"events": events}, headers=self.headers)
            except httpx.TransportError as exc:
                self.answers.append(Answer(0, None, {"detail": str(exc)}, time.monotonic()))
                continue
            body = resp.json()
            self.answers.append(Answer(resp.status_code, resp.headers.get("retry-after"), body,
                                       time.monotonic()))
            if resp.status_code == 201:
                self.acked.update({r["event_id"]: r["position"] for r in body["results"]})
            # A steady trickle, not a flood: the row is about outages, not throughput.
            time.sleep(0.05 if resp.status_code == 201 else 0.1)

    def since(self, moment: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.at >= moment]

    def wait_for(self, moment: float, status: int, n: int, timeout_s: float = 180) -> None:
        """Until `n` answers with `status` came after `moment`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(a.status == status for a in self.since(moment)) >= n:
                return
            time.sleep(0.05)
        seen = [a.status for a in self.since(moment)]
        raise AssertionError(f"not {n} answers {status} in {timeout_s} s; answers since: {seen[-20:]}")
