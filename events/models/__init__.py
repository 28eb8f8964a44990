"""Event models, one module per area; importing this package registers them all."""

from events.models.base import Event, JSONScalar, decode, event_types, register, upcaster
from events.models.distillation import (
    CloudAssessed,
    DistillateAssessed,
    DistillateGenerated,
    DistillationBatchFailed,
    DistillationCompleted,
    DistillationRequested,
    LensDefined,
)
from events.models.estimate import EstimateChecked
from events.models.experiments import (
    ExperimentDeclared,
    RunCompleted,
    RunDispatched,
    RunFailed,
    RunLeaseRenewed,
    RunProgressed,
    RunRequested,
    RunStarted,
)
from events.models.judging import JudgeReliabilityMeasured
from events.models.rankings import (
    CostEfficiency,
    Direction,
    Knee,
    LeverageFlag,
    NoiseVerdict,
    ParameterRanking,
    RankingDerived,
    UsedEvent,
    ValueEffect,
)
from events.models.results import BenchmarkScored, RunRecorded, SourceCited
from events.models.shift import (
    DatasetShiftMeasured,
    HypothesisTested,
    ShiftMeasured,
    ShiftRequested,
)
from events.models.training import (
    RECORDED_IN_TRAINING,
    TRAINING_BENCHMARKS,
    TRAINING_KNOBS,
    TrainingParams,
)

__all__ = [
    "RECORDED_IN_TRAINING",
    "TRAINING_BENCHMARKS",
    "TRAINING_KNOBS",
    "BenchmarkScored",
    "CloudAssessed",
    "CostEfficiency",
    "DatasetShiftMeasured",
    "Direction",
    "DistillateAssessed",
    "DistillateGenerated",
    "DistillationBatchFailed",
    "DistillationCompleted",
    "DistillationRequested",
    "EstimateChecked",
    "Event",
    "ExperimentDeclared",
    "HypothesisTested",
    "JSONScalar",
    "JudgeReliabilityMeasured",
    "Knee",
    "LensDefined",
    "LeverageFlag",
    "NoiseVerdict",
    "ParameterRanking",
    "RankingDerived",
    "RunCompleted",
    "RunDispatched",
    "RunFailed",
    "RunLeaseRenewed",
    "RunProgressed",
    "RunRecorded",
    "RunRequested",
    "RunStarted",
    "ShiftMeasured",
    "ShiftRequested",
    "SourceCited",
    "TrainingParams",
    "UsedEvent",
    "ValueEffect",
    "decode",
    "event_types",
    "register",
    "upcaster",
]
