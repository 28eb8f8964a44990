"""The LLM judge: verdict parsing, the reliability maths, the items and pairs it asks about, and
one judgement end to end against the real local LLM server on two tiny trained runs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from events.models.experiments import RunCompleted
from events.models.judging import JUDGE_BENCHMARK, JudgeReliabilityMeasured
from events.settings import EventsSettings
from events.store.factory import open_store
from workers.jobs.distill import Answer, ClientSettings, Endpoint, ResponseCache
from workers.jobs.judge import (
    Graded,
    Item,
    JudgeSettings,
    Pair,
    Question,
    agreement,
    build_items,
    build_pairs,
    cohen_kappa,
    first_position_share,
    host_of,
    other_value,
    parse_choice,
    parse_verdict,
    position_consistency,
    question_text,
    reliability,
    run_scores,
    self_agreement,
)

# ------------------------------------------------------------------- parsing


@pytest.mark.parametrize(("reply", "verdict"), [
    ("yes", True), ("Yes.", True), ("  YES, the answers match", True), ("Correct", True),
    ("no", False), ("No.", False), ("no, the city differs", False), ("Incorrect.", False),
    ("The answer is: yes", True), ("Answer: no", False),
    ("", None), ("...", None), ("Maybe", None), ("yes or no", None),  # an echo of the instruction
    ("I cannot say yes or no", None), ("The student answer is Boise.", None),
])
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


@pytest.mark.parametrize(("reply", "choice"), [
    ("A", "A"), ("B.", "B"), ("(b)", "B"), ("Answer A", "A"), ("answer B is correct", "B"),
    ("The correct one is answer B.", "B"), ("Both", None), ("", None),
    ("Answer A or answer B", None), ("About the question", None), ("Absolutely", None),
])
def test_parse_choice(reply: str, choice: str | None) -> None:
    assert parse_choice(reply) == choice


def test_question_text_strips_the_qa_frame() -> None:
    assert question_text("Q: What is the birth city of Anya Briar Forger?\nA:") == \
        "What is the birth city of Anya Briar Forger?"
    assert question_text("Where?") == "Where?"


def test_host_of_drops_path_and_credentials() -> None:
    assert host_of("http://user:secret@127.0.0.1:8088/v1") == "127.0.0.1:8088"
    assert host_of("https://api.openai.com/v1") == "api.openai.com"


# -------------------------------------------------------------------- maths


def test_agreement_and_kappa_by_hand() -> None:
    # judge, exact: 2 yes-yes, 1 yes-no, 1 no-yes, 4 no-no -> p_o = 6/8; p_e = 3/8*3/8 + 5/8*5/8
    pairs = [(True, True)] * 2 + [(True, False), (False, True)] + [(False, False)] * 4
    assert agreement(pairs) == 0.75
    p_e = (3 / 8) ** 2 + (5 / 8) ** 2
    assert cohen_kappa(pairs) == pytest.approx((0.75 - p_e) / (1 - p_e))
    assert cohen_kappa([(True, True), (False, False)]) == 1.0
    assert cohen_kappa([(True, False), (False, True)]) == -1.0


def test_kappa_of_constant_raters() -> None:
    # One constant rater: agreement is all chance, kappa 0; both constant and equal: undefined.
    assert cohen_kappa([(False, False), (True, False), (False, False)]) == pytest.approx(0.0)
    assert cohen_kappa([(False, False)] * 3) is None
    assert agreement([]) is None and cohen_kappa([]) is None


def test_self_agreement_counts_pairs_of_samples() -> None:
    # 3 samples -> 3 pairs; [T, T, F] agrees on 1 of 3; an unparsable reply is its own verdict
    assert self_agreement([[True, True, False]]) == pytest.approx(1 / 3)
    assert self_agreement([[True, True], [False, None], [None, None]]) == pytest.approx(2 / 3)
    assert self_agreement([[True]]) is None  # one sample: nothing to agree with


def test_position_consistency_follows_the_answer_not_the_slot() -> None:
    # (choice with X first, choice with X second): (A, B) and (B, A) both pick one answer twice
    asks: list[tuple[Any, Any]] = [("A", "B"), ("B", "A"), ("A", "A"), ("B", "B"), ("A", None)]
    assert position_consistency(asks) == 0.5
    assert first_position_share(asks) == pytest.approx(5 / 9)
    assert position_consistency([(None, "A")]) is None


# ------------------------------------------------------------- items, scores

Q1 = Question(1, "birth_city", "Where was Ada born?", "Boise, ID", other="Reno, NV")
Q2 = Question(2, "birth_city", "Where was Bo born?", "Reno, NV", other="Boise, ID")


def test_other_value_is_a_stable_wrong_value_of_the_attribute() -> None:
    pool = [("birth_city", "Boise, ID"), ("birth_city", "Reno, NV"), ("birth_city", "Omaha, NE"),
            ("major", "Music")]
    other = other_value(1, "birth_city", "Boise, ID", pool)
    assert other in ("Reno, NV", "Omaha, NE")
    assert other == other_value(1, "birth_city", "Boise, ID", list(reversed(pool)))
    assert other_value(1, "major", "Music", pool) is None  # no other value: no wrong control


def test_items_and_pairs() -> None:
    answers = {"r1": [(Q1, "Boise, ID"), (Q2, "Boise, ID")], "r2": [(Q1, "Reno, NV"), (Q2, "Boise, ID")]}
    items = build_items(answers, controls=True)
    students = [i for i in items if i.kind == "student"]
    assert [(i.run_id, i.exact) for i in students] == [("r1", True), ("r1", False), ("r2", False),
                                                       ("r2", False)]
    # each question's controls: the reference (exact) and the other person's city (not exact)
    controls = [(i.kind, i.answer, i.exact) for i in items if i.kind != "student"]
    assert controls == [("control_reference", "Boise, ID", True), ("control_other", "Reno, NV", False),
                        ("control_reference", "Reno, NV", True), ("control_other", "Boise, ID", False)]
    pairs = build_pairs(answers, controls=True, limit=10)
    # Q2's students agree: no pair; Q1's differ: one; and one control pair per question
    assert [(p.source, p.first, p.second) for p in pairs] == [
        ("students", "Boise, ID", "Reno, NV"), ("controls", "Boise, ID", "Reno, NV"),
        ("controls", "Reno, NV", "Boise, ID")]
    assert [p.source for p in build_pairs(answers, controls=False, limit=0)] == []


def test_run_scores_and_reliability_from_verdicts() -> None:
    # Given r1 right on Q1 (judged yes, yes) and wrong on Q2 (judged no, unparsable)
    items = [Item("student", Q1, "Boise, ID", "r1"), Item("student", Q2, "Boise, ID", "r1"),
             Item("control_reference", Q1, "Boise, ID")]
    answer = Answer("x", "stop", 10, 1, 0.1, 1)
    graded = Graded(items=items, verdicts=[[True, True], [False, None], [True, False]],
                    replies=[["yes", "yes"], ["no", "?"], ["yes", "no"]],
                    pairs=[Pair(Q1, "Boise, ID", "Reno, NV", "controls")], choices=[("A", "A")],
                    answers=[answer] * 4)
    [score] = run_scores(graded)
    # per item: share of samples judged yes (unparsable credits nothing): [1, 0] -> mean 0.5
    assert (score.run_id, score.value, score.n, score.exact_match) == ("r1", 0.5, 2, 0.5)
    assert score.stderr == pytest.approx(0.5)
    figures = reliability(graded)
    # parsable verdicts vs exact: (T,T) (T,T) (F,F) (T,T) (F,T): 4 of 5 agree
    assert figures["agreement_with_exact_match"] == pytest.approx(0.8)
    assert figures["unparsable"] == 1 and figures["judgements"] == 6 and figures["items"] == 3
    # ("A", "A"): the first slot both times, whichever answer was in it
    assert figures["position_consistency"] == 0.0 and figures["first_position_share"] == 1.0
    assert figures["by_kind"]["control_reference"] == {"judgements": 2, "agreement": 0.5, "judged_yes": 0.5}
    assert figures["self_agreement"] == pytest.approx(1 / 3)
    assert figures["prompt_tokens"] == 40 and figures["requests"] == 4


def test_settings_refuse_what_cannot_measure_anything() -> None:
    with pytest.raises(ValueError, match="questions"):
        JudgeSettings(questions=0)
    with pytest.raises(ValueError, match="temperature"):
        JudgeSettings(repeats=2, temperature=0.0)


# ------------------------------------------------------- the real judge, end to end

ROOT = Path(__file__).resolve().parents[3]
SPEC = """\
name: judged
executor: train
design: {method: ofat, seed: 0}
base: {n_layer: 1, d_model: 32, context_length: 64, n_people: 20, train_tokens: 20000, batch_size: 8,
       tokenizer: char, lr: 0.01}
