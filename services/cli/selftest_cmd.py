"""`knobs selftest`: check Morris and Sobol against test functions whose indices are known."""

from __future__ import annotations

from dataclasses import asdict

import typer

from services.cli.output import emit_json, table


def register(app: typer.Typer) -> None:
    app.command("selftest")(selftest)


def selftest(
    seed: int = typer.Option(0, "--seed", min=0, help="Design and bootstrap seed."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check Morris and Sobol against analytic indices (Ishigami, Sobol G); exit 1 on a miss.

    The test functions go through the same spec, design and analysis code as experiments and
    are compared within SALib's own test tolerances.
    """
    from services.ranking.analysis.selftest import gsa_selftest

    checks = gsa_selftest(seed)
    failed = [c for c in checks if not c.passed]
    if json_out:
        emit_json({"ok": not failed, "seed": seed, "checks": [asdict(c) for c in checks]})
    else:
        typer.echo(table(["check", "expected", "got", "tolerance", "ok"],
                         [[c.name, c.expected, c.got, c.tolerance, "ok" if c.passed else "FAIL"]
                          for c in checks]))
        sources = sorted({c.source for c in checks if c.source})
        typer.echo("\ntolerances from: " + "; ".join(sources))
        typer.echo(f"{len(checks) - len(failed)} of {len(checks)} checks passed")
    if failed:
        raise typer.Exit(1)
