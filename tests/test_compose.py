"""docker-compose.yml stays valid and complete (this machine has no Docker engine to run it)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_declares_the_deployment_with_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"neo4j", "postgres", "rabbitmq", "api", "projector", "dispatcher", "worker"}
    assert services["neo4j"]["image"].startswith("neo4j:5.26")
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
    assert services["projector"]["command"][:3] == ["knobs", "graph", "project"]
    assert services["worker"]["command"] == ["knobs", "worker"]
    assert services["worker"]["build"]["args"]["EXTRAS"] == "[workers]"
    assert services["worker"]["environment"]["KNOBS_WORKERS_BROKER"] == "rabbitmq"
    assert (ROOT / "Dockerfile").exists()
