"""`knobs services install|up|down|status`: every local service of a KNOBS_HOME at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.infra import llm, neo4j, postgres, rabbitmq, redis

# What `up`/`status` print of a service's state: never its password, nor a URL that holds one.
_SECRET = ("password", "url", "api_key")


def install() -> None:
    neo4j.install()


def up(home: Path, *, with_neo4j: bool = True, with_postgres: bool = False,
       with_rabbitmq: bool = False, with_redis: bool = False, with_llm: bool = False,
       http: bool = False) -> dict[str, Any]:
    started: dict[str, Any] = {}
    if with_neo4j:
        state = neo4j.start_neo4j(home, http=http)
        started["neo4j"] = {k: v for k, v in state.items() if k != "password"}
    if with_postgres:
        state = postgres.start_postgres(home)
        started["postgres"] = {k: v for k, v in state.items() if k not in _SECRET}
    if with_rabbitmq:
        state = rabbitmq.start_rabbitmq(home)
        started["rabbitmq"] = {k: v for k, v in state.items() if k not in _SECRET}
    if with_redis:
        state = redis.start_redis(home)
        started["redis"] = {k: v for k, v in state.items() if k not in _SECRET}
    if with_llm:
        state = llm.start_llm(home)
        started["llm"] = {k: v for k, v in state.items() if k not in _SECRET}
    return started


def down(home: Path) -> dict[str, bool]:
    had_postgres = bool(postgres.postgres_status(home)["running"])
    postgres.stop_postgres(home)
    return {"neo4j": neo4j.stop_neo4j(home), "postgres": had_postgres,
            "rabbitmq": rabbitmq.stop_rabbitmq(home), "redis": redis.stop_redis(home),
            "llm": llm.stop_llm(home)}


def status(home: Path) -> dict[str, Any]:
    return {"home": str(home), "neo4j": neo4j.neo4j_status(home),
            "postgres": postgres.postgres_status(home),
            "rabbitmq": rabbitmq.rabbitmq_status(home), "redis": redis.redis_status(home),
            "llm": llm.llm_status(home)}
