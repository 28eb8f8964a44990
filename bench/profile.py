"""Where the time goes: flame graphs (py-spy) and cProfile tables of the phases issue 14 names.

    .venv/bin/python -m bench.profile [--runs 10000] [--out bench/profiles] [--rate 250]

One generated store (bench.rank's workload at `--runs`, the same seed), one Neo4j of its own (or
KNOBS_NEO4J_* when set; its graph is wiped). Each phase runs in a child process that py-spy
samples from its first instruction to its exit, so a flame graph shows the phase with its start-up;
the same child also writes a cProfile table of the phase alone (its `.txt`, top 40 by cumulative
time). Phases:

- `import`: `knobs import results` of the CSV into the SQLite log;
- `project`: the projector catching the graph up with the whole log;
- `rank-cold`: 5 new rankings of the same evidence (bootstrap seeds 1..5) after a first one;
- `rank-repeat`: 200 repeats of one ranking (the same evidence and options);
- `cli-help`: `knobs --help` (with `python -X importtime` beside it, in `cli-importtime.txt`).

Writes `<phase>.svg`, `<phase>.txt` and `summary.json` (seconds per phase, the machine) into
`--out`. The figures a profile gives are slower than unprofiled ones (sampling and cProfile both
cost); compare phases with each other here, and take speeds from the benchmarks.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import in_workdir, machine

EXPERIMENT = "bench-rank"
PHASES = ("import", "project", "rank-cold", "rank-repeat", "cli-help")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10_000, help="runs in the store (default 10000)")
    p.add_argument("--parameters", type=int, default=10, help="parameters (default 10)")
    p.add_argument("--benchmarks", type=int, default=5, help="benchmarks (default 5)")
    p.add_argument("--seed", type=int, default=20240601, help="generator seed")
    p.add_argument("--out", type=Path, default=Path("bench/profiles"), help="where the profiles go")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default 250)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the store here (new or empty)")
    p.add_argument("--phase", choices=PHASES, default=None, help=argparse.SUPPRESS)  # the child's job
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


# --- in the child ------------------------------------------------------------------------------


def _profiled(out: Path, body: Callable[[], Any]) -> float:
    """Run `body` under cProfile; write the table to `out`; the seconds it took (profiled)."""
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    body()
    profile.disable()
    seconds = time.perf_counter() - start
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(40)
    out.write_text(f"{out.stem}: {seconds:.3f} s under cProfile\n{text.getvalue()}")
    return seconds


def phase(name: str, csv_path: Path, out: Path) -> float:
    from services.core.context import Context
    from services.importing.results import import_results
    from services.ranking.rank import RankOptions, rank

    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    table = out / f"{name}.txt"
    with Context() as ctx:
        if name == "import":
            return _profiled(table, lambda: import_results(ctx, csv_path, EXPERIMENT))
        if name == "project":
            from graph.schema import ensure_schema

            ensure_schema(ctx.driver())  # constraints and indexes are set-up, not projection
            return _profiled(table, ctx.catch_up)
        benchmark = "loss_a"
        rank(ctx, EXPERIMENT, benchmark)  # the read model reads the log; the first ranking exists
        if name == "rank-cold":
            return _profiled(table, lambda: [rank(ctx, EXPERIMENT, benchmark, RankOptions(bootstrap_seed=s))
                                             for s in range(1, 6)])
        return _profiled(table, lambda: [rank(ctx, EXPERIMENT, benchmark) for _ in range(200)])


# --- in the parent -----------------------------------------------------------------------------


def knobs_script() -> list[str]:
    script = Path(sys.executable).parent / "knobs"
    return [str(script)] if script.exists() else [sys.executable, "-m", "services.cli.main"]


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: `make setup` installs the bench extra, which has it")
    return found


def sample(cmd: list[str], svg: Path, rate: int, env: dict[str, str]) -> float:
    """py-spy record of `cmd` from start to exit; wall seconds."""
    start = time.perf_counter()
    done = subprocess.run([py_spy(), "record", "--rate", str(rate), "--output", str(svg), "--format",
                           "flamegraph", "--", *cmd], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} under py-spy exited {done.returncode}: "
                           f"{(done.stdout + done.stderr)[-2000:]}")
    return seconds


def _run(args: argparse.Namespace, workdir: Path) -> int:
    from bench.ingest import neo4j_connection, wipe_graph
    from bench.rank import generate, write_csv
    from graph.settings import Neo4jSettings, driver_from

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    workload = generate(args.runs, args.parameters, args.benchmarks, args.seed)
    csv_path = workdir / "runs.csv"
    write_csv(workload, csv_path)
    home = workdir / "home"
    home.mkdir()
    summary: dict[str, Any] = {"runs": args.runs, "events": args.runs * (1 + args.benchmarks),
                               "machine": machine(), "date": time.strftime("%Y-%m-%d"), "phases": {}}
    with neo4j_connection(workdir / "neo4j-home") as neo:
        env = {**os.environ, "KNOBS_HOME": str(home), "KNOBS_EVENTS_BACKEND": "sqlite",
               "KNOBS_NEO4J_URI": neo["uri"], "KNOBS_NEO4J_USER": neo["user"],
               "KNOBS_NEO4J_PASSWORD": neo["password"]}
        env.pop("KNOBS_EVENTS_SQLITE_PATH", None)
        driver = driver_from(Neo4jSettings(uri=neo["uri"], user=neo["user"], password=neo["password"]))
        try:
            wipe_graph(driver)
        finally:
            driver.close()
        for name in PHASES:
            print(f"profiling {name} ...", flush=True)
            if name == "cli-help":
                cmd = [*knobs_script(), "--help"]
                importtime = subprocess.run(
                    [sys.executable, "-X", "importtime", "-c", "import services.cli.main"],
                    env=env, capture_output=True, text=True, check=True).stderr
                lines = sorted(importtime.splitlines()[1:], key=lambda s: -int(s.split("|")[1]))
                (out / "cli-importtime.txt").write_text(
                    "python -X importtime -c 'import services.cli.main', slowest first (microseconds: "
                    "self | cumulative | module)\n" + "\n".join(lines[:60]) + "\n")
            else:
                cmd = [sys.executable, "-m", "bench.profile", "--phase", name, "--workdir", str(workdir),
                       "--out", str(out)]
            wall = sample(cmd, out / f"{name}.svg", args.rate, env)
            profiled = (out / f"{name}.txt").read_text().split()[1] if name != "cli-help" else None
            summary["phases"][name] = {"wall_s_under_py_spy": wall, "phase_s_under_cprofile": profiled}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, figures in summary["phases"].items():
        print(f"  {name:<12} {figures['wall_s_under_py_spy']:8.2f} s in its process"
              + (f", {figures['phase_s_under_cprofile']} s the phase under cProfile"
                 if figures["phase_s_under_cprofile"] else ""))
    print(f"profiles written to {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase is not None:
        assert args.workdir is not None
        phase(args.phase, args.workdir / "runs.csv", args.out)
        return 0
    return in_workdir(args.workdir, "knobs-bench-profile-", lambda workdir: _run(args, workdir))


if __name__ == "__main__":
    raise SystemExit(main())
