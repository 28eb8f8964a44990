"""Request and response bodies of the API (`*Public` for what goes out)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from events.canonical import unstorable

EXACT_INT_MAX = 2**53 - 1
"""The largest position, version or seed taken: every JSON reader holds it exactly (a float's 53
bits), and a store's 64-bit columns hold it; a larger one is refused with 422, never a 500."""
ROWS_MAX = 100_000
"""The largest `limit` a graph query takes (its rows are cut at KNOBS_API_CYPHER_ROW_LIMIT anyway)."""


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, description="Event type, e.g. RunRecorded.")
    data: dict[str, Any] = Field(description="The event's payload.")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=512)
    event_id: str | None = Field(default=None, description="A UUID; generated when absent.")


class AppendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1)
    expected_versions: dict[str, Annotated[int, Field(ge=0, le=EXACT_INT_MAX)]] | None = None


class AppendedPublic(BaseModel):
    position: int
    event_id: str
    duplicate: bool


class AppendPublic(BaseModel):
    positions: list[int]
    results: list[AppendedPublic]


class StoredEventPublic(BaseModel):
    position: int
    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    recorded_at: str
    idempotency_key: str | None
    hash: str


class EventsPublic(BaseModel):
    events: list[StoredEventPublic]
    next_after: int


class CypherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(default=None, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)

    @field_validator("params")
    @classmethod
    def _neo4j_can_take(cls, params: dict[str, Any]) -> dict[str, Any]:
        # The driver cannot send a 65-bit integer or a lone surrogate (pydantic refuses those in
        # `query` itself): they were a 500 before this check.
        problem = unstorable(params, "params")
        if problem:
            raise ValueError(problem)
        return params


class CypherPublic(BaseModel):
    columns: list[str]
    rows: list[Any]
    truncated: bool


class RankIn(BaseModel):
    """What `POST /v1/rankings` ranks, with the same choices as `knobs rank`."""

    model_config = ConfigDict(extra="forbid")

    experiment: str = Field(min_length=1)
    benchmark: str = Field(min_length=1)
    baseline: str | None = None
    method: Literal["ofat", "morris", "sobol"] | None = None
    as_of: int | None = Field(default=None, ge=1, le=EXACT_INT_MAX)
    without: list[str] = Field(default_factory=list)
    direction: Literal["lower", "higher"] | None = None
    seed: int = Field(default=0, ge=0, le=EXACT_INT_MAX)


class HealthPublic(BaseModel):
    status: str
    store: dict[str, Any]
    neo4j: dict[str, Any]
    projection: dict[str, Any]


class ErrorPublic(BaseModel):
    """Every error answer (services/api/errors.py): the error's name and what to do about it."""

    error: str = Field(description="The error's class, e.g. NotFound, BadRequestBody.")
    detail: str = Field(description="What is wrong and what to do next.")
