"""The facts an export shows, gathered once and shared by the notes vault and the JSON document.

Rankings come from the log (the latest RankingDerived per experiment, benchmark and method:
what-if rankings left out, then the newest evidence, then the newest record; see `recency`);
experiments, runs, parameters and benchmarks from the graph's named queries once the
projector has caught up. Everything is sorted and every date is an event's `recorded_at`,
never the clock, so two exports of the same log are identical byte for byte.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from events.models import ExperimentDeclared, JSONScalar, ParameterRanking, RankingDerived
from events.models.distillation import pair_node_id
from events.store import EventStore, StoredEvent
from services.core.context import Context
from services.export.cloud import DistillateRecord, DistillationRecord, read_distillations
from services.queries.named import run_named

DATASET_KNOBS: tuple[str, ...] = ("corpus", "data", "dataset")
"""Run parameters whose value names a data set (`corpus` is the trainer's knob)."""

RankingKey = tuple[str, str, str]
"""(experiment, benchmark, method): the latest ranking with the same key supersedes the others."""

Span = tuple[int, int]
"""The first and last log positions behind a note."""


@dataclass(frozen=True)
class EventRef:
    """Where one event sits in the log, and when it was recorded."""

    position: int
    event_id: str
    event_type: str
    recorded_at: str

    @classmethod
    def of(cls, stored: StoredEvent) -> EventRef:
        return cls(stored.position, stored.event_id, stored.event_type, stored.recorded_at)

    def public(self) -> dict[str, Any]:
        return {"position": self.position, "event_id": self.event_id, "type": self.event_type,
                "recorded_at": self.recorded_at}


@dataclass(frozen=True)
class RankingEntry:
    """The latest ranking of one (experiment, benchmark, method), with the ids it superseded."""

    ranking: RankingDerived
    event: EventRef
    earlier: tuple[str, ...] = ()
    """The other (not what-if) ranking ids under the same key, which this one supersedes, in log order."""

    @property
    def key(self) -> RankingKey:
        return (self.ranking.experiment, self.ranking.benchmark, self.ranking.method)

    @property
    def short_id(self) -> str:
        return self.ranking.ranking_id[:8]

    def public(self) -> dict[str, Any]:
        """The full event, as stored, plus where it sits in the log."""
        return {
            **self.ranking.model_dump(mode="json"),
            "position": self.event.position,
            "event_id": self.event.event_id,
            "recorded_at": self.event.recorded_at,
            "supersedes": list(self.earlier),
        }


@dataclass(frozen=True)
class RunFact:
    """A scored run as the graph holds it: its parameters, costs and scores per benchmark."""

    run_id: str
    params: dict[str, JSONScalar]
    seed: int | None
    source_id: str | None
    costs: dict[str, float]
    scores: dict[str, float]
    positions: tuple[int, ...]


@dataclass(frozen=True)
class SourceFact:
    source_id: str
    citation: str
    event: EventRef


@dataclass(frozen=True)
class ExperimentFact:
    name: str
    runs: int
    """Runs in the graph (scored or not)."""
    scores: int
    benchmarks: tuple[str, ...]
    parameters: tuple[str, ...]
    run_facts: tuple[RunFact, ...]
    """Runs with at least one score, by run id."""
    sources: tuple[str, ...]
    datasets: tuple[str, ...]
    design: ExperimentDeclared | None
    design_event: EventRef | None
    rankings: tuple[RankingEntry, ...]
    span: Span | None


@dataclass(frozen=True)
class ParameterFact:
    name: str
    experiments: tuple[str, ...]
    values: tuple[tuple[str, tuple[JSONScalar, ...]], ...]
    """(experiment, the distinct values its scored runs used), by experiment."""
    runs: int
    rankings: tuple[tuple[RankingEntry, ParameterRanking], ...]
    run_span: Span | None
    """The log positions of the runs that set it."""

    @property
    def span(self) -> Span | None:
        """The runs that set it and its rankings."""
        return _widened(self.run_span, (e for e, _ in self.rankings))


@dataclass(frozen=True)
class BenchmarkFact:
    name: str
    experiments: tuple[str, ...]
    scores: int
    rankings: tuple[RankingEntry, ...]
    direction: str | None
    score_span: Span | None
    """The log positions of its scores."""

    @property
    def span(self) -> Span | None:
        """Its scores and its rankings."""
        return _widened(self.score_span, self.rankings)


@dataclass(frozen=True)
class MeasurementFact:
    """A finished shift measurement: its request, its data-set figures, its most moving examples."""

    measurement_id: str
    model_ref: str
    dataset_name: str
    dataset_sha256: str
    settings: dict[str, Any]
    figures: dict[str, Any]
    top_examples: tuple[dict[str, Any], ...]
    request: EventRef
    summary: EventRef
    chunks: int

    @property
    def span(self) -> Span:
        return (self.request.position, self.summary.position)


@dataclass(frozen=True)
class VerdictFact:
    test_id: str
    name: str
    verdict: str
    correlations: tuple[dict[str, Any], ...]
    candidates: tuple[dict[str, Any], ...]
    curriculum: tuple[dict[str, Any], ...]
    event: EventRef

    @property
    def span(self) -> Span:
        return (self.event.position, self.event.position)


@dataclass(frozen=True)
class PairCloud:
    """What one distillation made of one pair: its distillates, and its cloud once assessed."""

    distillation: DistillationRecord
    distillates: tuple[DistillateRecord, ...]
    cloud: dict[str, Any] | None
    """generated, accepted, diversity, vendi (CloudAssessed), None until assessed."""


@dataclass(frozen=True)
class PairFact:
    """A question-answer pair some distillation rewrote, with every cloud made of it."""

    node_id: str
    """The QAPair's id in the graph: pair_node_id(pair set, the pair's own id)."""
    pair_id: str
    pair_set: str
    pair_set_name: str
    question: str
    answer: str
    known_answer: bool
    clouds: tuple[PairCloud, ...]
    span: Span


@dataclass(frozen=True)
class DatasetFact:
    """A value of a run parameter in DATASET_KNOBS: there is no dataset node, only this use."""

    name: str
    knobs: tuple[str, ...]
    experiments: tuple[tuple[str, int], ...]
    """(experiment, how many of its scored runs used the data set)."""
    span: Span | None


@dataclass(frozen=True)
class Snapshot:
    log_head: int
    experiments: tuple[ExperimentFact, ...]
    parameters: tuple[ParameterFact, ...]
    benchmarks: tuple[BenchmarkFact, ...]
    datasets: tuple[DatasetFact, ...]
    rankings: tuple[RankingEntry, ...]
    sources: dict[str, SourceFact]
    times: dict[int, str] = field(default_factory=dict)
    measurements: tuple[MeasurementFact, ...] = ()
    verdicts: tuple[VerdictFact, ...] = ()
    """recorded_at of every span endpoint."""
    pairs: tuple[PairFact, ...] = ()
    """Question-answer pairs a distillation rewrote, with their clouds (from the log)."""

    def dates(self, span: Span | None) -> tuple[str, str] | None:
        """(created, updated): when the first and the last event behind a span were recorded."""
        if span is None or span[0] not in self.times or span[1] not in self.times:
            return None
        return self.times[span[0]], self.times[span[1]]

    @property
    def span(self) -> Span | None:
        ends = sorted(self.times)
        return (ends[0], ends[-1]) if ends else None


def value_key(value: JSONScalar) -> tuple[int, float, str]:
    """Sort key for parameter values of mixed types: booleans, numbers, then text."""
    if isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, int | float):
        return (1, float(value), repr(value))
    return (2, 0.0, str(value))


