"""`knobs estimate`: how long N A4 pages take on a GPU (or this CPU) — distilling and training —
and `knobs estimate --check`: how far the estimator was from every finished run."""

from __future__ import annotations

import typer

from events.home import knobs_home
from services.cli.output import emit_json, table
from services.core.context import Context
from services.core.errors import BadInput


def duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def render_estimate(result: dict) -> str:  # type: ignore[type-arg]
    rows = [[r["pages"], r["tokens"], r["requests"], r["train_tokens"], duration(r["generate_s"]),
             duration(r["train_s"]), duration(r["total_s"]),
             f"{duration(r['low_s'])} - {duration(r['high_s'])}"]
            for r in result["estimates"]]
    out = [table(["pages", "tokens", "requests", "train tokens", "generate", "train", "total", "low - high"],
                 rows), "", "inputs:"]
    for key, value in result["inputs"].items():
        out.append(f"  {key}: {value}")
    return "\n".join(out)


def register(app: typer.Typer) -> None:
    @app.command("estimate")
    def estimate_cmd(
        pages: str = typer.Option("1,10,100,1000", "--pages",
                                  help="A4 pages, comma-separated positive integers."),
        lenses: int = typer.Option(4, "--lenses", help="Lens rewrites per passage."),
        samples: int = typer.Option(1, "--samples", help="Samples per lens and passage."),
        epochs: int = typer.Option(3, "--epochs", help="Epochs over the cloud."),
        base: str = typer.Option("smollm2-135m", "--base",
                                 help="smollm2-135m (LoRA) or scratch-135m (full)."),
        gpu: str | None = typer.Option(None, "--gpu", help="A GPU of the table, or 'auto' (what torch sees); "
                                       "default: this machine's CPU."),
        efficiency: float | None = typer.Option(None, "--efficiency", help="MFU in (0, 1] instead of the "
                                                "calibrated or default range."),
        concurrency: int = typer.Option(1, "--concurrency", help="Requests the LLM server runs at once."),
        context: int = typer.Option(1024, "--context", help="Training context length (memory check)."),
        batch: int = typer.Option(8, "--batch", help="Training batch size (memory check)."),
        check_runs: bool = typer.Option(False, "--check", help="Check the estimator against every finished "
                                        "run and record the checks."),
        list_gpus: bool = typer.Option(False, "--gpus", help="Print the GPU table and exit."),
        json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Estimate distilling and training time for N A4 pages, or check the estimator (--check)."""
        if list_gpus:
            from services.estimate.gpus import load_gpus

            rows = [[g.name, f"{g.peak_flops / 1e12:g}", f"{g.memory_bytes / 1e9:g}",
                     "yes" if g.verified else "no", g.source] for g in load_gpus()]
            typer.echo(table(["gpu", "bf16 dense TFLOP/s", "memory GB", "verified", "source"], rows))
            return
        from services.estimate.check import check
        from services.estimate.estimate import Request, estimate, parse_pages
        from services.estimate.pages import measure_page_tokens

        with Context(knobs_home()) as ctx:
            if check_runs:
                result = check(ctx.store())
                if json_out:
                    emit_json({"checks": result["checks"]})
                    return
                rows = [[c["run"], f"{c['predicted_s']:.2f}", f"{c['measured_s']:.2f}",
                         f"{c['relative_error']:+.1%}"] for c in result["checks"]]
                typer.echo(table(["run", "predicted s", "measured s", "relative error"], rows))
                s = result["summary"]
                typer.echo(f"median |relative error| {s['median_abs_relative_error']:.1%} over "
                           f"{s['runs']} runs (leave-one-out; {s['new_events']} new EstimateChecked events)")
                for skip in s["skipped"]:
                    typer.echo(f"skipped {skip['run']}: {skip['reason']}")
                return
            request = Request(pages=parse_pages(pages), lenses=lenses, samples=samples, epochs=epochs,
                              base=base, gpu=gpu, efficiency=efficiency, concurrency=concurrency,
                              context=context, batch=batch)
            request.validate()  # before the tokenizer loads: bad input answers at once
            result = estimate(ctx.store(), request, measure_page_tokens(base))
        if json_out:
            emit_json(result)
        else:
            typer.echo(render_estimate(result))


__all__ = ["BadInput", "register"]
