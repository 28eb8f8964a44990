"""Ranking benchmark: `knobs rank` through the API and the CLI, against pandas and MLflow; Sobol vs SALib.

    .venv/bin/python -m bench.rank [--runs N] [--parameters P] [--benchmarks B]
                                   [--api-repeats R] [--cli-repeats R] [--mlflow-runs M]
                                   [--sobol-n N] [--sobol-d D] [--json OUT]

One process, one generated one-at-a-time store (a baseline, each parameter varied alone over
four values, many seeds per configuration), imported through `knobs import results`' own path
into a SQLite log under a temporary KNOBS_HOME and projected into a real Neo4j. The same
question -- which knobs move this benchmark, by how much -- is then answered four ways and
timed: knobs over HTTP (a real `knobs serve`), the `knobs rank` CLI, pandas in memory (the
floor) and MLflow `search_runs` + pandas (what people do today). Separately, Sobol indices for
N x (2D + 2) runs through `services.ranking.analysis.gsa.analyse_design` against `SALib.analyze.sobol`
alone. The printout says what each side computes; README.md (Performance) has the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import in_workdir, machine, mlflow_store, stop, table

EXPERIMENT = "bench-rank"


# --- the workload: a one-at-a-time study with a known answer --------------------------------


@dataclass(frozen=True)
class Knob:
    """A parameter: its baseline, the four values tried alone, and how it moves the scores.

    `shape(v)` is the improvement over the baseline in units of `amplitude` (0 at the baseline);
    each benchmark scales it by its own factor, so benchmarks agree on most knobs, not all.
    """

    name: str
    baseline: Any
    values: tuple[Any, ...]
    amplitude: float
    shape: Callable[[Any], float]


def _saturating(base: float, c: float = 0.5) -> Callable[[Any], float]:
    """Scaling-law-like: 1 - (v / base)^-c, gains that shrink with every doubling (a knee)."""
    return lambda v: 1.0 - (float(v) / base) ** -c


def _optimum(best: float) -> Callable[[Any], float]:
    """A learning-rate-like bowl in log10(v), best at `best` (not at the baseline)."""
    return lambda v: -(math.log10(float(v) / best) ** 2) + math.log10(3e-4 / best) ** 2


def _table(effects: dict[str, float]) -> Callable[[Any], float]:
    return lambda v: effects[str(v)]


KNOBS: tuple[Knob, ...] = (
    Knob("model_params", 350_000_000, (125_000_000, 760_000_000, 1_300_000_000, 2_700_000_000),
         0.10, _saturating(350e6)),
    Knob("train_tokens", 2_000_000_000, (500_000_000, 1_000_000_000, 4_000_000_000, 8_000_000_000),
         0.06, _saturating(2e9)),
    Knob("learning_rate", 3e-4, (1e-4, 6e-4, 1e-3, 3e-3), 0.04, _optimum(8e-4)),
    Knob("n_layer", 12, (6, 18, 24, 36), 0.03, _saturating(12.0, 0.8)),
    Knob("d_model", 768, (512, 1024, 1536, 2048), 0.025, _saturating(768.0)),
    Knob("data_format", "verbatim", ("qa", "lens", "mixed", "summary"), 0.03,
         _table({"verbatim": 0.0, "qa": 0.6, "lens": 1.0, "mixed": 0.8, "summary": -0.4})),
    Knob("context_length", 1024, (256, 512, 2048, 4096), 0.01, _saturating(1024.0, 0.3)),
    Knob("batch_size", 256, (64, 128, 512, 1024), 0.005, lambda v: -abs(math.log2(float(v) / 256)) / 4),
    Knob("lora_rank", 16, (4, 8, 32, 64), 0.002, _saturating(16.0)),
    Knob("warmup_steps", 500, (0, 100, 1000, 2000), 0.0, lambda v: 0.0),  # no effect at all: noise
    Knob("dropout", 0.1, (0.0, 0.05, 0.2, 0.3), 0.004, lambda v: -abs(float(v) - 0.05) * 5),
    Knob("weight_decay", 0.1, (0.0, 0.01, 0.03, 0.3), 0.003, lambda v: -abs(math.log10(float(v) + 1e-3) + 1)),
)

BENCHMARK_NAMES: tuple[str, ...] = ("loss_a", "mmlu_acc", "loss_b", "arc_acc", "hellaswag_acc",
                                    "gsm8k_acc", "piqa_acc")
"""Loss-like names go down, accuracies up: `direction_for` (services.ranking.analysis.direction) reads it."""

NOISE_SD = {"lower": 0.02, "higher": 0.01}
START = {"lower": 2.8, "higher": 0.45}


def lower_is_better(benchmark: str) -> bool:
    from services.ranking.analysis.direction import direction_for

    return direction_for(benchmark) == "lower"


@dataclass(frozen=True)
class Workload:
    knobs: tuple[Knob, ...]
    benchmarks: tuple[str, ...]
    rows: list[dict[str, Any]]
    """One CSV row per run: run, seed, param.*, score.*, cost.* (in a shuffled order)."""
    configurations: int
    seeds_per_configuration: int
    baseline_seeds: int


def generate(runs: int, parameters: int, benchmarks: int, seed: int) -> Workload:
    """A baseline and each parameter varied alone, with seeds: `runs` runs; the same seed, the same rows.

    Scores are the baseline's plus, for each knob, amplitude x the benchmark's factor x shape,
    plus Gaussian seed noise; a loss goes down where an accuracy goes up. Costs follow model size
    and training tokens (flops = 6 N D), as a scaling-law table's would.
    """
    if not 1 <= parameters <= len(KNOBS):
        raise ValueError(f"--parameters must be between 1 and {len(KNOBS)}")
    if not 1 <= benchmarks <= len(BENCHMARK_NAMES):
        raise ValueError(f"--benchmarks must be between 1 and {len(BENCHMARK_NAMES)}")
    knobs, names = KNOBS[:parameters], BENCHMARK_NAMES[:benchmarks]
    configurations = 1 + sum(len(k.values) for k in knobs)
    if runs < 2 * configurations:
        raise ValueError(f"--runs must be at least {2 * configurations} (two seeds of each of the "
                         f"{configurations} configurations)")
    rng = random.Random(seed)
    # Each benchmark weighs each knob differently (0.3x to 1.5x), and the context length
    # hurts the second benchmark where it helps the others: a disagreement to flag.
    factor = {(b, k.name): rng.uniform(0.3, 1.5) for b in names for k in knobs}
    if len(names) > 1:
        factor[(names[1], "context_length")] = -1.0
    per = runs // configurations
    base_seeds = runs - per * (configurations - 1)  # the remainder goes to the baseline
    configs: list[tuple[dict[str, Any], int]] = [({k.name: k.baseline for k in knobs}, base_seeds)]
    for k in knobs:
        for v in k.values:
            configs.append(({**{j.name: j.baseline for j in knobs}, k.name: v}, per))
    rows: list[dict[str, Any]] = []
    for params, seeds in configs:
        for s in range(seeds):
            row: dict[str, Any] = {"run": "", "seed": s}
            row.update({f"param.{n}": v for n, v in params.items()})
            for b in names:
                lower = lower_is_better(b)
                gain = sum(k.amplitude * factor[(b, k.name)] * k.shape(params[k.name]) for k in knobs)
                start = START["lower" if lower else "higher"]
                value = start - gain if lower else start + gain
                value += rng.gauss(0.0, NOISE_SD["lower" if lower else "higher"])
                row[f"score.{b}"] = round(value, 6)
            n_params = float(params.get("model_params", 350e6))
            tokens = float(params.get("train_tokens", 2e9))
            flops = 6.0 * n_params * tokens
            row["cost.flops"] = flops
            row["cost.gpu_hours"] = round(flops / (312e12 * 0.4 * 3600), 6)  # an A100 at 40 % MFU
            row["cost.weight_bytes_bf16"] = 2.0 * n_params
            rows.append(row)
    rng.shuffle(rows)  # any prefix is a fair sample (--mlflow-runs logs a prefix)
    for i, row in enumerate(rows):
        row["run"] = f"r{i:06d}"
    return Workload(knobs, names, rows, configurations, per, base_seeds)


def write_csv(workload: Workload, path: Path) -> None:
    header = list(workload.rows[0])
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(workload.rows)


# --- timing -----------------------------------------------------------------------------------


@dataclass
class Timing:
    """One line of the latency table: every repetition's seconds, and what it did."""

    tool: str
    seconds: list[float]
    computes: str
    cold_s: float | None = None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return percentile(self.seconds, 50)

    @property
    def p95(self) -> float:
        return percentile(self.seconds, 95)


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if xs else float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