def recency(entry: RankingEntry) -> tuple[int, int]:
    """(as_of, position): the larger, the more current. The newest evidence wins, so re-ranking
    `--as-of` an old position (recorded last) does not displace a ranking of the whole log; a
    tie (the same evidence) goes to the ranking recorded last, i.e. the newest code."""
    return (entry.ranking.as_of, entry.event.position)


def read_rankings(store: EventStore, up_to: int | None = None) -> list[RankingEntry]:
    """The latest ranking per (experiment, benchmark, method) in the log, sorted by that key:
    what-if rankings left out, then the highest `recency`."""
    by_key: dict[RankingKey, dict[str, RankingEntry]] = defaultdict(dict)
    for stored in store.read_all(types=["RankingDerived"]):
        if up_to is not None and stored.position > up_to:
            break
        event = stored.decode()
        assert isinstance(event, RankingDerived)
        if event.what_if:
            continue
        # A ranking recorded again (the same id) counts at its last position, as in the graph.
        by_key[(event.experiment, event.benchmark, event.method)][event.ranking_id] = \
            RankingEntry(event, EventRef.of(stored))
    latest: list[RankingEntry] = []
    for key in sorted(by_key):
        entries = sorted(by_key[key].values(), key=lambda e: e.event.position)
        chosen = max(entries, key=recency)
        earlier = tuple(e.ranking.ranking_id for e in entries if e is not chosen)
        latest.append(RankingEntry(chosen.ranking, chosen.event, earlier))
    return latest


