"""`knobs judge` end to end: two tiny trained runs graded by the real local LLM server, the
judgement logged once, `knobs rank` on its score, and every bad input refused with exit 2."""

from __future__ import annotations

import json
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from tests.services.cli.test_main_job import event_count, knobs
from tests.workers.jobs.test_judge import SPEC


@pytest.fixture
def judge_env(knobs_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """knobs_env, with the workers' `judge` executor registered.

    pyproject declares it; until the checkout is reinstalled the installed metadata lacks it, so
    this adds the same entry point through a dist-info on the path, as pip would write it."""
    if entry_points(group="knobs.executors", name="judge"):
        return knobs_env
    dist = tmp_path / "entry-points" / "knobs_judge_executor-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: knobs-judge-executor\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[knobs.executors]\njudge = workers.embedded:judge_experiment\n")
    path = os.pathsep.join(p for p in (knobs_env.get("PYTHONPATH"), str(dist.parent)) if p)
    return {**knobs_env, "PYTHONPATH": path}


def with_llm(env: dict[str, str], server: Any, **extra: str) -> dict[str, str]:
    return {**env, "KNOBS_LLM_BASE_URL": server.base_url, "KNOBS_LLM_API_KEY": server.api_key,
            "KNOBS_LLM_MODEL": server.model, **extra}


@pytest.mark.slow
def test_judge_logs_once_and_rank_uses_the_score(judge_env: dict[str, str], tmp_path: Path,
                                                  llm_server: Any) -> None:
    # Given an experiment of two tiny trained runs
    spec = tmp_path / "judged.yaml"
    spec.write_text(SPEC)
    knobs(judge_env, "experiment", "run", str(spec))
    env = with_llm(judge_env, llm_server)
    before = event_count(env)

    # When the judge grades 4 questions a run
    done = json.loads(knobs(env, "judge", "judged", "--questions", "4", "--json").stdout)

    # Then each run's score and the reliability are appended, once
    assert done["appended"] == 3 and event_count(env) == before + 3
    j = done["judgement"]
    assert j["items"] == 2 * 4 + 2 * 4 and j["judgements"] == 2 * j["items"]
    assert {s["run_id"] for s in done["scores"]} == set(j["runs"]) and len(j["runs"]) == 2
    for key in ("agreement_with_exact_match", "kappa", "self_agreement", "position_consistency",
                "unparsable", "seconds", "prompt_tokens"):
        assert key in j
    text = knobs(env, "judge", "judged", "--questions", "4")
    assert "nothing appended" in text.stdout and "Cohen's kappa" in text.stdout
    assert event_count(env) == before + 3

    # And the knobs rank on the judge's score
    ranked = json.loads(knobs(env, "rank", "--experiment", "judged", "--benchmark", "qa_judge_accuracy",
                              "--json").stdout)
    assert ranked["benchmark"] == "qa_judge_accuracy" and [p["name"] for p in ranked["parameters"]] == ["lr"]


def test_bad_inputs_exit_2_and_append_nothing(judge_env: dict[str, str], tmp_path: Path,
                                              llm_server: Any) -> None:
    env = with_llm(judge_env, llm_server)
    # An unknown experiment
    proc = knobs(env, "judge", "nope", check=False)
    assert proc.returncode == 2 and "no experiment named 'nope'" in proc.stderr
    # A declared experiment with no completed run
    spec = tmp_path / "judged.yaml"
    spec.write_text(SPEC)
    knobs(env, "experiment", "declare", str(spec))
    before = event_count(env)
    proc = knobs(env, "judge", "judged", check=False)
    assert proc.returncode == 2 and "no run has completed" in proc.stderr
    assert event_count(env) == before


@pytest.mark.slow
def test_no_server_and_unknown_model_exit_2(judge_env: dict[str, str], tmp_path: Path,
                                            llm_server: Any) -> None:
    spec = tmp_path / "judged.yaml"
    spec.write_text(SPEC)
    knobs(judge_env, "experiment", "run", str(spec))
    before = event_count(judge_env)
    # No server: nothing configured, no local server for this home
    proc = knobs(judge_env, "judge", "judged", check=False)
    assert proc.returncode == 2 and "knobs services up --llm" in proc.stderr
    # A URL where nothing listens
    proc = knobs(judge_env, "judge", "judged", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                 check=False)
    assert proc.returncode == 2 and "knobs services up --llm" in proc.stderr
    # A model the server does not list
    proc = knobs(with_llm(judge_env, llm_server), "judge", "judged", "--base-url", llm_server.base_url,
                 "--model", "no-such-model", check=False)
    assert proc.returncode == 2 and "does not serve model 'no-such-model'" in proc.stderr
    assert event_count(judge_env) == before
