"""`knobs knobs | influence | rankings | underused | matrix`: the named questions, for people.

Each command runs one named query from graph/queries (read-only, under the API's row limit
and timeout) and prints it as tables; `--json` prints `{query, columns, rows, truncated}`
with the JSON text columns decoded, as `GET /v1/...` returns it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import typer

from services.cli.output import emit_json, fmt, table
from services.core.context import Context
from services.core.errors import BadInput

if TYPE_CHECKING:
    from services.queries.named import Answer

Row = dict[str, Any]


def register(app: typer.Typer) -> None:
    app.command("knobs")(knobs)
    app.command("influence")(influence)
    app.command("rankings")(rankings)
    app.command("underused")(underused)
    app.command("matrix")(matrix)


def _ask(name: str, **params: Any) -> Answer:
    from services.queries.named import ask  # the driver: not at `knobs --help` time

    with Context() as ctx:
        return ask(ctx, name, params, decode=True)


def _print(answer: Answer, json_out: bool, render: Callable[[list[Row]], str], empty: str) -> None:
    if json_out:
        emit_json(answer.public())
        return
    typer.echo(render(answer.rows) if answer.rows else empty)
    if answer.truncated:
        typer.echo(f"(truncated at {len(answer.rows)} rows: KNOBS_API_CYPHER_ROW_LIMIT; "
                   "narrow the question or raise the limit)")


def _groups(rows: list[Row], *keys: str) -> dict[tuple[Any, ...], list[Row]]:
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return groups


def _range(row: Row) -> str:
    lo, hi = row.get("influence_lo"), row.get("influence_hi")
    return "-" if lo is None or hi is None else f"[{lo:+.3g}, {hi:+.3g}]"


def _knee(row: Row) -> str:
    status, value = row.get("knee_status"), row.get("knee_value")
    if status == "found" and value is not None:
        return f"{value:.3g}"
    return str(status).replace("_", " ") if status else "-"


def _better(direction: object) -> str:
    return f"{direction} is better" if direction else "direction not recorded"


JSON_OPTION = typer.Option(False, "--json", help="Print JSON: {query, columns, rows, truncated}.")


# ------------------------------------------------------------------ knobs


def knobs(
    benchmark: str = typer.Option(..., "--benchmark", help="The benchmark whose knobs to rank."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Which knobs matter on a benchmark: the latest ranking of each experiment and method."""
    answer = _ask("knobs_for_benchmark", benchmark=benchmark)
    _print(answer, json_out, lambda rows: render_knobs(benchmark, rows),
           f"no ranking on benchmark {benchmark!r} yet: `knobs rankings` lists what is ranked; "
           f"`knobs rank --experiment E --benchmark {benchmark}` makes one")


def render_knobs(benchmark: str, rows: list[Row]) -> str:
    blocks = []
    groups = _groups(rows, "experiment", "method", "ranking_id")
    for (experiment, method, ranking_id), group in groups.items():
        head = (f"{experiment} on {benchmark} ({method}, {_better(group[0].get('direction'))}): "
                f"ranking {ranking_id} as of position {group[0].get('as_of')}")
        body = table(
            ["rank", "parameter", "statistic", "influence", "noise", "knee", "flagged"],
            [[r["rank"], r["parameter"], r.get("statistic"), _range(r), r.get("noise_label"), _knee(r),
              "yes" if r.get("flagged") else ""] for r in group],
        )
        blocks.append(f"{head}\n{body}")
    return "\n\n".join(blocks)


# -------------------------------------------------------------- influence


