"""One attempt at one requested run: start, supervise the training child, record the outcome.

Exactly one terminal event per run, whatever is redelivered or killed: `RunCompleted` and
`RunFailed` share one idempotency key per run (`terminal_key`), so the store refuses a
second ending, and the run's facts (`RunRecorded`, `BenchmarkScored`) are appended in the
same atomic batch as its `RunCompleted`, so they exist exactly when it does.

At most one attempt trains a run at a time (`workers/claim.py`): the attempt claims the run
with a `RunStarted` appended at the stream version it read, keeps the claim alive with
`RunProgressed`/`RunLeaseRenewed` at least once per lease, and makes every append at the
version it last saw. A delivery that finds another attempt's live claim does not train
(`ClaimHeld`: the actor defers the message until the lease could have run out); a claim whose
holder has been silent past the lease is taken over; an overtaken holder learns it at its next
append (`ClaimLost`), kills its child and writes nothing more.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from events.errors import ConcurrencyConflict, IdempotencyMismatch
from events.models import BenchmarkScored, Event, RunRecorded
from events.models.experiments import (
    TERMINAL_TYPES,
    FailureKind,
    RunCompleted,
    RunFailed,
    RunLeaseRenewed,
    RunProgressed,
    RunRequested,
    RunStarted,
    run_stream,
    terminal_key,
)
from events.models.shift import TrackedDocument, TrainingInfluenceRecorded
from events.store import EventStore, NewEvent
from events.store.blobs import put_blob
from workers.claim import ClaimHeld, ClaimLost, ClaimState, claim_state
from workers.cloud import CloudUnavailable, write_cloud

log = logging.getLogger("knobs.workers.attempt")

EVENT_NAMESPACE = uuid.UUID("3b0f7c4e-2d1a-5e8f-9b6c-7a4d2e1f0c9b")
"""Fixed forever: worker event ids are uuid5(EVENT_NAMESPACE, idempotency key)."""

Status = Literal["completed", "failed", "skipped", "deferred"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str


class RetryableError(RuntimeError):
    """Infrastructure trouble (not the run's fault): let the broker redeliver."""


def keyed(event: Event, key: str) -> NewEvent:
    return NewEvent(event=event, event_id=uuid.uuid5(EVENT_NAMESPACE, key), idempotency_key=key)


def run_key(kind: str, experiment: str, run_id: str, *rest: object) -> str:
    return ":".join([f"run-{kind}", f"{experiment}/{run_id}", *(str(r) for r in rest)])


def attempt_slug(attempt: str) -> str:
    return hashlib.sha256(attempt.encode()).hexdigest()[:12]


def run_state(store: EventStore, experiment: str, run_id: str) -> tuple[RunRequested | None, bool]:
    """The run's request (None if this log never asked for it) and whether it has ended,
    from one read of its stream."""
    request: RunRequested | None = None
    has_ended = False
    for stored in store.read_stream(run_stream(experiment, run_id)):
        if stored.event_type == RunRequested.event_type and request is None:
            event = stored.decode()
            assert isinstance(event, RunRequested)
            request = event
        has_ended = has_ended or stored.event_type in TERMINAL_TYPES
    return request, has_ended


def artifact_of(store: EventStore, base_run: str) -> Path:
    """The checkpoint directory a completed run left, for LoRA on top of it."""
    experiment, _, run_id = base_run.rpartition("/")
    for stored in store.read_stream(run_stream(experiment, run_id)):
        if stored.event_type == RunCompleted.event_type:
            artifact = stored.data.get("artifact")
            if artifact and Path(artifact).exists():
                return Path(artifact)
            raise FileNotFoundError(f"base run {base_run} completed but its checkpoint {artifact} is gone")
    raise FileNotFoundError(
        f"base_run {base_run!r} has no RunCompleted in this store: train the base model first "
        "(base_run is '<experiment>/<run_id>')"
    )


def detect_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the worker dies, so no orphan trains on."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    os.setsid()


class Attempt:
    """Runs one delivery of a run's message, top to bottom."""

    def __init__(self, store: EventStore, *, experiment: str, run_id: str, attempt: str,
                 worker: str, artifacts: Path, time_limit_s: float, progress_every_s: float = 2.0,
                 lease_s: float = 30.0) -> None:
        self.store = store
        self.experiment = experiment
        self.run_id = run_id
        self.attempt = attempt
        self.worker = worker
        self.artifacts = artifacts
        self.time_limit_s = time_limit_s
        self.progress_every_s = progress_every_s
        self.lease_s = lease_s
        self.stream = run_stream(experiment, run_id)
        self.version: int | None = None
        """The run's stream version after this attempt's last append (None before its claim)."""
        self.last_append = 0.0

    # ------------------------------------------------------------------ the attempt

    def run(self) -> Outcome:
        """Claim, train, end; `ClaimHeld` when another attempt holds a live claim on the run."""
        try:
            return self._run()
        except ClaimLost as exc:
            # What this attempt trained is not the run's: leave only the holder's checkpoint.
            shutil.rmtree(self.artifacts / self.experiment / self.run_id / attempt_slug(self.attempt),
                          ignore_errors=True)
            return Outcome("skipped", f"lost the run's claim ({exc}); nothing more recorded")

    def _run(self) -> Outcome:
        request, has_ended = run_state(self.store, self.experiment, self.run_id)
        if has_ended:
            return Outcome("skipped", "already ended (a redelivered or duplicate message)")
        if request is None:
            # Not this log's run (a queue shared by two logs?): writing a failure here would
            # invent a run; drop the message and say so.
            log.error("no RunRequested for %s/%s in this event log; message dropped (give each log "
                      "its own KNOBS_WORKERS_QUEUE)", self.experiment, self.run_id)
            return Outcome("skipped", "no such run requested in this log")
        self.claim(detect_device())
        out_dir = self.fresh_attempt_dir()
        try:
            base = artifact_of(self.store, str(request.params["base_run"])) \
                if request.params.get("base_run") else None
        except FileNotFoundError as exc:
            return self.fail("invalid", str(exc))
        try:
            on_pairs = str(request.params.get("corpus", "")).startswith("pairs:")
            sha = request.params.get("pairs_sha256")
            cloud = write_cloud(self.store, str(request.params["cloud"]), out_dir, per_pair=on_pairs,
                                pair_set=str(sha) if sha else None)[0] \
                if request.params.get("cloud") else None
        except CloudUnavailable as exc:
            return self.fail("invalid", str(exc))
        message = self.supervise(request, out_dir, base, cloud)
        if "result" in message:
            return self.complete(request, message["result"])
        error = message["error"]
        return self.fail(error["kind"], error["reason"])

    # ------------------------------------------------------------------ the claim

    def read_claim(self) -> ClaimState:
        try:
            return claim_state(self.store.read_stream(self.stream))
        except Exception as exc:  # the store's own errors and its drivers'
            raise RetryableError(f"cannot read the event log: {exc}") from exc

    def claim(self, device: str) -> None:
        """Append this attempt's `RunStarted` at the version read; raise `ClaimHeld` while another
        attempt's claim is live, `ClaimLost` when the run ended meanwhile."""
        started = keyed(RunStarted(experiment=self.experiment, run_id=self.run_id, attempt=self.attempt,
                                   worker=self.worker, device=device),
                        run_key("started", self.experiment, self.run_id, self.attempt))
        while True:
            state = self.read_claim()
            if state.ended:
                raise ClaimLost("the run ended before this attempt could claim it")
            holder = state.live_holder(self.lease_s)
            if holder is not None and holder != self.attempt:
                raise ClaimHeld(holder, self.lease_s - state.holder_age_s + 0.5)
            try:
                self.append([started], at_version=state.version)
                return
            except ConcurrencyConflict:
                continue  # someone wrote to the stream between the read and the append: look again

    def append_held(self, batch: list[NewEvent]) -> list[Any]:
        """Append while this attempt holds the claim; `ClaimLost` once it does not."""
        while True:
            if self.version is None:  # no claim yet (giving up before one): only if none is live
                state = self.read_claim()
                holder = state.live_holder(self.lease_s)
                if state.ended or (holder is not None and holder != self.attempt):
                    raise ClaimLost("another attempt holds the run" if not state.ended else "the run ended")
                self.version = state.version
            try:
                return self.append(batch, at_version=self.version)
            except ConcurrencyConflict:
                # Another writer (the dispatcher's RunDispatched, or a new claim): still ours?
                state = self.read_claim()
                if state.ended:
                    raise ClaimLost("the run ended") from None
                if state.holder != self.attempt:
                    raise ClaimLost(f"attempt {state.holder} took the run over") from None
                self.version = state.version

    def renew_if_quiet(self) -> None:
        """Keep the claim alive when nothing else was appended for a third of the lease."""
        if time.monotonic() - self.last_append >= self.lease_s / 3:
            self.append_held([keyed(
                RunLeaseRenewed(experiment=self.experiment, run_id=self.run_id, attempt=self.attempt,
                                lease_s=self.lease_s),
                run_key("lease", self.experiment, self.run_id, self.attempt, uuid.uuid4().hex))])

    def fresh_attempt_dir(self) -> Path:
        """A clean directory for this attempt; half-finished attempts' leftovers are removed."""
        run_dir = self.artifacts / self.experiment / self.run_id
        out_dir = run_dir / attempt_slug(self.attempt)
        if run_dir.exists():
            for old in run_dir.iterdir():
                shutil.rmtree(old, ignore_errors=True)
        out_dir.mkdir(parents=True)
        return out_dir

    # ------------------------------------------------------------- the child process

    def supervise(self, request: RunRequested, out_dir: Path, base: Path | None,
                  cloud: Path | None = None) -> dict[str, Any]:
        """Run the training child to its end or to the time limit; its last protocol message."""
        request_file = out_dir / "request.json"
        request_file.write_text(json.dumps({
            "params": request.params, "seed": request.seed, "benchmarks": request.benchmarks,
            "out_dir": str(out_dir / "model"), "base_checkpoint": str(base) if base else None,
            "cloud_file": str(cloud) if cloud else None,
        }))
        stderr_path = out_dir / "child.stderr"
        deadline = time.monotonic() + self.time_limit_s
        with open(stderr_path, "wb") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-m", "workers.child", str(request_file)],
                stdout=subprocess.PIPE, stderr=stderr, preexec_fn=_die_with_parent,
            )
            try:
                final = self._follow(child, deadline)
            finally:
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if final is not None:
            return final
        if time.monotonic() >= deadline:
            return {"error": {"kind": "timeout",
                              "reason": f"training exceeded the time limit of {self.time_limit_s:g} s "
                                        "(KNOBS_WORKERS_TRAIN_TIME_LIMIT_S) and was killed"}}
        tail = stderr_path.read_text(errors="replace")[-1500:]
        if child.returncode == -signal.SIGKILL:
            return {"error": {"kind": "out_of_memory",
                              "reason": "the training process was killed by SIGKILL (most often the "
                                        f"kernel's out-of-memory killer); stderr tail: {tail}"}}
        return {"error": {"kind": "error",
                          "reason": f"the training process exited with {child.returncode} without a "
                                    f"result; stderr tail: {tail}"}}

    def _follow(self, child: subprocess.Popen[bytes], deadline: float) -> dict[str, Any] | None:
        last_progress = 0.0
        for message in _lines(child, deadline):
            self.renew_if_quiet()
            if "progress" in message:
                now = time.monotonic()
                if now - last_progress >= self.progress_every_s:
                    last_progress = now
                    self.record_progress(message["progress"])
            elif "result" in message or "error" in message:
                return message
        return None

    def record_progress(self, p: dict[str, Any]) -> None:
        loss = p.get("loss")
        event = RunProgressed(
            experiment=self.experiment, run_id=self.run_id, attempt=self.attempt,
            step=int(p["step"]), total_steps=max(1, int(p["total_steps"])),
            loss=loss if isinstance(loss, int | float) and math.isfinite(loss) else None,
            tokens=int(p["tokens"]), elapsed_s=float(p["elapsed_s"]),
        )
        key = run_key("progress", self.experiment, self.run_id, self.attempt, event.step)
        self.append_held([keyed(event, key)])

    # -------------------------------------------------------------------- endings

    def complete(self, request: RunRequested, result: dict[str, Any]) -> Outcome:
        costs = {k: float(v) for k, v in result["costs"].items()
                 if isinstance(v, int | float) and math.isfinite(v) and v >= 0}
        scores: dict[str, dict[str, Any]] = result["scores"]
        facts: list[NewEvent] = [keyed(
            RunRecorded(experiment=self.experiment, run_id=self.run_id, params=request.params,
                        seed=request.seed, costs=costs, origin="train", agent=self.worker),
            run_key("recorded", self.experiment, self.run_id),
        )]
        for benchmark, score in sorted(scores.items()):
            facts.append(keyed(
                BenchmarkScored(experiment=self.experiment, run_id=self.run_id, benchmark=benchmark,
                                value=float(score["value"]), n=score.get("n"), stderr=score.get("stderr")),
                run_key("score", self.experiment, self.run_id, benchmark),
            ))
        influence = _influence_recorded(self.experiment, self.run_id, result.get("artifact"))
        if influence is not None:
            facts.append(keyed(influence, run_key("influence", self.experiment, self.run_id)))
        facts.append(keyed(
            RunCompleted(experiment=self.experiment, run_id=self.run_id, attempt=self.attempt,
                         config=result["config"], costs=costs, device=str(result["device"]),
                         artifact=result.get("artifact"),
                         scores={b: float(s["value"]) for b, s in scores.items()}),
            terminal_key(self.experiment, self.run_id),
        ))
        if not self.end(facts):
            return Outcome("skipped", "another attempt ended this run first; nothing recorded")
        return Outcome("completed", ", ".join(f"{b}={s['value']:.4g}" for b, s in sorted(scores.items())))

    def fail(self, kind: FailureKind, reason: str) -> Outcome:
        event = RunFailed(experiment=self.experiment, run_id=self.run_id, attempt=self.attempt,
                          kind=kind, reason=reason[:4000])
        if not self.end([keyed(event, terminal_key(self.experiment, self.run_id))]):
            return Outcome("skipped", "another attempt ended this run first")
        return Outcome("failed", f"{kind}: {reason[:200]}")

    def end(self, batch: list[NewEvent]) -> bool:
        """Append the terminal batch; False when the run had already ended or this attempt lost
        its claim (nothing written)."""
        try:
            appended = self.append_held(batch)
        except (IdempotencyMismatch, ClaimLost):
            return False
        return not appended[-1].duplicate

    def append(self, batch: list[NewEvent], *, at_version: int) -> list[Any]:
        """Append at the stream version given (`ConcurrencyConflict` if the stream moved on)."""
        try:
            appended = self.store.append(batch, expected_versions={self.stream: at_version})
        except (IdempotencyMismatch, ConcurrencyConflict):
            raise
        except Exception as exc:  # the store's own errors and its drivers'
            raise RetryableError(f"cannot append to the event log: {exc}") from exc
        self.version = at_version + sum(1 for new, a in zip(batch, appended, strict=True)
                                        if new.stream_id == self.stream and not a.duplicate)
        self.last_append = time.monotonic()
        return appended


