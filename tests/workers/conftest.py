"""Fixtures for worker tests: a private event log, requested runs, real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from events.models.experiments import TERMINAL_TYPES, RunRequested
from events.settings import EventsSettings
from events.store import EventStore, NewEvent, StoredEvent
from events.store.factory import open_store

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ["heldout_loss", "qa_exact_match"]
TINY = {"n_layer": 1, "n_head": 2, "d_model": 32, "context_length": 64, "n_people": 20,
        "train_tokens": 20_000, "batch_size": 8, "tokenizer": "char"}
"""A run that trains in a few seconds on a CPU."""


@dataclass
class Log:
    home: Path
    store: EventStore
    experiment: str = field(default_factory=lambda: f"exp-{uuid.uuid4().hex[:8]}")

    def request(self, run_id: str, **params: Any) -> None:
        event = RunRequested(experiment=self.experiment, run_id=run_id, executor="train",
                             params={**TINY, **params}, varied=sorted(params), seed=0,
                             benchmarks=BENCHMARKS)
        self.store.append([NewEvent(event=event, idempotency_key=f"test-request:{self.experiment}/{run_id}")])

    def events(self, *types: str) -> list[StoredEvent]:
        return [e for e in self.store.read_all(types=list(types) or None)
                if e.data.get("experiment") == self.experiment]

    def count(self, event_type: str, run_id: str) -> int:
        return sum(1 for e in self.events(event_type) if e.data["run_id"] == run_id)

    def terminals(self, run_id: str) -> list[StoredEvent]:
        return [e for e in self.events(*TERMINAL_TYPES) if e.data["run_id"] == run_id]

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; log: "
                             + "; ".join(f"#{e.position} {e.event_type} {e.data.get('run_id')}"
                                         for e in self.events()))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    home = tmp_path / "home"
    home.mkdir()
    store = open_store(EventsSettings(sqlite_path=home / "events.sqlite3"))
    try:
        yield Log(home, store)
    finally:
        store.close()


@dataclass
class Processes:
    env: dict[str, str]
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "services.cli.main", *args], cwd=ROOT,
                                env={**self.env, **(extra_env or {})},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def rabbit_env(log: Log, rabbitmq_url: str) -> dict[str, str]:
    """Environment for worker processes on the session's RabbitMQ, with a queue of this test's own."""
    return {**os.environ, "KNOBS_HOME": str(log.home), "KNOBS_WORKERS_BROKER": "rabbitmq",
            "KNOBS_WORKERS_BROKER_URL": rabbitmq_url, "KNOBS_WORKERS_QUEUE": f"q-{log.experiment}",
            "KNOBS_WORKERS_PROGRESS_EVERY_S": "0.2", "KNOBS_WORKERS_LEASE_S": "6"}


@pytest.fixture
def processes(rabbit_env: dict[str, str]) -> Iterator[Processes]:
    procs = Processes(rabbit_env)
    try:
        yield procs
    finally:
        procs.stop_all()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it only waits for its parent to read its status.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
