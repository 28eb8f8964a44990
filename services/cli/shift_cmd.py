"""`knobs shift`: how much each example (and token) of a data set moves a model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from services.cli.output import emit_json, table
from services.core.context import Context
from services.shift import DEMO_SPEC

if TYPE_CHECKING:
    from services.shift.figures import Measurement
    from services.shift.hypothesis import Tested

app = typer.Typer(help="Per-example and per-token shift of a model, and data-set volatility "
                  "(README: Influence and volatility).", no_args_is_help=True)


@app.command("measure")
def measure_cmd(
    model: str = typer.Option(..., "--model", help="A run knobs trained ('<experiment>/<run_id>') or "
                              "a local transformers causal-LM (or peft adapter) directory."),
    data: str = typer.Option(..., "--data", help="JSONL, one example per line: {\"text\": ...} or "
                             "{\"prompt\": ..., \"completion\": ...}, optional \"id\"; or a generated "
                             "corpus, "
                             "'biographies[:n_people=N,qa_fraction=F,format=plain|qa|mixed,seed=S]'."),
    probe: Path | None = typer.Option(None, "--probe", help="JSONL probe set, for probe_shift and "
                                      "hidden_shift."),
    lr: float = typer.Option(1e-3, help="Step size of the one-example step."),
    optimizer: str = typer.Option("sgd", help="sgd or adam (a fresh state's first step)."),
    metrics: str = typer.Option("full", help="full: every figure; norms: gradient norms and the data "
                                "set's figures only, by ghost norms (one backward pass per chunk)."),
    tokens: bool = typer.Option(False, "--tokens", help="Also per-token loss, saliency and gradient x "
                                "input, kept as a blob (see `knobs shift tokens`)."),
    integrated_gradients: bool = typer.Option(False, "--integrated-gradients", help="With the token "
                                              "figures, Captum's integrated gradients per token and, per "
                                              "example, their agreement with saliency (ig_agreement; slow)."),
    chunk: int = typer.Option(32, help="Examples per logged chunk (a killed measurement resumes at "
                              "the first chunk missing)."),
    no_truncate: bool = typer.Option(False, "--no-truncate", help="Refuse examples longer than the "
                                     "model's context instead of cutting them."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Measure every example's shift and the data set's volatility; every figure goes to the log."""
    from tqdm import tqdm

    from services.shift.figures import read_measurement
    from services.shift.measure import ShiftOptions, build_request, measure, resolve_data

    options = ShiftOptions(lr=lr, optimizer=optimizer, metrics=metrics, tokens=tokens,
                           integrated_gradients=integrated_gradients,
                           truncate=not no_truncate, chunk=chunk)
    with Context() as ctx:
        store = ctx.store()
        request = build_request(store, model, resolve_data(data, ctx.home), probe, options)
        with tqdm(total=request.dataset.examples, desc="shift", unit="ex", file=sys.stderr,
                  dynamic_ncols=True, disable=json_out and not sys.stderr.isatty()) as bar:
            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            measure(store, request, progress)
        found = read_measurement(store, request.measurement_id)
    if json_out:
        emit_json(found.public())
    else:
        typer.echo(render_measurement(found))


