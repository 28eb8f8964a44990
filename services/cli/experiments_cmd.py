"""`knobs experiment`: plan a spec, export its run table, declare it (append its run requests)."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from services.cli.output import emit_json, si, table
from services.core import plugins
from services.core.context import Context
from services.experiments import DEFAULT_FLOPS_PER_SECOND

if TYPE_CHECKING:
    from services.experiments.cost import CostEstimate, CostTotals
    from services.experiments.service import Plan
    from services.experiments.status import Summary

app = typer.Typer(help="Design experiments from a YAML spec and request their runs.",
                  no_args_is_help=True)

SPEC = typer.Argument(..., help="A YAML experiment spec (see examples/specs/).")
RATE = typer.Option(None, "--flops-per-second",
                    help="Training throughput for the time estimate (default: the median measured on "
                    f"this log's finished runs, else {DEFAULT_FLOPS_PER_SECOND:.3g}).")


def resolve_rate(ctx: Context, given: float | None) -> float:
    """The rate to plan with: the one given, else calibrated from finished runs (said on stderr)."""
    if given is not None:
        return given
    from services.experiments.service import calibrated_rate

    rate, why = calibrated_rate(ctx)
    typer.echo(why, err=True)
    return rate


# --- designing: nothing is appended -------------------------------------------------------


@app.command("plan")
def plan_cmd(
    spec: Path = SPEC,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    flops_per_second: float | None = RATE,
) -> None:
    """Validate a spec and show its runs with their estimated cost; appends nothing."""
    from services.experiments.service import plan

    with Context() as ctx:
        rate = resolve_rate(ctx, flops_per_second)
    p = plan(spec, rate)
    if json_out:
        emit_json(p.public())
    else:
        typer.echo(render_plan(p))


@app.command("export-design")
def export_design_cmd(
    spec: Path = SPEC,
    out: Path = typer.Option(..., "--out", help="CSV to write: run,seed,param.<name>..."),
    salib: Path = typer.Option(None, "--salib", help="Where to write SALib's problem and sample "
                               "(morris/sobol; default: <out>.salib.json)."),
) -> None:
    """Write the run table for an external executor; import its results with `knobs import results`."""
    from services.experiments.service import export_design

    done = export_design(spec, out, salib)
    typer.echo(f"{done.experiment}: {done.runs} runs written to {done.csv_path}")
    if done.salib_path is not None:
        typer.echo(f"SALib problem and unit-hypercube sample written to {done.salib_path}")
    typer.echo(f"add score.<benchmark> columns, then: knobs import results {done.csv_path} "
               f"--experiment {done.experiment}")


# --- requesting: appends to the log -------------------------------------------------------


@app.command("declare")
def declare_cmd(
    spec: Path = SPEC,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    flops_per_second: float | None = RATE,
) -> None:
    """Append the experiment and one RunRequested per run, as one batch; a repeat stores nothing."""
    from services.experiments.service import declare

    with Context() as ctx:
        done = declare(ctx, spec, resolve_rate(ctx, flops_per_second))
    if json_out:
        emit_json(asdict(done))
        return
    if done.new_events:
        typer.echo(f"{done.experiment}: declared; {done.runs} runs requested "
                   f"(events {done.first_position}..{done.last_position})")
    else:
        typer.echo(f"{done.experiment}: already declared with this spec; {done.runs} runs "
                   f"requested earlier, nothing new stored")


RUNS_FAILED_EXIT = 3
"""`knobs experiment run`'s exit status when at least one run failed (2 is a refused spec)."""


@app.command("run")
def run_cmd(
    spec: Path = SPEC,
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the runs until they end (with a "
                              "separate broker; the embedded one always waits)."),
    threads: int = typer.Option(1, min=1, help="Concurrent runs in the embedded worker."),
    json_out: bool = typer.Option(False, "--json", help="Print the final status as JSON."),
    flops_per_second: float | None = RATE,
) -> None:
    """Declare the experiment, then train its runs: in this process on the embedded broker
    (KNOBS_WORKERS_BROKER unset or `stub`), or through `knobs dispatcher` and `knobs worker`
    processes on RabbitMQ or Redis. Runs that already ended are not run again.

    Exits 0 when no run failed, 3 when any did (each failed run and its reason on stderr), so a
    script can tell; the status is printed either way."""
    from services.estimate.check import check_after_runs
    from services.experiments.service import declare
    from services.experiments.status import experiment_status

    broker = os.environ.get("KNOBS_WORKERS_BROKER", "stub")
    with Context() as ctx:
        done = declare(ctx, spec, resolve_rate(ctx, flops_per_second))
        typer.echo(f"{done.experiment}: {done.runs} runs requested"
                   + ("" if done.new_events else " (declared earlier; unfinished runs resume)"), err=True)
        if broker == "stub":
            summary = run_embedded_with_progress(ctx, done.experiment, threads)
        elif wait:
            typer.echo(f"runs go to the {broker} broker: `knobs dispatcher` and `knobs worker` must be "
                       "running; following their progress (Ctrl-C stops following, not the runs)", err=True)
            summary = follow(ctx, done.experiment, lambda: False)
        else:
            summary = experiment_status(ctx.store(), done.experiment)
        if summary.finished:
            typer.echo(check_after_runs(ctx.store()), err=True)
    show_status(summary, json_out)
    failed = [r for r in summary.runs if r.state == "failed"]
    if failed:
        typer.echo(f"{len(failed)} of {summary.total} run(s) failed (exit {RUNS_FAILED_EXIT}); "
                   f"see why with `knobs experiment status {summary.experiment}`:", err=True)
        for r in failed:
            typer.echo(f"  {r.run_id}: {r.failure}", err=True)
        raise typer.Exit(RUNS_FAILED_EXIT)


