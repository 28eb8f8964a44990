"""Growth benchmark: how import, projection, rebuild and ranking grow from 1k to 100k runs.

    .venv/bin/python -m bench.growth [--sizes 1000,10000,100000] [--parameters P] [--benchmarks B]
                                     [--colds N] [--repeats N] [--json OUT] [--workdir DIR]

For each size, bench.rank's one-at-a-time workload (the same generator, the same seed) goes into a
fresh SQLite log through `knobs import results`' own path and is projected into one real Neo4j
(wiped between sizes), then rebuilt from the log; both in a child process, so that its peak memory
is the load's alone. Then a real `knobs serve` on that home answers: its first ranking (the read
model reads the log, in the background from start-up), `--colds` new rankings of the same evidence
(another bootstrap seed each: computed, appended, projected) and `--repeats` of the first question
(a lookup); the API process's peak resident memory is read from /proc when it is done. The table
gives each figure per size and how it grew per tenfold.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import in_workdir, machine, table

EXPERIMENT = "bench-rank"  # bench.rank's workload names its experiment so


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000", help="runs per store, comma-separated")
    p.add_argument("--parameters", type=int, default=10, help="parameters (default 10)")
    p.add_argument("--benchmarks", type=int, default=5, help="benchmarks (default 5)")
    p.add_argument("--seed", type=int, default=20240601, help="generator seed")
    p.add_argument("--colds", type=int, default=3, help="timed new rankings per size (default 3)")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats per size (default 10)")
    p.add_argument("--no-rebuild", action="store_true", help="skip timing `knobs graph rebuild`")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the figures here as JSON")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep the stores here (a new or empty directory) instead of a temporary one")
    p.add_argument("--load", type=Path, default=None, help=argparse.SUPPRESS)  # the child's job
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes takes whole numbers separated by commas, not {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        p.error("--sizes needs at least one size of 1 run or more")
    for name in ("colds", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    return args


# --- the child: import, project and rebuild one store ----------------------------------------


def load(csv_path: Path, rebuild: bool) -> dict[str, Any]:
    """In the child, with KNOBS_HOME and KNOBS_NEO4J_* set by the parent."""
    from bench.rank import import_and_project
    from graph.schema import ensure_schema
    from services.core.context import Context

    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    with Context() as ctx:
        ensure_schema(ctx.driver())  # constraints and indexes are set-up, not projection (as in bench.ingest)
        figures: dict[str, Any] = dict(import_and_project(ctx, csv_path))
        if rebuild:
            start = time.perf_counter()
            ctx.projector().rebuild()
            figures["rebuild_s"] = time.perf_counter() - start
    return figures


def load_in_child(csv_path: Path, env: dict[str, str], rebuild: bool) -> dict[str, Any]:
    """Run `load` in a child process; its figures and its peak resident memory (MiB)."""
    cmd = [sys.executable, "-m", "bench.growth", "--load", str(csv_path)]
    cmd += [] if rebuild else ["--no-rebuild"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"loading {csv_path} failed with exit {proc.returncode}: {out[-2000:]}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    figures["load_peak_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    return figures


# --- the parent: the API on each store ---------------------------------------------------------


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM: the process's peak resident set, from /proc (Linux)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def rank_through_api(home: Path, workdir: Path, benchmark: str, colds: int, repeats: int) -> dict[str, Any]:
    import httpx

    from bench.rank import api_server, percentile, timed, wait_until_projected

    with api_server(home, workdir) as served, \
            httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.token}"},
                         timeout=1800) as client:
        def post(seed: int) -> dict[str, Any]:
            response = client.post("/v1/rankings", json={"experiment": EXPERIMENT, "benchmark": benchmark,
                                                         "seed": seed})
            if response.status_code != 201:
                raise RuntimeError(f"POST /v1/rankings: {response.status_code} {response.text[:500]}")
            answer: dict[str, Any] = response.json()
            return answer

        def cold_ranking(seed: int) -> tuple[float, float, dict[str, Any]]:
            """Seconds to the answer, seconds until the graph holds the links; the answer."""
            start = time.perf_counter()
            answer = post(seed)
            answered = time.perf_counter() - start
            wait_until_projected(client, 900)
            return answered, time.perf_counter() - start, answer

        first_s, first_linked_s, first = cold_ranking(0)
        colds = [cold_ranking(seed) for seed in range(1, colds + 1)]
        cold, linked = [c[0] for c in colds], [c[1] for c in colds]
        repeat = []
        duplicates = 0
        for _ in range(repeats):
            s, answer = timed(lambda: post(0))
            repeat.append(s)
            duplicates += answer["duplicate"] and answer["ranking_id"] == first["ranking_id"]
        rss = peak_rss_mib(served.pid)
    return {
        "serve_startup_s": served.startup_s, "first_s": first_s, "first_linked_s": first_linked_s,
        "cold_s": cold, "cold_p50_s": percentile(cold, 50), "linked_s": linked,
        "linked_p50_s": percentile(linked, 50), "repeat_s": repeat, "repeat_p50_s": percentile(repeat, 50),
        "repeat_duplicates": duplicates, "used_events": first["used_events"], "api_peak_mib": rss,
    }


def growth(rows: list[dict[str, Any]], key: str) -> list[str]:
    """Per row, the figure's ratio to the previous size's, scaled to a tenfold step in runs."""
    out = [""]
    for before, after in itertools.pairwise(rows):
        a, b = before.get(key), after.get(key)
        if not a or not b:
            out.append("")
            continue
        steps = math.log10(after["runs"] / before["runs"])
        out.append(f"{(b / a) ** (1 / steps):.1f}x" if steps > 0 else "")
    return out


COLUMNS = (
    ("import_s", "import s", "{:.1f}"), ("project_s", "project s", "{:.1f}"),
    ("project_eps", "project ev/s", "{:,.0f}"), ("rebuild_eps", "rebuild ev/s", "{:,.0f}"),
    ("load_peak_mib", "load peak MiB", "{:,.0f}"), ("first_s", "first rank s", "{:.2f}"),
    ("cold_p50_s", "cold p50 s", "{:.3f}"), ("linked_p50_s", "+ links p50 s", "{:.2f}"),
    ("repeat_p50_s", "repeat p50 s", "{:.4f}"),
    ("api_peak_mib", "API peak MiB", "{:,.0f}"),
)


def report(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    body = []
    for row in rows:
        body.append([f"{row['runs']:,}", f"{row['events']:,}",
                     *(fmt.format(row[k]) if row.get(k) is not None else "-" for k, _, fmt in COLUMNS)])
    per_tenfold = {k: growth(rows, k) for k, _, _ in COLUMNS}
    for i in range(1, len(rows)):
        body.append([f"  x per tenfold to {rows[i]['runs']:,}", "",
                     *(per_tenfold[k][i] for k, _, _ in COLUMNS)])
    m = info["machine"]
    return "\n".join([
        "",
        f"{info['parameters']} parameters x {info['benchmarks']} benchmarks, one at a time (bench.rank's "
        f"workload, seed {info['seed']}); ranked on {info['benchmark']!r}; cold = a new ranking of the "
        f"same evidence (p50 of {info['colds']}), repeat = the same question again "
        f"(p50 of {info['repeats']})",
        table(["runs", "events", *(title for _, title, _ in COLUMNS)], body),
        "",
        "machine: {cpu}; {cores} cores ({cores_usable} usable); {ram_gib} GiB RAM; "
        "Python {python}; SQLite {sqlite}; {platform}".format(**m),
        f"whole run {info['elapsed_s']:.0f} s",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load is not None:
        print(json.dumps(load(args.load, rebuild=not args.no_rebuild)))
        return 0
    return in_workdir(args.workdir, "knobs-bench-growth-", lambda workdir: _run(args, workdir))


def _run(args: argparse.Namespace, workdir: Path) -> int:
    from bench.ingest import neo4j_connection, wipe_graph
    from bench.rank import generate, write_csv
    from graph.settings import Neo4jSettings, driver_from

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    benchmark = ""
    with neo4j_connection(workdir / "neo4j-home") as neo:
        env = {**os.environ, "KNOBS_EVENTS_BACKEND": "sqlite", "KNOBS_NEO4J_URI": neo["uri"],
               "KNOBS_NEO4J_USER": neo["user"], "KNOBS_NEO4J_PASSWORD": neo["password"]}
        env.pop("KNOBS_EVENTS_SQLITE_PATH", None)
        driver = driver_from(Neo4jSettings(uri=neo["uri"], user=neo["user"], password=neo["password"]))
        try:
            for runs in args.sizes:
                workload = generate(runs, args.parameters, args.benchmarks, args.seed)
                benchmark = workload.benchmarks[0]
                home = workdir / f"home-{runs}"
                home.mkdir()
                csv_path = workdir / f"runs-{runs}.csv"
                write_csv(workload, csv_path)
                wipe_graph(driver)  # one graph per log: the checkpoint lives in it
                print(f"{runs:,} runs: importing, projecting{'' if args.no_rebuild else ', rebuilding'} ...",
                      flush=True)
                loaded = load_in_child(csv_path, {**env, "KNOBS_HOME": str(home)},
                                       rebuild=not args.no_rebuild)
                row: dict[str, Any] = {"runs": runs, **loaded}
                row["project_eps"] = row["events"] / row["project_s"]
                if "rebuild_s" in row:
                    row["rebuild_eps"] = row["events"] / row["rebuild_s"]
                print(f"{runs:,} runs: ranking through `knobs serve` ...", flush=True)
                saved = dict(os.environ)
                os.environ.update({**env, "KNOBS_HOME": str(home)})
                try:
                    row.update(rank_through_api(home, workdir, benchmark, args.colds, args.repeats))
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
                rows.append(row)
        finally:
            driver.close()
    info = {"machine": machine(), "parameters": args.parameters, "benchmarks": args.benchmarks,
            "benchmark": benchmark, "seed": args.seed, "colds": args.colds, "repeats": args.repeats,
            "elapsed_s": time.perf_counter() - started}
    print(report(rows, info))
    ok = all(row["repeat_duplicates"] == args.repeats for row in rows)
    print(f"checks: {'ok' if ok else 'FAILED'} (every repeat answered with the first ranking: {ok})")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**info, "rows": rows, "ok": ok}, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
