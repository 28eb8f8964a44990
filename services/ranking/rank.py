"""Rank the knobs of an experiment on a benchmark, and record the ranking as an event.

Reads top-down:
0. if this very question was answered in this process and none of its evidence has moved
   since (services.ranking.readmodel), the answer is the ranking already recorded;
1. gather the observations (from the read model of the log, or from the log as it stood at
   `--as-of`), leaving out any runs named with `--without`;
2. analyse them by the method the experiment's design calls for (one-at-a-time, Morris,
   Sobol) or the one asked for;
3. judge each parameter: noise verdict, knees, effect per cost, leverage flags;
4. record a RankingDerived event naming exactly the RunRecorded and BenchmarkScored events
   it used, with every setting that changes the numbers, so the same evidence ranked by the
   same code is the same fact (and `--as-of` reproduces it exactly).
"""

from __future__ import annotations

import dataclasses
import statistics
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from events.canonical import canonical_json
from events.models import Direction, ExperimentDeclared, ParameterRanking, RankingDerived, UsedEvent
from events.store import NewEvent
from services.core.context import Context
from services.core.errors import BadInput, NotFound
from services.core.version import code_version
from services.experiments.service import experiment_stream
from services.ranking import evidence
from services.ranking.analysis import gsa, noise
from services.ranking.analysis.assess import Candidate, assess
from services.ranking.analysis.direction import direction_for
from services.ranking.analysis.ofat import (
    Observation,
    ParameterResult,
    analyse,
    encode,
    mean_and_ci,
    replicate_groups,
)
from services.ranking.readmodel import Evidence, for_context

RANKING_NAMESPACE = uuid.UUID("0b9a4f0e-2f51-4f7d-8d0a-5d1e7f3c9a20")
Method = Literal["ofat", "morris", "sobol"]
METHODS: tuple[Method, ...] = ("ofat", "morris", "sobol")
DESIGN_METHOD: dict[str, Method] = {"ofat": "ofat", "grid": "ofat", "morris": "morris", "sobol": "sobol"}


@dataclass(frozen=True)
class RankOptions:
    """Every choice that changes a ranking's numbers; all of them are recorded in it."""

    baseline_run: str | None = None
    method: Method | None = None
    """None: the experiment's declared design decides (ofat for imported experiments)."""
    as_of: int | None = None
    without: tuple[str, ...] = ()
    direction: Direction | None = None
    """None: from the benchmark's name (losses go down, accuracies go up)."""
    bootstrap_seed: int = 0
    num_resamples: int = 1000
    ci_level: float = 0.95
    knee_fraction: float = 0.1


@dataclass(frozen=True)
class Analysis:
    """What any method produces, before judgement and recording."""

    method: Method
    baseline: dict[str, Any]
    baseline_runs: tuple[str, ...]
    baseline_mean: float
    candidates: list[Candidate]
    used_runs: tuple[str, ...]
    excluded_runs: tuple[str, ...]
    not_varied_alone: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RankingOutcome:
    ranking: RankingDerived
    position: int
    duplicate: bool
    not_varied_alone: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def public(self) -> dict[str, Any]:
        """The `knobs rank --json` object: the recorded event, plus where it sits in the log."""
        body = self.ranking.model_dump(mode="json", exclude={"used_events"})
        return {
            **body,
            "position": self.position,
            "duplicate": self.duplicate,
            "used_events": len(self.ranking.used_events),
            "not_varied_alone": list(self.not_varied_alone),
            "notes": list(self.notes),
        }


def rank(ctx: Context, experiment: str, benchmark: str,
         options: RankOptions | None = None, *, project: bool = True) -> RankingOutcome:
    """Rank, record, and (with `project`) bring the graph up to the new ranking before returning.

    Without `project` the ranking is answered as soon as it is in the log, its citations with it;
    the caller projects it (the API does so right after the response: 20k provenance links cost
    Neo4j ~1.5 s at 10k runs on two cores, three times the rest of the ranking).
    """
    opts = options or RankOptions()
    if opts.method is not None and opts.method not in METHODS:
        raise BadInput(f"unknown method {opts.method!r}; choose one of {', '.join(METHODS)}")

    question: Hashable = (experiment, benchmark, canonical_json(dataclasses.asdict(opts)), code_version())
    if opts.as_of is None:
        answered = for_context(ctx).recall((question, for_context(ctx).version(experiment, benchmark)))
        if isinstance(answered, RankingOutcome):
            return dataclasses.replace(answered, duplicate=True)

    found, observations = _observations(ctx, experiment, benchmark, opts)
    declared = _declaration(ctx, experiment, opts.as_of)
    method = _method(opts.method, declared, experiment)
    direction = direction_for(benchmark, opts.direction)

    if method == "ofat":
        analysis = _ofat(observations, opts, experiment, benchmark)
    else:
        assert declared is not None
        analysis = _gsa(method, declared, observations, opts)
    parameters = assess(analysis.candidates, observations, direction=direction,
                        seed=opts.bootstrap_seed, knee_fraction=opts.knee_fraction)
    outcome = _record(ctx, experiment, benchmark, opts, analysis, direction, found, parameters)
    if project:
        ctx.catch_up()
    if opts.as_of is None:
        for_context(ctx).remember((question, found.version), outcome, len(outcome.ranking.used_events))
    return outcome


