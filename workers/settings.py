"""Settings of the workers (prefix KNOBS_WORKERS_): which broker, where artifacts go, limits.

The embedded default needs nothing: Dramatiq's StubBroker, in-process. The distributed
path reads the broker URL that `knobs services up --rabbitmq|--redis` recorded under
$KNOBS_HOME/run/ (the file format is that command's contract; workers do not import it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from events.settings import knobs_home

BrokerKind = Literal["stub", "rabbitmq", "redis"]


class BrokerNotConfigured(RuntimeError):
    """The settings name a broker that is neither configured nor running."""


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KNOBS_WORKERS_")

    broker: BrokerKind = "stub"
    broker_url: str | None = None
    """Default: the RabbitMQ or Redis that `knobs services up` started for this KNOBS_HOME."""
    queue: str = "knobs.train"
    """The training queue; give each event log sharing one broker its own."""
    artifacts_dir: Path | None = None
    """Default: $KNOBS_HOME/artifacts."""
    train_time_limit_s: int = 3600
    """Wall-clock limit of one training attempt; the child process is killed past it."""
    max_retries: int = 2
    """Retries after an infrastructure error (store unreachable, ...); a failed run is not retried."""
    threads: int = 1
    """Concurrent runs per worker process (1 per GPU; CPU runs share the cores anyway)."""
    progress_every_s: float = 2.0
    """At most one RunProgressed event per attempt this often."""

    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir or knobs_home() / "artifacts"

    def resolved_broker_url(self) -> str | None:
        if self.broker == "stub" or self.broker_url:
            return self.broker_url
        state_file = knobs_home() / "run" / f"{self.broker}.json"
        if not state_file.exists():
            raise BrokerNotConfigured(
                f"KNOBS_WORKERS_BROKER={self.broker} but no {self.broker} runs for "
                f"KNOBS_HOME={knobs_home()}: run `knobs services up --{self.broker}` or set "
                "KNOBS_WORKERS_BROKER_URL"
            )
        url = json.loads(state_file.read_text()).get("url")
        if not isinstance(url, str):
            raise BrokerNotConfigured(f"{state_file} records no url: restart the service")
        return url
