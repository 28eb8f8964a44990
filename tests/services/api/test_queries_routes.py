"""`GET /v1/queries/...` and the friendly routes over a demo-shaped graph in a real Neo4j."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context
from tests.services import asking_log
from tests.services.asking_log import BLEU_RANKING, DEMO, HELDOUT, HELDOUT_RANKING, QA, QA_RANKING


@pytest.fixture
def client(knobs_env: dict[str, str]) -> Iterator[TestClient]:
    with Context() as ctx:
        asking_log.build(ctx)
    with TestClient(create_app(Context())) as c:
        token = create_token(Path(knobs_env["KNOBS_HOME"]), "reader", "read")
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def test_named_queries_by_name(client: TestClient) -> None:
    listed = client.get("/v1/queries")
    assert listed.status_code == 200, listed.text
    queries = {q["name"]: q for q in listed.json()["queries"]}
    assert {"influence_range", "underused_parameters", "rankings", "knobs_matrix", "knobs_for_benchmark",
            "ranking_provenance", "rankings_using_run"} <= set(queries)
    assert queries["influence_range"]["parameters"][1] == {
        "name": "benchmark", "required": False,
        "description": "optional: benchmark name; null = every benchmark"}
    assert queries["rankings"]["summary"].startswith("Rankings, newest first")

    ok = client.get("/v1/queries/influence_range", params={"parameter": "lr", "benchmark": HELDOUT})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["query"] == "influence_range" and body["truncated"] is False
    assert body["columns"][:3] == ["parameter", "experiment", "benchmark"]
    [row] = body["rows"]
    assert (row["ranking_id"], row["rank"], row["noise_label"]) == (HELDOUT_RANKING, 1, "distinguishable")
    assert isinstance(row["values"], str), "the generic route returns cells as stored"

    unknown = client.get("/v1/queries/no_such_query")
    assert unknown.status_code == 404 and "influence_range" in unknown.json()["detail"]
    missing = client.get("/v1/queries/influence_range", params={"benchmark": HELDOUT})
    assert missing.status_code == 400 and "needs parameter parameter" in missing.json()["detail"]
    typo = client.get("/v1/queries/influence_range", params={"parameter": "lr", "benchmrk": HELDOUT})
    assert typo.status_code == 400 and "benchmrk" in typo.json()["detail"]
    twice = client.get("/v1/queries/influence_range?parameter=lr&parameter=d_model")
    assert twice.status_code == 400 and "once" in twice.json()["detail"]
    nothing = client.get("/v1/queries/influence_range", params={"parameter": "no_such_knob"})
    assert nothing.status_code == 200 and nothing.json()["rows"] == []
    assert client.get("/v1/queries", headers={"Authorization": ""}).status_code == 401


def test_friendly_routes_decode_json(client: TestClient) -> None:
    def rows(path: str, **params: str) -> list[dict[str, object]]:
        resp = client.get(path, params=params)
        assert resp.status_code == 200, (path, resp.text)
        return list(resp.json()["rows"])

    knobs = rows("/v1/knobs", benchmark=HELDOUT)
    assert [(r["parameter"], r["rank"], r["flagged"]) for r in knobs] == [
        ("lr", 1, True), ("d_model", 2, False)]
    assert knobs[0]["values"][1]["effect"] == pytest.approx(0.4)  # type: ignore[index]
    assert knobs[0]["direction"] == "lower"

    influence = rows("/v1/parameters/lr/influence")
    assert [(r["benchmark"], r["rank"]) for r in influence] == [(HELDOUT, 1), (QA, 2)]
    assert influence[0]["knee"]["status"] == "not_reached"  # type: ignore[index]
    assert rows("/v1/parameters/lr/influence", benchmark=QA)[0]["ranking_id"] == QA_RANKING
    assert rows("/v1/parameters/no_such_knob/influence") == []

    listed = rows("/v1/rankings")
    assert {r["ranking_id"] for r in listed} == {HELDOUT_RANKING, QA_RANKING, BLEU_RANKING}
    assert [r["ranking_id"] for r in rows("/v1/rankings", experiment=DEMO, benchmark=QA)] == [QA_RANKING]
    assert rows("/v1/rankings", method="sobol") == []

    provenance = rows(f"/v1/rankings/{HELDOUT_RANKING}/provenance")
    assert {r["run_id"] for r in provenance} == {"base-s0", "lr=0.001-s0", "d_model=128-s0"}
    assert provenance[0]["parameters"][0]["values"][0]["is_baseline"] is True  # type: ignore[index]
    assert provenance[0]["baseline"] == {"lr": 0.003, "d_model": 64}

    dependents = rows(f"/v1/runs/{DEMO}/base-s0/rankings")
    assert {r["ranking_id"] for r in dependents} == {HELDOUT_RANKING, QA_RANKING}
    assert rows(f"/v1/runs/{DEMO}/no-such-run/rankings") == []

    [flagged] = rows("/v1/underused", benchmark="", experiment=DEMO)
    assert (flagged["parameter"], flagged["flag_kinds"]) == ("lr", ["best_at_edge"])
    assert flagged["flags"][0]["reason"].startswith("best value 0.001")  # type: ignore[index]
    assert flagged["per_cost"][0]["kind"] == "flops"  # type: ignore[index]
    assert rows("/v1/underused", benchmark=QA) == []

    matrix = rows(f"/v1/experiments/{DEMO}/matrix")
    assert [(r["parameter"], r["benchmark"], r["rank"]) for r in matrix] == [
        ("d_model", HELDOUT, 2), ("d_model", QA, 1), ("lr", HELDOUT, 1), ("lr", QA, 2)]
    assert rows(f"/v1/experiments/{DEMO}/matrix", method="morris") == []

    missing = client.get("/v1/knobs")
    assert missing.status_code == 422 and "benchmark" in missing.json()["detail"]