def influence(
    parameter: str = typer.Argument(..., help="The parameter (knob) name, e.g. lr or n_layer."),
    benchmark: str = typer.Option(None, "--benchmark", help="Only this benchmark (default: every one)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """A parameter's influence range, noise verdict and knee in each latest ranking that ranks it."""
    answer = _ask("influence_range", parameter=parameter, benchmark=benchmark)
    where = f" on benchmark {benchmark!r}" if benchmark else ""
    _print(answer, json_out, render_influence,
           f"no current ranking ranks parameter {parameter!r}{where}: `knobs rankings` lists the rankings")


def render_influence(rows: list[Row]) -> str:
    table_rows = []
    for r in rows:
        values = r.get("values") or []
        tried = "  ".join(
            f"{v.get('value')}{'*' if v.get('is_baseline') else ''}: {v.get('effect', 0.0):+.3g}"
            for v in values if isinstance(v, dict)
        )
        table_rows.append([r["benchmark"], r["experiment"], r["method"], f"{r['rank']}/{r['ranked']}",
                           _range(r), r.get("statistic"), r.get("noise_label"), _knee(r), tried])
    parameter = rows[0]["parameter"]
    return f"{parameter}: effect on each benchmark (baseline = 0; * marks the baseline value)\n" + table(
        ["benchmark", "experiment", "method", "rank", "influence", "statistic", "noise", "knee",
         "value: effect"], table_rows)


# --------------------------------------------------------------- rankings


def rankings(
    experiment: str = typer.Option(None, "--experiment", help="Only this experiment."),
    benchmark: str = typer.Option(None, "--benchmark", help="Only this benchmark."),
    method: str = typer.Option(None, "--method", help="Only this method: ofat, morris or sobol."),
    run: str = typer.Option(None, "--run", help="Only the rankings that used this run (needs "
                            "--experiment): what to recompute without it."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Rankings, newest first; with --run, the rankings that depend on that run."""
    if run is None:
        answer = _ask("rankings", experiment=experiment, benchmark=benchmark, method=method)
        _print(answer, json_out, render_rankings, "no rankings match: `knobs rank` makes one")
        return
    if experiment is None:
        raise BadInput("--run RUN_ID needs --experiment NAME: a run id is unique within its experiment")
    answer = _ask("rankings_using_run", experiment=experiment, run_id=run)
    if benchmark or method:  # rankings_using_run takes no filters; narrow its (few) rows here
        from services.queries.named import Answer

        kept = [r for r in answer.rows if (benchmark in (None, r["benchmark"]))
                and (method in (None, r["method"]))]
        answer = Answer(answer.query, answer.columns, kept, answer.truncated)
    _print(answer, json_out, lambda rows: render_dependents(experiment, run, rows),
           f"no ranking used run {run!r} of experiment {experiment!r}")


def render_rankings(rows: list[Row]) -> str:
    return table(
        ["position", "ranking", "experiment", "benchmark", "method", "as of", "events", "parameters",
         "top", "latest"],
        [[r["position"], r["ranking_id"], r["experiment"], r["benchmark"], r["method"], r["as_of"],
          r["used_events"], r["parameters"], r.get("top"),
          "yes" if r["latest"] else "what-if" if r.get("what_if") else "superseded"]
         for r in rows],
    )


def render_dependents(experiment: str, run: str, rows: list[Row]) -> str:
    listing = table(
        ["position", "ranking", "benchmark", "method", "as of", "code"],
        [[(r["ranking_positions"] or [None])[-1], r["ranking_id"], r["benchmark"], r["method"], r["as_of"],
          r["code_version"]] for r in rows],
    )
    hints = _unique(f"knobs rank --experiment {experiment} --benchmark {r['benchmark']} "
                    f"--method {r['method']} --without {run}" for r in rows)
    return (f"{len(rows)} ranking{'s' if len(rows) != 1 else ''} used run {run} of {experiment}:\n"
            f"{listing}\n\nto recompute without it:\n" + "\n".join(f"  {h}" for h in hints))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# -------------------------------------------------------------- underused


def underused(
    benchmark: str = typer.Option(None, "--benchmark", help="Only this benchmark."),
    experiment: str = typer.Option(None, "--experiment", help="Only this experiment."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Under-used high-leverage parameters that the latest rankings flag, each flag with its reason."""
    answer = _ask("underused_parameters", benchmark=benchmark, experiment=experiment)
    _print(answer, json_out, render_underused, "no parameter is flagged as under-used in the latest rankings")


def render_underused(rows: list[Row]) -> str:
    blocks = []
    for (experiment, benchmark, method, ranking_id), group in _groups(
        rows, "experiment", "benchmark", "method", "ranking_id"
    ).items():
        lines = [f"{experiment} on {benchmark} ({method}, ranking {ranking_id}):"]
        for r in group:
            lines.append(f"  {r['parameter']} (rank {r['rank']}, statistic {fmt(r.get('statistic'))}, "
                         f"{r.get('noise_label') or 'noise unknown'})")
            for flag in r.get("flags") or []:
                lines.append(f"    {flag.get('kind')}: {flag.get('reason')}")
            for cost in r.get("per_cost") or []:
                per = cost.get("per_unit")
                shown = fmt(per) if per is not None else f"free ({cost.get('note') or 'no extra cost'})"
                lines.append(f"    gain per {cost.get('kind')}: {shown}")
        blocks.append("\n".join(lines))
    hints = _unique(f"  knobs suggest --experiment {r['experiment']} --benchmark {r['benchmark']}"
                    for r in rows)
    return "\n\n".join(blocks) + "\n\nto write a follow-up experiment exploring them:\n" + "\n".join(hints)


# ----------------------------------------------------------------- matrix


def matrix(
    experiment: str = typer.Option(..., "--experiment", help="The experiment."),
    method: str = typer.Option(None, "--method", help="ofat, morris or sobol (default: each "
                               "benchmark's newest ranking, whatever its method)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Parameters x benchmarks: each parameter's rank on every benchmark the experiment was ranked on."""
    answer = _ask("knobs_matrix", experiment=experiment, method=method)
    _print(answer, json_out, render_matrix,
           f"experiment {experiment!r} has no ranking yet: `knobs rank --experiment {experiment} ...`")


def render_matrix(rows: list[Row]) -> str:
    benchmarks = sorted({str(r["benchmark"]) for r in rows})
    cells = {(r["parameter"], r["benchmark"]): r for r in rows}
    parameters = sorted({str(r["parameter"]) for r in rows},
                        key=lambda p: (sum(cells[(p, b)]["rank"] for b in benchmarks if (p, b) in cells)
                                       / max(1, sum(1 for b in benchmarks if (p, b) in cells)), p))

    def cell(p: str, b: str) -> str:
        r = cells.get((p, b))
        if r is None:
            return "-"
        quiet = " ~" if r.get("noise_label") == "indistinguishable" else ""
        return f"{r['rank']}/{r['ranked']} ({fmt(r.get('statistic'))}){quiet}"

    legend = "rank/ranked (statistic); ~ = indistinguishable from noise; parameters by mean rank"
    return table(["parameter", *benchmarks], [[p, *(cell(p, b) for b in benchmarks)] for p in parameters]) \
        + f"\n{legend}"
