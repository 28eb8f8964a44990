"""Facts derived from other facts: rankings of knobs, with exactly the events they used."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from events.models.base import Event, JSONScalar, register

Direction = Literal["lower", "higher"]
"""Which way a benchmark improves: losses and perplexities go down, accuracies go up."""


class UsedEvent(BaseModel):
    """One event a derivation read, by log position and id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int = Field(ge=1)
    event_id: str


class ValueEffect(BaseModel):
    """One value tried for a parameter: mean score over seeds and its effect vs the baseline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: JSONScalar
    mean: float
    effect: float
    ci: tuple[float, float] | None = None
    n: int = Field(ge=1)
    runs: list[str] = Field(default_factory=list)
    is_baseline: bool = False
    cost: dict[str, float] = Field(default_factory=dict)
    """Mean of each cost kind (flops, wall_s, ...) over the value's runs."""


class NoiseVerdict(BaseModel):
    """Is a parameter's effect distinguishable from run-to-run noise, and on what basis?"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: Literal["distinguishable", "indistinguishable", "unknown"]
    effect: float
    """The statistic compared with the noise (influence width, mu_star or ST)."""
    noise: float | None = None
    """The noise scale it was compared with, in the statistic's units (None when unknown)."""
    basis: str
    """In words: where the noise scale came from (seed spread, reported stderr, bootstrap)."""


class Knee(BaseModel):
    """Where returns diminish along a numeric knob: the value past which the gain per doubling
    (of the knob, or of its cost) falls under `threshold`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["found", "not_reached", "too_few_values", "not_numeric", "no_gain"]
    per: Literal["doubling", "cost_doubling"] = "doubling"
    value: float | None = None
    ci: tuple[float, float] | None = None
    axis: Literal["log", "linear"] = "log"
    model: str = ""
    """The curve fitted: "power_law" (a + b*x^-c), "log_linear" or "interpolation"."""
    threshold: float | None = None
    explored: tuple[float, float] | None = None
    detail: str = ""


class CostEfficiency(BaseModel):
    """A parameter's best gain over the baseline per unit of one kind of cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    """flops, gpu_hours, weight_bytes (or the recorded kind it was read from)."""
    source: str
    """The recorded cost kind used, e.g. flops_6nd or wall_s."""
    value: JSONScalar
    """The value giving the best gain."""
    gain: float
    """Improvement over the baseline, in the benchmark's units, positive = better."""
    extra_cost: float
    """That value's cost minus the baseline's."""
    per_unit: float | None
    """gain / extra_cost; None when the better value is no more expensive ("free")."""
    note: str = ""


class LeverageFlag(BaseModel):
    """Why a high-leverage parameter looks under-explored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["narrow_range", "few_runs", "best_at_edge", "baseline_far_from_best"]
    reason: str


class ParameterRanking(BaseModel):
    """A parameter's place in a ranking and the evidence for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    rank: int = Field(ge=1)
    influence_range: tuple[float, float]
    values: list[ValueEffect]
    statistic: float | None = None
    """What the rank orders by: the influence width (ofat), mu_star (morris) or ST (sobol)."""
    indices: dict[str, float | None] = Field(default_factory=dict)
    """SALib's names: mu, mu_star, sigma, mu_star_conf (morris); S1, S1_conf, ST, ST_conf (sobol)."""
    s2: dict[str, float | None] = Field(default_factory=dict)
    """Sobol second-order indices with each other parameter (S2), when computed."""
    noise: NoiseVerdict | None = None
    knee: Knee | None = None
    knee_cost: Knee | None = None
    per_cost: list[CostEfficiency] = Field(default_factory=list)
    flags: list[LeverageFlag] = Field(default_factory=list)


@register
class RankingDerived(Event):
    """A ranking of knobs on one benchmark, computed from exactly `used_events`."""

    ranking_id: str = Field(min_length=1)
    experiment: str
    benchmark: str
    method: str
    settings: dict[str, Any] = Field(default_factory=dict)
    """Every choice that changes the numbers (JSON values), so `--as-of` can repeat them."""
    direction: Direction | None = None
    """None in rankings recorded before directions were."""
    bootstrap_seed: int | None = None
    baseline: dict[str, JSONScalar]
    baseline_runs: list[str]
    baseline_mean: float
    code_version: str
    as_of: int = Field(ge=0)
    used_events: list[UsedEvent]
    parameters: list[ParameterRanking]
    excluded_runs: list[str] = Field(default_factory=list)

    @property
    def what_if(self) -> bool:
        """Recomputed as if some runs never happened (`--without`): an answer to "what if", so
        never the latest ranking, even when it is the only one (audit and provenance reach it)."""
        return bool(self.settings.get("without"))

    def stream_id(self) -> str:
        return f"ranking:{self.ranking_id}"
