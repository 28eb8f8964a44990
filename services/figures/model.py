"""The shapes every figure is drawn from. Pure data: no drawing, no I/O.

Each figure names its data (experiment, benchmark, ranking id, ...) and the JSON it was drawn
from, so a chart on a page or in a paper can be traced back to the recorded facts."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Provenance:
    """What a figure shows and where its numbers come from."""

    title: str
    about: dict[str, str]  # e.g. {"experiment": ..., "benchmark": ..., "ranking": ...}
    json_url: str  # the API document the figure was drawn from

    def caption(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.about.items())


@dataclass(frozen=True)
class Bar:
    """One parameter in a tornado: the score's span over the values it took, around a centre."""

    label: str
    low: float
    high: float
    rank: int
    noise: float | None = None  # a band of +-noise around the centre: spans inside it are noise
    verdict: str = ""  # distinguishable / indistinguishable / unknown
    low_label: str = ""  # the value that gave `low`
    high_label: str = ""


@dataclass(frozen=True)
class Tornado:
    provenance: Provenance
    centre: float  # the baseline's mean
    unit: str  # the benchmark
    bars: list[Bar]  # in rank order, rank 1 first


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    low: float | None = None  # an interval on y, when there is one
    high: float | None = None
    label: str = ""
    group: str = ""  # the series or colour class
    note: str = ""  # shown on hover
    mark: str = ""  # a state drawn differently (e.g. "rejected", "duplicate", "source")


@dataclass(frozen=True)
class Series:
    name: str
    points: list[Point]
    fitted: bool = False  # a fitted line: drawn dashed, without points


@dataclass(frozen=True)
class Marker:
    """A vertical mark on a curve's x axis (a knee), with its interval."""

    x: float
    label: str
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Curves:
    provenance: Provenance
    x_label: str
    y_label: str
    series: list[Series]
    log_x: bool = False
    markers: list[Marker] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Heatmap:
    provenance: Provenance
    rows: list[str]
    columns: list[str]
    values: list[list[float | None]]  # rows x columns, normalised to [-1, 1] (signed strength)
    labels: list[list[str]]  # what each cell says
    marked: list[tuple[int, int]] = field(default_factory=list)  # cells to outline (disagreements)
    note: str = ""


@dataclass(frozen=True)
class Scatter:
    provenance: Provenance
    x_label: str
    y_label: str
    points: list[Point]
    groups: list[str]  # colour classes in legend order
    note: str = ""


@dataclass(frozen=True)
class Histogram:
    provenance: Provenance
    x_label: str
    edges: list[float]
    counts: list[int]
    note: str = ""


def histogram(values: list[float], bins: int = 20) -> tuple[list[float], list[int]]:
    """Equal-width bins over the values' range (one bin when they are all equal)."""
    if not values:
        return [0.0, 1.0], [0]
    lo, hi = min(values), max(values)
    if hi == lo:
        return [lo - 0.5, hi + 0.5], [len(values)]
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return [lo + i * width for i in range(bins + 1)], counts
