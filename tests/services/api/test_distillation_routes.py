"""`GET /v1/lenses/...`, `/v1/pairs/{pair}/cloud` and `/v1/distillation/models` over the small
distillation log, in a real Neo4j."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context
from tests.graph.distillation_log import DistillationLog, distillation_log


@pytest.fixture
def built(knobs_env: dict[str, str]) -> Iterator[tuple[TestClient, DistillationLog]]:
    with Context() as ctx:
        log = distillation_log(ctx.store())
        ctx.catch_up()
    with TestClient(create_app(Context())) as c:
        token = create_token(Path(knobs_env["KNOBS_HOME"]), "reader", "read")
        c.headers["Authorization"] = f"Bearer {token}"
        yield c, log


def rows(client: TestClient, path: str, **params: str) -> list[dict[str, object]]:
    resp = client.get(path, params=params)
    assert resp.status_code == 200, (path, resp.text)
    body = resp.json()
    assert body["truncated"] is False
    return list(body["rows"])


def test_distillation_routes_answer_from_the_graph(built: tuple[TestClient, DistillationLog]) -> None:
    client, log = built
    survival = rows(client, "/v1/lenses/survival")
    assert [(r["lens"], r["accepted"], r["assessed"]) for r in survival] == [
        ("restate", 2, 2), ("restate", 5, 6), ("child", 4, 6), ("causal", 3, 6)]
    assert survival[3]["reasons"] == [["duplicate", 3]]
    assert [r["lens"] for r in rows(client, "/v1/lenses/survival", distillation=log.b)] == ["restate"]

    diversity = rows(client, "/v1/lenses/diversity", distillation=log.a)
    assert [r["lens"] for r in diversity] == ["child", "causal", "restate"]
    assert diversity[0]["novelty"] == 1.0 and diversity[2]["repeats_other_lenses"] == 1

    cloud = rows(client, "/v1/pairs/q2/cloud", distillation=log.a)
    assert [(r["lens"], r["sample"], r["accepted"]) for r in cloud] == [
        ("causal", 0, True), ("causal", 1, False), ("child", 0, False), ("child", 1, False),
        ("restate", 0, True), ("restate", 1, True)]
    assert cloud[2]["reasons"] == ["too_short"] and cloud[0]["cloud_accepted"] == 3
    assert len(rows(client, "/v1/pairs/q2/cloud")) == 7
    assert rows(client, "/v1/pairs/nope/cloud") == []

    models = rows(client, "/v1/distillation/models")
    assert [(r["model"], r["engine"], r["distillates"]) for r in models] == [
        ("tiny-instruct", "llm", 18), ("template", "template", 3)]

    # Read scope is needed, as on every route
    assert client.get("/v1/lenses/survival", headers={"Authorization": ""}).status_code == 401
    # An empty distillation means "every distillation", as elsewhere
    assert len(rows(client, "/v1/distillation/models", distillation="")) == 2
