"""The dashboard benchmark runs end to end at its quick size: a real `knobs serve`, Debian's Chromium
driven by Playwright, the pandas + matplotlib side. No timing is asserted (performance goals live in
bench/README.md, never in tests): only that it prints its table, ratios and checks, that the browser
saw every run and one bar per parameter, and that the JSON has the same shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import dashboard


@pytest.mark.slow
def test_dashboard_benchmark_quick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    if not Path(dashboard.CHROMIUM).exists():
        pytest.skip(f"no {dashboard.CHROMIUM}: scripts/ensure-system-packages.sh installs Debian's chromium")
    # Given no Neo4j configured: the benchmark starts one of its own (and wipes nothing shared)
    for name in ("KNOBS_NEO4J_URI", "KNOBS_NEO4J_USER", "KNOBS_NEO4J_PASSWORD", "KNOBS_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "figures.json"

    # When it runs at the quick size
    code = dashboard.main(["--quick", "--json", str(out), "--workdir", str(tmp_path / "work")])
    printed = capsys.readouterr().out

    # Then it succeeds and prints both pages, both figure sides, the ratios, the machine and its checks
    assert code == 0, printed
    for line in ("knobs experiment page (Chromium)", "knobs ranking page (Chromium)",
                 "pandas groupby + matplotlib barh + savefig", "knobs plot ranking, in process",
                 "experiment load over pandas figure", "ranking load over pandas figure",
                 "what each side does:", "machine:", "checks: ok"):
        assert line in printed, line

    # And the JSON has every figure: cold and warm loads with both timings per page, what the
    # browser counted (every run, one bar per parameter), both figure sides, positive ratios
    figures = json.loads(out.read_text())
    quick = dashboard.QUICK
    assert figures["runs"] == quick["runs"] and len(figures["parameters"]) == quick["parameters"]
    assert set(figures["rankings"]) == set(figures["benchmarks"]) and len(figures["benchmarks"]) == 2
    pages = figures["pages"]
    assert set(pages) == {"experiment", "ranking"}
    for page in pages.values():
        assert len(page["loads"]) == quick["loads"]
        for load in [page["cold"], *page["loads"]]:
            assert load["ttfb_ms"] >= 0 and load["load_ms"] >= load["ttfb_ms"] and load["html_bytes"] > 0
    assert pages["experiment"]["marks"] == quick["runs"]
    assert pages["ranking"]["marks"] == quick["parameters"]
    assert len(figures["figures"]["pandas_s"]) == len(figures["figures"]["knobs_plot_s"]) == 2
    assert figures["figures"]["pandas_order"] == figures["knobs_order"]
    assert set(figures["ratios"]) == {"experiment_load_over_pandas_figure", "ranking_load_over_pandas_figure",
                                      "knobs_plot_over_pandas_figure"}
    assert all(v > 0 for v in figures["ratios"].values())
    assert figures["errors"] == [] and figures["checks"]["ok"] is True
    assert (tmp_path / "work" / "knobs-tornado.png").read_bytes()[:4] == b"\x89PNG"
