"""The embedded default (StubBroker, in-process): runs train for real and end exactly once."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from tests.workers.conftest import BENCHMARKS, Log
from workers.attempt import Outcome
from workers.embedded import run_embedded


@pytest.fixture(autouse=True)
def home(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOBS_HOME", str(log.home))
    monkeypatch.delenv("KNOBS_EVENTS_BACKEND", raising=False)
    monkeypatch.delenv("KNOBS_EVENTS_SQLITE_PATH", raising=False)


def test_a_requested_run_trains_and_records_its_facts_once(log: Log) -> None:
    # Given a requested run
    log.request("base")
    outcomes: list[tuple[str, Outcome]] = []

    # When the embedded runner runs the experiment
    sent = run_embedded(log.experiment, on_outcome=lambda e, r, o: outcomes.append((r, o)))

    # Then it trained, scored every benchmark and recorded the run with its costs, once
    assert sent == 1 and [o.status for _, o in outcomes] == ["completed"]
    types = [e.event_type for e in log.events()]
    # The dispatcher records the hand-off after sending, so a quick worker may start first.
    assert types[0] == "RunRequested" and sorted(types[1:3]) == ["RunDispatched", "RunStarted"]
    assert types[-1] == "RunCompleted"
    [recorded] = log.events("RunRecorded")
    costs = recorded.data["costs"]
    for kind in ("params_total", "bytes_fp32", "bytes_bf16", "bytes_int8", "bytes_int4", "code_bytes",
                 "flops_6nd", "tokens", "wall_s", "peak_mem_bytes"):
        assert costs[kind] > 0, kind
    assert recorded.data["origin"] == "train" and recorded.data["params"]["d_model"] == 32
    assert sorted(e.data["benchmark"] for e in log.events("BenchmarkScored")) == sorted(BENCHMARKS)
    [completed] = log.events("RunCompleted")
    assert completed.data["config"]["d_model"] == 32 and completed.data["device"].startswith(("cpu", "cuda"))

    # And running again does nothing: the run has ended
    assert run_embedded(log.experiment) == 0
    assert len(log.events("RunCompleted")) == 1


def test_a_run_that_cannot_train_ends_as_run_failed_with_the_reason(log: Log) -> None:
    # Given a run whose corpus file does not exist
    log.request("broken", corpus="file:/nonexistent/corpus.txt")

    # When it runs
    run_embedded(log.experiment)

    # Then it ends once, as RunFailed, saying why, and records no facts
    [failed] = log.terminals("broken")
    assert failed.event_type == "RunFailed"
    assert failed.data["kind"] == "invalid" and "/nonexistent/corpus.txt" in failed.data["reason"]
    assert not log.events("RunRecorded", "BenchmarkScored")


def test_a_run_past_its_time_limit_is_killed_and_fails_as_timeout(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run far longer than a one-second limit
    monkeypatch.setenv("KNOBS_WORKERS_TRAIN_TIME_LIMIT_S", "1")
    log.request("long", train_tokens=5_000_000)

    # When it runs
    run_embedded(log.experiment)

    # Then the child is stopped and the run fails as a timeout
    [failed] = log.terminals("long")
    assert failed.data["kind"] == "timeout" and "time limit" in failed.data["reason"]


def test_a_run_dispatched_by_a_dead_process_is_run_again(log: Log) -> None:
    # Given a run that an earlier embedded process dispatched to its in-memory queue and then died
    log.request("orphan")
    from events.models.experiments import RunDispatched
    from events.store import NewEvent

    log.store.append([NewEvent(event=RunDispatched(experiment=log.experiment, run_id="orphan",
                                                   broker="stub", queue="knobs.train", message_id="m"))])

    # When the embedded runner starts
    sent = run_embedded(log.experiment)

    # Then the run is trained and ends once
    assert sent == 1
    assert [e.event_type for e in log.terminals("orphan")] == ["RunCompleted"]


def test_lora_trains_adapters_on_a_base_model_from_the_same_log(log: Log) -> None:
    # Given a base model trained earlier in this log
    log.request("base")
    run_embedded(log.experiment)
    [base] = log.events("RunCompleted")

    # When a LoRA run names it as its base
    log.request("lora", lora_rank=4, base_run=f"{log.experiment}/base", lr=1e-3)
    run_embedded(log.experiment)

    # Then only the adapters trained, on top of the base checkpoint
    [ended] = log.terminals("lora")
    assert ended.event_type == "RunCompleted", ended.data
    costs = ended.data["costs"]
    assert 0 < costs["params_trainable"] < costs["params_total"]
    assert ended.data["config"]["base_checkpoint"] == base.data["artifact"]


def test_a_lora_run_whose_base_never_trained_fails_clearly(log: Log) -> None:
    log.request("lora", lora_rank=4, base_run=f"{log.experiment}/missing")
    run_embedded(log.experiment)
    [failed] = log.terminals("lora")
    assert failed.data["kind"] == "invalid" and "train the base model first" in failed.data["reason"]


def test_a_trainer_killed_by_sigkill_ends_the_run_as_out_of_memory(log: Log) -> None:
    # Given a long run training in its child process
    log.request("victim", train_tokens=5_000_000)
    worker = threading.Thread(target=run_embedded, args=(log.experiment,))
    worker.start()
    try:
        log.wait(lambda: log.count("RunStarted", "victim") == 1, 60, "the run to start")
        log.wait(lambda: bool(trainer_children()), 30, "the training child")

        # When the kernel's OOM killer would strike: SIGKILL to the trainer alone
        for pid in trainer_children():
            os.kill(pid, signal.SIGKILL)
    finally:
        worker.join(timeout=120)

    # Then the run ends once, as RunFailed, saying what killed it, with no facts recorded
    [failed] = log.terminals("victim")
    assert failed.event_type == "RunFailed" and failed.data["kind"] == "out_of_memory"
    assert "SIGKILL" in failed.data["reason"]
    assert not log.events("RunRecorded", "BenchmarkScored")


def trainer_children() -> list[int]:
    """This process's training children (`python -m workers.child`)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"workers.child" in cmdline:
            found.append(int(proc.name))
    return found


def test_a_run_that_records_influence_logs_it_with_its_trajectories_as_a_blob(log: Log) -> None:
    import hashlib
    import json

    from events.store.blobs import get_blob

    # Given a run asked to record per-example influence every 5 steps
    log.request("tracked", influence_every=5, influence_examples=8)
    run_embedded(log.experiment)
    # Then its terminal batch holds what it recorded: the tracked documents' cartography and
    # forgetting, the volatility curve, and the whole influence.json as a content-addressed blob
    [recorded] = log.events("TrainingInfluenceRecorded")
    assert len(recorded.data["documents"]) == 8
    assert len(recorded.data["volatility_curve"]) == len(recorded.data["steps"]) >= 2
    blob = get_blob(recorded.data["influence_sha256"], log.home / "blobs" / "sha256")
    assert hashlib.sha256(blob).hexdigest() == recorded.data["influence_sha256"]
    assert json.loads(blob)["steps"] == recorded.data["steps"]
    [completed] = log.events("RunCompleted")
    assert recorded.position < completed.position  # one batch: there exactly when the run ended