INFLUENCE_FILE = "influence.json"
"""workers/jobs/influence_record.py's file (not imported here: that module loads torch)."""


def _influence_recorded(experiment: str, run_id: str,
                        artifact: str | None) -> TrainingInfluenceRecorded | None:
    """The run's influence.json as an event (its bytes as a blob), when the run recorded one."""
    path = Path(artifact) / INFLUENCE_FILE if artifact else None
    if path is None or not path.is_file():
        return None
    data = path.read_bytes()
    summary = json.loads(data)
    documents = [TrackedDocument(
        index=int(d["index"]), text=str(d["text"]), recordings=len(d["correct"]),
        confidence=float(d["cartography"]["confidence"]), variability=float(d["cartography"]["variability"]),
        correctness=float(d["cartography"]["correctness"]), forgetting_events=int(d["forgetting_events"]),
        never_learned=bool(d["never_learned"]), final_loss=float(d["loss"][-1]),
        final_grad_norm=float(d["grad_norm"][-1]),
    ) for d in summary["documents"]]
    return TrainingInfluenceRecorded(
        experiment=experiment, run_id=run_id, every=int(summary["settings"]["every"]),
        steps=[int(s) for s in summary["steps"]], volatility_curve=summary["volatility_curve"],
        documents=documents, influence_sha256=put_blob(data),
    )


def _lines(child: subprocess.Popen[bytes], deadline: float) -> Iterator[dict[str, Any]]:
    """The child's protocol messages until it exits or the deadline passes, and an empty one
    each second the child is silent.

    A reader thread owns the pipe so the deadline is kept even while the child is silent.
    """
    lines: queue.Queue[bytes | None] = queue.Queue()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True, name="child-reader").start()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            line = lines.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            yield {}  # a tick while the child is silent: the attempt renews its claim
            continue
        if line is None:
            return
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            log.warning("child printed a non-protocol line: %r", line[:200])
            continue
        if isinstance(message, dict):
            yield message
