"""The HTTP API against a real store and a real Neo4j: tokens, all-or-nothing appends, read-only Cypher."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.access.tokens import create_token
from services.api.app import create_app


@pytest.fixture
def client(knobs_env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def tokens(knobs_env: dict[str, str]) -> dict[str, dict[str, str]]:
    home = Path(knobs_env["KNOBS_HOME"])
    write = create_token(home, "tests", "write")
    read = create_token(home, "reader", "read")
    return {"write": {"Authorization": f"Bearer {write}"}, "read": {"Authorization": f"Bearer {read}"}}


def run_event(run: str, value: float = 1.0) -> list[dict[str, object]]:
    return [
        {"type": "RunRecorded", "data": {"experiment": "api", "run_id": run, "params": {"lr": 0.1}},
         "idempotency_key": f"run-{run}"},
        {"type": "BenchmarkScored", "data": {"experiment": "api", "run_id": run, "benchmark": "acc",
                                             "value": value}, "idempotency_key": f"score-{run}"},
    ]


def test_append_read_and_idempotency(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    resp = client.post("/v1/events", json={"events": run_event("r1")}, headers=tokens["write"])
    assert resp.status_code == 201, resp.text
    assert resp.json()["positions"] == [1, 2]
    again = client.post("/v1/events", json={"events": run_event("r1")}, headers=tokens["write"])
    assert again.status_code == 201
    assert again.json()["positions"] == [1, 2]
    assert all(r["duplicate"] for r in again.json()["results"])
    listed = client.get("/v1/events", params={"after": 0, "limit": 10}, headers=tokens["read"]).json()
    assert [e["position"] for e in listed["events"]] == [1, 2] and listed["next_after"] == 2


def test_tokens_are_required_and_read_only_tokens_cannot_write(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    assert client.get("/v1/events").status_code == 401
    bad = client.get("/v1/events", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "knobs token create" in bad.json()["detail"]
    resp = client.post("/v1/events", json={"events": run_event("r1")}, headers=tokens["read"])
    assert resp.status_code == 403 and "read-only" in resp.json()["detail"]


def test_a_batch_with_one_bad_event_appends_nothing(
    client: TestClient, tokens: dict[str, dict[str, str]]
) -> None:
    events = [*run_event("r1"), {"type": "BenchmarkScored", "data": {"experiment": "api", "run_id": "r1"}}]
    resp = client.post("/v1/events", json={"events": events}, headers=tokens["write"])
    assert resp.status_code == 422
    assert "events[2]" in resp.json()["detail"] and "benchmark" in resp.json()["detail"]
    unknown = client.post("/v1/events", json={"events": [{"type": "Nope", "data": {}}]},
                          headers=tokens["write"])
    assert unknown.status_code == 422 and "known types" in unknown.json()["detail"]
    shape = client.post("/v1/events", json={"events": []}, headers=tokens["write"])
    assert shape.status_code == 422
    conflict = client.post(
        "/v1/events", json={"events": run_event("r2"), "expected_versions": {"run:api/r2": 5}},
        headers=tokens["write"],
    )
    assert conflict.status_code == 409 and "expected" in conflict.json()["detail"]
    listed = client.get("/v1/events", headers=tokens["read"]).json()
    assert listed["events"] == []


def test_cypher_is_read_only(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    client.post("/v1/events", json={"events": run_event("r1", 0.5)}, headers=tokens["write"])
    client.post("/v1/rankings", json={"experiment": "api", "benchmark": "acc"}, headers=tokens["write"])
    ok = client.post("/v1/cypher", json={"query": "MATCH (r:Run) RETURN r.run_id AS run"},
                     headers=tokens["read"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["columns"] == ["run"]
    for query in ("CREATE (n:X) RETURN n", "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
                  "CALL db.createLabel('X')"):
        refused = client.post("/v1/cypher", json={"query": query}, headers=tokens["read"])
        assert refused.status_code == 403, (query, refused.text)
    broken = client.post("/v1/cypher", json={"query": "MATCH (n RETURN n"}, headers=tokens["read"])
    assert broken.status_code == 400


def test_health_reports_store_neo4j_and_lag(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    client.post("/v1/events", json={"events": run_event("r1")}, headers=tokens["write"])
    body = client.get("/v1/health").json()
    assert body["status"] == "ok"
    assert body["store"] == {"ok": True, "head": 2}
    assert body["projection"]["lag"] == 2


def test_starlette_errors_come_in_the_api_shape(client: TestClient,
                                                tokens: dict[str, dict[str, str]]) -> None:
    # Given routes of one path in different routers (GET and POST /v1/events)
    # When a method the path does not take is sent, Then Allow names every method it does take
    wrong = client.delete("/v1/events", headers=tokens["write"])
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"
    assert wrong.json() == {"error": "MethodNotAllowed",
                            "detail": "DELETE is not allowed on /v1/events; it takes GET, POST"}
    # When a body is not UTF-8, Then the 400 says how to send one
    garbled = client.post("/v1/events", content=b"\xff\xfe{",
                          headers={**tokens["write"], "Content-Type": "application/json"})
    assert garbled.status_code == 400 and "UTF-8 JSON" in garbled.json()["detail"]
    # When a number no reader could hold is sent, Then it is a 422 that names it, never a 500
    huge = client.get("/v1/events", params={"after": 2**64}, headers=tokens["read"])
    assert huge.status_code == 422 and "after" in huge.json()["detail"]
    cypher = client.post("/v1/cypher", json={"query": "RETURN $x", "params": {"x": 2**64}},
                         headers=tokens["read"])
    assert cypher.status_code == 422 and "beyond a 64-bit integer" in cypher.json()["detail"]
