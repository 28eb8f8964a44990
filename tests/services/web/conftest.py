"""A real `knobs serve` over real data, and headless Chromium (Debian's package, driven by
Playwright's Python package) to look at it as a person would.

The data: Table 3 of Vaswani et al. (2017) imported with its citation and ranked on BLEU and
perplexity (the demo's first experiment), and the small distillation, cloud, shift and
repetition logs the page tests use, projected into a Neo4j of the dashboard's own. Every test
gets a logged-in page whose console errors are collected; screenshots go under
$KNOBS_HOME/screenshots so anyone can look."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from services.access.tokens import create_token
from services.core.context import Context
from services.importing.results import import_results
from services.infra.neo4j import start_neo4j, stop_neo4j
from services.ranking.rank import rank
from tests.graph.distillation_log import distillation_log
from tests.services.repetition.small_log import repetition_log
from tests.services.served import ROOT, knobs_serve
from tests.services.web.page_logs import cloud_log, shift_log

CHROMIUM = Path("/usr/bin/chromium")
VASWANI = ROOT / "services" / "data" / "vaswani2017_table3.csv"
EXPERIMENT = "vaswani2017-table3"


@dataclass
class Dashboard:
    url: str
    home: Path
    env: dict[str, str]
    read_token: str
    write_token: str
    rankings: dict[str, str] = field(default_factory=dict)  # benchmark -> ranking id
    cloud: str = ""  # a distillation whose cloud has stored embeddings

    def api(self, path: str, token: str | None = None) -> Any:
        resp = httpx.get(self.url + path, headers={"Authorization": f"Bearer {token or self.read_token}"},
                         timeout=30)
        resp.raise_for_status()
        return resp.json()


@pytest.fixture(scope="module")
def dashboard_neo4j(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Neo4j of the dashboard's own: other tests empty the session's graph before each test,
    and the server's pages must keep their data for the whole session."""
    home = tmp_path_factory.mktemp("dashboard-neo4j")
    state = start_neo4j(home)
    yield state
    stop_neo4j(home)


@pytest.fixture(scope="module")
def dashboard(dashboard_neo4j: dict[str, Any],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    neo4j_state = dashboard_neo4j
    home = tmp_path_factory.mktemp("dashboard") / "home"
    env = {**os.environ, "KNOBS_HOME": str(home), "KNOBS_NEO4J_URI": neo4j_state["uri"],
           "KNOBS_NEO4J_USER": neo4j_state["user"], "KNOBS_NEO4J_PASSWORD": neo4j_state["password"]}
    saved = {k: os.environ.get(k) for k in env if k.startswith("KNOBS_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("KNOBS_")})
    rankings: dict[str, str] = {}
    try:
        with Context(home) as ctx:
            import_results(ctx, VASWANI, EXPERIMENT)
            ctx.catch_up()
            for benchmark in ("bleu_dev", "ppl_dev"):
                rankings[benchmark] = rank(ctx, EXPERIMENT, benchmark).ranking.ranking_id
            distillation_log(ctx.store())
            cloud = cloud_log(ctx.store(), home).distillation
            shift_log(ctx.store())
            repetition_log(ctx.store(), "rep")
            ctx.catch_up()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with knobs_serve(env) as url:
        yield Dashboard(url=url, home=home, env=env, read_token=create_token(home, "browser-read", "read"),
                        write_token=create_token(home, "browser-write", "write"), rankings=rankings,
                        cloud=cloud)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # A missing browser fails the tests (it is installed by `make setup`), it never skips them.
    # Module scope: Playwright's sync API keeps an event loop running in this thread while it is
    # open, and a later test's asyncio.run() would fail if it outlived this module.
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Visit:
    page: Page
    console_errors: list[str]
    dashboard: Dashboard

    def goto(self, path: str) -> None:
        response = self.page.goto(self.dashboard.url + path)
        assert response is not None and response.ok, (path, response.status if response else None)
        self.page.wait_for_load_state("load")

    def screenshot(self, name: str) -> Path:
        out = self.dashboard.home / "screenshots" / f"{name}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(out), full_page=True)
        return out


def login(page: Page, dashboard: Dashboard, token: str) -> None:
    page.goto(dashboard.url + "/ui/login")
    page.fill("input[name=token]", token)
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/ui/")


@pytest.fixture
def visit(browser: Browser, dashboard: Dashboard) -> Iterator[Visit]:
    """A fresh browser context logged in with the read-only token; console errors collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    login(page, dashboard, dashboard.read_token)
    yield Visit(page, errors, dashboard)
    context.close()
