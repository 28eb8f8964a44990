"""Facts derived from other facts: rankings of knobs, with exactly the events they used."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from events.models.base import Event, JSONScalar, register


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


class ParameterRanking(BaseModel):
    """A parameter's place in a ranking and the evidence for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    rank: int = Field(ge=1)
    influence_range: tuple[float, float]
    values: list[ValueEffect]


@register
class RankingDerived(Event):
    """A ranking of knobs on one benchmark, computed from exactly `used_events`."""

    ranking_id: str = Field(min_length=1)
    experiment: str
    benchmark: str
    method: str
    settings: dict[str, JSONScalar | None] = Field(default_factory=dict)
    baseline: dict[str, JSONScalar]
    baseline_runs: list[str]
    baseline_mean: float
    code_version: str
    as_of: int = Field(ge=0)
    used_events: list[UsedEvent]
    parameters: list[ParameterRanking]
    excluded_runs: list[str] = Field(default_factory=list)

    def stream_id(self) -> str:
        return f"ranking:{self.ranking_id}"
