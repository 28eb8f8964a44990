"""The influence, distillation and repetition pages over small logs in a real Neo4j: each page
answers with the marks its data implies, an unknown id is a 404 page that says what to do, and a
visitor without a token is sent to the login form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context
from tests.graph.distillation_log import distillation_log
from tests.services.repetition.small_log import repetition_log
from tests.services.web.page_logs import DATA, EXAMPLES, Cloud, cloud_log, shift_log


@dataclass
class Built:
    client: TestClient
    measurement: str
    cloud: Cloud
    small_a: str


@pytest.fixture
def built(knobs_env: dict[str, str]) -> Iterator[Built]:
    home = Path(knobs_env["KNOBS_HOME"])
    with Context() as ctx:
        measurement = shift_log(ctx.store())
        small = distillation_log(ctx.store())
        cloud = cloud_log(ctx.store(), home)
        repetition_log(ctx.store(), "rep")
        ctx.catch_up()
    with TestClient(create_app(Context())) as client:
        client.cookies.set("knobs_token", create_token(home, "reader", "read"))
        yield Built(client, measurement, cloud, small.a)


def ok(client: TestClient, path: str) -> str:
    resp = client.get(path)
    assert resp.status_code == 200, (path, resp.status_code, resp.text[-2000:])
    assert resp.headers["content-type"].startswith("text/html")
    return resp.text


def svgs(html: str, kind: str) -> list[str]:
    return re.findall(rf'<svg class="chart {kind}".*?</svg>', html, flags=re.S)


def json_links(client: TestClient, html: str) -> None:
    """Every figure's JSON link answers (with the read token's cookie: the same scope)."""
    for href in re.findall(r'<a class="json" href="([^"]+)"', html):
        resp = client.get(href.replace("&amp;", "&"))
        assert resp.status_code == 200, (href, resp.text[-500:])


def test_influence_pages(built: Built) -> None:
    client = built.client
    index = ok(client, "/ui/influence")
    assert index.count('class="dataset-link"') == 1 and "facts.jsonl" in index
    # The tracked documents' cartography: one point per document, confidence against variability
    [carto] = svgs(index, "scatter")
    assert carto.count("<circle") == 3 and "variability" in carto and "confidence" in carto
    json_links(client, index)

    for key in (DATA, "facts.jsonl"):  # by sha256 or by file name
        page = ok(client, f"/ui/influence/datasets/{key}")
        [hist] = svgs(page, "histogram")
        counts = [int(c) for c in re.findall(r'<rect class="hist"[^>]*data-count="(\d+)"', hist)]
        assert sum(counts) == EXAMPLES
        [shift_map] = svgs(page, "scatter")
        assert shift_map.count("<circle") == EXAMPLES and "loss before" in shift_map
        # The most volatile first, tokens shaded for those the measurement kept tokens of (chunk 0)
        rows = re.findall(r'<tr data-example="(x\d)">', page)
        assert rows == ["x6", "x5", "x4", "x3", "x2", "x1", "x0"]
        spans = re.findall(r'<span class="tok"[^>]*data-saliency="([^"]+)"', page)
        assert len(spans) == 4 * 3 and float(spans[0]) == 3.0  # x3's tokens come first: saliency 3, 4, 5
        assert page.count("knobs shift measure --tokens") == 3
        json_links(client, page)

    missing = client.get("/ui/influence/datasets/nope.jsonl")
    assert missing.status_code == 404 and "knobs shift measure" in missing.text and "<html" in missing.text


def test_distillation_pages(built: Built) -> None:
    client, cloud = built.client, built.cloud
    index = ok(client, "/ui/distillation")
    assert index.count('class="distillation-link"') == 3
    assert re.search(r'<table class="data" id="survival">.*?</table>', index, flags=re.S)
    assert "diversity added" in index
    report = ok(client, f"/ui/distillation/{cloud.distillation}")
    assert report.count('class="pair-link"') == 3  # the request's three pairs, q1 distilled
    json_links(client, report)
    assert client.get(f"/v1/distillations/{cloud.distillation}").json()["generated"] == 6

    page = ok(client, f"/ui/distillation/{cloud.distillation}/pairs/q1")
    [scatter] = svgs(page, "scatter")
    points = re.findall(r"<circle [^>]*>", scatter)
    drawn = [p for p in points if 'data-mark="source"' not in p]
    assert len(drawn) == cloud.stored == 5
    assert {re.search(r'data-group="([^"]+)"', p).group(1) for p in drawn} == {"restate", "child", "causal"}  # type: ignore[union-attr]
    legend = re.findall(r'<g class="legend">.*?<text[^>]*>([^<]+)</text>', scatter)
    assert legend == ["restate", "child", "causal"]
    rejected = [p for p in drawn if "data-mark" in p]
    assert sorted(re.search(r'data-mark="(\w+)"', p).group(1) for p in rejected) == ["duplicate", "rejected"]  # type: ignore[union-attr]
    assert any("too_short" in p for p in rejected) and any("duplicate of" in p for p in rejected)
    assert sum('data-mark="source"' in p for p in points) == 1
    assert "1 of 6 distillates have no stored embedding" in page
    assert "Where was Anya Petrova born?" in page  # the source pair
    json_links(client, page)
    projection = client.get(f"/v1/distillations/{cloud.distillation}/pairs/q1/projection").json()
    assert len(projection["points"]) == 5 and projection["missing"] == [cloud.ids[("restate", 1)]]

    # The small log's embeddings were never stored: the page says so and draws nothing
    none = ok(client, f"/ui/distillation/{built.small_a}/pairs/q2")
    assert 'id="no-embeddings"' in none and "None of the 6 distillates" in none and not svgs(none, "scatter")

    for path, hint in ((f"/ui/distillation/{cloud.distillation}/pairs/q9", "lists its pairs"),
                       ("/ui/distillation/nope", "knobs distill list")):
        resp = client.get(path)
        assert resp.status_code == 404 and hint in resp.text and "<html" in resp.text


def test_repetition_page(built: Built) -> None:
    client = built.client
    page = ok(client, "/ui/repetition/rep")
    [curves] = svgs(page, "curves")
    assert sorted(re.findall(r'<g class="series" data-series="([^"]+)"', curves)) == ["lenses", "verbatim"]
    assert curves.count('<line class="ci"') == 4 and "(log scale)" in curves
    assert len(re.findall(r'<g class="fit"', curves)) == 2
    # The K x condition table: two K rows, the difference at K=2 beyond noise
    table = re.search(r'<table class="data k-table">.*?</table>', page, flags=re.S)
    assert table and len(re.findall(r'<tr data-k="', table.group(0))) == 2
    assert "better beyond noise" in table.group(0)
    assert "Allen-Zhu" in page and "/v1/repetition/rep" in page
    json_links(client, page)

    resp = client.get("/ui/repetition/nope")
    assert resp.status_code == 404 and "knobs experiment list" in resp.text


def test_pages_need_a_login(built: Built) -> None:
    client = built.client
    client.cookies.clear()
    for path in ("/ui/influence", f"/ui/influence/datasets/{DATA}", "/ui/distillation",
                 f"/ui/distillation/{built.cloud.distillation}/pairs/q1", "/ui/repetition/rep"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/ui/login?next="), path
