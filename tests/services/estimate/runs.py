"""A log of finished runs with known costs, written through the real store."""

from __future__ import annotations

from pathlib import Path

from events.models.experiments import RunCompleted
from events.store import NewEvent
from events.store.sqlite import SQLiteEventStore


def completed(run_id: str, *, params: float, tokens: float, train_s: float, device: str = "cpu (2 threads)",
              lora_rank: int | None = None) -> RunCompleted:
    config: dict[str, object] = {"n_layer": 1, "d_model": 32}
    if lora_rank:
        config["lora_rank"] = lora_rank
    return RunCompleted(experiment="cal", run_id=run_id, attempt=f"{run_id}-a0", config=config,
                        costs={"params_total": params, "tokens": tokens, "train_s": train_s,
                               "flops_6nd": 6 * params * tokens},
                        device=device)


def store_with(path: Path, *events: RunCompleted) -> SQLiteEventStore:
    store = SQLiteEventStore(path)
    store.append([NewEvent(event=e) for e in events])
    return store
