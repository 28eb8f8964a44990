"""A small repetition experiment in the log: lenses well ahead of verbatim at K=2, two seeds."""

from __future__ import annotations

from events.models import BenchmarkScored, RunRequested
from events.store import EventStore, NewEvent

CELLS = [("verbatim", 1, 0, 0.20), ("verbatim", 1, 1, 0.22), ("lenses", 1, 0, 0.21), ("lenses", 1, 1, 0.23),
         ("verbatim", 2, 0, 0.20), ("verbatim", 2, 1, 0.22), ("lenses", 2, 0, 0.40), ("lenses", 2, 1, 0.42)]


def repetition_log(store: EventStore, experiment: str = "rep") -> None:
    events: list[NewEvent] = []
    for condition, k, seed, value in CELLS:
        run_id = f"{condition}-{k}-s{seed}"
        events.append(NewEvent(event=RunRequested(
            experiment=experiment, run_id=run_id, executor="train", seed=seed,
            benchmarks=["qa_choice_accuracy"],
            params={"condition": condition, "K": k, "protocol": "pretrain_finetune", "train_tokens": 5000})))
        events.append(NewEvent(event=BenchmarkScored(experiment=experiment, run_id=run_id,
                                                     benchmark="qa_choice_accuracy", value=value)))
    store.append(events)
