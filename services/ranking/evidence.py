"""The observations a ranking is computed from: each run's parameters, costs and score.

Three readers give the same answer for the same log prefix:
- `current` asks the ranking's read model (services.ranking.readmodel), which follows the
  log: the normal path, in memory after the first call of a process;
- `from_graph` asks Neo4j (the projector caught up first): what the graph holds, kept as
  the reference the read model is tested against;
- `from_log` replays the RunRecorded and BenchmarkScored events up to a log position,
  so `knobs rank --as-of POSITION` sees exactly what a ranking computed then saw, however
  many runs were added or corrected since.

Both keep, per run, the newest RunRecorded and the newest score on the benchmark (last
write wins by position, as the graph does), and list the positions of every such event
seen, because the ranking cites them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from events.models import BenchmarkScored, RunRecorded
from services.core.context import Context
from services.core.errors import BadInput, NotFound
from services.queries.named import run_named
from services.ranking.analysis.ofat import Observation
from services.ranking.readmodel import Cited, Evidence, for_context

_PAGE = 5000


def experiment_benchmarks(ctx: Context, experiment: str) -> list[str]:
    """The benchmarks an experiment has scores on (sorted); NotFound listing the known ones."""
    ctx.catch_up()
    experiments = {row["name"]: row for row in run_named(ctx, "experiments")}
    if experiment not in experiments:
        known = ", ".join(sorted(experiments)) or "none yet (import some with `knobs import results`)"
        raise NotFound(f"no experiment named {experiment!r}; experiments: {known}")
    return sorted(experiments[experiment].get("benchmarks") or [])


def current(ctx: Context, experiment: str, benchmark: str) -> Evidence:
    return for_context(ctx).evidence(experiment, benchmark)


def from_graph(ctx: Context, experiment: str, benchmark: str) -> list[Observation]:
    ctx.catch_up()
    rows = run_named(ctx, "runs_for_benchmark", experiment=experiment, benchmark=benchmark)
    return [_from_row(row) for row in rows]


def cited_in_graph(ctx: Context, experiment: str,
                   benchmark: str) -> dict[str, tuple[tuple[int, str], tuple[int, str]]]:
    """Per run, the newest RunRecorded and score event the graph holds: what a ranking cites.
    (For checking the read model against the graph; a ranking takes them from `Evidence.cited`.)"""
    ctx.catch_up()
    rows = run_named(ctx, "runs_for_benchmark", experiment=experiment, benchmark=benchmark)
    return {row["run_id"]: ((row["run_positions"][-1], row["run_event_ids"][-1]),
                            (row["score_positions"][-1], row["score_event_ids"][-1])) for row in rows}


def _from_row(row: dict[str, Any]) -> Observation:
    return Observation(
        run_id=row["run_id"],
        params=dict(row["params"] or {}),
        score=float(row["value"]),
        seed=row.get("seed"),
        positions=tuple(sorted(set(row.get("run_positions") or []) | set(row.get("score_positions") or []))),
        costs=dict(row.get("costs") or {}),
        stderr=row.get("stderr"),
    )


def from_log(ctx: Context, experiment: str, benchmark: str, as_of: int) -> Evidence:
    """The observations the graph held when the log ended at `as_of`."""
    head = ctx.store().head()
    if as_of < 1 or as_of > head:
        raise BadInput(f"--as-of {as_of} is outside the log (positions 1..{head}); "
                       "use a ranking's as_of from `knobs audit RANKING` or `knobs rankings`")
    runs: dict[str, tuple[int, RunRecorded, str]] = {}
    scores: dict[str, tuple[int, BenchmarkScored, str]] = {}
    positions: dict[str, set[int]] = defaultdict(set)
    after = 0
    while after < as_of:
        page = ctx.store().read_all(after=after, limit=_PAGE, types=["RunRecorded", "BenchmarkScored"])
        if not page:
            break
        for stored in page:
            if stored.position > as_of:
                after = as_of
                break
            if stored.data.get("experiment") != experiment:
                continue
            event = stored.decode()
            if isinstance(event, RunRecorded):
                runs[event.run_id] = (stored.position, event, stored.event_id)
                positions[event.run_id].add(stored.position)
            elif isinstance(event, BenchmarkScored) and event.benchmark == benchmark:
                scores[event.run_id] = (stored.position, event, stored.event_id)
                positions[event.run_id].add(stored.position)
        else:
            after = page[-1].position
    observations = []
    cited: dict[str, Cited] = {}
    for run_id in sorted(scores):
        if run_id not in runs:
            continue  # a score whose run was not yet recorded: the graph has a bare run, no params
        (run_at, run, run_event), (score_at, score, score_event) = runs[run_id], scores[run_id]
        observations.append(Observation(
            run_id=run_id, params=dict(run.params), score=score.value, seed=run.seed,
            positions=tuple(sorted(positions[run_id])), costs=dict(run.costs), stderr=score.stderr,
        ))
        cited[run_id] = Cited((run_at, run_event), (score_at, score_event))
    return Evidence(observations, cited, version=as_of)
