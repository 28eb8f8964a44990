"""What every benchmark shares: the machine it ran on, a clock, a deterministic workload, a table,
its working directory and an MLflow store to compare against."""

from __future__ import annotations

import logging
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS: tuple[str, ...] = ("mmlu", "hellaswag", "arc_challenge", "gsm8k", "truthfulqa")

# Six knobs of mixed types, as a results file would hold them: ints, a float, a string.
PARAMETERS: dict[str, tuple[Any, ...]] = {
    "n_layer": (12, 24, 32, 48),
    "n_head": (8, 16, 32),
    "d_model": (768, 1024, 2048, 4096),
    "learning_rate": (1e-4, 3e-4, 6e-4, 1e-3),
    "lora_rank": (4, 8, 16, 64),
    "data_format": ("verbatim", "qa", "lens"),
}


@dataclass(frozen=True)
class Run:
    """One training run and its scores: `len(scores)` score records."""

    run_id: str
    seed: int
    params: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)


def generate(records: int, benchmarks: int = len(BENCHMARKS), seed: int = 20240601) -> list[Run]:
    """`records` score records as `records // benchmarks` runs; the same seed gives the same runs."""
    if benchmarks < 1 or benchmarks > len(BENCHMARKS):
        raise ValueError(f"benchmarks must be between 1 and {len(BENCHMARKS)}")
    if records < benchmarks or records % benchmarks:
        raise ValueError(f"records ({records}) must be a positive multiple of benchmarks ({benchmarks})")
    rng = random.Random(seed)
    names = BENCHMARKS[:benchmarks]
    runs: list[Run] = []
    for i in range(records // benchmarks):
        params = {name: rng.choice(values) for name, values in PARAMETERS.items()}
        scores = {name: round(rng.uniform(0.2, 0.9), 6) for name in names}
        runs.append(Run(run_id=f"r{i:07d}", seed=rng.randrange(2**31), params=params, scores=scores))
    return runs


class Clock:
    """Accumulates wall time (perf_counter) under named laps."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}

    @contextmanager
    def lap(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.laps[name] = self.laps.get(name, 0.0) + time.perf_counter() - start


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and software versions: what a reader needs to compare figures."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_gib": ram_gib,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table, first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def in_workdir(given: Path | None, prefix: str, body: Callable[[Path], int]) -> int:
    """`body` run in `--workdir` (new or empty, kept for a look afterwards) or in a temporary
    directory (removed); 2 without running it when `--workdir` already holds something."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        if any(given.iterdir()):
            print(f"--workdir {given} is not empty: give a new or empty directory", file=sys.stderr)
            return 2
        return body(given.resolve())
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return body(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def mlflow_store(workdir: Path, experiment: str, artifacts: str) -> tuple[str, Any, str]:
    """A new SQLite MLflow tracking store in `workdir`: its URI, a client and the experiment's id.

    Creating the database (alembic migrations) and the experiment is set-up, not what is timed.
    """
    # No telemetry thread phoning home from a benchmark (and none to slow it down).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(experiment, artifact_location=(workdir / artifacts).as_uri())
    return uri, client, experiment_id


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """Ask a server we started to stop (SIGTERM), and kill it if it has not within `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
