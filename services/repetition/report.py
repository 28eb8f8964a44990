"""`knobs repetition report`: the K x condition table, per protocol and benchmark, beside the paper.

Read from the log (the runs' requests and scores), so it answers as soon as runs finish. Per
protocol and benchmark: the mean over seeds with a 95% t-interval for each (condition, K); the
difference lenses - verbatim (and mix - verbatim) at each K against the seed-to-seed noise
(pooled over every configuration run with several seeds: ranking's noise scale); a fit
y = a + b ln K for each condition (its slope per doubling of K); and the figures Allen-Zhu & Li
report for the matching protocol (services/data/physics31.csv), with a plain statement of
whether ours agree.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scipy import stats

from events.models import BenchmarkScored, RunRequested
from events.store import EventStore
from services.core.errors import NotFound
from services.ranking.analysis.direction import direction_for, gain
from services.ranking.analysis.noise import pooled_seed_noise

PAPER_CSV = Path(__file__).resolve().parents[1] / "data" / "physics31.csv"
CITATION = ("Z. Allen-Zhu and Y. Li, \"Physics of Language Models: Part 3.1, Knowledge Storage and "
            "Extraction\", arXiv:2309.14316 (v3, 2024); GPT-2 124M on bioS, 100,000 people")
PAPER_BENCHMARK = "qa_exact_match"  # what the paper's figures measure (P_test exact match)
LEVEL = 0.95


@dataclass(frozen=True)
class Cell:
    condition: str
    K: int
    mean: float
    low: float | None
    high: float | None
    seeds: int
    values: list[float]


@dataclass(frozen=True)
class Difference:
    condition: str  # against verbatim
    K: int
    difference: float  # condition - verbatim, in the benchmark's units
    better: float  # the same, signed so that positive is better for this benchmark
    noise_se: float | None
    label: str  # "better beyond noise", "worse beyond noise", "within noise", "noise unknown"


@dataclass(frozen=True)
class Fit:
    condition: str
    intercept: float
    slope: float  # per unit of ln K
    slope_se: float | None
    per_doubling: float
    r2: float | None
    points: int


@dataclass(frozen=True)
class Table:
    protocol: str
    benchmark: str
    direction: str
    cells: list[Cell]
    differences: list[Difference]
    fits: list[Fit]
    noise_sd: float | None


@dataclass(frozen=True)
class PaperRow:
    protocol: str
    paper_condition: str
    condition: str
    K: int
    value_percent: float
    source: str
    verified: str


@dataclass
class Report:
    experiment: str
    runs: int
    budget: str
    conditions: list[str]
    ks: list[int]
    protocols: list[str]
    seeds: list[int]
    cloud: str | None
    tables: list[Table] = field(default_factory=list)
    paper: list[PaperRow] = field(default_factory=list)
    agreement: list[str] = field(default_factory=list)
    citation: str = CITATION

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        return out


def paper_rows(path: Path = PAPER_CSV) -> list[PaperRow]:
    with path.open(encoding="utf-8") as f:
        return [PaperRow(r["protocol"], r["paper_condition"], r["condition"], int(r["K"]),
                         float(r["value_percent"]), r["source"], r["verified"]) for r in csv.DictReader(f)]


def _interval(values: Sequence[float]) -> tuple[float | None, float | None]:
    if len(values) < 2:
        return None, None
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(values) - 1)) * sd / math.sqrt(len(values))
    return mean - half, mean + half


def fit_log_k(condition: str, points: Sequence[tuple[int, float]]) -> Fit | None:
    """Least squares y = a + b ln K over every seed's score; None with fewer than two K."""
    if len({k for k, _ in points}) < 2:
        return None
    xs = [math.log(k) for k, _ in points]
    ys = [y for _, y in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    residual = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    total = sum((y - my) ** 2 for y in ys)
    se = math.sqrt(residual / (n - 2) / sxx) if n > 2 else None
    return Fit(condition, a, b, se, b * math.log(2), 1 - residual / total if total > 0 else None, n)


def _label(better: float, se: float | None) -> str:
    if se is None:
        return "noise unknown"
    if se == 0:
        if better == 0:
            return "within noise"
        return "better beyond noise" if better > 0 else "worse beyond noise"
    if abs(better) <= 2 * se:
        return "within noise"
    return "better beyond noise" if better > 0 else "worse beyond noise"


def table(protocol: str, benchmark: str, scores: dict[tuple[str, int], dict[int, float]]) -> Table:
    """One protocol's table for one benchmark; `scores[(condition, K)][seed]`."""
    direction = direction_for(benchmark)
    cells = []
    for (condition, k), by_seed in sorted(scores.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        values = [by_seed[s] for s in sorted(by_seed)]
        low, high = _interval(values)
        cells.append(Cell(condition, k, sum(values) / len(values), low, high, len(values), values))
    noise = pooled_seed_noise([c.values for c in cells])
    by_key = {(c.condition, c.K): c for c in cells}
    differences = []
    for c in cells:
        ref = by_key.get(("verbatim", c.K))
        if c.condition == "verbatim" or ref is None:
            continue
        diff = c.mean - ref.mean
        se = noise.sd * math.sqrt(1 / c.seeds + 1 / ref.seeds) if noise is not None else None
        better = gain(diff, direction)
        differences.append(Difference(c.condition, c.K, diff, better, se, _label(better, se)))
    fits = []
    for condition in sorted({c.condition for c in cells}):
        pts = [(c.K, v) for c in cells if c.condition == condition for v in c.values]
        fitted = fit_log_k(condition, pts)
        if fitted is not None:
            fits.append(fitted)
    return Table(protocol, benchmark, direction, cells, differences, fits, noise.sd if noise else None)


def read(store: EventStore, experiment: str) -> Report:
    """The report of a repetition experiment, from whatever runs have finished."""
    requests: dict[str, RunRequested] = {}
    scored: dict[str, dict[str, float]] = defaultdict(dict)
    for stored in store.read_all(types=[RunRequested.event_type, BenchmarkScored.event_type]):
        event = stored.decode()
        if isinstance(event, RunRequested) and event.experiment == experiment:
            requests[event.run_id] = event
        elif isinstance(event, BenchmarkScored) and event.experiment == experiment:
            scored[event.run_id][event.benchmark] = event.value
    if not requests:
        raise NotFound(f"no experiment {experiment!r} in this log (`knobs experiment list` shows them)")
    if not any("condition" in r.params for r in requests.values()):
        raise NotFound(f"experiment {experiment!r} is not a repetition experiment (its runs set no "
                       "`condition`); `knobs rank --experiment` reports any experiment")
    first = next(iter(requests.values())).params
    budget = (f"equal exposures: every run reads its corpus {first['epochs']:g} times (tokens grow with K)"
              if first.get("epochs") is not None else
              f"equal tokens: {int(first.get('train_tokens', 0)):,} training tokens per run, whatever K")
    report = Report(
        experiment=experiment, runs=sum(1 for r in requests if r in scored), budget=budget,
        conditions=sorted({str(r.params["condition"]) for r in requests.values()}),
        ks=sorted({int(r.params["K"]) for r in requests.values()}),
        protocols=sorted({str(r.params.get("protocol") or "format " + str(r.params.get("format")))
                          for r in requests.values()}),
        seeds=sorted({r.seed for r in requests.values()}),
        cloud=str(first["cloud"]) if first.get("cloud") else None,
    )
    Scores = dict[tuple[str, int], dict[int, float]]
    grouped: dict[tuple[str, str], Scores] = defaultdict(lambda: defaultdict(dict))
    for run_id, req in requests.items():
        protocol = str(req.params.get("protocol") or "format " + str(req.params.get("format")))
        key = (str(req.params["condition"]), int(req.params["K"]))
        for benchmark, value in scored.get(run_id, {}).items():
            grouped[(protocol, benchmark)][key][req.seed] = value
    for (protocol, benchmark), scores in sorted(grouped.items()):
        report.tables.append(table(protocol, benchmark, scores))
    report.paper = [row for row in paper_rows() if row.protocol in report.protocols]
    report.agreement = agreement(report)
    return report


def agreement(report: Report) -> list[str]:
    """Plain sentences: where our result agrees with the paper's and where it does not."""
    lines = []
    for t in report.tables:
        if t.benchmark not in (PAPER_BENCHMARK, "qa_choice_accuracy", "qa_answer_loss"):
            continue
        rows = [r for r in report.paper if r.protocol == t.protocol]
        verbatim = next((r for r in rows if r.condition == "verbatim"), None)  # bioS single
        lenses = max((r for r in rows if r.condition == "lenses"), key=lambda r: r.K, default=None)
        if verbatim is None or lenses is None:
            continue
        paper = {"verbatim": verbatim.value_percent, "lenses": lenses.value_percent}
        claim = paper["lenses"] - paper["verbatim"]
        top = [d for d in t.differences if d.condition == "lenses"]
        if not top:
            continue
        d = max(top, key=lambda x: x.K)
        ours = f"lenses - verbatim at K={d.K}: {d.difference:+.3g} ({d.label})"
        if d.label == "better beyond noise":
            verdict = "agrees with the paper's direction" if claim > 0 else "disagrees with the paper"
        elif d.label == "worse beyond noise":
            verdict = "contradicts the paper" if claim > 0 else "agrees with the paper's direction"
        elif d.label == "within noise":
            verdict = ("does not reproduce the paper's gap at this scale" if abs(claim) > 10
                       else "agrees: the paper also finds a small gap")
        else:
            verdict = "cannot be compared: one seed per cell gives no noise scale"
        lines.append(f"{t.protocol}, {t.benchmark}: {ours}; the paper reports {paper['verbatim']:.1f}% "
                     f"({verbatim.paper_condition}) vs {paper['lenses']:.1f}% ({lenses.paper_condition}) "
                     f"exact match: ours {verdict}.")
    return lines
