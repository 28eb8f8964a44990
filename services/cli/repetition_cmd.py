"""`knobs repetition run|report`: the verbatim-versus-lens experiment, from a spec to its answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from events.home import knobs_home
from services.cli.distillation_cmd import resolve_endpoint
from services.cli.experiments_cmd import render_status, run_embedded_with_progress
from services.core.context import Context

if TYPE_CHECKING:
    from services.distillation.request import Endpoint
    from services.repetition.report import Report, Table

app = typer.Typer(help="Does rewriting beat repeating? Train students on the same text K times or on "
                  "K rewrites, score them with the battery, and compare with Physics of LM 3.1.",
                  no_args_is_help=True)


@app.command("run")
def run_cmd(
    spec: Path = typer.Argument(..., help="A `kind: repetition` YAML spec (see services/data/"
                                "demo-repetition.yaml)."),
    threads: int = typer.Option(1, help="Runs trained at once by the embedded worker."),
    base_url: str | None = typer.Option(None, "--base-url", help="llm engine: the server (default: the "
                                        "spec's, else the local LLM of `knobs services up --llm`)."),
    model: str | None = typer.Option(None, "--model", help="llm engine: the model (default: the spec's, "
                                     "else the server's only one)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Print the report when the runs end."),
) -> None:
    """Distil the rewrites, declare the grid of students, train them here, print the report."""
    from services.estimate.check import check_after_runs
    from services.repetition.report import read  # scipy and pandas: not at `knobs --help` time
    from services.repetition.service import prepare
    from services.repetition.spec import load

    parsed = load(spec)
    endpoint: Endpoint | None = None
    if parsed.needs_cloud and parsed.distill.engine == "llm":
        endpoint = resolve_endpoint(knobs_home(), base_url or parsed.distill.base_url,
                                    model or parsed.distill.model)
    with Context(knobs_home()) as ctx:
        prepared = prepare(ctx, spec, endpoint)
        if prepared.pair_set:
            ps = prepared.pair_set
            if parsed.on_text:  # the name counts the passages and names those left out
                typer.echo(f"source: {ps.pairs} cloze items from {ps.path}: {ps.name} (pair set "
                           f"{ps.sha256[:12]})")
            else:
                typer.echo(f"source: {ps.pairs} pairs from {ps.path} (pair set {ps.sha256[:12]})")
        if prepared.distillation:
            typer.echo(f"rewrites: distillation {prepared.distillation} ({prepared.distillates} distillates, "
                       f"{parsed.distill.engine} engine, lenses {', '.join(parsed.distill.lenses)})")
        d = prepared.declared
        typer.echo(f"experiment {d.experiment}: {d.runs} runs ({d.new_events} new events)")
        summary = run_embedded_with_progress(ctx, d.experiment, threads=threads)
        typer.echo(render_status(summary))
        if summary.finished:
            typer.echo(check_after_runs(ctx.store()), err=True)
        ctx.catch_up()
        if report:
            typer.echo(render(read(ctx.store(), d.experiment)))


@app.command("report")
def report_cmd(
    experiment: str = typer.Argument(..., help="The repetition experiment's name."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    benchmark: list[str] = typer.Option([], "--benchmark", help="Only these benchmarks (repeatable)."),
) -> None:
    """The K x condition table per protocol and benchmark, the fits in K, and the paper beside."""
    from services.repetition.report import read

    with Context(knobs_home()) as ctx:
        result = read(ctx.store(), experiment)
    if benchmark:
        result.tables = [t for t in result.tables if t.benchmark in benchmark]
    typer.echo(json.dumps(result.to_json(), indent=2) if json_out else render(result))


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"


def render_table(t: Table) -> str:
    ks = sorted({c.K for c in t.cells})
    conditions = sorted({c.condition for c in t.cells})
    by = {(c.condition, c.K): c for c in t.cells}
    head = f"{'condition':<10}" + "".join(f"{'K=' + str(k):>24}" for k in ks)
    lines = [f"-- {t.protocol} / {t.benchmark} ({t.direction} is better; mean [95% CI over seeds])", head]
    for condition in conditions:
        row = f"{condition:<10}"
        for k in ks:
            c = by.get((condition, k))
            if c is None:
                row += f"{'':>24}"
            else:
                span = f" [{_num(c.low)}, {_num(c.high)}]" if c.low is not None else f" (n={c.seeds})"
                row += f"{_num(c.mean) + span:>24}"
        lines.append(row)
    for d in t.differences:
        se = f", noise SE {_num(d.noise_se)}" if d.noise_se is not None else ""
        lines.append(f"  {d.condition} - verbatim at K={d.K}: {d.difference:+.3f}{se}: {d.label}")
    for f in t.fits:
        r2 = f", R² {f.r2:.2f}" if f.r2 is not None else ""
        se = f" ± {f.slope_se:.3f}" if f.slope_se is not None else ""
        lines.append(f"  fit {f.condition}: y = {f.intercept:.3f} + {f.slope:.3f}{se}·ln K "
                     f"({f.per_doubling:+.3f} per doubling of K{r2}, {f.points} points)")
    return "\n".join(lines)


def render(report: Report) -> str:
    lines = [
        f"repetition experiment {report.experiment}: {report.runs} runs scored; conditions "
        f"{', '.join(report.conditions)}; K {', '.join(map(str, report.ks))}; protocols "
        f"{', '.join(report.protocols)}; seeds {', '.join(map(str, report.seeds))}",
        f"budget: {report.budget}",
    ]
    if report.cloud:
        lines.append(f"rewrites: distillation {report.cloud} (`knobs distill show {report.cloud}`)")
    for t in report.tables:
        lines += ["", render_table(t)]
    if report.paper:
        lines += ["", f"-- the paper's figures ({report.citation}):"]
        for row in report.paper:
            lines.append(f"  {row.protocol:<18} {row.paper_condition:<22} ({row.condition}, K={row.K}): "
                         f"{row.value_percent:5.1f}%  [{row.source}]")
        lines.append("  (their 'single' is one biography seen for many passes, our verbatim; "
                     "'multiM+permute' is M rewrites in new words and order, our lenses with the "
                     "template engine)")
    if report.agreement:
        lines += ["", "-- ours beside theirs:"] + [f"  {line}" for line in report.agreement]
    return "\n".join(lines)
