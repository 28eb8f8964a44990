"""What the log says about speed: each finished run's achieved FLOP/s on its device, and the
LLM server's measured generation rate from its (uncached) distillates."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from events.store import EventStore
from services.estimate.formulas import Mode, training_flops


@dataclass(frozen=True)
class MeasuredRun:
    run: str  # '<experiment>/<run_id>'
    device: str
    mode: Mode
    params: float
    tokens: float
    train_s: float

    @property
    def flops(self) -> float:
        return training_flops(self.mode, self.params, self.tokens)

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.train_s

    @property
    def is_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def gpu_name(self) -> str:
        """'cuda (NVIDIA H200)' -> 'NVIDIA H200'."""
        return self.device.split("(", 1)[1].rstrip(")") if "(" in self.device else self.device


def run_mode(config: dict[str, Any]) -> Mode:
    """LoRA when the trainer adapted a frozen base, full training otherwise."""
    return "lora" if config.get("lora_rank") else "full"


def measured_runs(store: EventStore) -> list[MeasuredRun]:
    """Every completed run with the costs the estimate needs (older runs without them are skipped)."""
    found: dict[str, MeasuredRun] = {}
    for stored in store.read_all(types=["RunCompleted"]):
        data = stored.data
        costs, config = data.get("costs", {}), data.get("config", {})
        if not {"params_total", "tokens", "train_s"} <= set(costs) or costs["train_s"] <= 0:
            continue
        mode = run_mode(config)
        # a LoRA run's forward/backward runs through the whole model; params_total counts it
        run = f"{data['experiment']}/{data['run_id']}"
        found[run] = MeasuredRun(run=run, device=data.get("device", "unknown"), mode=mode,
                                 params=float(costs["params_total"]), tokens=float(costs["tokens"]),
                                 train_s=float(costs["train_s"]))
    return list(found.values())


@dataclass(frozen=True)
class Rate:
    """A speed with its spread over the measurements it came from."""

    value: float
    low: float
    high: float
    n: int
    source: str  # 'measured: ...' or 'assumed: ...'


def rate_of(values: list[float], source: str) -> Rate:
    return Rate(value=statistics.median(values), low=min(values), high=max(values), n=len(values),
                source=source)


def generation_rate(store: EventStore) -> Rate | None:
    """Completion tokens per second of one request, over uncached distillates; None if none."""
    rates = []
    models = set()
    for stored in store.read_all(types=["DistillateGenerated"]):
        usage = stored.data.get("usage", {})
        if usage.get("cached") or usage.get("latency_s", 0) <= 0 or usage.get("completion_tokens", 0) <= 0:
            continue
        if stored.data.get("engine") == "template":
            continue  # the template engine calls no server: no speed of an LLM to learn
        rates.append(usage["completion_tokens"] / usage["latency_s"])
        models.add(str(stored.data.get("model")))
    if not rates:
        return None
    return rate_of(rates, f"measured: {len(rates)} uncached distillates from {', '.join(sorted(models))}")