# --- the floor: pandas over a DataFrame already in memory -------------------------------------


def pandas_ofat(df: Any, params: Sequence[str], score: str) -> list[dict[str, Any]]:
    """The one-at-a-time table with pandas: baseline (each column's mode), runs that differ from it
    in exactly one parameter, per value mean/std/count, effect vs the baseline mean, the width of
    the influence range (the baseline counts as 0), sorted widest first. `params` are column names.
    """
    import pandas as pd

    base = pd.Series({c: df[c].mode().iloc[0] for c in params})
    differs = df[list(params)].ne(base)
    count = differs.sum(axis=1)
    base_mean = float(df.loc[count == 0, score].mean())
    one = count == 1
    out: list[dict[str, Any]] = []
    for c in params:
        sub = df.loc[one & differs[c], [c, score]]
        if sub.empty:
            continue
        by = sub.groupby(c)[score].agg(["mean", "std", "count"])
        effects = by["mean"] - base_mean
        lo, hi = min(float(effects.min()), 0.0), max(float(effects.max()), 0.0)
        out.append({"parameter": c, "width": hi - lo, "values": len(by), "runs": int(by["count"].sum())})
    out.sort(key=lambda r: (-r["width"], r["parameter"]))
    return out


def bench_pandas(df: Any, knobs: Sequence[Knob], benchmark: str, repeats: int) -> tuple[Timing, list[str]]:
    params = [f"param.{k.name}" for k in knobs]
    seconds: list[float] = []
    result: list[dict[str, Any]] = []
    for _ in range(repeats):
        s, result = timed(lambda: pandas_ofat(df, params, f"score.{benchmark}"))
        seconds.append(s)
    order = [r["parameter"].removeprefix("param.") for r in result]
    return Timing(f"pandas {_version('pandas')} groupby (in memory)", seconds,
                  computes="per value mean/std/count, effect vs baseline, width, sort",
                  note="the floor: DataFrame loaded before the clock"), order


