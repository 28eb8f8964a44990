"""The ranking's read model: every run's newest parameters and scores, kept in memory, fed from the log.

A ranking needs, per run of an experiment scored on a benchmark: its parameters, seed, costs and
score, and the log events that set them. Reading those from Neo4j costs seconds at 10,000 runs
(one row per run, nested lists through the driver), so a process that ranks keeps them here
instead and reads only the events appended since it last looked: RunRecorded, BenchmarkScored
and ExperimentDeclared, in log order, last write wins by position -- the graph's own rule, so
the observations are the graph's (`tests/services/ranking` compares the two on one store).

The table also remembers the rankings it produced. A ranking is a function of its evidence, its
options and the code, so asking again while none of those moved is a lookup: the evidence
version of (experiment, benchmark) is the newest log position among the events that can change
it, and any new run, score or design of that experiment moves it.

One table per Context (`for_context`), shared by the API's request threads under a lock. If the
log under it is replaced (a shorter log, or another event at the position it read up to), the
table starts over.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from events.models import BenchmarkScored, RunRecorded
from events.models.experiments import ExperimentDeclared
from events.store import EventStore, StoredEvent
from services.core.context import Context
from services.ranking.analysis.ofat import Observation

_PAGE = 20_000
_REMEMBERED_WEIGHT = 200_000
"""How much the remembered rankings may hold, in cited events (~500 bytes each in memory, as
pydantic objects): ten rankings of 10k runs, one of 100k. The least recently asked goes first."""

_TYPES = (RunRecorded.event_type, BenchmarkScored.event_type, ExperimentDeclared.event_type)
_CURRENT_VERSION = {t: m.schema_version for t, m in
                    ((RunRecorded.event_type, RunRecorded), (BenchmarkScored.event_type, BenchmarkScored))}


@dataclass(slots=True)
class _Run:
    event_id: str
    position: int
    params: dict[str, Any]
    seed: int | None
    costs: dict[str, float]
    positions: list[int] = field(default_factory=list)
    """Every RunRecorded of the run, as the graph's Run node lists them."""


@dataclass(slots=True)
class _Score:
    event_id: str
    position: int
    value: float
    stderr: float | None
    positions: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Cited:
    """The events whose values an observation carries: the run's newest RunRecorded and score."""

    run: tuple[int, str]
    score: tuple[int, str]


@dataclass(frozen=True)
class Evidence:
    observations: list[Observation]
    cited: dict[str, Cited]
    """Per run id, the (position, event id) of the events a ranking using it cites."""
    version: int
    """The newest log position that changed what these observations could be (0: none)."""


class ScoreTable:
    """See the module docstring."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._after = 0
        self._after_hash: str | None = None
        self._runs: dict[str, dict[str, _Run]] = {}
        self._scores: dict[tuple[str, str], dict[str, _Score]] = {}
        self._changed: dict[tuple[str, str | None], int] = {}
        self._remembered: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._remembered_weight = 0

    # ----------------------------------------------------------------- reading

    def evidence(self, experiment: str, benchmark: str) -> Evidence:
        """The observations of (experiment, benchmark) as the log stands now, sorted by run id."""
        with self._lock:
            self._refresh()
            runs = self._runs.get(experiment, {})
            scores = self._scores.get((experiment, benchmark), {})
            observations: list[Observation] = []
            cited: dict[str, Cited] = {}
            for run_id in sorted(scores):
                run = runs.get(run_id)
                if run is None:
                    continue  # a score whose run is not recorded yet: the graph has a bare run
                score = scores[run_id]
                # The run's own dicts, not copies (100 MB at 100k runs): observations are read,
                # never written, by every analysis.
                observations.append(Observation(
                    run_id=run_id, params=run.params, score=score.value, seed=run.seed,
                    positions=tuple(sorted({*run.positions, *score.positions})),
                    costs=run.costs, stderr=score.stderr,
                ))
                cited[run_id] = Cited((run.position, run.event_id), (score.position, score.event_id))
            return Evidence(observations, cited, self._version(experiment, benchmark))

    def version(self, experiment: str, benchmark: str) -> int:
        with self._lock:
            self._refresh()
            return self._version(experiment, benchmark)

    def _version(self, experiment: str, benchmark: str) -> int:
        return max(self._changed.get((experiment, None), 0), self._changed.get((experiment, benchmark), 0))

    # ------------------------------------------------------- remembered answers

    def recall(self, key: Hashable) -> Any:
        with self._lock:
            found = self._remembered.get(key)
            if found is None:
                return None
            self._remembered.move_to_end(key)
            return found[0]

    def remember(self, key: Hashable, value: Any, weight: int) -> None:
        """Keep `value` for `recall(key)`; `weight` is what it holds, in cited events."""
        with self._lock:
            if key in self._remembered:
                self._remembered_weight -= self._remembered.pop(key)[1]
            self._remembered[key] = (value, weight)
            self._remembered_weight += weight
            while self._remembered_weight > _REMEMBERED_WEIGHT and len(self._remembered) > 1:
                self._remembered_weight -= self._remembered.popitem(last=False)[1][1]

    # ----------------------------------------------------------------- feeding

    def _refresh(self) -> None:
        if not self._same_log():
            self._reset()
        while True:
            page = self._store.read_all(after=self._after, limit=_PAGE, types=_TYPES)
            for stored in page:
                self._apply(stored)
            if page:
                self._after, self._after_hash = page[-1].position, page[-1].hash
            if len(page) < _PAGE:
                return

    def _same_log(self) -> bool:
        """Is the log the one read so far (not truncated, not replaced by another)?"""
        if self._after == 0:
            return True
        found = self._store.read_positions([self._after])
        return bool(found) and found[0].hash == self._after_hash

    def _apply(self, stored: StoredEvent) -> None:
        if stored.event_type == ExperimentDeclared.event_type:
            # Only when: the design decides the method, and a repeat must see a new one.
            self._changed[(stored.data["name"], None)] = stored.position
            return
        data = _payload(stored)
        experiment = data["experiment"]
        run_id = data["run_id"]
        if stored.event_type == RunRecorded.event_type:
            runs = self._runs.setdefault(experiment, {})
            held = runs.get(run_id)
            run = _Run(stored.event_id, stored.position, data["params"], data.get("seed"),
                       data.get("costs") or {}, held.positions if held else [])
            run.positions.append(stored.position)
            runs[run_id] = run
            self._changed[(experiment, None)] = stored.position
        else:
            benchmark = data["benchmark"]
            scores = self._scores.setdefault((experiment, benchmark), {})
            held_score = scores.get(run_id)
            score = _Score(stored.event_id, stored.position, float(data["value"]), data.get("stderr"),
                           held_score.positions if held_score else [])
            score.positions.append(stored.position)
            scores[run_id] = score
            self._changed[(experiment, benchmark)] = stored.position


def _payload(stored: StoredEvent) -> dict[str, Any]:
    """The stored payload as the current model reads it: as stored when it is the current version
    (validated when it was appended), else upcast and validated."""
    if _CURRENT_VERSION.get(stored.event_type) == stored.schema_version:
        return stored.data
    return stored.decode().model_dump(mode="json")


_TABLES_LOCK = threading.Lock()


def for_context(ctx: Context) -> ScoreTable:
    """The table of this Context's log, made on first use and kept as long as the Context."""
    with _TABLES_LOCK:
        return ctx.attachment("ranking.scores", lambda: ScoreTable(ctx.store()))