@app.command("show")
def show_cmd(
    measurement_id: str = typer.Argument(..., help="A measurement id (`knobs shift list`)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """A measurement's figures, read back from the log."""
    from services.shift.figures import read_measurement

    with Context() as ctx:
        found = read_measurement(ctx.store(), measurement_id)
    if json_out:
        emit_json(found.public())
    else:
        typer.echo(render_measurement(found))


@app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every measurement in the log, with its data set's volatility."""
    from services.shift.figures import list_measurements

    with Context() as ctx:
        found = list_measurements(ctx.store())
    if json_out:
        emit_json([{k: v for k, v in m.public().items() if k != "examples"} for m in found])
        return
    rows = [[m.request.measurement_id, m.request.model.ref, m.request.dataset.name,
             m.request.dataset.examples, f"{m.chunks_done}/{m.request.chunks}",
             m.summary.figures.volatility if m.summary else None,
             m.summary.figures.total_shift if m.summary else None] for m in found]
    typer.echo(table(["measurement", "model", "data", "examples", "chunks", "volatility", "total_shift"],
                     rows) if rows else "no measurements yet: `knobs shift measure --model ... --data ...`")


@app.command("tokens")
def tokens_cmd(
    example: str = typer.Argument(..., help="The example's id (its line's id, else its line number)."),
    measurement_id: str | None = typer.Option(None, "--measurement", help="Which measurement (default: "
                                              "the newest made with --tokens that has the example)."),
    html_out: Path | None = typer.Option(None, "--html", help="Where to write the page (default: "
                                         "$KNOBS_HOME/pages/shift-<measurement>-<example>.html)."),
    json_out: bool = typer.Option(False, "--json", help="Print the token arrays as JSON."),
) -> None:
    """An example's tokens shaded by saliency in the terminal, and the same as an HTML page."""
    from services.shift.tokens import example_tokens, render_html, render_terminal

    with Context() as ctx:
        found = example_tokens(ctx.store(), example, measurement_id)
        home = ctx.home
    page = html_out or home / "pages" / f"shift-{found.measurement_id}-{_safe(example)}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_html(found), encoding="utf-8")
    if json_out:
        emit_json({**found.public(), "html": str(page)})
        return
    typer.echo(render_terminal(found, colour=sys.stdout.isatty()))
    typer.echo(f"page: {page}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]


def render_measurement(m: Measurement) -> str:
    r = m.request
    head = (f"measurement {r.measurement_id}: {r.model.ref} on {r.dataset.name} ({r.dataset.examples} "
            f"examples), {r.settings.metrics} metrics, {r.settings.optimizer} lr {r.settings.lr:g}")
    lines = [head]
    if m.summary is None:
        lines.append(f"incomplete: {m.chunks_done} of {r.chunks} chunks logged; ask again to resume")
    else:
        d = m.summary.figures
        noise = "undefined" if d.noise_scale is None else f"{d.noise_scale:.4g}"
        lines.append(f"total_shift {d.total_shift:.4g}, net_shift {d.net_shift:.4g}, coherence "
                     f"{d.coherence:.3f}, volatility {d.volatility:.3f}, noise_scale {noise}, grad_norm "
                     f"p50 {d.grad_norm_p50:.4g} p90 {d.grad_norm_p90:.4g} max {d.grad_norm_max:.4g}"
                     + (f", {d.truncated} truncated" if d.truncated else ""))
    top = sorted(m.examples, key=lambda e: e["grad_norm"], reverse=True)[:10]
    rows = [[e["id"], e["grad_norm"], e["loss_before"], e["loss_drop"], e["probe_shift"]] for e in top]
    if rows:
        lines += ["", "most moving examples:", table(["example", "grad_norm", "loss", "loss_drop",
                                                      "probe_shift"], rows)]
    return "\n".join(lines)


@app.command("hypothesis")
def hypothesis_cmd(
    spec: Path = typer.Argument(DEMO_SPEC, help="A hypothesis spec (default: the bundled "
                                "services/data/demo-hypothesis.yaml)."),
    json_out: bool = typer.Option(False, "--json", help="Print the HypothesisTested event as JSON."),
) -> None:
    """Test the compatibility hypothesis: does a data set's volatility, measured before training on
    it, predict what training learns, generalises and forgets? Records the verdict in the log."""
    from services.shift.hypothesis import read_spec, run_test

    parsed = read_spec(spec)
    with Context() as ctx:
        tested = run_test(ctx.store(), parsed, ctx.home / "artifacts" / "hypothesis",
                          progress=lambda message: typer.echo(message, err=True))
    if json_out:
        emit_json(tested.event.model_dump(mode="json"))
        return
    typer.echo(render_verdict(tested))


@app.command("verdicts")
def verdicts_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every hypothesis verdict in the log."""
    from services.shift.hypothesis import list_verdicts

    with Context() as ctx:
        found = list_verdicts(ctx.store())
    if json_out:
        emit_json([v.model_dump(mode="json") for v in found])
        return
    typer.echo(table(["test id", "name", "verdict", "candidates"],
                     [[v.test_id, v.name, v.verdict, len(v.candidates)] for v in found])
               if found else "no verdicts yet: `knobs shift hypothesis`")


def render_verdict(tested: Tested) -> str:
    v = tested.event
    outcomes = [c.outcome for c in v.correlations]
    rows = []
    for c in v.candidates:
        means = {}
        for name in outcomes:
            values = [r[name] for r in c["runs"] if r.get(name) is not None]
            means[name] = sum(values) / len(values) if values else None
        rows.append([c["name"], c["volatility"], *(means[o] for o in outcomes)])
    lines = [f"hypothesis {v.name} ({v.test_id}): {v.verdict.upper()}"
             + ("" if tested.fresh else " (from the log)"),
             "volatility measured before training; outcomes after fine-tuning, mean over seeds "
             "(losses in nats: learned and generalised lower is better, forgotten = rise over the base)", "",
             table(["candidate", "volatility", *outcomes], rows), "",
             table(["outcome", "expected sign", "spearman", "95% bootstrap", "verdict"],
                   [[c.outcome, "+" if c.expected_sign > 0 else "-", c.spearman,
                     f"[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]" if c.ci else None, c.verdict]
                    for c in v.correlations])]
    for c in v.curriculum:
        if c["ascending_minus_descending"] is not None and c["interval"]:
            low, high = c["interval"]
            lines.append(f"curriculum {c['outcome']}: ascending - descending volatility order "
                         f"{c['ascending_minus_descending']:+.4f} [{low:+.4f}, {high:+.4f}]")
    lines.append(f"recorded as HypothesisTested at position {tested.position}; `knobs audit {v.test_id}` "
                 "traces it to every measurement")
    return "\n".join(lines)