factors:
  lr: {values: [0.01, 0.003]}
seeds: [0]
benchmarks: [qa_exact_match]
"""


@pytest.mark.slow
def test_judge_two_tiny_runs_with_the_local_llm(tmp_path: Path, llm_server: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.judging import judge

    # Given an experiment of two tiny trained runs (two learning rates), trained by `knobs experiment run`
    home = tmp_path / "home"
    monkeypatch.setenv("KNOBS_HOME", str(home))
    spec = tmp_path / "judged.yaml"
    spec.write_text(SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNOBS_")}
    env.update(KNOBS_HOME=str(home), PYTHONPATH=str(ROOT))
    trained = subprocess.run([sys.executable, "-m", "services.cli.main", "experiment", "run", str(spec)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr
    store = open_store(EventsSettings())
    try:
        run_ids = sorted(e.data["run_id"] for e in store.read_all(types=[RunCompleted.event_type]))
        assert len(run_ids) == 2

        # When the local LLM judges them, 6 questions a run, 2 samples each
        endpoint = Endpoint(llm_server.base_url, llm_server.api_key, llm_server.model)
        settings = JudgeSettings(questions=6, repeats=2)
        cache = ResponseCache(tmp_path / "cache")
        before = store.head()
        first = judge(store, "judged", endpoint, settings, cache=cache, client=ClientSettings())

        # Then each run's score and the reliability are appended once, in one batch
        assert first.appended == 3 and store.head() == before + 3
        scores = store.read_all(after=before, types=["BenchmarkScored"])
        assert sorted((s.data["run_id"], s.data["benchmark"], s.data["n"]) for s in scores) == [
            (r, JUDGE_BENCHMARK, 6) for r in run_ids]
        assert all(0 <= s.data["value"] <= 1 and s.data["stderr"] >= 0 for s in scores)
        [measured] = store.read_all(after=before, types=[JudgeReliabilityMeasured.event_type])
        figures = measured.decode()
        assert isinstance(figures, JudgeReliabilityMeasured)
        # 12 student answers + 2 controls for each of the 6 questions, each asked twice
        assert figures.items == 24 and figures.judgements == 48
        assert figures.judge_model == llm_server.model and figures.judge_host.startswith("127.0.0.1:")
        assert figures.position_pairs >= 6  # one control pair per question, plus students' pairs
        # (identical answers of two runs are one request: same question, same answer, same sample)
        assert figures.requests >= 12 + 2 * 6 and figures.cached == 0 and figures.completion_tokens > 0
        for name in ("agreement_with_exact_match", "self_agreement", "position_consistency"):
            value = getattr(figures, name)
            assert value is None or 0 <= value <= 1, name
        assert figures.agreement_with_exact_match is not None  # the controls guarantee labels
        assert figures.kappa is None or -1 <= figures.kappa <= 1
        assert figures.self_agreement is not None and figures.position_consistency is not None
        assert math.isfinite(figures.seconds) and figures.unparsable >= 0
        print("judge figures:", figures.model_dump(exclude={"settings", "runs"}))

        # And judging again appends nothing and asks nothing
        again = judge(store, "judged", endpoint, settings, cache=cache, client=ClientSettings())
        assert again.appended == 0 and store.head() == before + 3
        assert again.reliability == figures and sorted(s["run_id"] for s in again.scores) == run_ids
    finally:
        store.close()
