"""Dashboard benchmark: the pages of a 10,000-run experiment in headless Chromium, against drawing the
same tornado chart with pandas + matplotlib.

    .venv/bin/python -m bench.dashboard [--runs N] [--parameters P] [--benchmarks B] [--loads L]
                                        [--figure-repeats R] [--quick] [--json OUT] [--workdir DIR]
                                        [--chromium PATH]

The store is bench.rank's: a generated one-at-a-time study (a baseline and each parameter varied
alone, many seeds; 10,000 runs x 10 parameters x 5 benchmarks by default) imported through
`knobs import results`' own path into a SQLite log under a temporary KNOBS_HOME and projected
into a real Neo4j, then ranked on every benchmark (RankingDerived events). To give the experiment
a status page, the same runs are then declared and carried through their lifecycle as a worker
would record it (ExperimentDeclared; RunRequested, RunStarted, RunProgressed, RunCompleted per
run), so the page lists 10,000 finished runs.

A real `knobs serve` is started on a free loopback port with a write token; Debian's Chromium,
driven by Playwright (`executable_path`, `--no-sandbox`), logs in through the form as a person
would (the token kept in its HttpOnly cookie) and loads the experiment page and the current
ranking page of the first benchmark: one cold load, then `--loads` more. Each load is read from
the Navigation Timing API: time to first byte = responseStart - requestStart, complete load =
loadEventEnd - startTime. The alternative a user would otherwise reach for is timed beside it:
pandas `groupby` over the runs (a DataFrame already in memory) for each parameter's effects,
then matplotlib `barh` + `savefig` to a PNG; and knobs' own file figure, `knobs plot ranking`'s
work in process (the recorded event drawn to PNG). The printout says what each side does;
README.md (Performance) has the figures. No figure is asserted anywhere: tests/bench only runs
`--quick` and checks the output's shape.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import in_workdir, machine, table
from bench.rank import EXPERIMENT, Workload, api_server, generate, import_and_project, timed, write_csv
from services.web.routes import SHOWN_RUNS

CHROMIUM = "/usr/bin/chromium"
QUICK = {"runs": 60, "parameters": 3, "benchmarks": 2, "loads": 2, "figure_repeats": 2}

NAVIGATION = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  return {ttfb_ms: n.responseStart - n.requestStart, load_ms: n.loadEventEnd - n.startTime,
          response_end_ms: n.responseEnd - n.startTime,
          dom_ready_ms: n.domContentLoadedEventEnd - n.startTime,
          transfer_bytes: n.transferSize, html_bytes: n.decodedBodySize};
}"""
LOADED = """() => {
  const n = performance.getEntriesByType("navigation")[0];
  return n && n.loadEventEnd > 0;
}"""


# --- the experiment's lifecycle, as a worker records it -------------------------------------


def lifecycle(workload: Workload) -> list[Any]:
    """ExperimentDeclared, then per run RunRequested, RunStarted, RunProgressed and RunCompleted,
    with deterministic ids (the same workload, the same events)."""
    from events.models.experiments import (
        ExperimentDeclared,
        RunCompleted,
        RunProgressed,
        RunRequested,
        RunStarted,
    )
    from events.store.identity import new_event

    spec = {"name": EXPERIMENT, "executor": "external", "design": {"method": "ofat"},
            "benchmarks": list(workload.benchmarks), "note": "bench.dashboard: bench.rank's generated study"}
    sha = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    run_ids = [str(row["run"]) for row in workload.rows]
    prefix = f"bench-dashboard:{EXPERIMENT}"
    out = [new_event(ExperimentDeclared(name=EXPERIMENT, executor="external", design="ofat", spec=spec,
                                        spec_sha256=sha, run_ids=run_ids,
                                        benchmarks=list(workload.benchmarks)), prefix)]
    for i, row in enumerate(workload.rows):
        run_id = str(row["run"])
        params = {k.removeprefix("param."): v for k, v in row.items() if k.startswith("param.")}
        attempt = f"m{i}/0"
        wall_s = 60.0 + (i % 97)
        scores = {k.removeprefix("score."): float(v) for k, v in row.items() if k.startswith("score.")}
        out += [
            new_event(RunRequested(experiment=EXPERIMENT, run_id=run_id, executor="external", params=params,
                                   seed=int(row["seed"]), benchmarks=list(workload.benchmarks),
                                   estimated_cost={"seconds": 90.0}), prefix),
            new_event(RunStarted(experiment=EXPERIMENT, run_id=run_id, attempt=attempt, worker="bench",
                                 device="cpu"), prefix),
            new_event(RunProgressed(experiment=EXPERIMENT, run_id=run_id, attempt=attempt, step=100,
                                    total_steps=100, loss=2.0 + (i % 13) / 10, tokens=100 * 2048,
                                    elapsed_s=wall_s), prefix),
            new_event(RunCompleted(experiment=EXPERIMENT, run_id=run_id, attempt=attempt, config=params,
                                   costs={"wall_s": wall_s}, device="cpu", scores=scores), prefix),
        ]
    return out


