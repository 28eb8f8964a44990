"""`knobs lenses list|show|check`: the lenses a distillation can rewrite pairs through (README: Lens
distillation). `knobs distill` belongs in this module too (see `register`)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from events.thresholds import DUPLICATE_COSINE, MIN_SIMILARITY
from services.cli.output import emit_json, table
from services.core.context import Context
from services.infra.errors import LLMNotConfigured

if TYPE_CHECKING:
    from events.models.distillation import Usage
    from services.distillation.lenses import LoadedLens
    from services.distillation.report import DistillationReport
    from services.distillation.request import Endpoint

lenses_app = typer.Typer(help="The lenses: builtin and your own YAML files, each versioned by its "
                         "content (README: Lens distillation).", no_args_is_help=True)

LENS_DIR_HELP = ("A directory of your own lens files (repeatable; after $KNOBS_HOME/lenses and "
                 "KNOBS_LENS_DIRS, and a lens here replaces one of the same name).")


def register(app: typer.Typer) -> None:
    """Wire this module's commands into `knobs` (services/cli/main.py calls this once)."""
    app.add_typer(lenses_app, name="lenses")
    app.add_typer(distill_app, name="distill")


@lenses_app.command("list")
def list_cmd(
    family: str | None = typer.Option(None, "--family", help="Only lenses of this family."),
    lens_dir: list[Path] = typer.Option([], "--lens-dir", help=LENS_DIR_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every lens by family: name, version, where it came from, what it does."""
    from services.distillation.lenses import BUILTIN, LensError, families, load_lenses

    lenses = load_lenses(lens_dir)
    shown = sorted(lenses.values(), key=lambda item: (item.lens.family, item.lens.name))
    if family is not None:
        shown = [item for item in shown if item.lens.family == family]
        if not shown:
            raise LensError(f"no lens of family {family!r}; families: {', '.join(families(lenses.values()))}")
    if json_out:
        emit_json([{"name": item.lens.name, "family": item.lens.family, "version": item.version,
                    "origin": item.origin, "overrides": item.overrides or None,
                    "description": item.lens.description} for item in shown])
        return
    rows = [[item.lens.name, item.lens.family, item.version, _origin(item), item.lens.description]
            for item in shown]
    typer.echo(table(["name", "family", "version", "origin", "description"], rows))
    users = sum(item.origin != BUILTIN for item in shown)
    typer.echo(f"\n{len(shown)} lenses, {users} of them yours"
               + (f"; {sum(bool(i.overrides) for i in shown)} replace a lens of the same name"
                  if any(i.overrides for i in shown) else ""))


def _origin(item: LoadedLens) -> str:
    return f"{item.origin} (overrides {item.overrides})" if item.overrides else item.origin


@lenses_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="A lens name (`knobs lenses list`)."),
    lens_dir: list[Path] = typer.Option([], "--lens-dir", help=LENS_DIR_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One lens in full, with its version: what the model is asked, with which settings."""
    from services.distillation.lenses import lens_named, lens_public, load_lenses

    item = lens_named(name, load_lenses(lens_dir))
    if json_out:
        emit_json(lens_public(item))
        return
    lens = item.lens
    s, k = lens.sampling, lens.keeps
    lines = [f"lens {lens.name} (family {lens.family}), version {item.version}", f"origin: {_origin(item)}",
             f"description: {lens.description}", f"system: {lens.system or '(none)'}", "template:",
             *(f"  {line}".rstrip() for line in lens.template.splitlines()),
             f"sampling: temperature {s.temperature:g}, top_p {s.top_p:g}, max_tokens {s.max_tokens}",
             f"keeps: answer {'yes' if k.answer else 'no'}, {k.min_chars} to {k.max_chars} characters"]
    typer.echo("\n".join(lines))


@lenses_app.command("check")
def check_cmd(
    paths: list[Path] = typer.Argument(..., help="Lens files, or directories of them."),
) -> None:
    """Validate lens files: each is OK (with its version) or its error; exit 2 if any is bad."""
    from services.distillation.lenses import check_paths

    checked = check_paths(paths)
    for verdict in checked:
        if verdict.lens is not None:
            typer.echo(f"OK    {verdict.path}  ({verdict.lens.name}, family {verdict.lens.family}, "
                       f"version {verdict.lens.version})")
        else:
            typer.secho(f"BAD   {verdict.error}", fg=typer.colors.RED)
    bad = sum(v.lens is None for v in checked)
    if bad:
        typer.echo(f"{bad} of {len(checked)} bad")
        raise typer.Exit(2)


# --- knobs distill ------------------------------------------------------------------------

distill_app = typer.Typer(help="Rewrite question-answer pairs through lenses with a real LLM "
                          "(or the template engine); every distillate, its verdict and each cloud's "
                          "diversity go to the log (README: Lens distillation).")


@distill_app.callback(invoke_without_command=True)
def distill_cmd(
    ctx: typer.Context,
    pairs: str | None = typer.Option(None, "--pairs", help="A JSONL of {question, answer, context?, "
                                     "id?}, a .txt/.md file or a directory of them (cut into passages), "
                                     "or 'biographies[:people=N,seed=S]'."),
    lenses: str = typer.Option("all", "--lenses", help="Lens names, comma-separated, 'family:F', or "
                               "'all' (`knobs lenses list`)."),
    samples: int = typer.Option(1, "--samples", min=1, help="Distillates per (pair, lens)."),
    engine: str = typer.Option("llm", "--engine", help="llm (an OpenAI-compatible server) or template "
                               "(deterministic, no LLM, for pairs with structured facts)."),
    model: str | None = typer.Option(None, "--model", help="The model to ask for (default "
                                     "KNOBS_LLM_MODEL, else the local server's)."),
    base_url: str | None = typer.Option(None, "--base-url", help="The server's OpenAI base URL, with "
                                        "/v1 (default KNOBS_LLM_BASE_URL, else the local server's)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N pairs."),
    concurrency: int | None = typer.Option(None, "--concurrency", min=1, help="Requests in flight "
                                           "(default KNOBS_LLM_CONCURRENCY, 4)."),
    batch_pairs: int = typer.Option(4, "--batch-pairs", min=1, help="Pairs per worker job."),
    broker: str = typer.Option("stub", "--broker", help="stub (embedded, in this process), rabbitmq "
                               "or redis (queued for `knobs worker`)."),
    wait_s: float = typer.Option(3600, "--wait", min=0, help="With a broker: seconds to wait for the "
                                 "workers (0: return once queued)."),
    duplicate_cosine: float = typer.Option(DUPLICATE_COSINE, "--duplicate-cosine", min=-1, max=1,
                                           help="Within a pair's cloud, above this cosine a distillate "
                                           "is a duplicate of one kept before it."),
    min_similarity: float = typer.Option(MIN_SIMILARITY, "--min-similarity", min=-1, max=1,
                                         help="For pairs without a known answer (passages): the least "
                                         "cosine to the source a distillate must keep."),
    lens_dir: list[Path] = typer.Option([], "--lens-dir", help=LENS_DIR_HELP),
    show: int = typer.Option(3, "--show", min=0, help="Clouds to print (0: only the summary)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as one JSON document."),
) -> None:
    """Distil every pair through every lens, resuming whatever a previous run of the same
    request left (nothing finished is asked twice)."""
    if ctx.invoked_subcommand is not None:
        return
    if pairs is None:
        raise typer.BadParameter("which pairs? --pairs FILE.jsonl | DIR | biographies[:people=N]",
                                 param_hint="--pairs")
    if engine not in ("llm", "template"):
        raise typer.BadParameter(f"{engine!r}: llm or template", param_hint="--engine")
    if broker not in ("stub", "rabbitmq", "redis"):
        raise typer.BadParameter(f"{broker!r}: stub, rabbitmq or redis", param_hint="--broker")
    from tqdm import tqdm  # after the checks: bad input answers at once

    from events.models.distillation import Checks
    from services.distillation.lenses import load_lenses, select_lenses
    from services.distillation.report import read_report
    from services.distillation.request import check_server, load_pairs, request, run, wait

    if concurrency is not None:
        os.environ["KNOBS_LLM_CONCURRENCY"] = str(concurrency)
    with Context() as ctx_:
        store = ctx_.store()
        pair_set, loaded_pairs = load_pairs(pairs, limit)
        chosen = select_lenses(lenses, load_lenses(lens_dir))
        endpoint = resolve_endpoint(ctx_.home, base_url, model) if engine == "llm" else None
        if endpoint is not None:
            check_server(endpoint)
        asked = request(store, pair_set, loaded_pairs, chosen, samples=samples,
                        engine=engine,  # type: ignore[arg-type]
                        endpoint=endpoint, batch_pairs=batch_pairs,
                        checks=Checks(duplicate_cosine=duplicate_cosine, min_similarity=min_similarity))
        d = asked.request.distillation_id
        expected = len(loaded_pairs) * len(chosen) * samples
        if not json_out:
            where = f"{endpoint.model} at {endpoint.base_url}" if endpoint else "the template engine"
            typer.echo(f"distillation {d}: {len(loaded_pairs)} pairs x {len(chosen)} lenses x {samples} "
                       f"= {expected} distillates by {where}"
                       + (f" (resuming: {asked.already_done} in the log)" if asked.resumed else ""),
                       err=True)
        sent_after = store.head()
        started = time.perf_counter()
        tokens = 0
        per_pair = len(chosen) * samples
        with tqdm(total=expected, initial=asked.already_done, desc="distill", unit="dist",
                  file=sys.stderr, dynamic_ncols=True,
                  disable=json_out and not sys.stderr.isatty()) as bar:
            def progress(done: int, total: int, usage: Usage) -> None:
                nonlocal tokens
                tokens += 0 if usage.cached else usage.completion_tokens
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.set_postfix_str(f"pairs {done // per_pair}/{len(loaded_pairs)}, "
                                    f"{tokens / elapsed:.1f} tok/s", refresh=False)
                bar.update(done - bar.n)

            run(d, broker=broker, base_url=endpoint.base_url if endpoint else "", progress=progress)
        if broker != "stub" and wait_s > 0:
            wait(store, d, wait_s, after=sent_after)
        report = read_report(store, d)
    if json_out:
        emit_json(report.to_json())
        return
    print_report(report, show)


def resolve_endpoint(home: Path, base_url: str | None, model: str | None) -> Endpoint:
    """--base-url/--model, else KNOBS_LLM_*, else the local server (services/infra/llm.py)."""
    from services.distillation.request import Endpoint, LLMServerError
    from services.infra.llm import LLMSettings, resolve_llm

    if base_url:
        chosen = model or LLMSettings().model
        if not chosen:
            raise typer.BadParameter("with --base-url, name the model it serves (--model or "
                                     "KNOBS_LLM_MODEL)", param_hint="--model")
        return Endpoint(base_url.rstrip("/"), chosen)
    try:
        found = resolve_llm(home, LLMSettings(model=model) if model else None)
    except LLMNotConfigured as exc:
        raise LLMServerError(str(exc)) from exc
    return Endpoint(found.base_url, found.model)


def print_report(report: DistillationReport, show: int) -> None:
    for cloud in report.clouds[:show]:
        typer.echo(f"\n{cloud.pair_id}: {cloud.question} -> {cloud.answer}")
        for d in cloud.distillates:
            verdict = "ok " if d.accepted else "NO "
            why = "" if d.accepted else f"  [{', '.join(d.reasons)}"
            why += (f" of {d.duplicate_of[:8]}" if d.duplicate_of else "") + ("]" if why else "")
            text = " ".join(d.text.split())
            typer.echo(f"  {verdict}{d.lens}#{d.sample}: {text[:110]}{'...' if len(text) > 110 else ''}{why}")
        if cloud.diversity is not None:
            typer.echo(f"  cloud: {cloud.accepted} accepted of {len(cloud.distillates)}, diversity "
                       f"{cloud.diversity:.3f}, Vendi {cloud.vendi:.2f}")
    done = report.completed or {}
    reasons = ", ".join(f"{k} {v}" for k, v in report.reasons().items()) or "none"
    typer.echo(f"\n{report.generated} distillates, {report.accepted} accepted; rejected for: {reasons}")
    if done:
        typer.echo(f"requests {done['requests']}, from cache {done['cached']}, tokens "
                   f"{done['prompt_tokens']} in / {done['completion_tokens']} out")
    typer.echo(f"distillation {report.distillation_id} (`knobs distill show {report.distillation_id}`)")


@distill_app.command("show")
def distill_show_cmd(
    distillation: str = typer.Argument(..., help="A distillation id (`knobs distill list`)."),
    clouds: int = typer.Option(20, "--clouds", min=0, help="Clouds to print."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A distillation's clouds: every distillate, accepted or rejected with its reasons."""
    from services.distillation.report import read_report

    with Context() as ctx:
        report = read_report(ctx.store(), distillation)
    if json_out:
        emit_json(report.to_json())
        return
    print_report(report, clouds)


@distill_app.command("list")
def list_distill_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every distillation in the log."""
    from services.distillation.report import list_distillations

    with Context() as ctx:
        found = list_distillations(ctx.store())
    if json_out:
        emit_json(found)
        return
    typer.echo(table(["distillation", "pairs", "n", "lenses", "samples", "engine", "model", "accepted"],
                     [[f["distillation_id"], f["pairs"], f["n_pairs"], f["lenses"], f["samples"],
                       f["engine"], f["model"], f["accepted"] if f["completed"] else "(unfinished)"]
                      for f in found]))
