"""`knobs demo` (what `make demo` runs): published results in, ranked knobs and audit out."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from events.models.distillation import Checks
from events.settings import knobs_home
from services.cli.distillation_cmd import print_report
from services.cli.estimate_cmd import render_estimate
from services.cli.experiments_cmd import render_status, run_embedded_with_progress
from services.cli.judge_cmd import print_judgement
from services.cli.ranking_view import render_audit, render_matrix, render_ranking
from services.cli.repetition_cmd import render as render_repetition
from services.cli.shift_cmd import render_verdict
from services.core.context import Context
from services.core.errors import BadInput
from services.core.settings import ApiSettings
from services.distillation.lenses import load_lenses, select_lenses
from services.distillation.report import read_report
from services.distillation.request import Endpoint, check_server, load_pairs, request, run
from services.estimate.check import check
from services.estimate.estimate import Request, estimate
from services.estimate.pages import measure_page_tokens
from services.experiments.service import calibrated_rate, declare, plan
from services.importing.results import import_results
from services.infra import control
from services.infra.llm import start_llm
from services.judging.service import Endpoint as JudgeEndpoint
from services.judging.service import judge
from services.ranking.analysis.selftest import gsa_selftest
from services.ranking.audit import audit
from services.ranking.matrix import rank_matrix
from services.ranking.rank import RankOptions, rank
from services.ranking.suggest import suggest_spec, write_spec
from services.repetition.report import read as read_repetition
from services.repetition.service import prepare
from services.repetition.spec import DEMO_SPEC as DEMO_REPETITION
from services.shift import DEMO_SPEC
from services.shift.hypothesis import read_spec, run_test

DATA = Path(__file__).resolve().parent.parent / "data"
BUNDLED = DATA / "vaswani2017_table3.csv"
EXPERIMENT = "vaswani2017-table3"
TRAINED_SPEC = DATA / "demo-ofat.yaml"
TRAINED_BENCHMARKS = ["qa_answer_loss_seen", "heldout_loss"]
DEMO_REPETITION_BENCHMARK = "qa_answer_loss"
DEMO_JUDGE_QUESTIONS = 6


def run_demo(data: Path | None, train: bool = True) -> None:
    home = knobs_home()
    typer.secho(f"== services (KNOBS_HOME={home})", bold=True)
    for name, state in control.up(home).items():
        typer.echo(f"{name}: {state.get('uri', '')} pid {state.get('pid')}")
    path = data or BUNDLED
    with Context(home) as ctx:
        typer.secho(f"\n== import {path.name} as experiment {EXPERIMENT}", bold=True)
        outcome = import_results(ctx, path, EXPERIMENT)
        ctx.catch_up()
        typer.echo(f"{outcome.runs} runs, {outcome.scores} scores, {outcome.new_events} new events "
                   f"({outcome.events - outcome.new_events} already stored)")
        last = None
        for benchmark in ("bleu_dev", "ppl_dev"):
            typer.secho(f"\n== rank the knobs on {benchmark}", bold=True)
            last = rank(ctx, EXPERIMENT, benchmark)
            typer.echo(render_ranking(last))
        assert last is not None
        typer.secho(f"\n== audit ranking {last.ranking.ranking_id}", bold=True)
        typer.echo(render_audit(audit(ctx, last.ranking.ranking_id)))
        if train:
            train_and_rank(ctx)
            test_compatibility(ctx)
        distil_facts(ctx)
        if train:
            compare_repetition(ctx)
        estimate_pages(ctx)
    typer.echo("\nNext: `knobs experiment status demo-ofat`, `knobs underused`, `knobs shift list`, "
               "`knobs influence train_tokens`, `knobs rank --experiment demo-ofat --all-benchmarks`, "
               "`knobs distill list`, `knobs lenses list`, `knobs repetition report demo-repetition`, "
               "`knobs export notes ./vault`, `KNOBS_MCP_TOKEN=<a read token> knobs mcp`, "
               "`knobs services down`.")
    settings = ApiSettings()
    url = f"http://{settings.host}:{settings.port}/ui/"
    typer.secho(f"\n== the dashboard: run `knobs serve`, then open {url} and log in with a token from "
                "`knobs token create --name me --read-only`", bold=True)


DEMO_LENSES = "restate,child,quiz,reverse"
DEMO_PAIRS = "biographies:people=2,seed=0"


def distil_facts(ctx: Context) -> None:
    """Capability 4: a few biography facts through several lenses by the real local LLM, every
    distillate judged; then the same calls judged more strictly, answered from the cache."""
    typer.secho(f"\n== lens distillation: biography facts through {DEMO_LENSES} by the local LLM",
                bold=True)
    state = start_llm(ctx.home)
    endpoint = Endpoint(state["base_url"], state["model"])
    typer.echo(f"llm: {state['model']} at {state['base_url']} pid {state['pid']}")
    pair_set, pairs = load_pairs(DEMO_PAIRS, limit=4)
    lenses = select_lenses(DEMO_LENSES, load_lenses())
    check_server(endpoint)
    stricter = "rerun, judged with a stricter duplicate threshold (0.85): every answer from the cache"
    for label, checks in (("", Checks()), (stricter, Checks(duplicate_cosine=0.85))):
        if label:
            typer.secho(f"\n== {label}", bold=True)
        asked = request(ctx.store(), pair_set, pairs, lenses, samples=2, engine="llm", endpoint=endpoint,
                        checks=checks)
        started = time.perf_counter()
        run(asked.request.distillation_id, base_url=endpoint.base_url)
        report = read_report(ctx.store(), asked.request.distillation_id)
        print_report(report, show=2 if not label else 0)
        typer.echo(f"({time.perf_counter() - started:.1f} s)")
    ctx.catch_up()


def compare_repetition(ctx: Context) -> None:
    """Capability 4's question: does a student learn more from K rewrites than from K copies?"""
    typer.secho("\n== does rewriting beat repeating? verbatim x K against lenses x K (template engine), "
                "Physics of LM 3.1's protocol (about four minutes)", bold=True)
    prepared = prepare(ctx, DEMO_REPETITION)
    typer.echo(f"rewrites: distillation {prepared.distillation} ({prepared.distillates} distillates); "
               f"{prepared.declared.runs} students")
    summary = run_embedded_with_progress(ctx, prepared.declared.experiment, threads=1)
    typer.echo(render_status(summary))
    ctx.catch_up()
    result = read_repetition(ctx.store(), prepared.declared.experiment)
    typer.echo(render_repetition(result))
    typer.secho(f"\n== rank condition and K on {DEMO_REPETITION_BENCHMARK}", bold=True)
    typer.echo(render_ranking(rank(ctx, prepared.declared.experiment, DEMO_REPETITION_BENCHMARK),
                              by_cost="flops"))
    typer.secho(f"\n== the LLM judge grades the students' answers ({DEMO_JUDGE_QUESTIONS} held-out "
                "questions each), and how far to trust it", bold=True)
    state = start_llm(ctx.home)
    endpoint = JudgeEndpoint(state["base_url"], state["model"])
    judged = judge(ctx.store(), prepared.declared.experiment, endpoint, questions=DEMO_JUDGE_QUESTIONS,
                   repeats=2)
    ctx.catch_up()
    print_judgement(judged)


