"""Settings of the face (prefix KNOBS_API_) and how the other packages' settings resolve.

Each package reads its own prefix (KNOBS_EVENTS_, KNOBS_NEO4J_, KNOBS_API_). When no Neo4j
or PostgreSQL address is configured, the ones `knobs services up` started for this
KNOBS_HOME are used (they record themselves under $KNOBS_HOME/run).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KNOBS_API_")

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    """An admin token from the environment (for deployments); more live in $KNOBS_HOME."""
    read_token: str | None = None
    # Per-token request limits (token bucket; a token may carry its own, `knobs token create
    # --rate-per-s`). Generous: 50 clients sharing one token stay well under them.
    rate_per_s: float = 500.0
    burst: int = 1000
    # Failed token checks per client address: guessing tokens is throttled to about one a second.
    failed_auth_per_s: float = 1.0
    failed_auth_burst: int = 20
    cypher_timeout_s: float = 10.0
    cypher_row_limit: int = 1000
    max_batch: int = 10_000
    neo4j_retry_time_s: float = 3.0
    """How long a request retries an unreachable Neo4j before answering 503 with Retry-After; the
    driver's own 30 s (KNOBS_NEO4J_RETRY_TIME_S, kept by the CLI and the projector) would hold
    every graph read that long while Neo4j restarts."""
    cypher_max_chars: int = Field(default=65_536, ge=1)
    """The longest Cypher text the read-only gate reads (API, MCP, CLI); graph/readonly.py."""
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    """A request body's limit: max_batch events of ~3 KB (RunCompleted, the largest posted often,
    is ~2.2 KB) or one RankingDerived of 100k runs (~15 MB) fit; services/api/limits.py."""
    max_url_chars: int = Field(default=8192, ge=1)
    """A request's path and query string together."""
    max_header_bytes: int = Field(default=16 * 1024, ge=1)
    """A request's headers, names and values together (uvicorn's h11 limit applies only to
    headers that arrive in pieces)."""
