"""Ingest benchmark: the same score records into knobs (log + graph), MLflow, and bare sqlite3.

    .venv/bin/python -m bench.ingest [--records N] [--json OUT]

One process, one generated workload (runs x benchmarks, fixed seed), three systems, each
persisting to SQLite on the same disk. See bench/README.md for what each side does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Clock, Run, generate, in_workdir, machine, mlflow_store, table
from events.models import BenchmarkScored, RunRecorded
from events.store import EventStore, NewEvent
from events.store.identity import new_event

EXPERIMENT = "bench-ingest"


@dataclass
class Result:
    """One line of the table."""

    system: str
    records: int
    seconds: float
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("inf")


# --- the workload as knobs events ---------------------------------------------------------


def run_events(run: Run) -> list[NewEvent]:
    """One RunRecorded and one BenchmarkScored per score, built as `knobs import results` does."""
    prefix = f"import:{EXPERIMENT}:{run.run_id}"
    out = [new_event(RunRecorded(
        experiment=EXPERIMENT, run_id=run.run_id, params=run.params, seed=run.seed, origin="import",
    ), prefix)]
    for benchmark, value in sorted(run.scores.items()):
        out.append(new_event(BenchmarkScored(
            experiment=EXPERIMENT, run_id=run.run_id, benchmark=benchmark, value=value,
        ), prefix))
    return out


def event_count(runs: Sequence[Run]) -> int:
    return sum(1 + len(r.scores) for r in runs)


# --- 3. the ceiling: bare sqlite3 ----------------------------------------------------------


def bench_bare_sqlite(runs: Sequence[Run], path: Path) -> Result:
    """executemany of the same rows (one per event, the same canonical JSON) in one transaction.

    The rows are built before the clock starts: this measures storage alone.
    """
    rows = [
        (str(e.event_id), e.stream_id, e.event_type, e.data_json())
        for run in runs for e in run_events(run)
    ]
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute(
            "CREATE TABLE events (position INTEGER PRIMARY KEY, event_id TEXT NOT NULL, "
            "stream_id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL)"
        )
        start = time.perf_counter()
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO events (event_id, stream_id, type, data) VALUES (?, ?, ?, ?)", rows
        )
        con.execute("COMMIT")
        seconds = time.perf_counter() - start
        [(stored,)] = con.execute("SELECT count(*) FROM events").fetchall()
    finally:
        con.close()
    records = sum(len(r.scores) for r in runs)
    return Result(
        "bare sqlite3 executemany", records, seconds,
        note=f"{len(rows):,} rows in 1 transaction, {len(rows) / seconds:,.0f} rows/s",
        detail={"rows": len(rows), "rows_stored": stored, "rows_per_s": len(rows) / seconds},
    )


# --- 2. MLflow -----------------------------------------------------------------------------


def bench_mlflow(runs: Sequence[Run], workdir: Path) -> Result:
    """One MLflow run per run: create_run, then one log_batch with its params and metrics."""
    _, client, experiment_id = mlflow_store(workdir, EXPERIMENT, "mlflow-artifacts")
    import mlflow
    from mlflow.entities import Metric, Param

    clock = Clock()
    start = time.perf_counter()
    for run in runs:
        with clock.lap("create_run"):
            created = client.create_run(experiment_id, run_name=run.run_id)
        now = int(time.time() * 1000)
        with clock.lap("log_batch"):
            client.log_batch(
                created.info.run_id,
                metrics=[Metric(name, value, now, 0) for name, value in run.scores.items()],
                params=[Param(name, str(value)) for name, value in run.params.items()]
                + [Param("seed", str(run.seed))],
            )
    seconds = time.perf_counter() - start
    con = sqlite3.connect(workdir / "mlflow.db")
    try:
        [(metrics,)] = con.execute("SELECT count(*) FROM metrics").fetchall()
        [(mlruns,)] = con.execute("SELECT count(*) FROM runs").fetchall()
    finally:
        con.close()
    records = sum(len(r.scores) for r in runs)
    return Result(
        f"MLflow {mlflow.__version__} log_batch (SQLite)", records, seconds,
        note=f"{len(runs):,} create_run + {len(runs):,} log_batch",
        detail={
            "version": mlflow.__version__, "runs_stored": mlruns, "metrics_stored": metrics,
            "create_run_s": clock.laps.get("create_run", 0.0),
            "log_batch_s": clock.laps.get("log_batch", 0.0),
        },
    )


# --- 1. knobs: the log, then the graph -----------------------------------------------------


def open_sqlite_store(path: Path) -> EventStore:
    from events.store.sqlite import SQLiteEventStore

    return SQLiteEventStore(path)


def bench_knobs_append(runs: Sequence[Run], store: EventStore, batch_events: int) -> Result:
    """Build the events (pydantic validation, canonical JSON, content ids) and append in batches."""
    clock = Clock()
    appends = 0
    batch: list[NewEvent] = []
    start = time.perf_counter()
    for run in runs:
        with clock.lap("build"):
            batch.extend(run_events(run))
        if len(batch) >= batch_events:
            with clock.lap("append"):
                store.append(batch)
            appends += 1
            batch = []
    if batch:
        with clock.lap("append"):
            store.append(batch)
        appends += 1
    seconds = time.perf_counter() - start
    records = sum(len(r.scores) for r in runs)
    events = event_count(runs)
    return Result(
        "knobs append (SQLite log)", records, seconds,
        note=f"{events:,} events in {appends} appends",
        detail={
            "events": events, "appends": appends,
            "build_s": clock.laps.get("build", 0.0), "store_append_s": clock.laps.get("append", 0.0),
        },
    )


@contextlib.contextmanager
def neo4j_connection(home: Path) -> Iterator[dict[str, Any]]:
    """KNOBS_NEO4J_URI/_USER/_PASSWORD when set; else a Neo4j of our own, stopped on exit."""
    uri = os.environ.get("KNOBS_NEO4J_URI")
    if uri:
        yield {
            "uri": uri,
            "user": os.environ.get("KNOBS_NEO4J_USER", "neo4j"),
            "password": os.environ.get("KNOBS_NEO4J_PASSWORD", ""),
            "started": False,
        }
        return
    from services.infra.neo4j import start_neo4j, stop_neo4j

    print(f"starting a Neo4j for the benchmark under {home} ...", flush=True)
    state = start_neo4j(home)
    try:
        yield {**state, "started": True}
    finally:
        stop_neo4j(home)


def wipe_graph(driver: Any) -> None:
    """Empty the graph in batches (a single DETACH DELETE of a big graph exhausts the heap)."""
    from graph.projector import wipe

    with driver.session() as session:
        wipe(session)


def bench_knobs_project(store: EventStore, driver: Any, records: int, batch_size: int) -> Result:
    """Project every event until the projector has caught up with the log."""
    from graph.projector import Projector
    from graph.schema import ensure_schema

    wipe_graph(driver)
    ensure_schema(driver)  # constraints are set-up, not ingest
    projector = Projector(driver, store, batch_size=batch_size)
    calls = 0
    start = time.perf_counter()
    while True:
        projector.run_once()
        calls += 1
        if projector.lag() == 0:
            break
    seconds = time.perf_counter() - start
    return Result(
        "knobs projection (Neo4j)", records, seconds,
        note=f"{store.head():,} events, batch {batch_size}, {calls} run_once",
        detail={"events": store.head(), "batch_size": batch_size, "run_once_calls": calls},
    )


def warm_up_neo4j(driver: Any, workdir: Path, runs: Sequence[Run], batch_size: int) -> float:
    """Project a throwaway log of the first 2,000 runs, then wipe it: untimed, like a server that
    has been up for a while (a fresh Neo4j spends its first seconds planning and compiling the
    projector's statements, which says nothing about ingest)."""
    from graph.projector import Projector

    start = time.perf_counter()
    scratch = open_sqlite_store(workdir / "warm-up.sqlite3")
    try:
        bench_knobs_append(runs[:2000], scratch, 5000)
        wipe_graph(driver)
        Projector(driver, scratch, batch_size=batch_size).run_once()
    finally:
        scratch.close()
    wipe_graph(driver)
    return time.perf_counter() - start


def bench_knobs_following(runs: Sequence[Run], store: EventStore, driver: Any, batch_events: int,
                          batch_size: int) -> Result:
    """Append while a projector follows the log (as `knobs graph project --follow` does beside a
    writer), until the graph holds the last event: the end-to-end figure of a deployment."""
    import threading

    from graph.projector import Projector

    wipe_graph(driver)
    projector = Projector(driver, store, batch_size=batch_size)
    projector.run_once()  # the (empty) checkpoint: set-up
    stop = threading.Event()
    follower = threading.Thread(target=projector.follow, args=(0.05, stop), daemon=True)
    start = time.perf_counter()
    follower.start()
    appended = bench_knobs_append(runs, store, batch_events)
    while projector.lag() > 0:
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    stop.set()
    follower.join()
    return Result(
        "knobs end to end, projector following", appended.records, seconds,
        note=f"append done at {appended.seconds:.1f} s; graph caught up at {seconds:.1f} s",
        detail={"append_s": appended.seconds},
    )


def graph_counts(driver: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in ("Run", "Score"):
        records, _, _ = driver.execute_query(f"MATCH (n:{label}) RETURN count(n) AS c")
        counts[label] = int(records[0]["c"])
    return counts


# --- the run ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=100_000, help="score records (default 100000)")
    p.add_argument("--benchmarks", type=int, default=5, help="benchmarks per run (default 5)")
    p.add_argument("--seed", type=int, default=20240601, help="generator seed")
    p.add_argument("--batch-events", type=int, default=5000, help="events per knobs append (default 5000)")
    p.add_argument("--projector-batch", type=int, default=2000,
                   help="projector batch size (default 2000, the projector's own)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the figures here as JSON")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep the databases here (an empty or new directory) instead of a temp dir")
    return p.parse_args(argv)


def ratio(a: Result, b: Result) -> float:
    return a.per_s / b.per_s


def report(results: dict[str, Result], ratios: dict[str, float], info: dict[str, Any]) -> str:
    rows = [
        [r.system, f"{r.records:,}", f"{r.seconds:.2f}", f"{r.per_s:,.0f}", r.note]
        for r in results.values()
    ]
    append, ml = results["knobs_append"].detail, results["mlflow"].detail
    lines = [
        "",
        "machine: {cpu}; {cores} cores ({cores_usable} usable); {ram_gib} GiB RAM; "
        "Python {python}; SQLite {sqlite}".format(**info["machine"]),
        f"workload: {info['runs']:,} runs x {info['benchmarks']} benchmarks = "
        f"{info['records']:,} score records, 6 params per run, seed {info['seed']}",
        "",
        table(["system", "records", "seconds", "records/s", "note"], rows),
        "",
        "ratios (throughput, records/s):",
        f"  knobs append     / MLflow      {ratios['knobs_append_over_mlflow']:8.2f}x",
        f"  knobs end to end / MLflow      {ratios['knobs_end_to_end_over_mlflow']:8.2f}x  "
        "(append, then project)",
        f"  knobs end to end / MLflow      {ratios['knobs_following_over_mlflow']:8.2f}x  "
        "(the projector following the append)",
        f"  knobs append     / bare SQLite {ratios['knobs_append_over_bare_sqlite']:8.2f}x",
        "",
        f"knobs append, where the time goes: building events {append['build_s']:.2f} s, "
        f"store.append {append['store_append_s']:.2f} s",
        f"MLflow, where the time goes: create_run {ml['create_run_s']:.2f} s, "
        f"log_batch {ml['log_batch_s']:.2f} s",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runs = generate(args.records, args.benchmarks, args.seed)
    info: dict[str, Any] = {
        "machine": machine(), "records": args.records, "runs": len(runs),
        "benchmarks": args.benchmarks, "seed": args.seed, "events": event_count(runs),
        "batch_events": args.batch_events, "projector_batch": args.projector_batch,
    }
    return in_workdir(args.workdir, "knobs-bench-", lambda workdir: _run(args, runs, info, workdir))


def _run(args: argparse.Namespace, runs: list[Run], info: dict[str, Any], workdir: Path) -> int:
    from graph.settings import Neo4jSettings, driver_from

    # The projector reads its checkpoint before one exists; Neo4j's "property does not
    # exist" notification about that is noise in a benchmark's output.
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    results: dict[str, Result] = {}
    print(f"{len(runs):,} runs, {args.records:,} score records, {info['events']:,} events; "
          f"working in {workdir}", flush=True)

    print("bare sqlite3 ...", flush=True)
    results["bare_sqlite"] = bench_bare_sqlite(runs, workdir / "bare.sqlite3")
    print("MLflow ...", flush=True)
    results["mlflow"] = bench_mlflow(runs, workdir)

    with neo4j_connection(workdir / "neo4j-home") as neo, driver_from(
        Neo4jSettings(uri=neo["uri"], user=neo["user"], password=neo["password"])
    ) as driver:
        driver.verify_connectivity()
        [component] = driver.execute_query(
            "CALL dbms.components() YIELD versions, edition RETURN versions[0] AS v, edition AS e"
        ).records
        info["neo4j"] = {"version": component["v"], "edition": component["e"], "started_here": neo["started"]}
        print("warming Neo4j up (untimed: 2,000 runs projected into a throwaway graph) ...", flush=True)
        info["neo4j_warm_up_s"] = warm_up_neo4j(driver, workdir, runs, args.projector_batch)
        print("knobs append and projection, the projector following the log ...", flush=True)
        following = open_sqlite_store(workdir / "events-following.sqlite3")
        try:
            results["knobs_following"] = bench_knobs_following(runs, following, driver, args.batch_events,
                                                               args.projector_batch)
        finally:
            following.close()
        store = open_sqlite_store(workdir / "events.sqlite3")
        try:
            print("knobs append ...", flush=True)
            results["knobs_append"] = bench_knobs_append(runs, store, args.batch_events)
            print("knobs projection ...", flush=True)
            results["knobs_projection"] = bench_knobs_project(
                store, driver, args.records, args.projector_batch
            )
            # Checked after the clocks stop: everything acknowledged is really there.
            checks: dict[str, Any] = {
                "events_expected": info["events"],
                "events_stored": store.head(),
                "chain_ok": store.verify().ok,
                **{f"graph_{k.lower()}_nodes": v for k, v in graph_counts(driver).items()},
                "mlflow_metrics_stored": results["mlflow"].detail["metrics_stored"],
                "bare_rows_stored": results["bare_sqlite"].detail["rows_stored"],
            }
        finally:
            store.close()

    append, project = results["knobs_append"], results["knobs_projection"]
    results["knobs_end_to_end"] = Result(
        "knobs end to end (append + projection)", args.records, append.seconds + project.seconds,
        note="log durable, graph caught up",
    )
    # Table order: knobs first, then the tool it replaces, then the ceiling.
    ordered = {k: results[k] for k in ("knobs_append", "knobs_projection", "knobs_end_to_end",
                                       "knobs_following", "mlflow", "bare_sqlite")}
    ratios = {
        "knobs_append_over_mlflow": ratio(append, results["mlflow"]),
        "knobs_end_to_end_over_mlflow": ratio(results["knobs_end_to_end"], results["mlflow"]),
        "knobs_following_over_mlflow": ratio(results["knobs_following"], results["mlflow"]),
        "knobs_append_over_bare_sqlite": ratio(append, results["bare_sqlite"]),
    }
    checks["ok"] = (
        checks["events_stored"] == info["events"]
        and checks["chain_ok"]
        and checks["graph_run_nodes"] == len(runs)
        and checks["graph_score_nodes"] == args.records
        and checks["mlflow_metrics_stored"] == args.records
        and checks["bare_rows_stored"] == info["events"]
    )
    print(report(ordered, ratios, info))
    print(f"checks: {'ok' if checks['ok'] else 'FAILED'} "
          f"({checks['events_stored']:,} events stored, chain ok: {checks['chain_ok']}, "
          f"{checks['graph_run_nodes']:,} Run and {checks['graph_score_nodes']:,} Score nodes, "
          f"{checks['mlflow_metrics_stored']:,} MLflow metrics)")
    if args.json is not None:
        payload = {
            **info,
            "results": {k: {**asdict(r), "records_per_s": r.per_s} for k, r in ordered.items()},
            "ratios": ratios,
            "checks": checks,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0 if checks["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