def estimate_pages(ctx: Context) -> None:
    """How long on a GPU: distil and train 1-1000 A4 pages, calibrated from this log's runs."""
    typer.secho("\n== how long would 1, 10, 100 and 1000 pages take on an H100? (`knobs estimate`)",
                bold=True)
    request = Request(pages=[1, 10, 100, 1000], gpu="h100")
    request.validate()
    typer.echo(render_estimate(estimate(ctx.store(), request, measure_page_tokens(request.base))))
    try:
        checked = check(ctx.store())
    except BadInput as exc:  # `knobs demo --no-train`: no runs of ours to check it against
        typer.echo(f"the estimator is not checked: {exc}")
        return
    s = checked["summary"]
    if s["runs"]:
        typer.echo(f"the estimator against this log's runs: median |relative error| "
                   f"{s['median_abs_relative_error']:.1%} over {s['runs']} runs (`knobs estimate --check`)")


def test_compatibility(ctx: Context) -> None:
    """Capability 3's question, answered with an interval: does volatility predict learning?"""
    typer.secho("\n== the compatibility hypothesis: volatility before training vs what training does "
                "(about two minutes)", bold=True)
    tested = run_test(ctx.store(), read_spec(DEMO_SPEC), ctx.home / "artifacts" / "hypothesis",
                      progress=lambda message: typer.echo(f"  {message}", err=True))
    ctx.catch_up()
    typer.echo(render_verdict(tested))


def train_and_rank(ctx: Context) -> None:
    """Our own ablation: train tiny GPT-2s one knob at a time, then rank the knobs with cost."""
    rate, _ = calibrated_rate(ctx)
    p = plan(TRAINED_SPEC, rate)
    typer.secho(f"\n== train experiment {p.spec.name}: {len(p.runs)} runs on the embedded worker "
                "(synthetic biographies, real training on this machine)", bold=True)
    declared = declare(ctx, TRAINED_SPEC, rate)
    summary = run_embedded_with_progress(ctx, declared.experiment, threads=1)
    typer.echo(render_status(summary))
    ctx.catch_up()
    matrix = rank_matrix(ctx, declared.experiment, TRAINED_BENCHMARKS, RankOptions())
    for benchmark, outcome in matrix.outcomes.items():
        typer.secho(f"\n== rank the knobs on {benchmark}: noise, knees, gain per FLOP (6·N·D), flags",
                    bold=True)
        typer.echo(render_ranking(outcome, by_cost="flops"))
    typer.secho(f"\n== where {' and '.join(TRAINED_BENCHMARKS)} agree and disagree", bold=True)
    typer.echo(render_matrix(matrix))
    first = matrix.outcomes[TRAINED_BENCHMARKS[0]]
    typer.secho("\n== what to try next", bold=True)
    try:
        folder = knobs_home() / "suggested"
        folder.mkdir(parents=True, exist_ok=True)
        followup = write_spec(suggest_spec(first.ranking, p.spec.canonical()), folder, force=True)
    except BadInput as exc:
        typer.echo(f"no follow-up: {exc}")
    else:
        typer.echo("\n".join(f"- {r}" for r in followup.reasons))
        typer.echo(f"follow-up spec ({followup.runs} runs): {followup.path}  "
                   f"(`knobs experiment run {followup.path}` trains it)")
    typer.secho(f"\n== audit ranking {first.ranking.ranking_id}", bold=True)
    typer.echo(render_audit(audit(ctx, first.ranking.ranking_id)))
    typer.secho("\n== self-test: Morris and Sobol against analytic indices", bold=True)
    checks = gsa_selftest()
    failed = [c.name for c in checks if not c.passed]
    typer.echo(f"{len(checks) - len(failed)} of {len(checks)} checks agree with the analytic values "
               "within SALib's own tolerances" + (f"; FAILED: {', '.join(failed)}" if failed else "")
               + " (`knobs selftest` shows them)")
