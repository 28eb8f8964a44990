"""The audit and matrix pages (services/web/evidence_routes.py) on the bundled Vaswani 2017
table, in a real Neo4j, through the app `knobs serve` runs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import services
from services.access.tokens import create_token
from services.api.app import create_app
from services.core.context import Context
from services.importing.results import import_results
from services.ranking.matrix import disagreements
from services.ranking.rank import RankingOutcome, rank

EXPERIMENT = "vaswani2017-table3"
TABLE = Path(services.__file__).parent / "data" / "vaswani2017_table3.csv"
BENCHMARKS = ("bleu_dev", "ppl_dev")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)
    inside: list[Element] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def content(self) -> str:
        return " ".join("".join(self.text).split())

    def find(self, tag: str) -> Element:
        return next(e for e in self.inside if e.tag == tag)


class Page(HTMLParser):
    """Every element of a page with its attributes and text, for selecting like a browser test."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        for outer in self._open:
            outer.inside.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if all(e.tag != tag for e in self._open):
            return
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text.append(data)

    def select(self, tag: str, cls: str | None = None, attr: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (cls is None or cls in e.classes)
                and (attr is None or attr in e.attrs)]

    def by_id(self, ident: str) -> Element:
        return next(e for e in self.elements if e.attrs.get("id") == ident)


def _client() -> TestClient:
    return TestClient(create_app(Context()), follow_redirects=False)


@dataclass
class Ranked:
    client: TestClient
    outcomes: dict[str, RankingOutcome]
    home: Path


@pytest.fixture
def imported(knobs_env: dict[str, str]) -> Path:
    with Context() as ctx:
        import_results(ctx, TABLE, EXPERIMENT)
        ctx.catch_up()
    return Path(knobs_env["KNOBS_HOME"])


@pytest.fixture
def ranked(imported: Path) -> Iterator[Ranked]:
    with Context() as ctx:
        outcomes = {b: rank(ctx, EXPERIMENT, b) for b in BENCHMARKS}
        ctx.catch_up()
    with _client() as client:
        client.headers["Authorization"] = f"Bearer {create_token(imported, 'reader', 'read')}"
        yield Ranked(client, outcomes, imported)


def get(client: TestClient, path: str, status: int = 200) -> Page:
    resp = client.get(path)
    assert resp.status_code == status, (path, resp.status_code, resp.text[:2000])
    assert resp.headers["content-type"].startswith("text/html")
    return Page(resp.text)


def test_audit_page_leads_from_the_ranking_to_its_runs_events_and_citation(ranked: Ranked) -> None:
    client, outcome = ranked.client, ranked.outcomes["bleu_dev"]
    ranking = outcome.ranking
    page = get(client, f"/ui/audit/{ranking.ranking_id}")

    runs = {e.attrs["data-run"] for e in page.select("tr", attr="data-run")}
    used_runs = set(ranking.baseline_runs) | {r for p in ranking.parameters for v in p.values for r in v.runs}
    assert used_runs and used_runs <= runs
    assert len(runs) == len(ranking.used_events) // 2  # a RunRecorded and a BenchmarkScored each
    base = next(e for e in page.select("tr", attr="data-run") if e.attrs["data-run"] == "base")
    assert "the baseline" in base.content() and "n_head=8" in base.content() and "25.8" in base.content()
    heads = next(e for e in page.select("tr", attr="data-run") if e.attrs["data-run"] == "A-heads-1")
    assert heads.find("summary").content() == "n_head=1"

    positions = [int(e.attrs["data-position"]) for e in page.select("tr", attr="data-position")]
    assert positions == sorted(u.position for u in ranking.used_events)
    types = {e.attrs["data-type"] for e in page.select("tr", attr="data-position")}
    assert types == {"RunRecorded", "BenchmarkScored"}
    hashes = [e.content() for e in page.select("code", cls="hash")]
    assert all(len(h) == 64 for h in hashes) and len(hashes) >= len(positions) + 2

    # The ranking's own event, its code version, and the JSON the page was drawn from
    assert f"#{outcome.position}" in page.by_id("ranking-event").content()
    assert ranking.code_version in page.select("p", cls="meta")[0].content()
    json_links = {a.attrs["href"] for a in page.select("a", cls="json")}
    assert f"/v1/rankings/{ranking.ranking_id}/audit" in json_links

    # One citation, the paper's table; following its link gives the SourceCited event
    citations = page.select("a", cls="citation")
    assert len(citations) == 1
    assert citations[0].content().startswith("Vaswani et al. 2017, Attention Is All You Need")
    event = client.get(citations[0].attrs["href"]).json()["events"][0]
    assert event["type"] == "SourceCited" and event["data"]["citation"] == citations[0].content()
    # ... and an event link gives that event
    first = client.get(f"/v1/events?after={positions[0] - 1}&limit=1").json()["events"][0]
    assert first["position"] == positions[0]
    event_links = {a.attrs["href"] for a in page.select("a", cls="event-link")}
    assert f"/v1/events?after={positions[0] - 1}&limit=1" in event_links

    chain = page.by_id("chain")
    assert chain.attrs["data-status"] == "verified" and "verified" in chain.content()
    assert page.by_id("graph").attrs["data-status"] == "consistent"
    assert not page.select("li", cls="problem")

    # A log changed behind the store's back: the chain's first bad position, in red
    with sqlite3.connect(ranked.home / "events.sqlite3") as conn:
        conn.execute("UPDATE events SET data = replace(data, '25.8', '29.9') WHERE position = ?",
                     (positions[1],))
    chain = get(client, f"/ui/audit/{ranking.ranking_id}").by_id("chain")
    assert chain.attrs["data-status"] == "broken" and "error" in chain.classes
    assert chain.attrs["data-first-bad"] == str(positions[1])


