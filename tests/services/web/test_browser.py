"""The dashboard as a person uses it, in headless Chromium against a real `knobs serve`:
log in, read the pages, follow a ranking down to its citation, watch a run train."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.services.web.conftest import EXPERIMENT, ROOT, Dashboard, Visit, login

LIVE_SPEC = """\
name: live
executor: train
design: {method: ofat, seed: 0}
base: {n_layer: 1, n_head: 2, d_model: 32, train_tokens: 30000, n_people: 8}
factors:
  n_layer: {values: [1, 2]}
seeds: [0]
benchmarks: [heldout_loss]
"""


def every_page(d: Dashboard) -> dict[str, str]:
    return {
        "experiments": "/ui/",
        "experiment": f"/ui/experiments/{EXPERIMENT}",
        "ranking-bleu": f"/ui/rankings/{d.rankings['bleu_dev']}",
        "ranking-ppl": f"/ui/rankings/{d.rankings['ppl_dev']}",
        "audit": f"/ui/audit/{d.rankings['bleu_dev']}",
        "matrix": f"/ui/experiments/{EXPERIMENT}/matrix",
        "influence": "/ui/influence",
        "influence-dataset": "/ui/influence/datasets/facts.jsonl",
        "distillation": "/ui/distillation",
        "distillation-clouds": f"/ui/distillation/{d.cloud}",
        "pair-cloud": f"/ui/distillation/{d.cloud}/pairs/q1",
        "repetition": "/ui/repetition/rep",
    }


def test_every_page_loads_without_console_errors_and_is_photographed(visit: Visit) -> None:
    for name, path in every_page(visit.dashboard).items():
        visit.goto(path)
        assert visit.page.locator("main h1").count() == 1, name
        shot = visit.screenshot(name)
        assert shot.stat().st_size > 10_000
    assert visit.console_errors == []


def test_the_tornado_has_one_bar_per_ranked_parameter_in_rank_order(visit: Visit) -> None:
    d = visit.dashboard
    for benchmark, ranking_id in d.rankings.items():
        recorded = d.api(f"/v1/rankings/{ranking_id}")
        expected = [p["name"] for p in sorted(recorded["parameters"], key=lambda p: p["rank"])]
        visit.goto(f"/ui/rankings/{ranking_id}")
        bars = visit.page.locator("svg.tornado g.bar")
        assert bars.evaluate_all("els => els.map(e => e.dataset.param)") == expected, benchmark
        assert bars.evaluate_all("els => els.map(e => Number(e.dataset.rank))") == list(
            range(1, len(expected) + 1))
        # The chart states its data and links to the JSON it was drawn from
        caption = visit.page.locator("figure.figure figcaption").first
        expect(caption).to_contain_text(ranking_id)
        expect(caption).to_contain_text(benchmark)
        assert caption.locator("a.json").get_attribute("href") == f"/v1/rankings/{ranking_id}"
    assert visit.console_errors == []


def test_a_figures_json_link_opens_with_the_login_cookie(visit: Visit) -> None:
    ranking_id = visit.dashboard.rankings["bleu_dev"]
    visit.goto(f"/ui/rankings/{ranking_id}")
    visit.page.locator("figure.figure a.json").first.click()
    visit.page.wait_for_load_state("load")
    assert visit.page.url.endswith(f"/v1/rankings/{ranking_id}")
    assert f'"ranking_id":"{ranking_id}"' in visit.page.content().replace(" ", "")


def test_clicking_through_from_a_ranking_reaches_a_citation(visit: Visit) -> None:
    visit.goto("/ui/")
    visit.page.locator(f'tr[data-experiment="{EXPERIMENT}"] a.ranking-link', has_text="bleu_dev").click()
    visit.page.wait_for_url("**/ui/rankings/**")
    visit.page.locator("a.audit-link").click()
    visit.page.wait_for_url("**/ui/audit/**")
    citation = visit.page.locator("a.citation").first
    expect(citation).to_contain_text("Vaswani")
    visit.screenshot("audit")
    assert visit.console_errors == []


def test_a_read_only_token_sees_everything_and_changes_nothing(visit: Visit, browser: Browser) -> None:
    d = visit.dashboard
    visit.goto(f"/ui/experiments/{EXPERIMENT}")
    expect(visit.page.locator("form.rank-now button")).to_be_disabled()
    # Even a hand-made POST with the read-only cookie is refused and appends nothing
    before = d.api("/v1/rankings")["rows"]
    post = ("async (url) => (await fetch(url, {method: 'POST', "
            "body: new URLSearchParams({benchmark: 'bleu_dev'})})).status")
    status = visit.page.evaluate(post, f"/ui/experiments/{EXPERIMENT}/rank")
    assert status == 403
    assert d.api("/v1/rankings")["rows"] == before
    # A write token may rank from the page: a new recorded ranking, shown at once
    context = browser.new_context()
    page = context.new_page()
    login(page, d, d.write_token)
    page.goto(d.url + f"/ui/experiments/{EXPERIMENT}")
    page.select_option("form.rank-now select", "ppl_dev")
    page.click("form.rank-now button")
    page.wait_for_url("**/ui/rankings/**")
    expect(page.locator("main h1")).to_contain_text("ppl_dev")
    context.close()


def test_pages_need_a_token_kept_in_a_strict_httponly_cookie(browser: Browser, dashboard: Dashboard) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(dashboard.url + f"/ui/rankings/{dashboard.rankings['bleu_dev']}")
    assert "/ui/login" in page.url  # sent to the login form, which comes back here after
    page.fill("input[name=token]", "knobs_not-a-token")
    page.click("form.login button[type=submit]")
    expect(page.locator("p.error")).to_contain_text("not known")
    page.fill("input[name=token]", dashboard.read_token)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"**/ui/rankings/{dashboard.rankings['bleu_dev']}")
    [cookie] = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # no script can read the token
    context.close()
    # Without the cookie the API still wants its bearer token
    assert httpx.get(dashboard.url + "/v1/rankings", timeout=10).status_code == 401


def test_the_status_page_updates_while_a_run_trains(visit: Visit, tmp_path: Path) -> None:
    d = visit.dashboard
    spec = tmp_path / "live.yaml"
    spec.write_text(LIVE_SPEC)
    training = subprocess.Popen([sys.executable, "-m", "services.cli.main", "experiment", "run", str(spec)],
                                env=d.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Given the experiment declared (its page exists once the request is in the log)
        visit.page.wait_for_timeout(500)
        for _ in range(240):
            if httpx.get(d.url + "/ui/experiments/live/status.json", timeout=5,
                         headers={"Authorization": f"Bearer {d.read_token}"}).status_code == 200:
                break
            visit.page.wait_for_timeout(250)
        visit.goto("/ui/experiments/live")
        first_done = int(visit.page.locator("#done").inner_text())
        assert first_done < 2, "both runs ended before the page could watch them"
        # When the runs train, then the page follows them without a reload
        url = visit.page.url
        expect(visit.page.locator("#done")).to_have_text("2", timeout=240_000)
        expect(visit.page.locator('#runs tr[data-state="completed"]')).to_have_count(2)
        assert visit.page.url == url
        expect(visit.page.locator("#live")).to_have_text("")
        visit.screenshot("experiment-live")
    finally:
        training.wait(timeout=300)
    assert training.returncode == 0, training.stderr.read().decode() if training.stderr else ""
    assert visit.console_errors == []
