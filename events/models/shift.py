"""Facts about how much examples move a model: measurement requests, per-chunk figures,
data-set summaries and verdicts on the compatibility hypothesis.

A measurement is one (model state, data set, probe set, settings) and has one stream. Its
figures arrive as one `ShiftMeasured` per chunk of examples (a killed measurement resumes at
the first chunk missing from the stream; the chunk's idempotency key refuses a duplicate),
then one `DatasetShiftMeasured` with the data-set figures. Per-token arrays are too large for
an event: they are a content-addressed blob (events/store/blobs.py) whose sha256 the chunk
carries. Names and definitions are the README's "Influence and volatility" section.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from events.canonical import canonical_json
from events.models.base import Event, register
from events.models.rankings import UsedEvent

ModelKind = Literal["run", "directory"]
Metrics = Literal["full", "norms"]
Optimizer = Literal["sgd", "adam"]
Verdict = Literal["supported", "contradicted", "inconclusive"]


class ShiftInputRejected(ValueError):
    """A model, data set or setting a measurement cannot use; raised before anything is logged.

    Here, on the floor, so that services catch what the workers' loaders raise without
    importing them.
    """


def measurement_id(model_sha256: str, data_sha256: str, probe_sha256: str | None,
                   settings: ShiftSettings) -> str:
    """The same model state, data, probe and settings are the same measurement (asking twice resumes)."""
    identity = canonical_json({"model": model_sha256, "data": data_sha256, "probe": probe_sha256,
                               "settings": settings.model_dump(mode="json")})
    return hashlib.sha256(identity.encode()).hexdigest()[:24]


def shift_stream(measurement_id: str) -> str:
    return f"shift:{measurement_id}"


def chunk_key(measurement_id: str, chunk: int) -> str:
    return f"shift-chunk:{measurement_id}:{chunk}"


def summary_key(measurement_id: str) -> str:
    return f"shift-dataset:{measurement_id}"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelState(_Frozen):
    """The weights measured: a run knobs trained (its artifact) or a local model directory."""

    kind: ModelKind
    ref: str = Field(min_length=1, description="'<experiment>/<run_id>' or the directory given")
    path: str = Field(description="the directory the weights were loaded from")
    sha256: str = Field(min_length=64, max_length=64, description="of the directory's files")


class DataSet(_Frozen):
    """A JSONL data set, named by the sha256 of its bytes (the same file is the same data set)."""

    sha256: str = Field(min_length=64, max_length=64)
    name: str = Field(min_length=1, description="the file's name, for people")
    path: str
    examples: int = Field(ge=1)


class ShiftSettings(_Frozen):
    lr: float = Field(gt=0)
    optimizer: Optimizer = "sgd"
    metrics: Metrics = "full"
    tokens: bool = False
    integrated_gradients: bool = False
    truncate: bool = True
    chunk: int = Field(ge=1, description="examples per ShiftMeasured event")


@register
class ShiftRequested(Event):
    """Measure every example of `dataset` on `model` with `settings` (a probe set optional)."""

    measurement_id: str = Field(min_length=1)
    model: ModelState
    dataset: DataSet
    probe: DataSet | None = None
    settings: ShiftSettings
    chunks: int = Field(ge=1)

    def stream_id(self) -> str:
        return shift_stream(self.measurement_id)


class ExampleFigures(_Frozen):
    """One example's figures; None where the settings did not ask for it."""

    id: str = Field(min_length=1, description="the line's id, else its line number")
    index: int = Field(ge=0, description="0-based position in the data set")
    tokens: int = Field(ge=1)
    targets: int = Field(ge=1)
    truncated: bool = False
    loss_before: float
    grad_norm: float = Field(ge=0)
    grad_norm_groups: dict[str, float] = Field(default_factory=dict)
    update_norm: float | None = None
    loss_after: float | None = None
    loss_drop: float | None = None
    probe_shift: float | None = None
    hidden_shift: float | None = None
    alignment: float | None = None
    ig_agreement: float | None = Field(default=None, description="Spearman of |IG| with saliency")


