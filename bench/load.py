"""Load: many clients at once against a real `knobs serve` with several server processes, and the
same mix against an MLflow tracking server (`mlflow server` on SQLite, as many workers).

    .venv/bin/python -m bench.load [--clients 50] [--duration 120] [--workers 2] [--runs 1000]
                                   [--no-mlflow] [--json OUT]

One generated one-at-a-time store (bench.rank's workload) is imported into a SQLite log under a
temporary KNOBS_HOME, projected into a real Neo4j and ranked once. Then `knobs serve --workers W`
and `knobs graph project --follow` (the deployment's projector) start, and `--clients` asyncio
clients, loopback only, each send one request after another for `--duration` seconds, drawing
from a fixed mix:

| request | share | knobs | MLflow analogue |
|---|---|---|---|
| which knobs matter | 20% | GET /v1/knobs?benchmark= | POST runs/search, the experiment's runs (1,000) |
| a parameter's influence | 20% | GET /v1/parameters/{p}/influence | POST runs/search on one value |
| audit a ranking | 10% | GET /v1/rankings/{id}/audit | GET runs/get of one run |
| a named query | 20% | GET /v1/queries/rankings, /underused | POST runs/search, top 10 by the benchmark |
| append a run and its score | 30% | POST /v1/events (RunRecorded, BenchmarkScored) | runs/create, log-batch |

Afterwards: every acknowledged append is in the log (0 lost), the graph catches up (lag 0, timed)
and holds exactly the appended runs and scores. Figures: throughput, p50 and p99 per request kind
and overall, errors by kind, for both servers, and their ratio. README.md (Performance) has them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import machine, stop, table
from bench.rank import EXPERIMENT, Workload, knobs_command, on_workload, percentile, write_csv

LOAD_EXPERIMENT = "bench-load"
MIX: tuple[tuple[str, int], ...] = (("knobs", 20), ("influence", 20), ("audit", 10), ("query", 20),
                                    ("append", 30))
KINDS = [kind for kind, _ in MIX]
WEIGHTS = [weight for _, weight in MIX]


@dataclass
class Tally:
    """What the clients saw: latencies per request kind, errors, acknowledged appends."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: Counter[str] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    """Event ids the server acknowledged (knobs), or run ids created and logged (MLflow)."""
    wall_s: float = 0.0

    def requests(self) -> int:
        return sum(len(v) for v in self.seconds.values())

    def summary(self) -> dict[str, Any]:
        every = [s for v in self.seconds.values() for s in v]
        per_kind = {k: _figures(v, self.wall_s) for k, v in self.seconds.items()}
        return {"all": _figures(every, self.wall_s), "per_kind": per_kind,
                "errors": dict(self.errors), "error_count": sum(self.errors.values()),
                "acknowledged": len(self.acknowledged), "wall_s": self.wall_s}


def _figures(seconds: list[float], wall_s: float) -> dict[str, float]:
    if not seconds:
        return {"count": 0, "per_s": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}
    return {"count": len(seconds), "per_s": len(seconds) / wall_s,
            "p50_ms": percentile(seconds, 50) * 1000, "p99_ms": percentile(seconds, 99) * 1000}


Request = Callable[[Any, random.Random, int, int], Awaitable[list[str]]]
"""One request of a kind: (client, rng, client number, request number) -> acknowledged ids."""


async def drive(requests: dict[str, Request], clients: int, duration_s: float, base_url: str,
                headers: dict[str, str], seed: int) -> Tally:
    """`clients` loops, each sending one request after another until `duration_s` has passed."""
    import httpx

    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as http:
        start = time.perf_counter()
        deadline = start + duration_s

        async def client(number: int) -> None:
            rng = random.Random(seed * 1000 + number)
            sent = 0
            while time.perf_counter() < deadline:
                kind = rng.choices(KINDS, WEIGHTS)[0]
                began = time.perf_counter()
                try:
                    acknowledged = await requests[kind](http, rng, number, sent)
                except RequestFailed as exc:
                    tally.errors[f"{kind}: {exc}"] += 1
                except httpx.HTTPError as exc:
                    tally.errors[f"{kind}: {type(exc).__name__}"] += 1
                else:
                    tally.seconds[kind].append(time.perf_counter() - began)
                    tally.acknowledged.extend(acknowledged)
                sent += 1

        await asyncio.gather(*(client(n) for n in range(clients)))
        tally.wall_s = time.perf_counter() - start
    return tally


class RequestFailed(RuntimeError):
    """A response other than the one the request expects (its status code is the message)."""


def _ok(response: Any, *expected: int) -> Any:
    if response.status_code not in (expected or (200,)):
        raise RequestFailed(str(response.status_code))
    return response


# --- knobs ----------------------------------------------------------------------------------


def knobs_requests(workload: Workload, ranking_id: str) -> dict[str, Request]:
    benchmarks = list(workload.benchmarks)
    parameters = [k.name for k in workload.knobs]

    async def knobs(http: Any, rng: random.Random, _c: int, _i: int) -> list[str]:
        _ok(await http.get("/v1/knobs", params={"benchmark": rng.choice(benchmarks)}))
        return []

    async def influence(http: Any, rng: random.Random, _c: int, _i: int) -> list[str]:
        _ok(await http.get(f"/v1/parameters/{rng.choice(parameters)}/influence"))
        return []

    async def audit(http: Any, _rng: random.Random, _c: int, _i: int) -> list[str]:
        _ok(await http.get(f"/v1/rankings/{ranking_id}/audit"))
        return []

    async def query(http: Any, rng: random.Random, _c: int, _i: int) -> list[str]:
        if rng.random() < 0.5:
            _ok(await http.get("/v1/queries/rankings", params={"experiment": EXPERIMENT}))
        else:
            _ok(await http.get("/v1/underused", params={"benchmark": rng.choice(benchmarks)}))
        return []

    async def append(http: Any, rng: random.Random, client: int, number: int) -> list[str]:
        run_id = f"c{client:03d}-{number:06d}"
        params = {k.name: rng.choice(k.values) for k in workload.knobs}
        body = {"events": [
            {"type": "RunRecorded", "idempotency_key": f"load:{run_id}:run",
             "data": {"experiment": LOAD_EXPERIMENT, "run_id": run_id, "params": params,
                      "seed": rng.randrange(2**31)}},
            {"type": "BenchmarkScored", "idempotency_key": f"load:{run_id}:score",
             "data": {"experiment": LOAD_EXPERIMENT, "run_id": run_id, "benchmark": benchmarks[0],
                      "value": rng.uniform(0.2, 0.9)}},
        ]}
        answer = _ok(await http.post("/v1/events", json=body), 201).json()
        return [r["event_id"] for r in answer["results"]]

    return {"knobs": knobs, "influence": influence, "audit": audit, "query": query, "append": append}


def knobs_side(args: argparse.Namespace, workload: Workload, workdir: Path) -> dict[str, Any]:
    from bench.ingest import neo4j_connection, wipe_graph
    from bench.rank import api_server, import_and_project, wait_until_projected
    from services.core.context import Context
    from services.importing.adapters import environment
    from services.ranking.rank import rank

    csv_path = workdir / "runs.csv"
    write_csv(workload, csv_path)
    home = workdir / "knobs-home"
    home.mkdir()
    with environment(KNOBS_HOME=str(home), KNOBS_EVENTS_BACKEND="sqlite"), \
            neo4j_connection(home) as neo, Context(home=home) as ctx:
        if not neo["started"]:
            wipe_graph(ctx.driver())
        print("knobs: importing and projecting the store ...", flush=True)
        import_and_project(ctx, csv_path)
        ranking_id = str(rank(ctx, EXPERIMENT, workload.benchmarks[0]).public()["ranking_id"])
        with api_server(home, workdir, workers=args.workers) as served, following(workdir):
            print(f"knobs: {args.clients} clients for {args.duration:.0f} s against `knobs serve "
                  f"--workers {args.workers}` ...", flush=True)
            tally = asyncio.run(drive(knobs_requests(workload, ranking_id), args.clients, args.duration,
                                      served.url, {"Authorization": f"Bearer {served.token}"}, args.seed))
            import httpx

            with httpx.Client(base_url=served.url, timeout=30) as http:
                began = time.perf_counter()
                wait_until_projected(http, 600)
                catch_up_s = time.perf_counter() - began
        checks = settled(ctx, tally)
    return {"tally": tally, "catch_up_s": catch_up_s, "checks": checks}


@contextlib.contextmanager
def following(workdir: Path) -> Iterator[None]:
    """`knobs graph project --follow`: the projector a deployment runs beside the server."""
    log = (workdir / "projector.log").open("wb")
    proc = subprocess.Popen([*knobs_command(), "graph", "project", "--follow", "--poll", "0.2"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        stop(proc)
        log.close()


def settled(ctx: Any, tally: Tally) -> dict[str, Any]:
    """After the load: every acknowledged append in the log, and the graph holding exactly them."""
    store = ctx.store()
    in_log: set[str] = set()
    after = 0
    while batch := store.read_all(after=after, limit=10_000, types=["RunRecorded", "BenchmarkScored"]):
        in_log.update(str(e.event_id) for e in batch if e.data.get("experiment") == LOAD_EXPERIMENT)
        after = batch[-1].position
    lost = len(set(tally.acknowledged) - in_log)
    appended_runs = len(tally.acknowledged) // 2
    records, _, _ = ctx.driver().execute_query(
        "MATCH (r:Run {experiment: $e}) WITH count(r) AS runs "
        "MATCH (s:Score {experiment: $e}) RETURN runs, count(s) AS scores", e=LOAD_EXPERIMENT)
    graph_runs = records[0]["runs"] if records else 0
    graph_scores = records[0]["scores"] if records else 0
    return {"lost_appends": lost, "appended_runs": appended_runs, "graph_runs": graph_runs,
            "graph_scores": graph_scores, "zero_lost": lost == 0,
            "graph_holds_appends": graph_runs == appended_runs and graph_scores == appended_runs,
            "zero_errors": not tally.errors}


# --- MLflow ---------------------------------------------------------------------------------


def mlflow_requests(workload: Workload, experiment_id: str, run_ids: list[str]) -> dict[str, Request]:
    benchmarks = list(workload.benchmarks)
    knobs = list(workload.knobs)
    api = "/api/2.0/mlflow"

    async def search(http: Any, body: dict[str, Any]) -> None:
        _ok(await http.post(f"{api}/runs/search", json={"experiment_ids": [experiment_id], **body}))

    async def knobs_(http: Any, _rng: random.Random, _c: int, _i: int) -> list[str]:
        await search(http, {"max_results": 1000})
        return []

    async def influence(http: Any, rng: random.Random, _c: int, _i: int) -> list[str]:
        knob = rng.choice(knobs)
        await search(http, {"filter": f"params.{knob.name} = '{rng.choice(knob.values)}'",
                            "max_results": 1000})
        return []

    async def audit(http: Any, rng: random.Random, _c: int, _i: int) -> list[str]:
        _ok(await http.get(f"{api}/runs/get", params={"run_id": rng.choice(run_ids)}))
        return []

    async def query(http: Any, rng: random.Random, _c: int, _i: int) -> list[str]:
        metric = rng.choice(benchmarks)
        await search(http, {"order_by": [f"metrics.{metric} DESC"], "max_results": 10})
        return []

    async def append(http: Any, rng: random.Random, client: int, number: int) -> list[str]:
        created = _ok(await http.post(f"{api}/runs/create", json={
            "experiment_id": experiment_id, "run_name": f"c{client:03d}-{number:06d}",
            "start_time": int(time.time() * 1000)})).json()
        run_id = created["run"]["info"]["run_id"]
        _ok(await http.post(f"{api}/runs/log-batch", json={
            "run_id": run_id,
            "params": [{"key": k.name, "value": str(rng.choice(k.values))} for k in knobs],
            "metrics": [{"key": benchmarks[0], "value": rng.uniform(0.2, 0.9),
                         "timestamp": int(time.time() * 1000), "step": 0}]}))
        return [run_id]

    return {"knobs": knobs_, "influence": influence, "audit": audit, "query": query, "append": append}


def mlflow_side(args: argparse.Namespace, workload: Workload, workdir: Path) -> dict[str, Any]:
    from bench.rank import mlflow_log
    from services.infra.runtime import pick_port

    runs = len(workload.rows)
    print(f"MLflow: logging {runs:,} runs into its SQLite store ...", flush=True)
    uri, experiment_id, _ = mlflow_log(workload, runs, workdir)
    from mlflow.tracking import MlflowClient

    run_ids = [r.info.run_id for r in MlflowClient(tracking_uri=uri).search_runs(
        [experiment_id], max_results=min(runs, 1000))]
    port = pick_port(5500)
    log = (workdir / "mlflow-server.log").open("wb")
    server = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
              "--port", str(port), "--workers", str(args.workers),
              "--default-artifact-root", (workdir / "mlartifacts").as_uri()]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(server, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/health", proc, workdir / "mlflow-server.log")
        print(f"MLflow: {args.clients} clients for {args.duration:.0f} s against `mlflow server "
              f"--workers {args.workers}` ...", flush=True)
        tally = asyncio.run(drive(mlflow_requests(workload, experiment_id, run_ids), args.clients,
                                  args.duration, url, {}, args.seed))
        logged = MlflowClient(tracking_uri=f"{url}").search_runs(
            [experiment_id], filter_string="attributes.run_name LIKE 'c%'", max_results=50_000)
    finally:
        stop(proc)
        log.close()
    lost = len(set(tally.acknowledged) - {r.info.run_id for r in logged})
    return {"tally": tally, "checks": {"lost_appends": lost, "zero_lost": lost == 0,
                                       "zero_errors": not tally.errors}}


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, limit_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + limit_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer within {limit_s:.0f} s; see {log}")
        time.sleep(0.3)


# --- the run --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load per server (120)")
    parser.add_argument("--workers", type=int, default=2, help="server processes of each server (2)")
    parser.add_argument("--runs", type=int, default=1000, help="runs in the store before the load (1000)")
    parser.add_argument("--parameters", type=int, default=6)
    parser.add_argument("--benchmarks", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-mlflow", action="store_true", help="load knobs only")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--workdir", type=Path, help="keep the stores and logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    for name in ("clients", "workers", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.duration <= 0:
        parser.error("--duration must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return on_workload(parse_args(argv), "knobs-bench-load-", _run)


def _run(args: argparse.Namespace, workload: Workload, workdir: Path) -> int:
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    results = {"knobs": knobs_side(args, workload, workdir)}
    if not args.no_mlflow:
        results["mlflow"] = mlflow_side(args, workload, workdir)
    summaries = {name: r["tally"].summary() for name, r in results.items()}
    checks = {f"{name}_{k}": v for name, r in results.items() for k, v in r["checks"].items()
              if isinstance(v, bool)}
    ok = all(v for k, v in checks.items() if k.startswith("knobs_"))
    print(report(args, summaries, results))
    print(f"checks: {'ok' if ok else 'FAILED'} ({', '.join(f'{k}: {v}' for k, v in checks.items())})")
    if args.json is not None:
        payload = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
                   "summaries": summaries, "catch_up_s": results["knobs"]["catch_up_s"],
                   "checks": {name: r["checks"] for name, r in results.items()}, "ok": ok}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 0 if ok else 1


def report(args: argparse.Namespace, summaries: dict[str, dict[str, Any]],
           results: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, summary in summaries.items():
        for kind, figures in [("all", summary["all"]), *summary["per_kind"].items()]:
            rows.append([name, kind, f"{figures['count']:,}", f"{figures['per_s']:.1f}",
                         f"{figures['p50_ms']:.1f}", f"{figures['p99_ms']:.1f}"])
    lines = [f"{args.clients} clients x {args.duration:.0f} s, {args.workers} server processes each; "
             f"machine: {machine()['cpu']}",
             table(["server", "request", "count", "per s", "p50 ms", "p99 ms"], rows)]
    for name, summary in summaries.items():
        lines.append(f"{name}: {summary['error_count']} errors {summary['errors'] or ''}; "
                     f"{summary['acknowledged']:,} acknowledged appends")
    knobs = results["knobs"]
    lines.append(f"knobs: graph caught up {knobs['catch_up_s']:.1f} s after the load; "
                 f"{knobs['checks']['lost_appends']} appends lost; graph holds "
                 f"{knobs['checks']['graph_runs']:,} of {knobs['checks']['appended_runs']:,} appended runs")
    if "mlflow" in summaries:
        ours, theirs = summaries["knobs"]["all"], summaries["mlflow"]["all"]
        if theirs["per_s"]:
            lines.append(f"throughput knobs / MLflow: {ours['per_s'] / theirs['per_s']:.2f}x; "
                         f"p99 MLflow / knobs: {theirs['p99_ms'] / max(ours['p99_ms'], 1e-9):.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