@app.command("status")
def status_cmd(
    name: str = typer.Argument(..., help="The experiment's name."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Where each run of an experiment stands: requested, dispatched, running, completed, failed."""
    from services.experiments.status import experiment_status

    with Context() as ctx:
        summary = experiment_status(ctx.store(), name)
    show_status(summary, json_out)


def run_embedded_with_progress(ctx: Context, experiment: str, threads: int) -> Summary:
    """Run the embedded worker in a thread; the foreground draws the progress bar."""
    runner = plugins.executor("embedded")
    failure: list[BaseException] = []

    def work() -> None:
        try:
            runner(experiment, threads=threads)
        except BaseException as exc:  # re-raised in the foreground
            failure.append(exc)

    worker = threading.Thread(target=work, name="embedded-worker", daemon=True)
    worker.start()
    summary = follow(ctx, experiment, lambda: not worker.is_alive())
    worker.join()
    if failure:
        raise failure[0]
    return summary


def follow(ctx: Context, experiment: str, stopped: Callable[[], bool], poll_s: float = 0.5) -> Summary:
    """Draw a progress bar (runs done, failed, running, ETA) until every run ended or `stopped`."""
    from tqdm import tqdm

    from services.experiments.status import Tracker

    tracker = Tracker(ctx.store(), experiment)
    summary = tracker.poll()
    with tqdm(total=summary.total, desc=experiment, unit="run", file=sys.stderr,
              dynamic_ncols=True) as bar:
        while True:
            summary = tracker.poll()
            bar.n = summary.done
            bar.set_postfix_str(_progress_text(summary), refresh=False)
            bar.refresh()
            if summary.finished or stopped():
                break
            time.sleep(poll_s)
    return tracker.poll()


def _progress_text(s: Summary) -> str:
    running = [r for r in s.runs if r.state == "running"]
    now = ", ".join(f"{r.run_id} {r.step}/{r.total_steps or '?'}" for r in running[:2])
    parts = [f"ok {s.counts.get('completed', 0)}", f"failed {s.counts.get('failed', 0)}",
             f"running {len(running)}" + (f" ({now})" if now else ""), f"ETA {_duration(s.eta_s)}"]
    return ", ".join(parts)


def show_status(summary: Summary, json_out: bool) -> None:
    if json_out:
        emit_json(summary.public())
        return
    typer.echo(render_status(summary))


def render_status(s: Summary) -> str:
    benchmarks = sorted({b for r in s.runs for b in r.scores})
    rows: list[list[Any]] = []
    for r in s.runs:
        progress = f"{r.step}/{r.total_steps}" if r.state == "running" and r.total_steps else ""
        rows.append([r.run_id, r.state + (f" {progress}" if progress else ""), r.attempts,
                     _duration(r.wall_s) if r.wall_s else "",
                     *(f"{r.scores[b]:.4g}" if b in r.scores else "" for b in benchmarks),
                     r.failure or ""])
    counts = ", ".join(f"{n} {state}" for state, n in sorted(s.counts.items()))
    lines = [f"{s.experiment}: {s.done}/{s.total} runs ended ({counts})"
             + (f"; ETA {_duration(s.eta_s)}" if not s.finished and s.eta_s is not None else ""),
             table(["run", "state", "attempts", "wall", *benchmarks, "failure"], rows)]
    return "\n".join(lines)


# --- rendering ----------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _setting(params: dict[str, Any], varied: tuple[str, ...]) -> str:
    return ", ".join(f"{n}={_short(params.get(n))}" for n in varied) or "(base)"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def render_plan(p: Plan) -> str:
    s = p.spec
    rows: list[list[Any]] = []
    for run, cost in zip(p.runs, p.costs, strict=True):
        rows.append([run.run_id, run.seed, _setting(run.params, run.varied), *_cost_cells(cost)])
    headers = ["run", "seed", "varied (vs base)", "params", "tokens", "FLOPs", "est. time"]
    lines = [
        f"{s.name}: {s.design.method} design, executor {s.executor}, {len(p.runs)} runs "
        f"(budget {s.budget.max_runs}), benchmarks {', '.join(s.benchmarks)}",
        f"spec sha256 {p.spec_sha256}",
        "",
        table(headers, rows),
        "",
        _totals_line(p.totals),
    ]
    return "\n".join(lines)


def _cost_cells(c: CostEstimate) -> list[str]:
    if not c.known:
        return ["unknown"] * 4
    return [si(c.parameters), si(c.tokens), si(c.flops), _duration(c.seconds)]


def _totals_line(t: CostTotals) -> str:
    if t.unknown == t.runs:
        return f"total: {t.runs} runs; cost unknown (an external executor runs them)"
    rate = si(t.flops_per_second, "FLOP/s") if t.flops_per_second else "the given rates"
    return (f"total: {t.runs} runs, {si(t.tokens)} tokens, {si(t.flops)} FLOPs, "
            f"~{_duration(t.seconds)} at {rate} (an estimate: 6 x parameters x tokens, "
            "not a measurement; --flops-per-second sets the rate)")