@register
class ShiftMeasured(Event):
    """The figures of one chunk of a measurement's examples."""

    measurement_id: str = Field(min_length=1)
    dataset_sha256: str = Field(min_length=64, max_length=64)
    chunk: int = Field(ge=0)
    examples: list[ExampleFigures] = Field(min_length=1)
    tokens_sha256: str | None = Field(
        default=None, min_length=64, max_length=64,
        description="blob of the chunk's per-token arrays (with --tokens): {example id: [token, ...]}",
    )
    device: str = "cpu"
    seconds: float = Field(default=0.0, ge=0)

    def stream_id(self) -> str:
        return shift_stream(self.measurement_id)


class DatasetFigures(_Frozen):
    examples: int = Field(ge=1)
    total_shift: float
    net_shift: float
    coherence: float
    volatility: float
    grad_norm_mean: float
    grad_norm_p50: float
    grad_norm_p90: float
    grad_norm_max: float
    noise_scale: float | None = Field(description="None when G = 0 (undefined)")
    truncated: int = Field(ge=0)
    probe_loss: float | None = None


@register
class DatasetShiftMeasured(Event):
    """A finished measurement's data-set figures, from every chunk listed in `used_events`."""

    measurement_id: str = Field(min_length=1)
    dataset_sha256: str = Field(min_length=64, max_length=64)
    model_sha256: str = Field(min_length=64, max_length=64)
    figures: DatasetFigures
    used_events: list[UsedEvent] = Field(min_length=1)

    def stream_id(self) -> str:
        return shift_stream(self.measurement_id)


class OutcomeCorrelation(_Frozen):
    """How pre-training volatility relates to one outcome across candidate data sets."""

    outcome: str
    expected_sign: Literal[-1, 1] = Field(description="the sign the hypothesis predicts")
    spearman: float | None
    pearson: float | None
    ci: tuple[float, float] | None = Field(description="bootstrap interval of spearman, over seeds")
    verdict: Verdict


@register
class HypothesisTested(Event):
    """A verdict on "volatility before training predicts what training does", with its table."""

    test_id: str = Field(min_length=1)
    name: str = Field(min_length=1, description="the spec's name")
    spec: dict[str, Any]
    verdict: Verdict
    correlations: list[OutcomeCorrelation] = Field(min_length=1)
    candidates: list[dict[str, Any]] = Field(
        min_length=2, description="per candidate data set: name, measurement_id, volatility, "
        "and per seed its outcomes",
    )
    curriculum: list[dict[str, Any]] = Field(default_factory=list)
    bootstrap: dict[str, Any] = Field(default_factory=dict)
    used_events: list[UsedEvent] = Field(min_length=1, description="the DatasetShiftMeasured facts read")
    code_version: str = ""
    seconds: float = Field(default=0.0, ge=0)

    def stream_id(self) -> str:
        return f"hypothesis:{self.test_id}"


class TrackedDocument(_Frozen):
    """One training document a run tracked: its cartography and forgetting over the recordings."""

    index: int = Field(ge=0, description="its position among the run's training documents")
    text: str = Field(description="its beginning, for people")
    recordings: int = Field(ge=1)
    confidence: float = Field(description="mean probability of the gold tokens, over the recordings")
    variability: float = Field(description="population std of that probability")
    correctness: float = Field(description="share of recordings where it was correct")
    forgetting_events: int = Field(ge=0, description="correct -> incorrect between recordings")
    never_learned: bool
    final_loss: float
    final_grad_norm: float


@register
class TrainingInfluenceRecorded(Event):
    """What a run recorded about its tracked training documents (spec: influence_every)."""

    experiment: str
    run_id: str
    every: int = Field(ge=1)
    steps: list[int] = Field(min_length=1)
    volatility_curve: list[dict[str, float]]
    documents: list[TrackedDocument] = Field(min_length=1)
    influence_sha256: str = Field(min_length=64, max_length=64,
                                  description="blob of the run's whole influence.json (trajectories)")

    def stream_id(self) -> str:
        return f"run:{self.experiment}/{self.run_id}"


__all__ = [
    "DataSet",
    "DatasetFigures",
    "DatasetShiftMeasured",
    "ExampleFigures",
    "HypothesisTested",
    "ModelState",
    "OutcomeCorrelation",
    "ShiftInputRejected",
    "ShiftMeasured",
    "ShiftRequested",
    "ShiftSettings",
    "TrackedDocument",
    "TrainingInfluenceRecorded",
    "chunk_key",
    "measurement_id",
    "shift_stream",
    "summary_key",
]