def _span(positions: Iterable[int]) -> Span | None:
    ordered = sorted(positions)
    return (ordered[0], ordered[-1]) if ordered else None


def _widened(span: Span | None, entries: Iterable[RankingEntry]) -> Span | None:
    """`span` widened to take in the log positions of `entries`."""
    return _span([*(span or ()), *(e.event.position for e in entries)])


def _first_by(
    store: EventStore, event_type: str, key: str, up_to: int
) -> dict[str, tuple[StoredEvent, Any]]:
    """The first event of a type per value of one of its fields (declarations, citations)."""
    out: dict[str, tuple[StoredEvent, Any]] = {}
    for stored in store.read_all(types=[event_type]):
        if stored.position > up_to:
            break
        name = str(stored.data.get(key))
        if name not in out:
            out[name] = (stored, stored.decode())
    return out


class _Runs:
    """Scored runs of one experiment, merged across the benchmarks they were scored on."""

    def __init__(self) -> None:
        self.params: dict[str, dict[str, JSONScalar]] = {}
        self.meta: dict[str, tuple[int | None, str | None, dict[str, float]]] = {}
        self.scores: dict[str, dict[str, float]] = defaultdict(dict)
        self.positions: dict[str, set[int]] = defaultdict(set)
        self.run_positions: dict[str, set[int]] = defaultdict(set)

    def add(self, benchmark: str, row: dict[str, Any]) -> set[int]:
        run_id = str(row["run_id"])
        self.params[run_id] = {str(k): v for k, v in (row.get("params") or [])}
        costs = {str(k): float(v) for k, v in (row.get("costs") or []) if isinstance(v, int | float)}
        self.meta[run_id] = (row.get("seed"), row.get("source_id"), costs)
        self.scores[run_id][benchmark] = float(row["value"])
        run_positions = set(row.get("run_positions") or [])
        score_positions = set(row.get("score_positions") or [])
        self.run_positions[run_id] |= run_positions
        self.positions[run_id] |= run_positions | score_positions
        return score_positions

    def facts(self) -> tuple[RunFact, ...]:
        return tuple(
            RunFact(run_id=run_id, params=self.params[run_id], seed=self.meta[run_id][0],
                    source_id=self.meta[run_id][1], costs=self.meta[run_id][2],
                    scores=dict(sorted(self.scores[run_id].items())),
                    positions=tuple(sorted(self.positions[run_id])))
            for run_id in sorted(self.params)
        )


