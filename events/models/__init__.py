"""Event models, one module per area; importing this package registers them all."""

from events.models.base import Event, JSONScalar, decode, event_types, register, upcaster
from events.models.rankings import ParameterRanking, RankingDerived, UsedEvent, ValueEffect
from events.models.results import BenchmarkScored, RunRecorded, SourceCited

__all__ = [
    "BenchmarkScored",
    "Event",
    "JSONScalar",
    "ParameterRanking",
    "RankingDerived",
    "RunRecorded",
    "SourceCited",
    "UsedEvent",
    "ValueEffect",
    "decode",
    "event_types",
    "register",
    "upcaster",
]