# ------------------------------------------------------------------------ evidence


def _observations(ctx: Context, experiment: str, benchmark: str,
                  opts: RankOptions) -> tuple[Evidence, list[Observation]]:
    """Everything seen (which fixes `as_of`), and what is left after `--without`."""
    if opts.as_of is None:
        found = evidence.current(ctx, experiment, benchmark)
    else:
        found = evidence.from_log(ctx, experiment, benchmark, opts.as_of)
    observations = found.observations
    if not observations:
        _explain_empty(ctx, experiment, benchmark, opts.as_of)
    known = {o.run_id for o in observations}
    unknown = sorted(set(opts.without) - known)
    if unknown:
        raise NotFound(f"--without names runs with no {benchmark!r} score in {experiment!r}: "
                       f"{', '.join(unknown)}; `knobs audit RANKING` lists the runs a ranking used")
    left_out = set(opts.without)
    kept = [o for o in observations if o.run_id not in left_out]
    if not kept:
        raise BadInput("--without leaves no runs to rank")
    return found, kept


def _declaration(ctx: Context, experiment: str, as_of: int | None) -> ExperimentDeclared | None:
    for stored in ctx.store().read_stream(experiment_stream(experiment)):
        if stored.event_type == "ExperimentDeclared" and (as_of is None or stored.position <= as_of):
            event = stored.decode()
            assert isinstance(event, ExperimentDeclared)
            return event
    return None


def _method(asked: Method | None, declared: ExperimentDeclared | None, experiment: str) -> Method:
    designed = DESIGN_METHOD.get(declared.design, "ofat") if declared else None
    if asked is None:
        return designed or "ofat"
    if asked in ("morris", "sobol") and designed != asked:
        what = f"a {declared.design} design" if declared else "no declared design (it was imported)"
        raise BadInput(
            f"--method {asked} needs the runs of a declared {asked} design; experiment {experiment!r} "
            f"has {what}. Declare one with `knobs experiment declare SPEC` (design: {{method: {asked}}}) "
            "or rank with --method ofat"
        )
    return asked


# ------------------------------------------------------------------------ analysis


def _ofat(observations: Sequence[Observation], opts: RankOptions,
          experiment: str, benchmark: str) -> Analysis:
    baseline = None
    if opts.baseline_run is not None:
        match = [o for o in observations if o.run_id == opts.baseline_run]
        if not match:
            known = ", ".join(sorted(o.run_id for o in observations)[:20])
            raise NotFound(f"run {opts.baseline_run!r} has no {benchmark!r} score in experiment "
                           f"{experiment!r}; runs with one: {known}")
        baseline = dict(match[0].params)
    coded = encode(observations)
    result = analyse(observations, baseline, coded)
    seed_noise = noise.pooled_seed_noise(replicate_groups(observations, coded))
    stderr = {o.run_id: o.stderr for o in observations if o.stderr is not None}
    candidates = [
        Candidate(result=p, statistic=p.width, noise=verdict, noise_half_width=verdict.noise)
        for p in result.parameters
        for verdict in [noise.ofat_verdict(p, seed_noise, stderr or None, level=opts.ci_level)]
    ]
    return Analysis(
        method="ofat", baseline=result.baseline, baseline_runs=result.baseline_runs,
        baseline_mean=result.baseline_mean, candidates=candidates, used_runs=result.used_runs,
        excluded_runs=result.excluded_runs, not_varied_alone=result.not_varied_alone,
    )