def test_matrix_page_marks_where_the_benchmarks_disagree(ranked: Ranked) -> None:
    client = ranked.client
    with Context() as ctx:
        before = ctx.store().read_all()[-1].position
    page = get(client, f"/ui/experiments/{EXPERIMENT}/matrix")
    with Context() as ctx:
        assert ctx.store().read_all()[-1].position == before  # the page never ranks

    cells = page.select("g", cls="cell")
    parameters = {p.name for o in ranked.outcomes.values() for p in o.ranking.parameters}
    assert {c.attrs["data-column"] for c in cells} == set(BENCHMARKS)
    assert {c.attrs["data-row"] for c in cells} == parameters
    assert len(cells) == len(parameters) * len(BENCHMARKS)
    labels = [t.content() for t in page.select("text", cls="label")]
    assert sorted(labels) == sorted(parameters)  # one heat-map row per parameter

    # Marked exactly where the matrix module (what `knobs rank --all-benchmarks` prints) says
    found = disagreements(ranked.outcomes)
    assert found, "the bundled table has knobs the two benchmarks disagree about"
    expected = {(d.parameter, b) for d in found for b in d.benchmarks}
    marked = {(c.attrs["data-row"], c.attrs["data-column"]) for c in cells if "marked" in c.classes}
    assert marked == expected
    listed = {(r.attrs["data-parameter"], r.attrs["data-kind"])
              for r in page.select("tr", attr="data-parameter")}
    assert listed == {(d.parameter, d.kind) for d in found}

    # Each cell says the knob's rank there; the figure names its data and links to its JSON
    bleu = ranked.outcomes["bleu_dev"].ranking
    top = next(p.name for p in bleu.parameters if p.rank == 1)
    cell = next(c for c in cells if c.attrs["data-row"] == top and c.attrs["data-column"] == "bleu_dev")
    assert cell.content().startswith(f"{top} on bleu_dev: #1")
    caption = page.select("figcaption")[0].content()
    assert bleu.ranking_id in caption and ranked.outcomes["ppl_dev"].ranking.ranking_id in caption
    json_url = page.select("a", cls="json")[0].attrs["href"]
    assert json_url == f"/v1/experiments/{EXPERIMENT}/matrix"
    rows = client.get(json_url).json()["rows"]
    assert {r["ranking_id"] for r in rows} == {o.ranking.ranking_id for o in ranked.outcomes.values()}


def test_pages_ask_for_a_login_and_say_what_to_do(imported: Path) -> None:
    token = create_token(imported, "reader", "read")
    with _client() as client:
        for path in ("/ui/audit/anything", f"/ui/experiments/{EXPERIMENT}/matrix"):
            resp = client.get(path)
            assert resp.status_code == 303
            assert resp.headers["location"].startswith("/ui/login?next=")

        matrix = f"/ui/experiments/{EXPERIMENT}/matrix"
        login = client.post("/ui/login", data={"token": token, "next": matrix})
        assert login.status_code == 303 and login.headers["location"] == matrix

        # Nothing ranked yet: no matrix, and the command that ranks
        page = get(client, f"/ui/experiments/{EXPERIMENT}/matrix")
        assert not page.select("g", cls="cell")
        assert page.select("code", cls="command")[0].content() == (
            f"knobs rank --experiment {EXPERIMENT} --all-benchmarks")
        assert "bleu_dev, ppl_dev" in page.by_id("no-rankings").content()

        missing = get(client, "/ui/audit/no-such-ranking", status=404)
        assert "knobs events --type RankingDerived" in missing.select("p", cls="error")[0].content()
        missing = get(client, "/ui/experiments/no-such-experiment/matrix", status=404)
        message = missing.select("p", cls="error")[0].content()
        assert "no experiment named 'no-such-experiment'" in message and EXPERIMENT in message
