"""What a planned run will cost, estimated from its parameters before anything runs (no torch).

Parameter count from the architecture, training FLOPs = 6 * N * tokens (forward + backward,
Kaplan et al. 2020), and wall time = FLOPs / an assumed FLOP rate. These are estimates for
planning; the worker records the measured costs on `RunCompleted`. An external executor's
runs have no estimate: we do not know what they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from events.models import JSONScalar, TrainingParams
from services.experiments import DEFAULT_FLOPS_PER_SECOND as DEFAULT_FLOPS_PER_SECOND  # re-exported

CHAR_VOCAB_ESTIMATE = 256
"""The char tokenizer's vocabulary is the corpus alphabet; 256 bounds it from above."""


@dataclass(frozen=True)
class CostEstimate:
    """One run's estimated cost; every field None when unknown (external runs)."""

    parameters: int | None = None
    tokens: int | None = None
    flops: float | None = None
    seconds: float | None = None
    flops_per_second: float | None = None

    @property
    def known(self) -> bool:
        return self.flops is not None

    def as_event(self) -> dict[str, float]:
        """The `estimated_cost` of a RunRequested: empty when unknown."""
        if not self.known:
            return {}
        fields = {"parameters": self.parameters, "tokens": self.tokens, "flops": self.flops,
                  "seconds": self.seconds, "flops_per_second": self.flops_per_second}
        return {k: float(v) for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class CostTotals:
    """Sums over the runs whose cost is known; `unknown` counts the others."""

    runs: int
    unknown: int
    tokens: int
    flops: float
    seconds: float
    max_parameters: int
    flops_per_second: float | None

    def as_event(self) -> dict[str, float]:
        """The `estimated_cost` of an ExperimentDeclared: empty when nothing is known."""
        if self.unknown == self.runs:
            return {}
        out = {"runs": float(self.runs), "tokens": float(self.tokens), "flops": self.flops,
               "seconds": self.seconds, "max_parameters": float(self.max_parameters)}
        if self.flops_per_second is not None:
            out["flops_per_second"] = self.flops_per_second
        if self.unknown:
            out["unknown_runs"] = float(self.unknown)
        return out


def parameter_count(p: TrainingParams) -> int:
    """Trainable parameters of the model `p` describes, as transformers builds it.

    gpt2: token + position embeddings, per layer two LayerNorms, fused QKV and output
    projections and a 2-matrix MLP, all with biases; a final LayerNorm; the LM head is tied to
    the token embedding. llama: no position table (RoPE), per layer four bias-free attention
    projections, a 3-matrix gated MLP and two RMSNorms; a final RMSNorm; an untied LM head
    (transformers' default for Llama). LoRA runs are estimated by their full architecture.
    """
    d = p.d_model
    ff = p.d_ff or 4 * d
    vocab = p.vocab_size if p.tokenizer == "bpe" else CHAR_VOCAB_ESTIMATE
    if p.model_family == "llama":
        per_layer = 4 * d * d + 3 * d * ff + 2 * d
        return vocab * d + p.n_layer * per_layer + d + vocab * d
    # 4d^2 (qkv + proj) + 2*d*ff (MLP) + biases 3d + d + ff + d + two LayerNorms 4d
    per_layer = 4 * d * d + 2 * d * ff + 9 * d + ff
    return vocab * d + p.context_length * d + p.n_layer * per_layer + 2 * d


def estimate(executor: str, params: Mapping[str, JSONScalar],
             flops_per_second: float = DEFAULT_FLOPS_PER_SECOND) -> CostEstimate:
    """The estimated cost of one run; unknown for an external executor."""
    if executor != "train":
        return CostEstimate()
    if flops_per_second <= 0:
        raise ValueError("flops_per_second must be positive")
    p = TrainingParams.model_validate(dict(params))
    n = parameter_count(p)
    flops = 6.0 * n * p.train_tokens
    return CostEstimate(parameters=n, tokens=p.train_tokens, flops=flops,
                        seconds=flops / flops_per_second, flops_per_second=flops_per_second)


def totals(costs: Iterable[CostEstimate]) -> CostTotals:
    costs = list(costs)
    known = [c for c in costs if c.known]
    rates = {c.flops_per_second for c in known}
    return CostTotals(
        runs=len(costs),
        unknown=len(costs) - len(known),
        tokens=sum(c.tokens or 0 for c in known),
        flops=sum(c.flops or 0.0 for c in known),
        seconds=sum(c.seconds or 0.0 for c in known),
        max_parameters=max((c.parameters or 0 for c in known), default=0),
        flops_per_second=rates.pop() if len(rates) == 1 else None,
    )


def measured_rate(costs: Iterable[Mapping[str, float]]) -> tuple[float, int] | None:
    """The median training FLOP rate (6·N·D per second of training) of finished runs, and
    how many runs it comes from; None when none recorded both numbers."""
    rates = sorted(c["flops_6nd"] / c["wall_s"] for c in costs
                   if c.get("flops_6nd", 0) > 0 and c.get("wall_s", 0) > 0)
    if not rates:
        return None
    mid = len(rates) // 2
    median = rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2
    return median, len(rates)