def _gsa(method: Method, declared: ExperimentDeclared, observations: Sequence[Observation],
         opts: RankOptions) -> Analysis:
    design = gsa.design_from_spec(declared.spec)
    result = gsa.analyse_design(design, observations, seed=opts.bootstrap_seed,
                                num_resamples=opts.num_resamples, conf_level=opts.ci_level)
    used_ids = set(result.used_runs)
    used = [o for o in observations if o.run_id in used_ids]
    overall, _ = mean_and_ci([o.score for o in used])
    if method == "morris":
        # Noise is judged on the outputs SALib analysed: per sample row, a mean over its seeds.
        per_row = statistics.fmean(result.seeds_per_row) if result.seeds_per_row else 1.0
        delta = gsa.morris_delta(design)
    candidates = []
    for name in sorted(result.indices):
        idx = result.indices[name]
        values = gsa.level_values(design, used, name, overall)
        effects = [v.effect for v in values] or [0.0]
        p = ParameterResult(name, 0, (min(effects), max(effects)), values)
        if method == "morris":
            verdict = noise.morris_verdict(idx, result.noise, delta, seeds_per_row=per_row)
        else:
            verdict = noise.sobol_verdict(idx, result.noise_variance_fraction)
        candidates.append(Candidate(result=p, statistic=result.statistic(name) or 0.0, noise=verdict,
                                    indices=idx, s2=result.s2.get(name, {})))
    return Analysis(
        method=method, baseline=dict(design.base), baseline_runs=(), baseline_mean=overall,
        candidates=candidates, used_runs=tuple(sorted(result.used_runs)),
        excluded_runs=tuple(sorted(set(result.excluded_runs) | set(result.dropped_runs))),
        notes=tuple(result.notes),
    )


# ----------------------------------------------------------------------- recording


def _record(ctx: Context, experiment: str, benchmark: str, opts: RankOptions, analysis: Analysis,
            direction: Direction, found: Evidence,
            parameters: list[ParameterRanking]) -> RankingOutcome:
    # The newest event among everything the analysis looked at (used or left out): a
    # function of the evidence, not of when it ran, so re-ranking the same evidence yields
    # the identical fact, and events appended since (rankings, other experiments) don't matter.
    as_of = max(p for o in found.observations for p in o.positions)
    used = _used_events(found, analysis.used_runs)
    settings: dict[str, Any] = {
        "baseline_run": opts.baseline_run,
        "ci_level": opts.ci_level,
        "direction": direction,
        "knee_fraction": opts.knee_fraction,
        "num_resamples": opts.num_resamples if analysis.method != "ofat" else None,
        "without": sorted(opts.without),
    }
    draft = RankingDerived(
        ranking_id="-", experiment=experiment, benchmark=benchmark, method=analysis.method,
        settings=settings, direction=direction, bootstrap_seed=opts.bootstrap_seed,
        baseline=analysis.baseline, baseline_runs=list(analysis.baseline_runs),
        baseline_mean=analysis.baseline_mean, code_version=code_version(), as_of=as_of,
        used_events=used, parameters=parameters, excluded_runs=list(analysis.excluded_runs),
    )
    # The id is a hash of the whole content, so one id always names one content: the same
    # evidence ranked by the same code is a duplicate, and anything that changes a number
    # (a run seen but left out, a setting, the code) is a new ranking, never a conflict.
    content = canonical_json(draft.model_dump(mode="json", exclude={"ranking_id"}))
    ranking_id = str(uuid.uuid5(RANKING_NAMESPACE, content))
    ranking = draft.model_copy(update={"ranking_id": ranking_id})
    key = f"ranking:{ranking_id}"
    [appended] = ctx.store().append(
        [NewEvent(event=ranking, event_id=uuid.uuid5(RANKING_NAMESPACE, key), idempotency_key=key)]
    )
    # A duplicate means the store already holds this very content (a different content
    # under the same key would have been refused): the same evidence, the same numbers.
    return RankingOutcome(ranking, appended.position, appended.duplicate,
                          analysis.not_varied_alone, analysis.notes)


def _used_events(found: Evidence, used_runs: Sequence[str]) -> list[UsedEvent]:
    """The RunRecorded and BenchmarkScored events that set the values the analysis used.

    When a run or score was recorded more than once (a corrected import), the latest event
    is the one whose value the graph holds, so it is the one listed.
    """
    cited = [event for run in used_runs for event in (found.cited[run].run, found.cited[run].score)]
    return [UsedEvent(position=position, event_id=event_id) for position, event_id in sorted(cited)]


def _explain_empty(ctx: Context, experiment: str, benchmark: str, as_of: int | None) -> None:
    when = f" up to log position {as_of}" if as_of is not None else ""
    benchmarks = evidence.experiment_benchmarks(ctx, experiment)
    raise NotFound(
        f"experiment {experiment!r} has no scores on benchmark {benchmark!r}{when}; "
        f"its benchmarks: {', '.join(benchmarks) or 'none'}"
    )