# --- what people do today: MLflow search_runs, then pandas ------------------------------------


def mlflow_log(workload: Workload, runs: int, workdir: Path) -> tuple[str, str, float]:
    """Log the first `runs` runs (create_run + one log_batch each) into a SQLite tracking store."""
    uri, client, experiment_id = mlflow_store(workdir, EXPERIMENT, "mlartifacts")
    from mlflow.entities import Metric, Param

    start = time.perf_counter()
    step = max(1, runs // 10)
    for i, row in enumerate(workload.rows[:runs], start=1):
        created = client.create_run(experiment_id, run_name=row["run"])
        now = int(time.time() * 1000)
        client.log_batch(
            created.info.run_id,
            params=[Param(k.removeprefix("param."), str(v)) for k, v in row.items() if k.startswith("param.")]
            + [Param("seed", str(row["seed"]))],
            metrics=[Metric(metric_name(k), float(v), now, 0)
                     for k, v in row.items() if k.startswith(("score.", "cost."))],
        )
        if i % step == 0 or i == runs:
            elapsed = time.perf_counter() - start
            print(f"  MLflow: logged {i:,}/{runs:,} runs, {elapsed:.0f} s, "
                  f"about {elapsed / i * (runs - i):.0f} s to go", flush=True)
    return uri, experiment_id, time.perf_counter() - start


def metric_name(column: str) -> str:
    """score.loss_a -> loss_a, cost.flops -> cost_flops: how one would log them as MLflow metrics."""
    return column.split(".", 1)[1] if column.startswith("score.") else column.replace(".", "_")


def mlflow_ofat(uri: str, experiment_id: str, knobs: Sequence[Knob], benchmark: str) -> tuple[float, Any]:
    """search_runs into a DataFrame, parameters back from strings to numbers, then the pandas table."""
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(uri)
    start = time.perf_counter()
    df = mlflow.search_runs(experiment_ids=[experiment_id])
    searched = time.perf_counter() - start
    params = [f"params.{k.name}" for k in knobs]
    for c in params:  # MLflow keeps every parameter as a string
        converted = pd.to_numeric(df[c], errors="coerce")
        if converted.notna().all():
            df[c] = converted
    return searched, pandas_ofat(df, params, f"metrics.{benchmark}")


def bench_mlflow(uri: str, experiment_id: str, knobs: Sequence[Knob], benchmark: str, repeats: int,
                 logged: int, total: int) -> tuple[Timing, list[str]]:
    import mlflow

    seconds: list[float] = []
    searched: list[float] = []
    result: list[dict[str, Any]] = []
    for _ in range(repeats):
        s, (search_s, result) = timed(lambda: mlflow_ofat(uri, experiment_id, knobs, benchmark))
        seconds.append(s)
        searched.append(search_s)
    capped = f"; {logged:,} of {total:,} runs logged (--mlflow-runs)" if logged < total else ""
    order = [r["parameter"].removeprefix("params.") for r in result]
    return Timing(f"MLflow {mlflow.__version__} search_runs + pandas (SQLite)", seconds,
                  computes="search_runs -> DataFrame, params str -> numbers, the same pandas table",
                  note=f"search_runs alone p50 {percentile(searched, 50):.3f} s{capped}",
                  detail={"search_runs_s": searched, "runs_logged": logged, "capped": logged < total}), order


# --- knobs: in process, over HTTP, from the CLI ------------------------------------------------


def knobs_command() -> list[str]:
    """The `knobs` console script next to this interpreter (the one `pip install` made)."""
    script = Path(sys.executable).parent / "knobs"
    return [str(script)] if script.exists() else [sys.executable, "-m", "services.cli.main"]


def import_and_project(ctx: Any, csv_path: Path) -> dict[str, float | int]:
    from services.importing.results import import_results

    s_import, outcome = timed(lambda: import_results(ctx, csv_path, EXPERIMENT))
    print(f"  imported {outcome.runs:,} runs, {outcome.scores:,} scores as {outcome.events:,} events "
          f"in {s_import:.1f} s; projecting ...", flush=True)
    start, projected = time.perf_counter(), 0
    while True:
        done = ctx.catch_up()
        projected += done
        if done == 0:
            break
    s_project = time.perf_counter() - start
    print(f"  projected {projected:,} events into Neo4j in {s_project:.1f} s", flush=True)
    return {"import_s": s_import, "project_s": s_project, "events": outcome.events}


@dataclass
class Repeats:
    """Were the repeated rankings duplicates of the first, as the same evidence should give?

    A repeat that is not a duplicate is explained only by a new code version: someone committed
    while the benchmark ran, and the code version is part of a ranking's identity.
    """

    ranking_id: str
    code_version: str
    duplicates: int = 0
    new_code: int = 0
    unexplained: int = 0

    def count(self, answer: dict[str, Any]) -> None:
        if answer["duplicate"] and answer["ranking_id"] == self.ranking_id:
            self.duplicates += 1
        elif answer["code_version"] != self.code_version:
            self.new_code += 1
        else:
            self.unexplained += 1

    def note(self, total: int) -> str:
        extra = f", {self.new_code} new (a commit changed the code version)" if self.new_code else ""
        extra += f", {self.unexplained} NEW WITH THE SAME CODE" if self.unexplained else ""
        return f"{self.duplicates}/{total} duplicates{extra}"


def bench_in_process(ctx: Any, benchmark: str, repeats: int, reference: dict[str, Any]) -> Timing:
    from services.ranking.rank import rank

    seconds: list[float] = []
    seen = Repeats(reference["ranking_id"], reference["code_version"])
    for _ in range(repeats):
        s, outcome = timed(lambda: rank(ctx, EXPERIMENT, benchmark))
        seconds.append(s)
        seen.count({"duplicate": outcome.duplicate, "ranking_id": outcome.ranking.ranking_id,
                    "code_version": outcome.ranking.code_version})
    return Timing("knobs rank in process (services.ranking.rank.rank)", seconds,
                  computes="the API's work without HTTP", note=seen.note(repeats), detail=asdict(seen))


@dataclass(frozen=True)
class Served:
    url: str
    token: str
    startup_s: float
    pid: int


@contextlib.contextmanager
def api_server(home: Path, workdir: Path, workers: int = 1) -> Iterator[Served]:
    """`knobs serve` (with `workers` processes) in a subprocess with a write token of its home,
    until the block ends."""
    import httpx

    from services.access.tokens import create_token
    from services.infra.runtime import pick_port

    token = create_token(home, "bench-rank", "write")  # what `knobs token create` does
    port = pick_port(8765)
    log = (workdir / "serve.log").open("wb")
    start = time.perf_counter()
    proc = subprocess.Popen([*knobs_command(), "serve", "--port", str(port), "--workers", str(workers)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"knobs serve exited with {proc.returncode}; see {workdir / 'serve.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"knobs serve did not answer within 120 s; see {workdir / 'serve.log'}")
            time.sleep(0.2)
        yield Served(url, token, time.perf_counter() - start, proc.pid)
    finally:
        stop(proc)
        log.close()


def wait_until_projected(client: Any, limit_s: float) -> None:
    """Poll the server's health until the graph holds the whole log (the API projects a new
    ranking's links after answering); RuntimeError after `limit_s`."""
    deadline = time.monotonic() + limit_s
    while client.get("/v1/health").json()["projection"]["lag"] != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the graph did not catch up with the log within {limit_s:.0f} s")
        time.sleep(0.01)


def bench_api(url: str, token: str, benchmark: str, repeats: int,
              colds: int) -> tuple[Timing, Timing, Timing]:
    """POST /v1/rankings: the first ranking after the server started, then `colds` new rankings of
    the same evidence (another bootstrap seed each: everything computed and appended again), then
    `repeats` of the first question (the same evidence and options: a lookup).

    The API answers a new ranking once it is in the log and projects its links into the graph
    right after; each cold ranking is also timed until the graph holds them (GET /v1/health
    reports a projection lag of 0), and the next one starts only then.
    """
    import httpx

    body = {"experiment": EXPERIMENT, "benchmark": benchmark}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as client:
        def post(seed: int = 0) -> dict[str, Any]:
            response = client.post("/v1/rankings", json={**body, "seed": seed})
            if response.status_code != 201:
                raise RuntimeError(f"POST /v1/rankings: {response.status_code} {response.text[:500]}")
            answer: dict[str, Any] = response.json()
            return answer

        def caught_up() -> None:
            wait_until_projected(client, 600)

        start = time.perf_counter()
        first = post()
        first_s = time.perf_counter() - start
        caught_up()
        first_linked_s = time.perf_counter() - start
        cold: list[float] = []
        linked: list[float] = []
        new = 0
        for seed in range(1, colds + 1):
            start = time.perf_counter()
            answer = post(seed)
            cold.append(time.perf_counter() - start)
            caught_up()
            linked.append(time.perf_counter() - start)
            new += not answer["duplicate"]
        seconds: list[float] = []
        seen = Repeats(first["ranking_id"], first["code_version"])
        for _ in range(repeats):
            s, answer = timed(post)
            seconds.append(s)
            seen.count(answer)
    note = f"{new}/{colds} new (bootstrap seed 1..{colds}); 'first': the first request after start-up"
    cold_timing = Timing("knobs API cold: POST /v1/rankings, a new ranking of the same evidence", cold,
                         cold_s=first_s, computes="everything below, over HTTP with a bearer token; "
                         "answered when the ranking is in the log", note=note,
                         detail={"new": new, "first_was_new": not first["duplicate"]})
    linked_timing = Timing("knobs API cold, until the graph holds its links (health: lag 0)", linked,
                           cold_s=first_linked_s, computes="the same, plus projecting the ranking's "
                           f"{first['used_events']:,} provenance links into Neo4j", note=note)
    repeat_timing = Timing("knobs API repeat: POST /v1/rankings, the same question again", seconds,
                           computes="a lookup of the recorded ranking (same evidence, options, code)",
                           note=seen.note(repeats),
                           detail={**asdict(seen), "position": first["position"], "first": first,
                                   "first_was_new": not first["duplicate"],
                                   "used_events": first["used_events"]})
    return cold_timing, linked_timing, repeat_timing


def read_model_check(ctx: Any, benchmark: str) -> bool:
    """Does the ranking's read model hold what the graph holds, citing the same events? (On this store.)"""
    from services.ranking import evidence

    found = evidence.current(ctx, EXPERIMENT, benchmark)
    same_observations = found.observations == evidence.from_graph(ctx, EXPERIMENT, benchmark)
    cited = {run: (c.run, c.score) for run, c in found.cited.items()}
    return same_observations and cited == evidence.cited_in_graph(ctx, EXPERIMENT, benchmark)


def bench_cli(benchmark: str, cold_benchmark: str | None, repeats: int, reference: dict[str, Any]) -> Timing:
    """`knobs rank --experiment X --benchmark B --json` as a subprocess, Python start-up included."""
    def run(bench: str) -> dict[str, Any]:
        cmd = [*knobs_command(), "rank", "--experiment", EXPERIMENT, "--benchmark", bench, "--json"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr[-2000:]}")
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    cold_s = None
    if cold_benchmark is not None:  # a benchmark nobody ranked yet: a new ranking, from the CLI
        cold_s, _ = timed(lambda: run(cold_benchmark))
    startup = [timed(lambda: subprocess.run([*knobs_command(), "--help"], capture_output=True, check=True))[0]
               for _ in range(repeats)]
    seconds: list[float] = []
    seen = Repeats(reference["ranking_id"], reference["code_version"])
    for _ in range(repeats):
        s, answer = timed(lambda: run(benchmark))
        seconds.append(s)
        seen.count(answer)
    return Timing("knobs CLI: knobs rank --json (subprocess)", seconds, cold_s=cold_s,
                  computes="the same, plus Python start-up and imports",
                  note=f"`knobs --help` alone p50 {percentile(startup, 50):.2f} s; {seen.note(repeats)}",
                  detail={**asdict(seen), "cold_benchmark": cold_benchmark, "help_s": startup})


# --- Sobol: analyse_design vs SALib alone -------------------------------------------------------


def g_a(d: int) -> tuple[float, ...]:
    """Sobol' G coefficients: a few important factors, the rest nearly inert (a = 99)."""
    head = (0.0, 1.0, 4.5, 9.0)
    return (head + (99.0,) * max(0, d - len(head)))[:d]


def bench_sobol(n: int, d: int, resamples: int, repeats: int, seed: int,
                second_order: bool) -> dict[str, Any]:
    """Time `analyse_design` (runs mapped to sample rows, seeds averaged, indices packed) and
    `SALib.analyze.sobol.analyze` on the same Y, problem, resamples and bootstrap seed."""
    from SALib.analyze import sobol

    from services.ranking.analysis.gsa import analyse_design
    from services.ranking.analysis.selftest import function_design, observe, sobol_g

    a = g_a(d)
    build_s, design = timed(lambda: function_design("sobol-g", "sobol", n, [(0.0, 1.0)] * d, seed,
                                                    calc_second_order=second_order))
    observations = observe(design, lambda x: sobol_g(x, a))
    row_of = {r.run_id: r.row for r in design.runs}
    assert design.samples is not None and design.problem is not None
    y = np.empty(len(design.samples), dtype=np.float64)
    for o in observations:  # one seed per point: Y in the sample's row order
        y[row_of[o.run_id]] = o.score
    ours, salib = [], []
    result, si = None, None
    for i in range(repeats):
        # Alternate who goes first: on a busy machine the second of a pair may run hotter or colder.
        def run_ours() -> Any:
            return analyse_design(design, observations, seed=seed, num_resamples=resamples)

        def run_salib() -> Any:
            return sobol.analyze(dict(design.problem or {}), y, calc_second_order=second_order,
                                 num_resamples=resamples, seed=np.random.default_rng(seed))
        if i % 2 == 0:
            s_ours, result = timed(run_ours)
            s_salib, si = timed(run_salib)
        else:
            s_salib, si = timed(run_salib)
            s_ours, result = timed(run_ours)
        ours.append(s_ours)
        salib.append(s_salib)
    assert result is not None and si is not None
    names = list(design.problem["names"])
    same = all(
        result.indices[nm][k] == _finite(si[k][i]) for i, nm in enumerate(names) for k in ("S1", "ST")
    )
    return {
        "n": n, "d": d, "second_order": second_order, "runs": len(design.runs), "resamples": resamples,
        "repeats": repeats, "a": list(a), "design_build_s": build_s,
        "ours_s": ours, "salib_s": salib,
        "ours_p50": percentile(ours, 50), "salib_p50": percentile(salib, 50),
        # Each pair ran back to back, so its ratio is immune to the machine's load drifting between
        # pairs (other work on a shared machine); the ratio of the two p50s is not.
        "ratio": statistics.median(o / s for o, s in zip(ours, salib, strict=True)),
        "ratio_of_p50s": percentile(ours, 50) / percentile(salib, 50),
        "same_indices": same,
        "top": sorted(names, key=lambda nm: -(result.indices[nm]["ST"] or 0.0))[:3],
    }


def _finite(x: Any) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


# --- the run ----------------------------------------------------------------------------------


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


REPEATS = ("api_colds", "api_repeats", "in_process_repeats", "cli_repeats", "pandas_repeats",
           "mlflow_repeats", "sobol_repeats")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.rank", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10_000, help="runs in the store (default 10000)")
    p.add_argument("--parameters", type=int, default=10, help=f"parameters, 1..{len(KNOBS)} (default 10)")
    p.add_argument("--benchmarks", type=int, default=5,
                   help=f"benchmarks, 1..{len(BENCHMARK_NAMES)} (default 5)")
    p.add_argument("--seed", type=int, default=20240601, help="generator seed")
    p.add_argument("--api-colds", type=int, default=5,
                   help="timed new rankings through the API, at the same evidence (default 5)")
    p.add_argument("--api-repeats", type=int, default=20,
                   help="timed API rankings after the first (default 20)")
    p.add_argument("--in-process-repeats", type=int, default=5, help="timed in-process rankings (default 5)")
    p.add_argument("--cli-repeats", type=int, default=5, help="timed CLI rankings (default 5)")
    p.add_argument("--pandas-repeats", type=int, default=20, help="timed pandas analyses (default 20)")
    p.add_argument("--mlflow-repeats", type=int, default=5, help="timed search_runs + pandas (default 5)")
    p.add_argument("--mlflow-runs", type=int, default=None,
                   help="log only this many runs into MLflow (default: all; reported when capped)")
    p.add_argument("--sobol-n", type=int, default=1024, help="Sobol base sample N (default 1024)")
    p.add_argument("--sobol-d", type=int, default=10, help="Sobol factors D (default 10)")
    p.add_argument("--sobol-resamples", type=int, default=1000,
                   help="bootstrap resamples, both sides (default 1000, as knobs rank uses)")
    p.add_argument("--sobol-repeats", type=int, default=5, help="timed Sobol analyses per side (default 5)")
    p.add_argument("--no-second-order", action="store_true", help="Sobol without S2 (N x (D + 2) runs)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the figures here as JSON")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep the store, CSV and MLflow database here (a new or empty directory)")
    args = p.parse_args(argv)
    for name in REPEATS:
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.mlflow_runs is not None and args.mlflow_runs < 1:
        p.error("--mlflow-runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return on_workload(parse_args(argv), "knobs-bench-rank-", _run)


def on_workload(args: argparse.Namespace, prefix: str,
                run: Callable[[argparse.Namespace, Workload, Path], int]) -> int:
    """Generate the workload `args` ask for (exit 2 when they cannot make one) and `run` it in a
    working directory: a benchmark's main on bench.rank's one-at-a-time store."""
    try:
        workload = generate(args.runs, args.parameters, args.benchmarks, args.seed)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return in_workdir(args.workdir, prefix, lambda workdir: run(args, workload, workdir))


def _run(args: argparse.Namespace, workload: Workload, workdir: Path) -> int:
    import pandas as pd

    from bench.ingest import neo4j_connection, wipe_graph
    from services.core.context import Context
    from services.importing.adapters import environment

    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    started = time.perf_counter()
    benchmark = workload.benchmarks[0]
    cold_cli = workload.benchmarks[1] if len(workload.benchmarks) > 1 else None
    n_runs = len(workload.rows)
    mlflow_runs = min(args.mlflow_runs or n_runs, n_runs)
    info: dict[str, Any] = {
        "machine": machine(), "runs": n_runs, "parameters": [k.name for k in workload.knobs],
        "benchmarks": list(workload.benchmarks), "benchmark": benchmark, "seed": args.seed,
        "configurations": workload.configurations,
        "seeds_per_configuration": workload.seeds_per_configuration,
        "baseline_seeds": workload.baseline_seeds, "mlflow_runs": mlflow_runs,
        "repeats": {name.removesuffix("_repeats"): getattr(args, name) for name in REPEATS},
    }
    print(f"{n_runs:,} runs x {len(workload.knobs)} parameters x {len(workload.benchmarks)} benchmarks "
          f"({workload.configurations} configurations: the baseline with {workload.baseline_seeds} seeds, "
          f"each other with {workload.seeds_per_configuration}); working in {workdir}", flush=True)
    csv_path = workdir / "runs.csv"
    write_csv(workload, csv_path)
    home = workdir / "knobs-home"
    home.mkdir()

    timings: dict[str, Timing] = {}
    orders: dict[str, list[str]] = {}
    print("pandas ...", flush=True)
    df = pd.read_csv(csv_path)
    timings["pandas"], orders["pandas"] = bench_pandas(df, workload.knobs, benchmark, args.pandas_repeats)

    print(f"MLflow: logging {mlflow_runs:,} runs (create_run + log_batch each) ...", flush=True)
    uri, experiment_id, log_s = mlflow_log(workload, mlflow_runs, workdir)
    info["mlflow_log_s"] = log_s
    timings["mlflow"], orders["mlflow"] = bench_mlflow(uri, experiment_id, workload.knobs, benchmark,
                                                       args.mlflow_repeats, mlflow_runs, n_runs)

    # The store path and Neo4j follow KNOBS_HOME; both are put back afterwards.
    with environment(KNOBS_HOME=str(home), KNOBS_EVENTS_BACKEND="sqlite"), \
            neo4j_connection(home) as neo, Context(home=home) as ctx:
        if not neo["started"]:
            wipe_graph(ctx.driver())  # a fresh log needs an empty graph (its checkpoint lives there)
        print("knobs: importing the CSV (services.importing.results.import_results) ...", flush=True)
        info["knobs_store"] = import_and_project(ctx, csv_path)
        print("knobs API ...", flush=True)
        with api_server(home, workdir) as served:
            info["serve_startup_s"] = served.startup_s
            timings["api_cold"], timings["api_linked"], timings["api"] = bench_api(
                served.url, served.token, benchmark, args.api_repeats, args.api_colds)
        info["read_model_equals_graph"] = read_model_check(ctx, benchmark)
        first = timings["api"].detail.pop("first")
        orders["knobs"] = [p["name"] for p in first["parameters"]]
        info["knobs_answer"] = summarise(first)
        print("knobs in process ...", flush=True)
        timings["in_process"] = bench_in_process(ctx, benchmark, args.in_process_repeats, first)
        print("knobs CLI ...", flush=True)
        timings["cli"] = bench_cli(benchmark, cold_cli, args.cli_repeats, first)

    print(f"Sobol: N = {args.sobol_n}, D = {args.sobol_d} ...", flush=True)
    sobol = bench_sobol(args.sobol_n, args.sobol_d, args.sobol_resamples, args.sobol_repeats, seed=0,
                        second_order=not args.no_second_order)
    info["elapsed_s"] = time.perf_counter() - started

    ordered = {k: timings[k]
               for k in ("api_cold", "api_linked", "api", "in_process", "cli", "pandas", "mlflow")}
    ratios = {
        "api_cold_over_pandas": timings["api_cold"].p50 / timings["pandas"].p50,
        "mlflow_over_api_cold": timings["mlflow"].p50 / timings["api_cold"].p50,
        "mlflow_over_api_linked": timings["mlflow"].p50 / timings["api_linked"].p50,
        "mlflow_over_api_repeat": timings["mlflow"].p50 / timings["api"].p50,
        "api_over_pandas": timings["api"].p50 / timings["pandas"].p50,
        "api_over_mlflow": timings["api"].p50 / timings["mlflow"].p50,
        "cli_over_api": timings["cli"].p50 / timings["api"].p50,
        "sobol_ours_over_salib": sobol["ratio"],
    }
    checks = {
        "first_api_ranking_new": timings["api"].detail["first_was_new"],
        "api_colds_new": timings["api_cold"].detail["new"] == len(timings["api_cold"].seconds),
        "read_model_equals_graph": info["read_model_equals_graph"],
        # The same evidence ranked again by the same code is the same fact: a duplicate.
        **{f"{k}_repeats_duplicates": timings[k].detail["unexplained"] == 0
           for k in ("api", "in_process", "cli")},
        "pandas_order_equals_knobs": orders["pandas"] == orders["knobs"],
        "sobol_same_indices": sobol["same_indices"],
    }
    if mlflow_runs == n_runs:
        checks["mlflow_order_equals_knobs"] = orders["mlflow"] == orders["knobs"]
    ok = all(checks.values())
    print(report(ordered, ratios, sobol, info, orders))
    print(f"checks: {'ok' if ok else 'FAILED'} ({', '.join(f'{k}: {v}' for k, v in checks.items())})")
    if args.json is not None:
        payload = {
            **info,
            "results": {k: {**asdict(t), "p50": t.p50, "p95": t.p95} for k, t in ordered.items()},
            "ratios": ratios, "sobol": sobol, "orders": orders, "checks": {**checks, "ok": ok},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 0 if ok else 1


def summarise(answer: dict[str, Any]) -> dict[str, Any]:
    """What the knobs ranking said, in a line per parameter: the proof it computed more than a width."""
    out = []
    for p in answer["parameters"]:
        knee = p.get("knee") or {}
        out.append({
            "name": p["name"], "rank": p["rank"], "width": p["influence_range"][1] - p["influence_range"][0],
            "noise": (p.get("noise") or {}).get("label"), "noise_basis": (p.get("noise") or {}).get("basis"),
            "knee": f"{knee['value']:.3g}" if knee.get("status") == "found" else knee.get("status"),
            "flags": [f.get("kind") for f in p.get("flags") or []],
            "per_cost": len(p.get("per_cost") or []),
        })
    return {"parameters": out, "used_events": answer["used_events"]}


def report(timings: dict[str, Timing], ratios: dict[str, float], sobol: dict[str, Any],
           info: dict[str, Any], orders: dict[str, list[str]]) -> str:
    cold = timings["api_cold"]
    rows = [
        [t.tool, f"{t.p50:.3f}", f"{t.p95:.3f}", f"{t.p50 / cold.p50:.3f}x", str(len(t.seconds)),
         f"{t.cold_s:.3f}" if t.cold_s is not None else "", t.note]
        for t in timings.values()
    ]
    m = info["machine"]
    answer = info["knobs_answer"]["parameters"]
    capped = info["mlflow_runs"] < info["runs"]
    store = info["knobs_store"]
    lines = [
        "",
        f"workload: {info['runs']:,} runs x {len(info['parameters'])} parameters x "
        f"{len(info['benchmarks'])} benchmarks, one at a time ({info['configurations']} configurations), "
        f"seed {info['seed']}; ranked on {info['benchmark']!r}",
        f"store: {store['events']:,} events imported in {store['import_s']:.1f} s, "
        f"projected in {store['project_s']:.1f} s; MLflow: {info['mlflow_runs']:,} runs logged in "
        f"{info['mlflow_log_s']:.0f} s" + (" (CAPPED with --mlflow-runs: MLflow searches fewer runs "
                                           "than the others see)" if capped else ""),
        "",
        "rank latency, seconds (cold: a ranking not recorded before, computed and appended -- the API "
        "answers then and projects its links into the graph right after, the second row waits for "
        "that; the CLI and in-process calls project before returning; repeat: the same question at "
        "the same evidence, answered with the recorded ranking; 'first' is a tool's first call):",
        table(["tool", "p50", "p95", "p50 / knobs API cold", "n", "first", "note"], rows),
        "",
        "ratios (latency p50):",
        f"  MLflow search_runs + pandas / knobs API cold   {ratios['mlflow_over_api_cold']:9.1f}x faster"
        + (f"  (MLflow over {info['mlflow_runs']:,} of {info['runs']:,} runs)" if capped else ""),
        f"  MLflow search_runs + pandas / knobs API cold, graph linked "
        f"{ratios['mlflow_over_api_linked']:5.1f}x faster",
        f"  MLflow search_runs + pandas / knobs API repeat {ratios['mlflow_over_api_repeat']:9.1f}x faster",
        f"  knobs API cold / pandas groupby (the floor)    {ratios['api_cold_over_pandas']:9.1f}x slower",
        f"  knobs API repeat / pandas groupby              {ratios['api_over_pandas']:9.2f}x",
        f"  knobs CLI / knobs API repeat                   {ratios['cli_over_api']:9.1f}x",
        "",
        "what each side computes:",
        "  knobs (API, CLI, in process): reads every run's parameters, costs and score from its read "
        "model of the log (the events since its last call; the same observations and cited events as "
        f"the graph on this store: {info['read_model_equals_graph']}); OFAT effects with t-intervals per "
        "value; a seed-noise verdict per parameter; knees with bootstrap intervals along each numeric "
        "knob and its FLOPs; effect per FLOP, GPU-hour and weight byte; leverage flags; a RankingDerived "
        f"event citing every run and score event it used ({info['knobs_answer']['used_events']:,}), "
        "appended to the hash-chained log and projected (a repeat answers with the recorded one)",
        "  pandas: the same OFAT table (per value mean/std/count, effect vs baseline, width, sort) over a "
        "DataFrame already in memory; no noise verdict, knee, cost, flags, record or provenance",
        "  MLflow + pandas: search_runs into a DataFrame (parameters come back as strings), then the "
        "pandas table",
        f"  same ranking order as knobs: pandas {orders['pandas'] == orders['knobs']}, "
        f"MLflow {orders['mlflow'] == orders['knobs']}" + (" (on its capped subset)" if capped else ""),
        "",
        "knobs' answer (rank, parameter, influence width, noise verdict, knee, flags):",
        *(f"  {p['rank']:2d}. {p['name']:<15} {p['width']:.4f}  {p['noise']}  knee: {p['knee']}  "
          f"flags: {', '.join(p['flags']) or '-'}" for p in answer),
        "",
        f"Sobol, N = {sobol['n']}, D = {sobol['d']}"
        f"{' with second order' if sobol['second_order'] else ''} ({sobol['runs']:,} runs, Sobol' G, "
        f"{sobol['resamples']} bootstrap resamples, p50 of {sobol['repeats']}):",
        f"  services.ranking.analysis.gsa.analyse_design  {sobol['ours_p50']:8.3f} s",
        f"  SALib.analyze.sobol.analyze alone     {sobol['salib_p50']:8.3f} s",
        f"  ratio analyse_design / SALib {sobol['ratio']:.2f}x, median of {sobol['repeats']} back-to-back "
        f"pairs (ratio of the p50s {sobol['ratio_of_p50s']:.2f}x); the difference is our "
        "overhead: runs mapped to sample rows, seeds averaged, indices packed",
        f"  identical indices: {sobol['same_indices']}; building the design itself (SALib's sampler and "
        f"the mapping to factor values, not timed above) {sobol['design_build_s']:.2f} s",
        "",
        "machine: {cpu}; {cores} cores ({cores_usable} usable); {ram_gib} GiB RAM; "
        "Python {python}; SQLite {sqlite}; {platform}".format(**m),
        f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"whole run {info['elapsed_s']:.0f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
