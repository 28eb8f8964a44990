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
    lease_s: float = 30.0
    """How long a run's claim lasts without a word from its attempt (renewed every third of it):
    a duplicate delivery waits this long for a silent holder before taking the run over. Keep it
    well above the clock skew between the hosts that write the log."""
    redis_heartbeat_timeout_s: float = 60.0
    """Redis: a worker silent this long is dead, and its unacknowledged messages are requeued."""
    redis_maintenance_chance: int = 1000
    """Redis: per million fetches, how often a worker looks for dead workers' messages."""
    distill_queue: str = "knobs.distill"
    """The distillation queue: one message per batch of pairs."""
    distill_time_limit_s: int = 3600
    """Wall-clock limit of one batch (requests, embeddings and checks of `batch_pairs` pairs)."""

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


class LLMSettings(BaseSettings):
    """Where distillation asks (prefix KNOBS_LLM_): explicit settings, else the local server.

    The local server is the one `knobs services up --llm` started for this KNOBS_HOME; its
    state file ($KNOBS_HOME/run/llm.json: base_url, api_key, model) is that command's contract.
    The API key is never written to the log: a worker finds it here, by the server's URL.
    """

    model_config = SettingsConfigDict(env_prefix="KNOBS_LLM_")

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    concurrency: int = 4
    """Requests in flight per worker process."""
    timeout_s: float = 120.0
    """Per request."""
    max_retries: int = 5
    """On 429, 5xx, timeouts and dropped connections, with exponential backoff and jitter."""

    def local_server(self) -> dict[str, str]:
        state_file = knobs_home() / "run" / "llm.json"
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return {}
        return {k: str(v) for k, v in state.items() if k in ("base_url", "api_key", "model")}

    def api_key_for(self, base_url: str) -> str:
        """KNOBS_LLM_API_KEY, else the local server's key when `base_url` is that server."""
        if self.api_key:
            return self.api_key
        local = self.local_server()
        if local.get("base_url", "").rstrip("/") == base_url.rstrip("/"):
            return local.get("api_key", "")
        return ""