def build(ctx: Context) -> Snapshot:
    """Gather every fact an export shows, as of the log's head when called."""
    store = ctx.store()
    head = store.head()
    ctx.catch_up()
    rankings = read_rankings(store, up_to=head)
    sources = {
        sid: SourceFact(sid, str(stored.data.get("citation", "")), EventRef.of(stored))
        for sid, (stored, _event) in sorted(_first_by(store, "SourceCited", "source_id", head).items())
    }
    declared = _first_by(store, "ExperimentDeclared", "name", head)
    rows = {str(row["name"]): row for row in run_named(ctx, "experiments")}

    by_experiment: dict[str, list[RankingEntry]] = defaultdict(list)
    by_benchmark: dict[str, list[RankingEntry]] = defaultdict(list)
    by_parameter: dict[str, list[tuple[RankingEntry, ParameterRanking]]] = defaultdict(list)
    for entry in rankings:
        by_experiment[entry.ranking.experiment].append(entry)
        by_benchmark[entry.ranking.benchmark].append(entry)
        for p in entry.ranking.parameters:
            by_parameter[p.name].append((entry, p))

    bench_experiments: dict[str, set[str]] = defaultdict(set)
    bench_scores: dict[str, int] = defaultdict(int)
    bench_positions: dict[str, set[int]] = defaultdict(set)
    param_experiments: dict[str, set[str]] = defaultdict(set)
    param_values: dict[str, dict[str, set[JSONScalar]]] = defaultdict(lambda: defaultdict(set))
    param_runs: dict[str, int] = defaultdict(int)
    param_positions: dict[str, set[int]] = defaultdict(set)
    data_knobs: dict[str, set[str]] = defaultdict(set)
    data_runs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    data_positions: dict[str, set[int]] = defaultdict(set)

    experiments: list[ExperimentFact] = []
    for name in sorted(set(rows) | set(by_experiment) | set(declared)):
        row = rows.get(name, {})
        scored_on = sorted({str(b) for b in row.get("benchmarks") or []})
        runs = _Runs()
        for benchmark in scored_on:
            for run_row in run_named(ctx, "runs_for_benchmark", experiment=name, benchmark=benchmark):
                bench_positions[benchmark] |= runs.add(benchmark, run_row)
                bench_scores[benchmark] += 1
            bench_experiments[benchmark].add(name)
        run_facts = runs.facts()
        used_data: set[str] = set()
        for run in run_facts:
            for pname, value in run.params.items():
                param_values[pname][name].add(value)
                param_runs[pname] += 1
                param_positions[pname] |= runs.run_positions[run.run_id]
            for knob in DATASET_KNOBS:
                if knob in run.params:
                    data = str(run.params[knob])
                    used_data.add(data)
                    data_knobs[data].add(knob)
                    data_runs[data][name] += 1
                    data_positions[data] |= runs.run_positions[run.run_id]
        knobs = sorted({str(p) for p in row.get("parameters") or []}
                       | {p.name for e in by_experiment[name] for p in e.ranking.parameters})
        for pname in knobs:
            param_experiments[pname].add(name)
        design = declared.get(name)
        design_event = EventRef.of(design[0]) if design else None
        own_rankings = tuple(by_experiment[name])
        positions = {p for r in run_facts for p in r.positions} | {e.event.position for e in own_rankings}
        if design_event:
            positions.add(design_event.position)
        experiments.append(ExperimentFact(
            name=name, runs=int(row.get("runs") or 0), scores=int(row.get("scores") or 0),
            benchmarks=tuple(scored_on), parameters=tuple(knobs), run_facts=run_facts,
            sources=tuple(sorted({r.source_id for r in run_facts if r.source_id})),
            datasets=tuple(sorted(used_data)),
            design=design[1] if design else None, design_event=design_event,
            rankings=own_rankings, span=_span(positions),
        ))

    parameters = tuple(
        ParameterFact(
            name=pname,
            experiments=tuple(sorted(param_experiments[pname] | {e.ranking.experiment for e, _ in
                                                                  by_parameter[pname]})),
            values=tuple((exp, tuple(sorted(vals, key=value_key)))
                         for exp, vals in sorted(param_values[pname].items())),
            runs=param_runs[pname],
            rankings=tuple(by_parameter[pname]),
            run_span=_span(param_positions[pname]),
        )
        for pname in sorted(set(param_experiments) | set(by_parameter))
    )
    benchmarks = tuple(
        BenchmarkFact(
            name=bname,
            experiments=tuple(sorted(bench_experiments[bname] | {e.ranking.experiment for e in
                                                                  by_benchmark[bname]})),
            scores=bench_scores[bname],
            rankings=tuple(by_benchmark[bname]),
            direction=next((e.ranking.direction for e in reversed(by_benchmark[bname])
                            if e.ranking.direction), None),
            score_span=_span(bench_positions[bname]),
        )
        for bname in sorted(set(bench_experiments) | set(by_benchmark))
    )
    datasets = tuple(
        DatasetFact(name=data, knobs=tuple(sorted(data_knobs[data])),
                    experiments=tuple(sorted(data_runs[data].items())), span=_span(data_positions[data]))
        for data in sorted(data_knobs)
    )
    spans = [e.span for e in experiments] + [p.span for p in parameters] + [b.span for b in benchmarks]
    spans += [d.span for d in datasets]
    measurements, verdicts = _shift_facts(store, head)
    spans += [m.span for m in measurements] + [v.span for v in verdicts]
    pairs = _pair_facts(store, head)
    spans += [p.span for p in pairs]
    ends = {end for span in spans if span for end in span} | {e.event.position for e in rankings}
    times = {s.position: s.recorded_at for s in store.read_positions(sorted(ends))}
    return Snapshot(
        log_head=head, experiments=tuple(experiments), parameters=parameters, benchmarks=benchmarks,
        datasets=datasets, rankings=tuple(rankings), sources=sources, times=times,
        measurements=measurements, verdicts=verdicts, pairs=pairs,
    )


