"""The influence, distillation and repetition pages over small logs in a real Neo4j: each page
answers with the marks its data implies, an unknown id is a 404 page that says what to do, and a
visitor without a token is sent to the login form."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from events.models import RunRecorded
from events.models.distillation import (
    Checks,
    CloudAssessed,
    DistillateAssessed,
    DistillationRequested,
    assessment_key,
    cloud_key,
    distillate_id,
    distillate_key,
    distillation_id,
)
from events.models.shift import (
    DataSet,
    DatasetFigures,
    DatasetShiftMeasured,
    ExampleFigures,
    ModelState,
    ShiftMeasured,
    ShiftRequested,
    ShiftSettings,
    TrackedDocument,
    TrainingInfluenceRecorded,
)
from events.store.blobs import put_blob
from events.store.port import EventStore
from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context
from services.distillation.embeddings import EMBEDDER
from tests.graph.distillation_log import LENSES, PAIR_SET, PAIRS, _generated, distillation_log, keyed, ref
from tests.graph.logs import append, used
from tests.services.repetition.small_log import repetition_log

DATA = "d" * 64
EXAMPLES = 7
SHIFTS = [0.5, 0.7, 1.0, 1.2, 2.0, 4.0, 9.0]


def _tokens(i: int) -> list[dict[str, object]]:
    return [{"position": p, "token": 100 + p, "text": w, "token_loss": 0.5 * p if p else None,
             "saliency": float(p + i), "grad_x_input": 0.1 * p}
            for p, w in enumerate(["The", " cat", " sat"])]


def shift_log(store: EventStore) -> str:
    """One measurement of a 7-example data set (tokens kept for chunk 0 only), one run tracking
    three training documents; the measurement id."""
    model = ModelState(kind="directory", ref="gpt2", path="/m/gpt2", sha256="b" * 64)
    data = DataSet(sha256=DATA, name="facts.jsonl", path="/data/facts.jsonl", examples=EXAMPLES)
    mid = "m-pages"
    append(store, ShiftRequested(measurement_id=mid, model=model, dataset=data,
                                 settings=ShiftSettings(lr=0.01, chunk=4, tokens=True), chunks=2))
    chunks = []
    for chunk, ids in enumerate([range(0, 4), range(4, EXAMPLES)]):
        blob = put_blob(json.dumps({f"x{i}": _tokens(i) for i in ids}).encode()) if chunk == 0 else None
        rows = [ExampleFigures(id=f"x{i}", index=i, tokens=3, targets=2, loss_before=2.0 + 0.1 * i,
                               grad_norm=SHIFTS[i], loss_after=2.0, loss_drop=0.1 * i - 0.2) for i in ids]
        chunks += append(store, ShiftMeasured(measurement_id=mid, dataset_sha256=DATA, chunk=chunk,
                                              examples=rows, tokens_sha256=blob))
    mean = sum(SHIFTS) / EXAMPLES
    sd = (sum((s - mean) ** 2 for s in SHIFTS) / EXAMPLES) ** 0.5
    append(store, DatasetShiftMeasured(
        measurement_id=mid, dataset_sha256=DATA, model_sha256=model.sha256,
        figures=DatasetFigures(examples=EXAMPLES, total_shift=sum(SHIFTS), net_shift=10.0, coherence=0.5,
                               volatility=sd / mean, grad_norm_mean=mean, grad_norm_p50=1.2,
                               grad_norm_p90=4.0, grad_norm_max=9.0, noise_scale=0.3, truncated=0),
        used_events=used(store, chunks)))
    append(store, RunRecorded(experiment="tracked", run_id="r1", params={"lr": 0.1}, seed=0))
    append(store, TrainingInfluenceRecorded(
        experiment="tracked", run_id="r1", every=10, steps=[10, 20],
        volatility_curve=[{"step": 10, "v": 0.1}],
        influence_sha256="c" * 64,
        documents=[TrackedDocument(index=i, text=f"doc {i}", recordings=2, confidence=c, variability=v,
                                   correctness=k, forgetting_events=f, never_learned=n, final_loss=1.0,
                                   final_grad_norm=1.0)
                   for i, (c, v, k, f, n) in enumerate([(0.9, 0.05, 1.0, 0, False), (0.5, 0.3, 0.5, 1, False),
                                                        (0.1, 0.02, 0.0, 0, True)])]))
    return mid


@dataclass
class Cloud:
    distillation: str
    ids: dict[tuple[str, int], str]  # (lens, sample) -> distillate id
    stored: int  # distillates with a stored embedding


def cloud_log(store: EventStore, home: Path) -> Cloud:
    """A distillation of pair q1 through the three lenses, two samples each, with embeddings stored
    as the worker stores them, except restate #1's; causal #1 a duplicate of causal #0, child #1
    too short. The source pair's embedding is in the worker's cache index."""
    refs = [ref(lens) for lens in LENSES]
    did = distillation_id(PAIR_SET.sha256, refs, 2, "llm", "cloud-model", Checks())
    request = DistillationRequested(distillation_id=did, pair_set=PAIR_SET, pairs=PAIRS, lenses=refs,
                                    samples=2, engine="llm", model="cloud-model")
    store.append([keyed(request, f"distill-requested:{did}")])
    pair = PAIRS[0]
    generated = [_generated(did, pair, lens, s, "llm", "cloud-model") for lens in LENSES for s in range(2)]
    store.append([keyed(g, distillate_key(did, pair.id, g.lens, g.sample)) for g in generated])
    rng = np.random.default_rng(0)
    assessed, ids, stored = [], {}, 0
    for g in generated:
        ids[(g.lens, g.sample)] = g.distillate_id
        vector = rng.normal(size=8).astype(np.float32)
        vector /= np.linalg.norm(vector)
        if (g.lens, g.sample) == ("restate", 1):
            sha = hashlib.sha256(b"never stored").hexdigest()
        else:
            sha = put_blob(vector.tobytes())
            stored += 1
        reasons = {("causal", 1): ["duplicate"], ("child", 1): ["too_short"]}.get((g.lens, g.sample), [])
        dup = distillate_id(did, pair.id, "causal", 0) if reasons == ["duplicate"] else None
        assessed.append(DistillateAssessed(
            distillation_id=did, distillate_id=g.distillate_id, pair_id=pair.id, accepted=not reasons,
            reasons=reasons, similarity=0.8, chars=len(g.text), duplicate_of=dup,
            duplicate_cosine=0.97 if dup else None, embedding_sha256=sha))
    store.append([keyed(a, assessment_key(a.distillate_id)) for a in assessed])
    store.append([keyed(CloudAssessed(distillation_id=did, pair_id=pair.id, generated=6, accepted=4,
                                      diversity=0.4, vendi=3.1), cloud_key(did, pair.id))])
    source = rng.normal(size=8).astype(np.float32)
    digest = hashlib.sha256(f"{EMBEDDER}\n{pair.question} {pair.answer}".encode()).hexdigest()
    index = home / "cache" / "embeddings" / digest[:2] / digest
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(put_blob((source / np.linalg.norm(source)).tobytes()))
    return Cloud(did, ids, stored)


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