def declare_and_complete(ctx: Any, workload: Workload) -> dict[str, float | int]:
    events = lifecycle(workload)
    start = time.perf_counter()
    for i in range(0, len(events), 5000):
        ctx.store().append(events[i:i + 5000])
    appended = time.perf_counter() - start
    start = time.perf_counter()
    while ctx.catch_up():
        pass
    projected = time.perf_counter() - start
    print(f"  declared the experiment and recorded {len(workload.rows):,} runs' lifecycles ({len(events):,} "
          f"events) in {appended:.1f} s, projected in {projected:.1f} s", flush=True)
    return {"events": len(events), "append_s": appended, "project_s": projected}


# --- the browser ----------------------------------------------------------------------------


@dataclass
class PageTiming:
    page: str
    path: str
    cold: dict[str, float]
    loads: list[dict[str, float]] = field(default_factory=list)
    marks: int = 0
    """What the page drew, counted in the browser: rows of runs, bars of the tornado."""

    def p50(self, key: str) -> float:
        return statistics.median(x[key] for x in self.loads)


def browse(url: str, token: str, pages: dict[str, tuple[str, str]], loads: int,
           chromium: str) -> tuple[dict[str, PageTiming], list[str], str]:
    """Log in through the form, then load each page once cold and `loads` times more."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        version = browser.version
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error"
                    else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.goto(f"{url}/ui/login")
            page.fill("input[name=token]", token)
            with page.expect_navigation():
                page.press("input[name=token]", "Enter")
            if "/ui/login" in page.url:
                raise RuntimeError(f"login with the benchmark's token failed: at {page.url}")
            out: dict[str, PageTiming] = {}
            for name, (path, selector) in pages.items():
                timings = []
                for _ in range(1 + loads):
                    response = page.goto(f"{url}{path}", wait_until="load")
                    if response is None or response.status != 200:
                        raise RuntimeError(f"{path}: HTTP {response.status if response else 'no response'}")
                    page.wait_for_function(LOADED)
                    timings.append(page.evaluate(NAVIGATION))
                out[name] = PageTiming(name, path, timings[0], timings[1:], page.locator(selector).count())
        finally:
            browser.close()
    return out, errors, version


# --- the alternatives: a figure file -----------------------------------------------------------


def pandas_tornado(df: Any, params: Sequence[str], score: str, out: Path) -> list[str]:
    """What a user writes: the baseline (each column's mode), runs differing from it in one column,
    per value mean minus the baseline's mean, each parameter's span, widest first; then pyplot barh
    and savefig. Returns the parameters in the order drawn (top first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = {c: df[c].mode().iloc[0] for c in params}
    differs = df[list(params)].ne(base)
    count = differs.sum(axis=1)
    base_mean = float(df.loc[count == 0, score].mean())
    spans = []
    for c in params:
        effects = df.loc[(count == 1) & differs[c]].groupby(c)[score].mean() - base_mean
        if len(effects):
            spans.append((c, min(float(effects.min()), 0.0), max(float(effects.max()), 0.0)))
    spans.sort(key=lambda s: (-(s[2] - s[1]), s[0]))
    fig, ax = plt.subplots(figsize=(7.2, 1.6 + 0.34 * len(spans)))
    ys = range(len(spans) - 1, -1, -1)
    ax.barh(list(ys), [hi - lo for _, lo, hi in spans], left=[lo for _, lo, _ in spans], color="#4e79a7")
    ax.set_yticks(list(ys), [c.removeprefix("param.") for c, _, _ in spans])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"{score.removeprefix('score.')} - baseline ({base_mean:.4g})")
    ax.set_title(f"Which knobs move {score.removeprefix('score.')}")
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return [c.removeprefix("param.") for c, _, _ in spans]


def bench_figures(df: Any, workload: Workload, ctx: Any, ranking_id: str, repeats: int,
                  workdir: Path) -> dict[str, Any]:
    import matplotlib.pyplot  # noqa: F401  -- imported before the clock on both sides

    from services.figures.mpl import render
    from services.figures.ranking import tornado
    from services.ranking.recorded import recorded_ranking

    benchmark = workload.benchmarks[0]
    params = [f"param.{k.name}" for k in workload.knobs]
    pandas_s: list[float] = []
    order: list[str] = []
    for i in range(repeats):
        png = workdir / f"pandas-tornado-{i}.png"
        s, order = timed(functools.partial(pandas_tornado, df, params, f"score.{benchmark}", png))
        pandas_s.append(s)
    knobs_s: list[float] = []
    size = 0
    for _ in range(repeats):
        s, data = timed(lambda: render(tornado(recorded_ranking(ctx, ranking_id)[1]), "png"))
        knobs_s.append(s)
        size = len(data)
    (workdir / "knobs-tornado.png").write_bytes(data)
    return {"pandas_s": pandas_s, "pandas_order": order, "knobs_plot_s": knobs_s, "knobs_plot_bytes": size,
            "pandas_plot_bytes": (workdir / "pandas-tornado-0.png").stat().st_size}


# --- the run ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=None, help="runs in the experiment (default 10000)")
    p.add_argument("--parameters", type=int, default=None, help="parameters, 1..12 (default 10)")
    p.add_argument("--benchmarks", type=int, default=None, help="benchmarks, 1..7 (default 5)")
    p.add_argument("--seed", type=int, default=20240601, help="generator seed")
    p.add_argument("--loads", type=int, default=None, help="timed loads of each page after the cold one "
                   "(default 7)")
    p.add_argument("--figure-repeats", type=int, default=None,
                   help="timed drawings of each figure side (default 7)")
    p.add_argument("--quick", action="store_true",
                   help=f"the smoke size: {QUICK['runs']} runs, {QUICK['parameters']} parameters, "
                   f"{QUICK['benchmarks']} benchmarks, {QUICK['loads']} loads (options given win)")
    p.add_argument("--chromium", default=CHROMIUM, help=f"the browser Playwright drives (default {CHROMIUM})")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the figures here as JSON")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep the store, CSV, server log and figures here (a new or empty directory)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else {"runs": 10_000, "parameters": 10, "benchmarks": 5, "loads": 7,
                                         "figure_repeats": 7}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.loads < 1 or args.figure_repeats < 1:
        p.error("--loads and --figure-repeats must be at least 1")
    if not Path(args.chromium).exists():
        p.error(f"no browser at {args.chromium}: install Debian's chromium "
                "(scripts/ensure-system-packages.sh) or give --chromium PATH")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        workload = generate(args.runs, args.parameters, args.benchmarks, args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return in_workdir(args.workdir, "knobs-bench-dashboard-", lambda workdir: _run(args, workload, workdir))


def _run(args: argparse.Namespace, workload: Workload, workdir: Path) -> int:
    import pandas as pd

    from bench.ingest import neo4j_connection, wipe_graph
    from services.core.context import Context
    from services.importing.adapters import environment
    from services.ranking.rank import rank
    from services.ranking.recorded import recorded_ranking

    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    started = time.perf_counter()
    n_runs = len(workload.rows)
    info: dict[str, Any] = {
        "machine": machine(), "runs": n_runs, "parameters": [k.name for k in workload.knobs],
        "benchmarks": list(workload.benchmarks), "seed": args.seed, "loads": args.loads,
        "figure_repeats": args.figure_repeats,
    }
    print(f"{n_runs:,} runs x {len(workload.knobs)} parameters x {len(workload.benchmarks)} benchmarks; "
          f"working in {workdir}", flush=True)
    csv_path = workdir / "runs.csv"
    write_csv(workload, csv_path)
    home = workdir / "knobs-home"
    home.mkdir()
    df = pd.read_csv(csv_path)

    with environment(KNOBS_HOME=str(home), KNOBS_EVENTS_BACKEND="sqlite"), \
            neo4j_connection(home) as neo, Context(home=home) as ctx:
        if not neo["started"]:
            wipe_graph(ctx.driver())
        print("knobs: importing the CSV (services.importing.results.import_results) ...", flush=True)
        info["knobs_store"] = import_and_project(ctx, csv_path)
        rankings: dict[str, str] = {}
        for benchmark in workload.benchmarks:
            s, outcome = timed(functools.partial(rank, ctx, EXPERIMENT, benchmark))
            rankings[benchmark] = outcome.ranking.ranking_id
            print(f"  ranked {benchmark} in {s:.1f} s: {outcome.ranking.ranking_id}", flush=True)
        while ctx.catch_up():
            pass
        info["rankings"] = rankings
        info["lifecycle"] = declare_and_complete(ctx, workload)
        ranking_id = rankings[workload.benchmarks[0]]
        pages = {"experiment": (f"/ui/experiments/{EXPERIMENT}", "#runs tbody tr"),
                 "ranking": (f"/ui/rankings/{ranking_id}", "svg.tornado g.bar")}
        print("knobs serve + Chromium ...", flush=True)
        with api_server(home, workdir) as served:
            info["serve_startup_s"] = served.startup_s
            timings, errors, version = browse(served.url, served.token, pages, args.loads, args.chromium)
        info["chromium"] = version
        print("figures: pandas + matplotlib, knobs plot in process ...", flush=True)
        figures = bench_figures(df, workload, ctx, ranking_id, args.figure_repeats, workdir)
        recorded = recorded_ranking(ctx, ranking_id)[1]
        knobs_order = [p.name for p in sorted(recorded.parameters, key=lambda q: q.rank)]
    info["elapsed_s"] = time.perf_counter() - started

    pandas_p50 = statistics.median(figures["pandas_s"]) * 1000
    ratios = {f"{name}_load_over_pandas_figure": t.p50("load_ms") / pandas_p50 for name, t in timings.items()}
    ratios["knobs_plot_over_pandas_figure"] = statistics.median(figures["knobs_plot_s"]) * 1000 / pandas_p50
    checks = {
        "no_console_errors": not errors,
        "experiment_page_lists_its_runs": timings["experiment"].marks == min(n_runs, SHOWN_RUNS),
        "ranking_page_one_bar_per_parameter": timings["ranking"].marks == len(workload.knobs),
        "pandas_order_equals_knobs": figures["pandas_order"] == knobs_order,
    }
    ok = all(checks.values())
    print(report(timings, figures, ratios, info))
    if errors:
        print("browser errors:\n  " + "\n  ".join(errors[:20]))
    print(f"checks: {'ok' if ok else 'FAILED'} ({', '.join(f'{k}: {v}' for k, v in checks.items())})")
    if args.json is not None:
        payload = {**info, "pages": {k: {**asdict(t), "ttfb_ms_p50": t.p50("ttfb_ms"),
                                         "load_ms_p50": t.p50("load_ms")} for k, t in timings.items()},
                   "figures": figures, "ratios": ratios, "knobs_order": knobs_order, "errors": errors,
                   "checks": {**checks, "ok": ok}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 0 if ok else 1


def report(timings: dict[str, PageTiming], figures: dict[str, Any], ratios: dict[str, float],
           info: dict[str, Any]) -> str:
    rows = []
    for t in timings.values():
        load = t.p50("load_ms")
        html = statistics.median(x["html_bytes"] for x in t.loads)
        rows.append([f"knobs {t.page} page (Chromium)", f"{t.p50('ttfb_ms'):.0f}", f"{load:.0f}",
                     f"{t.cold['ttfb_ms']:.0f} / {t.cold['load_ms']:.0f}", f"{html / 1024:,.0f} KiB HTML",
                     str(len(t.loads)), f"{t.path[:28]}{'...' if len(t.path) > 28 else ''}, "
                     f"{t.marks:,} {'runs' if t.page == 'experiment' else 'bars'}"])
    for label, key, size, note in (
        ("pandas groupby + matplotlib barh + savefig", "pandas_s", "pandas_plot_bytes", "DataFrame in RAM"),
        ("knobs plot ranking, in process", "knobs_plot_s", "knobs_plot_bytes", "recorded event -> PNG"),
    ):
        ms = [s * 1000 for s in figures[key]]
        rows.append([label, "", f"{statistics.median(ms):.0f}", f"{ms[0]:.0f}",
                     f"{figures[size] / 1024:,.0f} KiB PNG", str(len(ms)), note])
    m = info["machine"]
    store, life = info["knobs_store"], info["lifecycle"]
    lines = [
        "",
        f"workload: {info['runs']:,} runs x {len(info['parameters'])} parameters x {len(info['benchmarks'])} "
        f"benchmarks (bench.rank's generator, seed {info['seed']}), ranked on every benchmark; store: "
        f"{store['events']:,} imported events + {life['events']:,} lifecycle events; knobs serve started in "
        f"{info['serve_startup_s']:.1f} s; Chromium {info['chromium']}",
        "",
        "milliseconds (p50 of the warm loads / drawings; first = the cold one; a page's time to first byte "
        "is responseStart - requestStart, its load loadEventEnd - startTime, from Navigation Timing):",
        table(["side", "TTFB p50", "load p50", "first (TTFB / load)", "size", "n", "note"], rows),
        "",
        "ratios (p50; > 1 means the knobs side is slower):",
        *(f"  {k.replace('_', ' ')}: {v:.2f}x" for k, v in ratios.items()),
        "",
        "what each side does:",
        "  knobs pages: a real `knobs serve` (uvicorn) on loopback; the browser is logged in (cookie); the "
        "experiment page reads the runs' lifecycles from the log (the first load reads them all, later "
        "ones what was appended since: one Tracker per experiment in the server) and lists the first "
        f"{SHOWN_RUNS} runs, moving ones first, with the rankings; the ranking page reads the recorded "
        "RankingDerived and draws the tornado, knee curves "
        "and cost views as inline SVG; complete load includes the stylesheet (cached after the first load)",
        "  pandas + matplotlib: the runs already in a DataFrame; baseline by mode, one-at-a-time effects by "
        "groupby, spans sorted, pyplot barh + savefig at 150 dpi; no noise, knees, costs or provenance",
        "  knobs plot in process: read the recorded ranking from the log, build the tornado, draw it with "
        "matplotlib (services.figures.mpl) to PNG at 150 dpi",
        "",
        "machine: {cpu}; {cores} cores ({cores_usable} usable); {ram_gib} GiB RAM; "
        "Python {python}; SQLite {sqlite}; {platform}".format(**m),
        f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"whole run {info['elapsed_s']:.0f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