TOP_EXAMPLES = 10


def _shift_facts(store: EventStore, head: int) -> tuple[tuple[MeasurementFact, ...], tuple[VerdictFact, ...]]:
    """Finished measurements (those with a DatasetShiftMeasured) and verdicts, from the log."""
    events = store.read_all(types=["ShiftRequested", "DatasetShiftMeasured", "HypothesisTested"])
    events = [e for e in events if e.position <= head]
    requests = {str(e.data["measurement_id"]): e for e in events if e.event_type == "ShiftRequested"}
    measurements = []
    for summary in (e for e in events if e.event_type == "DatasetShiftMeasured"):
        mid = str(summary.data["measurement_id"])
        request = requests.get(mid)
        if request is None:
            continue
        chunk_positions = [int(u["position"]) for u in summary.data["used_events"]]
        rows = [x for c in store.read_positions(chunk_positions) for x in c.data["examples"]]
        top = sorted(rows, key=lambda x: (-float(x["grad_norm"]), str(x["id"])))[:TOP_EXAMPLES]
        measurements.append(MeasurementFact(
            measurement_id=mid, model_ref=str(request.data["model"]["ref"]),
            dataset_name=str(request.data["dataset"]["name"]),
            dataset_sha256=str(request.data["dataset"]["sha256"]), settings=dict(request.data["settings"]),
            figures=dict(summary.data["figures"]), top_examples=tuple(top), request=EventRef.of(request),
            summary=EventRef.of(summary), chunks=len(chunk_positions)))
    verdicts = tuple(
        VerdictFact(test_id=str(e.data["test_id"]), name=str(e.data["name"]), verdict=str(e.data["verdict"]),
                    correlations=tuple(e.data["correlations"]), candidates=tuple(e.data["candidates"]),
                    curriculum=tuple(e.data.get("curriculum", [])), event=EventRef.of(e))
        for e in events if e.event_type == "HypothesisTested"
    )
    return tuple(measurements), verdicts


def _pair_facts(store: EventStore, head: int) -> tuple[PairFact, ...]:
    """Every pair a distillation in the log names, by pair set and the pair's own id (from the log)."""
    clouds: dict[str, list[PairCloud]] = defaultdict(list)
    first: dict[str, tuple[DistillationRecord, int]] = {}
    for record in read_distillations(store, up_to=head):
        by_pair: dict[str, list[DistillateRecord]] = defaultdict(list)
        for d in record.distillates:
            by_pair[d.generated.pair_id].append(d)
        for index, pair in enumerate(record.request.pairs):
            node = pair_node_id(record.request.pair_set.sha256, pair.id)
            first.setdefault(node, (record, index))
            assessed = record.clouds.get(pair.id)
            figures = {"generated", "accepted", "diversity", "vendi"}
            cloud = assessed[0].model_dump(mode="json", include=figures) if assessed else None
            clouds[node].append(PairCloud(record, tuple(by_pair.get(pair.id, ())), cloud))
    facts = []
    for node, (record, index) in sorted(first.items()):
        pair = record.request.pairs[index]
        positions = [record.position]
        for c in clouds[node]:
            positions += [c.distillation.position, *(d.position for d in c.distillates)]
            positions += [d.assessed_position for d in c.distillates if d.assessed_position is not None]
            if c.cloud is not None:
                positions.append(c.distillation.clouds[pair.id][1])
        facts.append(PairFact(
            node_id=node, pair_id=pair.id, pair_set=record.request.pair_set.sha256,
            pair_set_name=record.request.pair_set.name, question=pair.question, answer=pair.answer,
            known_answer=pair.known_answer, clouds=tuple(clouds[node]),
            span=(min(positions), max(positions))))
    return tuple(facts)
