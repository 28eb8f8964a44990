"""`knobs judge EXPERIMENT`: an LLM judge grades every completed run's free-form answers, and says
how far it can be trusted (README: LLM judge)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from services.cli.output import emit_json, table
from services.core.context import Context
from services.infra.errors import LLMNotConfigured

if TYPE_CHECKING:
    from services.judging.service import Endpoint


def register(app: typer.Typer) -> None:
    """Wire `knobs judge` into `knobs` (services/cli/main.py calls this once)."""
    app.command("judge")(judge_cmd)


def resolve_endpoint(home: Path, base_url: str | None, model: str | None) -> Endpoint:
    """--base-url/--model, else KNOBS_LLM_*, else the local server `knobs services up --llm` runs."""
    from services.infra.llm import LLMSettings, resolve_llm
    from services.judging.service import Endpoint, JudgeRequestError

    if base_url:
        chosen = model or LLMSettings().model
        if not chosen:
            raise JudgeRequestError("with --base-url, name the model it serves (--model or KNOBS_LLM_MODEL)")
        return Endpoint(base_url.rstrip("/"), chosen)
    try:
        found = resolve_llm(home, LLMSettings(model=model) if model else None)
    except LLMNotConfigured as exc:  # it says what to do: `knobs services up --llm`, or which model
        raise JudgeRequestError(str(exc)) from exc
    return Endpoint(found.base_url, found.model)


def judge_cmd(
    experiment: str = typer.Argument(..., help="The experiment whose completed runs to grade."),
    base_url: str | None = typer.Option(None, "--base-url", help="The judge's OpenAI base URL, with /v1 "
                                        "(default KNOBS_LLM_BASE_URL, else the local server's)."),
    model: str | None = typer.Option(None, "--model", help="The judge model (default KNOBS_LLM_MODEL, "
                                     "else the local server's)."),
    questions: int = typer.Option(48, "--questions", min=1, help="Held-out questions per run."),
    repeats: int = typer.Option(2, "--repeats", min=1, help="Samples per item (temperature 0.7): "
                                "the self-agreement check."),
    json_out: bool = typer.Option(False, "--json", help="Print the judgement as one JSON document."),
) -> None:
    """Grade each completed run's answers to held-out questions with an LLM judge; log each run's
    qa_judge_accuracy (for `knobs rank`) and the judge's reliability: agreement with exact match,
    Cohen's kappa, self-agreement over repeats, position consistency in swapped comparisons."""
    from tqdm import tqdm

    from services.judging.service import check_experiment, judge

    with Context() as ctx:
        check_experiment(ctx.store(), experiment)  # before the server: say the first thing wrong first
        endpoint = resolve_endpoint(ctx.home, base_url, model)
        with tqdm(desc="judge", unit="req", file=sys.stderr, dynamic_ncols=True,
                  disable=json_out and not sys.stderr.isatty()) as bar:
            def progress(stage: str, done: int, total: int) -> None:
                bar.set_description_str("answer" if stage == "answer" else "judge", refresh=False)
                bar.total = total
                bar.update(done - bar.n)

            result = judge(ctx.store(), experiment, endpoint, questions=questions, repeats=repeats,
                           progress=progress)
    if json_out:
        emit_json(result)
        return
    print_judgement(result)


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_judgement(result: dict[str, Any]) -> None:
    j = result["judgement"]
    typer.echo(table(["run", "qa_judge_accuracy", "stderr", "exact_match", "n"],
                     [[s["run_id"], _fmt(s["value"]), _fmt(s["stderr"]), _fmt(s.get("exact_match")), s["n"]]
                      for s in result["scores"]]))
    kinds = ", ".join(f"{k} {_fmt(v['agreement'], 2)} (n {v['judgements']})" for k, v in j["by_kind"].items())
    typer.echo(
        f"\njudge {j['judge_model']} at {j['judge_host']} ({j['prompt_version']}), {j['items']} items x "
        f"{j['settings']['repeats']} samples\n"
        f"  agreement with exact match {_fmt(j['agreement_with_exact_match'])}, Cohen's kappa "
        f"{_fmt(j['kappa'])}; by kind: {kinds}\n"
        f"  self-agreement over repeats {_fmt(j['self_agreement'])}; position consistency "
        f"{_fmt(j['position_consistency'])} over {j['position_pairs']} swapped pairs (first slot chosen "
        f"{_fmt(j['first_position_share'], 2)})\n"
        f"  unparsable replies {j['unparsable']}; {j['seconds']:.1f} s, {j['requests']} requests "
        f"({j['cached']} cached), tokens {j['prompt_tokens']} in / {j['completion_tokens']} out")
    typer.echo("(a judge is only as good as these figures: kappa near 0 means its verdicts say little "
               "beyond chance)")
    typer.echo(f"judgement {j['judgement_id']}: "
               + ("logged" if result["appended"] else "already in the log, nothing appended")
               + f"; rank on it: `knobs rank --experiment {j['experiment']} --benchmark qa_judge_accuracy`")
