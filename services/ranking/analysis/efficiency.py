"""Effect per cost: how much a knob's best value gains over the baseline per FLOP, per
GPU-hour and per byte of weights, so that rankings can also be read as "what buys the most".

Each cost kind is read from the first recorded cost (`RunRecorded.costs`, the mean over a
value's runs in `ValueStats.cost`) that both the baseline and the best value carry:

=============  =====================  ===========================================================
kind           source (in order)      where it comes from
=============  =====================  ===========================================================
flops          flops                  imported `cost.flops` (whatever the source counted)
               flops_6nd              trained runs (workers/jobs/cost.py): 6 x params_total x
                                      tokens; recorded by every trained run, so rankings across
                                      knobs compare like with like
               flops_measured         trained runs: torch's FlopCounterMode per step x steps
                                      (best effort: missing where the counter failed)
gpu_hours      gpu_hours              imported `cost.gpu_hours`
               wall_s (/ 3600)        trained runs' whole wall time (data, training, evaluation):
                                      device-hours on whatever device the run had, noted as such
weight_bytes   weight_bytes_bf16      imported `cost.weight_bytes_bf16`
               bytes_bf16             trained runs: 2 bytes x params_total
               weight_bytes_fp32      imported `cost.weight_bytes_fp32`
               bytes_fp32             trained runs: 4 bytes x params_total
               weight_bytes           imported `cost.weight_bytes`
               params_total (x 2)     trained runs' parameter count, at bf16 (noted)
               parameters (x 2)       imported `cost.parameters` (e.g. Vaswani et al. Table 3)
               params (x 2)           imported `cost.params`
=============  =====================  ===========================================================

The best value is the non-baseline value with the largest gain (`direction.gain`), not the
one with the best gain per cost: the question is what the knob's best setting costs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from events.models import CostEfficiency, Direction, ParameterRanking
from services.ranking.analysis.direction import gain as gain_of
from services.ranking.analysis.ofat import ParameterResult, ValueStats

COST_KINDS: tuple[str, ...] = ("flops", "gpu_hours", "weight_bytes")
NOTE_FREE = "free: better and no more expensive"
NOTE_NO_GAIN = "no value beats the baseline"
NOTE_WALL = "device-hours on the recorded device (wall_s / 3600), not necessarily GPU hours"
NOTE_PARAMS = "{source} x 2 bytes (bf16 weights); no byte count was recorded"


@dataclass(frozen=True)
class CostSource:
    """One recorded cost kind that can stand for a cost kind, and the factor that converts it."""

    name: str
    scale: float = 1.0
    note: str = ""


SOURCES: dict[str, tuple[CostSource, ...]] = {
    "flops": (CostSource("flops"), CostSource("flops_6nd"), CostSource("flops_measured")),
    "gpu_hours": (CostSource("gpu_hours"), CostSource("wall_s", 1 / 3600, NOTE_WALL)),
    "weight_bytes": (
        CostSource("weight_bytes_bf16"), CostSource("bytes_bf16"),
        CostSource("weight_bytes_fp32"), CostSource("bytes_fp32"), CostSource("weight_bytes"),
        CostSource("params_total", 2.0, NOTE_PARAMS.format(source="params_total")),
        CostSource("parameters", 2.0, NOTE_PARAMS.format(source="parameters")),
        CostSource("params", 2.0, NOTE_PARAMS.format(source="params")),
    ),
}


def source_for(kind: str, *costs: Mapping[str, float]) -> CostSource | None:
    """The first source of `kind` that every one of `costs` recorded (a finite number)."""
    for source in SOURCES[kind]:
        if all(source.name in c and math.isfinite(c[source.name]) for c in costs):
            return source
    return None


def best_value(param: ParameterResult, direction: Direction) -> ValueStats | None:
    """The non-baseline value with the largest gain over the baseline (first one on ties)."""
    tried = [v for v in param.values if not v.is_baseline]
    if not tried:
        return None
    return max(tried, key=lambda v: gain_of(v.effect, direction))


def per_cost(param: ParameterResult, direction: Direction) -> list[CostEfficiency]:
    """The best value's gain per unit of each cost kind both it and the baseline recorded.

    per_unit is gain / extra cost when the best value costs more; None when it gains and
    costs no more ("free"), and None when no value beats the baseline (gain <= 0): a
    negative gain per unit would rank nothing.
    """
    baseline = next((v for v in param.values if v.is_baseline), None)
    best = best_value(param, direction)
    if baseline is None or best is None:
        return []
    # Against the baseline's own effect: zero one at a time, but for Morris and Sobol effects
    # are measured from the design's overall mean.
    gain = gain_of(best.effect - baseline.effect, direction)
    out: list[CostEfficiency] = []
    for kind in COST_KINDS:
        source = source_for(kind, baseline.cost, best.cost)
        if source is None:
            continue
        extra = (best.cost[source.name] - baseline.cost[source.name]) * source.scale
        notes = [source.note] if source.note else []
        per_unit: float | None = None
        if gain <= 0:
            notes.insert(0, NOTE_NO_GAIN)
        elif extra <= 0:
            notes.insert(0, NOTE_FREE)
        else:
            per_unit = gain / extra
        out.append(CostEfficiency(kind=kind, source=source.name, value=best.value, gain=gain,
                                  extra_cost=extra, per_unit=per_unit, note="; ".join(notes)))
    return out


def is_free(e: CostEfficiency) -> bool:
    """Better than the baseline at no extra cost."""
    return e.gain > 0 and e.per_unit is None


def rank_by_cost(params: Sequence[ParameterRanking], kind: str) -> list[tuple[str, CostEfficiency]]:
    """Parameters ordered by what their best value buys per unit of `kind`.

    Free improvements first (largest gain first), then gain per unit, largest first, then the
    parameters whose best value gains nothing (least loss first). Parameters without this
    cost kind are left out; ties go by name so the order is reproducible.
    """
    if kind not in SOURCES:
        raise ValueError(f"unknown cost kind {kind!r}; known: {', '.join(COST_KINDS)}")
    rows = [(p.name, e) for p in params for e in p.per_cost if e.kind == kind]

    def order(row: tuple[str, CostEfficiency]) -> tuple[int, float, str]:
        name, e = row
        if is_free(e):
            return (0, -e.gain, name)
        if e.gain > 0 and e.per_unit is not None:
            return (1, -e.per_unit, name)
        return (2, -e.gain, name)

    return sorted(rows, key=order)
