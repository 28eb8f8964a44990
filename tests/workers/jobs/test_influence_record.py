"""Influence recorded inside training: exact per-example figures, no effect on training, scores as events."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from events.models import RunRequested
from events.models.training import RECORDED_IN_TRAINING
from events.settings import EventsSettings
from events.store.factory import open_store
from tests.workers.jobs.conftest import TINY
from workers.attempt import Attempt
from workers.child import _plain
from workers.data.sources import load_corpus
from workers.data.tokenizer import Tokenizer
from workers.jobs import ghost_norms
from workers.jobs.influence_record import (
    INFLUENCE_FILE,
    InfluenceRecorder,
    Recording,
    cartography,
    forgetting_events,
    is_due,
    scores,
    tracked_documents,
    volatility,
    volatility_curve,
)
from workers.jobs.train import load_checkpoint, run_training

RECORDED = list(RECORDED_IN_TRAINING)


# --- the figures, on hand-made trajectories -------------------------------------------------

def test_forgetting_counts_correct_to_incorrect_transitions_only() -> None:
    assert forgetting_events([True, False, True, False]) == 2
    assert forgetting_events([False, True, True]) == 0  # learned, never forgotten
    assert forgetting_events([True, True, False, False, True]) == 1
    assert forgetting_events([False]) == 0 and forgetting_events([]) == 0


def test_cartography_is_mean_std_and_share_correct() -> None:
    c = cartography([0.2, 0.4, 0.6, 0.8], [False, False, True, True])
    assert c.confidence == pytest.approx(0.5)
    assert c.variability == pytest.approx(math.sqrt(0.05))  # population std
    assert c.correctness == 0.5


def test_volatility_is_the_coefficient_of_variation_of_grad_norms() -> None:
    assert volatility([1.0, 3.0]) == pytest.approx(0.5)
    assert volatility([2.0, 2.0, 2.0]) == 0.0 and volatility([0.0, 0.0]) == 0.0


def hand_made() -> list[Recording]:
    def rec(step: int, norms: list[float], correct: list[bool]) -> Recording:
        return Recording(step, loss=[float(step)] * 2, grad_norm=norms, confidence=[0.5, 0.5],
                         token_accuracy=[float(c) for c in correct], correct=correct)

    return [rec(10, [1.0, 3.0], [True, False]), rec(20, [2.0, 2.0], [False, True]),
            rec(25, [1.0, 1.0], [True, False])]


def test_scores_and_curve_from_hand_made_recordings() -> None:
    recordings = hand_made()
    curve = volatility_curve(recordings)
    assert [p["step"] for p in curve] == [10, 20, 25]
    assert [p["volatility"] for p in curve] == pytest.approx([0.5, 0.0, 0.0])
    assert [p["mean_grad_norm"] for p in curve] == pytest.approx([2.0, 2.0, 1.0])
    assert [p["mean_loss"] for p in curve] == pytest.approx([10.0, 20.0, 25.0])
    s = scores(recordings)
    assert s["train_volatility"].value == pytest.approx(0.5 / 3) and s["train_volatility"].n == 3
    assert s["train_volatility_final"].value == 0.0 and s["train_volatility_final"].n == 2
    # document 0: T F T -> 1 event; document 1: F T F -> 1 event
    assert s["train_forgetting"].value == 1.0 and s["train_forgetting"].stderr == 0.0


def test_recordings_fall_every_n_steps_and_at_the_last() -> None:
    assert [s for s in range(1, 41) if is_due(s, 15, 40)] == [15, 30, 40]
    assert [s for s in range(1, 41) if is_due(s, 10, 40)] == [10, 20, 30, 40]
    assert [s for s in range(1, 6) if is_due(s, 100, 5)] == [5]


def test_the_tracked_sample_depends_on_the_data_seed_only() -> None:
    docs = [f"doc {i}" for i in range(50)] + ["  "]
    a = tracked_documents(docs, 8, seed=0)
    assert a == tracked_documents(docs, 8, seed=0) and a == sorted(a) and len(set(a)) == 8
    assert a != tracked_documents(docs, 8, seed=1)
    assert tracked_documents(docs, 100, seed=0) == list(range(50))  # never an empty document


# --- on a real model --------------------------------------------------------------------------

def recorder_for(base_dir: Path) -> tuple[nn.Module, Tokenizer, InfluenceRecorder]:
    model, tokenizer, config = load_checkpoint(base_dir)
    corpus = load_corpus(config["corpus"], n_people=config["n_people"], qa_fraction=config["qa_fraction"],
                         data_format=config["format"], repetitions=config["repetitions"],
                         seed=config["data_seed"])
    recorder = InfluenceRecorder(
        every=1, documents=corpus.train, indices=tracked_documents(corpus.train, 6, config["data_seed"]),
        encode_document=lambda text: [tokenizer.eos_id, *tokenizer.encode(text)],
        context_length=config["context_length"],
    )
    return model, tokenizer, recorder


def naive(model: nn.Module, ids: list[int]) -> tuple[float, float, float, float]:
    """loss, ‖∇θ loss‖, confidence and token accuracy of one document, by one backward pass alone."""
    x = torch.tensor([ids])
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=x).logits[0, :-1].float()
    loss = F.cross_entropy(logits, x[0, 1:])
    loss.backward()  # type: ignore[no-untyped-call]
    norm = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters()
                         if p.requires_grad and p.grad is not None))
    with torch.no_grad():
        p_gold = logits.softmax(-1).gather(-1, x[0, 1:, None]).squeeze(-1)
        accuracy = (logits.argmax(-1) == x[0, 1:]).float().mean()
    model.zero_grad(set_to_none=True)
    return float(loss.detach()), norm, float(p_gold.mean()), float(accuracy)


@pytest.mark.parametrize("path", ["ghost norms", "vmap"])
def test_a_recording_equals_a_naive_per_example_loop(
    path: str, base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _, recorder = recorder_for(base_dir)
    if path == "vmap":
        monkeypatch.setattr(ghost_norms, "supports", lambda _model: False)
    model.eval()
    attention = model.config._attn_implementation
    recording = recorder.record(model, step=1)
    assert model.config._attn_implementation == attention  # eager for vmap only while it runs
    assert recorder.method.startswith("ghost" if path == "ghost norms" else "torch.func")
    context = recorder.context_length
    for row, index in enumerate(recorder.indices):
        ids = recorder.encode_document(recorder.documents[index])[:context]
        loss, norm, confidence, accuracy = naive(model, ids)
        assert recording.grad_norm[row] == pytest.approx(norm, rel=1e-4)
        assert recording.loss[row] == pytest.approx(loss, rel=1e-5)
        assert recording.confidence[row] == pytest.approx(confidence, rel=1e-5)
        assert recording.token_accuracy[row] == pytest.approx(accuracy, abs=1e-6)
        assert recording.correct[row] == (accuracy >= 0.5)


def test_recording_leaves_the_model_its_mode_and_its_gradients(base_dir: Path) -> None:
    model, _, recorder = recorder_for(base_dir)
    model.train()
    batch = torch.tensor([recorder.encode_document(recorder.documents[0])[:16]])
    model(input_ids=batch, labels=batch).loss.backward()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    recorder.on_step(1, 1, model)
    assert model.training and len(recorder.recordings) == 1
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n]), n
        if n in grads:
            assert p.grad is not None and torch.equal(p.grad, grads[n]), n


def test_a_recording_run_writes_curves_of_the_expected_length(tmp_path: Path) -> None:
    result = run_training({**TINY, "influence_every": 15, "influence_examples": 8}, seed=0,
                          benchmarks=["heldout_loss", *RECORDED], out_dir=tmp_path)
    assert set(result.scores) == {"heldout_loss", *RECORDED} and result.unavailable == {}
    report = json.loads((tmp_path / INFLUENCE_FILE).read_text())
    assert report["steps"] == [15, 30, 40]
    assert [p["step"] for p in report["volatility_curve"]] == [15, 30, 40]
    assert len(report["documents"]) == 8 == report["settings"]["examples"]
    for doc in report["documents"]:
        for key in ("loss", "grad_norm", "confidence", "token_accuracy", "correct"):
            assert len(doc[key]) == 3, key
        assert set(doc["cartography"]) == {"confidence", "variability", "correctness"}
        assert doc["forgetting_events"] == forgetting_events(doc["correct"])
    curve = report["volatility_curve"]
    assert curve[-1]["mean_loss"] < curve[0]["mean_loss"] < result.initial_loss  # what it measures learns
    recorded = {name: result.scores[name].value for name in RECORDED}
    assert {name: s["value"] for name, s in report["scores"].items()} == pytest.approx(recorded)
    assert recorded["train_volatility_final"] == pytest.approx(curve[-1]["volatility"])
    assert result.config["influence_examples"] == 8


def test_recording_does_not_change_the_training_trajectory(tmp_path: Path) -> None:
    def train(out: Path, **extra: Any) -> list[float]:
        losses: list[float] = []
        run_training({**TINY, **extra}, seed=3, benchmarks=["heldout_loss"], out_dir=out,
                     hooks=[lambda info: losses.append(info.loss)])
        return losses

    off = train(tmp_path / "off")
    on = train(tmp_path / "on", influence_every=7)
    assert on == off  # every step's loss, exactly
    weights_off = load_checkpoint(tmp_path / "off")[0].state_dict()
    weights_on = load_checkpoint(tmp_path / "on")[0].state_dict()
    assert all(torch.equal(weights_on[k], weights_off[k]) for k in weights_off)
    assert (tmp_path / "on" / INFLUENCE_FILE).is_file() and not (tmp_path / "off" / INFLUENCE_FILE).exists()


def test_recording_a_lora_run_does_not_change_it_either(base_dir: Path, tmp_path: Path) -> None:
    def train(out: Path, **extra: Any) -> list[float]:
        losses: list[float] = []
        run_training({**TINY, "lora_rank": 4, "base_run": "e/base", "train_tokens": 8 * 32 * 12, **extra},
                     seed=0, benchmarks=[], out_dir=out, base_checkpoint=base_dir,
                     hooks=[lambda info: losses.append(info.loss)])
        return losses

    assert train(tmp_path / "on", influence_every=5) == train(tmp_path / "off")
    report = json.loads((tmp_path / "on" / INFLUENCE_FILE).read_text())
    assert report["steps"] == [5, 10, 12] and report["settings"]["method"] == "ghost norms"


def test_without_influence_every_recorded_benchmarks_are_unavailable_with_the_reason(tmp_path: Path) -> None:
    result = run_training(TINY, seed=0, benchmarks=["heldout_loss", "train_volatility"], out_dir=tmp_path)
    assert set(result.scores) == {"heldout_loss"}
    assert "set influence_every" in result.unavailable["train_volatility"]


def test_a_request_for_the_recorded_benchmarks_ends_as_benchmark_scored_events(tmp_path: Path) -> None:
    # The attempt's path from a trainer's result to the log, without the child process.
    store = open_store(EventsSettings(sqlite_path=tmp_path / "events.sqlite3"))
    try:
        request = RunRequested(experiment="volatile", run_id="r0", executor="train",
                               params={**TINY, "influence_every": 20}, varied=[], seed=0,
                               benchmarks=["heldout_loss", *RECORDED])
        result = run_training(request.params, request.seed, request.benchmarks, tmp_path / "run")
        attempt = Attempt(store, experiment="volatile", run_id="r0", attempt="a0", worker="test",
                          artifacts=tmp_path, time_limit_s=60)
        outcome = attempt.complete(request, json.loads(json.dumps(_plain(result))))
        assert outcome.status == "completed"
        scored = {e.data["benchmark"]: e.data for e in store.read_all(types=["BenchmarkScored"])}
        assert set(scored) == {"heldout_loss", *RECORDED}
        for name in RECORDED:
            assert scored[name]["value"] == pytest.approx(result.scores[name].value)
            assert scored[name]["n"] == result.scores[name].n
    finally:
        store.close()
