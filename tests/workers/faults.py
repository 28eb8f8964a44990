"""What the fault-matrix rows of the workers share: the broker environments, a fleet of real
worker and dispatcher processes that can be killed and restarted by role, and the one check
every row ends with (each run ended once, trained once in effect)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from events.models.experiments import TERMINAL_TYPES, run_stream
from tests.workers.conftest import BENCHMARKS, Log, Processes
from workers.attempt import attempt_slug

LEASE_S = "6"
"""Short, so a killed holder's run is taken over within seconds; long enough that a holder on a
loaded 2-core machine still renews in time (renewals come every third of it)."""


def broker_env(log: Log, broker: str, url: str, **extra: str) -> dict[str, str]:
    """Worker and dispatcher environment on `broker`, with a queue of this test's own."""
    env = {**os.environ, "KNOBS_HOME": str(log.home), "KNOBS_WORKERS_BROKER": broker,
           "KNOBS_WORKERS_BROKER_URL": url, "KNOBS_WORKERS_QUEUE": f"q-{log.experiment}",
           "KNOBS_WORKERS_PROGRESS_EVERY_S": "0.5", "KNOBS_WORKERS_LEASE_S": LEASE_S,
           # Redis gives a killed worker's messages back only through a live worker's maintenance:
           # look on every fetch, and call a worker dead after 3 s without a heartbeat.
           "KNOBS_WORKERS_REDIS_HEARTBEAT_TIMEOUT_S": "3",
           "KNOBS_WORKERS_REDIS_MAINTENANCE_CHANCE": "1000000"}
    return {**env, **extra}


@dataclass
class Fleet:
    """Named worker and dispatcher processes; a killed one is restarted under its name."""

    procs: Processes
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: Counter[str] = field(default_factory=Counter)

    def start(self, name: str) -> None:
        role = name.rstrip("0123456789")
        self.running[name] = self.procs.start(role)

    def kill(self, name: str) -> None:
        proc = self.running[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills[name.rstrip("0123456789")] += 1

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)


def attempt_segments(log: Log, run_id: str) -> list[str]:
    """The attempts that wrote to a run's stream, in log order, consecutive repeats merged."""
    segments: list[str] = []
    for stored in log.store.read_stream(run_stream(log.experiment, run_id)):
        attempt = stored.data.get("attempt")
        if attempt and (not segments or segments[-1] != attempt):
            segments.append(str(attempt))
    return segments


def assert_each_run_ended_once_and_trained_once(log: Log, run_ids: list[str]) -> None:
    """The observable for "no run trains twice in effect":

    - one terminal event, a RunCompleted, with the run's facts once (RunRecorded, each score);
    - the claims were serial: no attempt wrote to the stream after another attempt claimed it
      (every later append is made at the version the writer last saw, so an overtaken
      attempt cannot slip one in) — two attempts never trained it side by side, each writing;
    - the ending is the last claimant's, and the run's artifact directory holds that attempt's
      checkpoint alone: whatever an earlier attempt trained left nothing behind.
    """
    artifacts = log.home / "artifacts" / log.experiment
    for run_id in run_ids:
        terminals = [e for e in log.terminals(run_id) if e.event_type in TERMINAL_TYPES]
        assert len(terminals) == 1, f"{run_id}: {len(terminals)} terminal events"
        assert terminals[0].event_type == "RunCompleted", terminals[0].data
        assert log.count("RunRecorded", run_id) == 1
        assert log.count("BenchmarkScored", run_id) == len(BENCHMARKS)
        segments = attempt_segments(log, run_id)
        assert len(segments) == len(set(segments)), f"{run_id}: interleaved attempts {segments}"
        claims = [e.data["attempt"] for e in log.events("RunStarted") if e.data["run_id"] == run_id]
        assert set(segments) == set(claims), f"{run_id}: an attempt wrote without a claim"
        ending = terminals[0].data["attempt"]
        assert ending == claims[-1] == segments[-1], f"{run_id}: ended by {ending}, not the last claim"
        left = sorted(p.name for p in (artifacts / run_id).iterdir())
        assert left == [attempt_slug(ending)], f"{run_id}: attempt directories {left}"
        assert Path(str(terminals[0].data["artifact"])).is_relative_to(artifacts / run_id / left[0])
