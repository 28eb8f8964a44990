"""`knobs suggest`: a follow-up one-at-a-time experiment spec for a ranking's flagged knobs.

The ranking flags high-leverage parameters that were explored too little (see
services/ranking/analysis/leverage.py). The follow-up answers each flag:

- a flagged parameter whose best value beats the baseline gets that value as its new base;
- best_at_edge: EDGE_STEPS values beyond the edge where the best sits;
- narrow_range: midpoints between the values tried and one step beyond each end;
- few_runs: seeds up to FOLLOWUP_SEEDS (seeds are shared by every run of a spec).

Steps are x2 (or /2) on a log axis for size-like knobs and for multiplicatively spaced values,
else the spacing of the values at that edge. The executor, benchmarks, seeds and the other
factors of the declared spec are kept; a train spec's values are checked against
`TrainingParams` (with the new base, so d_model stays divisible by n_head) and values that
fail are dropped, each with its reason. An imported experiment (no declared spec) gets an
`external` spec: its whole baseline as `base` (an external executor has no defaults) and the
flagged parameters as factors.

When nothing is flagged this refuses (BadInput) and says why, rather than padding a spec
with more seeds of the top knobs: a follow-up without a reason is a guess that the user can
write in one line, and "nothing is under-explored" is itself the answer.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from events.models import TRAINING_KNOBS, Direction, JSONScalar, ParameterRanking, RankingDerived, ValueEffect
from services.core.context import Context
from services.core.errors import BadInput
from services.experiments import knobs
from services.experiments.design import build_design, count_runs, factor_levels
from services.experiments.spec import NAME_RE, ExperimentSpec, FactorSpec, validate_spec
from services.ranking.analysis.direction import direction_for
from services.ranking.analysis.direction import gain as gain_of

FOLLOWUP_SEEDS = 3
EDGE_STEPS = 2
LOG_STEP = 2.0
FLOAT_DIGITS = 3
# Knobs whose values are naturally multiplied, not added to: sizes, counts, rates.
SIZE_LIKE = re.compile(
    r"(^n_|_b$|size|d_model|d_ff|dim|width|depth|layer|head|token|step|param|vocab|people|context|"
    r"rank|batch|^lr$|learning_rate|weight_decay|alpha)",
    re.IGNORECASE,
)
NAME_SUFFIX = "-followup-"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_ANY_RUNS = 10**9  # budget while counting: the real budget is set from the count


@dataclass(frozen=True)
class SuggestedSpec:
    """A follow-up spec: its YAML text (with a header saying why), the reasons, and its size."""

    name: str
    yaml: str
    reasons: list[str]
    spec: dict[str, Any]
    """The spec as written (validated; load_spec gives the same design)."""
    runs: int
    ranking_id: str
    experiment: str
    benchmark: str
    path: Path | None = None

    def public(self) -> dict[str, Any]:
        """The `knobs suggest --json` object."""
        return {
            "name": self.name, "experiment": self.experiment, "benchmark": self.benchmark,
            "ranking_id": self.ranking_id, "runs": self.runs, "reasons": self.reasons,
            "path": str(self.path) if self.path is not None else None, "spec": self.spec,
        }


# --- numbers along one knob -------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: JSONScalar) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def log_axis(name: str, xs: Sequence[float]) -> bool:
    """Step multiplicatively? For positive values of a size-like knob, or values whose ratios
    are more even than their differences (1, 2, 4 rather than 1, 2, 3); two values count as
    multiplicative when at least a factor of LOG_STEP apart."""
    if not xs or min(xs) <= 0:
        return False
    if SIZE_LIKE.search(name):
        return True
    if len(xs) < 2:
        return False
    if len(xs) == 2:
        return xs[1] / xs[0] >= LOG_STEP
    ratios = [b / a for a, b in itertools.pairwise(xs)]
    diffs = [b - a for a, b in itertools.pairwise(xs)]
    return max(ratios) / min(ratios) < max(diffs) / min(diffs)


def _beyond(xs: Sequence[float], up: bool, steps: int, log: bool) -> list[float]:
    edge = xs[-1] if up else xs[0]
    if log:
        return [edge * (LOG_STEP ** k if up else LOG_STEP ** -k) for k in range(1, steps + 1)]
    step = (xs[-1] - xs[-2]) if up else (xs[1] - xs[0])
    return [edge + (k * step if up else -k * step) for k in range(1, steps + 1)]


def _between(xs: Sequence[float], log: bool, integer: bool) -> list[float]:
    # Integers take the arithmetic midpoint even on a log axis: 64..128 gives 96, not 91.
    if log and not integer:
        return [math.sqrt(a * b) for a, b in itertools.pairwise(xs)]
    return [(a + b) / 2 for a, b in itertools.pairwise(xs)]


def _tidy(x: float, integer: bool) -> JSONScalar:
    if integer:
        return math.floor(x + 0.5)
    return float(f"{x:.{FLOAT_DIGITS}g}")


# --- the pieces of the spec -------------------------------------------------------------------


def _best(p: ParameterRanking, direction: Direction) -> ValueEffect | None:
    tried = [v for v in p.values if not v.is_baseline]
    return max(tried, key=lambda v: gain_of(v.effect, direction)) if tried else None


def _best_overall(p: ParameterRanking, direction: Direction) -> ValueEffect | None:
    return max(p.values, key=lambda v: gain_of(v.effect, direction)) if p.values else None


def _same(a: JSONScalar, b: JSONScalar) -> bool:
    return (type(a) is type(b) and a == b) or (_is_number(a) and _is_number(b) and a == b)


@dataclass
class _Builder:
    ranking: RankingDerived
    direction: Direction
    executor: str
    base: dict[str, JSONScalar]
    factors: dict[str, dict[str, Any]]
    seeds: list[int]
    reasons: list[str]

    @property
    def train(self) -> bool:
        return self.executor == "train"

    def problem(self, name: str, value: JSONScalar) -> str | None:
        """Why `name=value` (with the base) is not a valid training run; None when it is."""
        if not self.train:
            return None
        ok, problem = knobs.check_value(name, value)
        if problem is not None or ok is None:
            return problem or f"{value!r} is not a value of {name}"
        _, errors = knobs.resolve({**self.base, name: ok})
        return "; ".join(errors) or None

    def as_knob(self, name: str, value: JSONScalar) -> JSONScalar:
        """A value as the knob takes it: Morris/Sobol bins report means, so an integer knob's
        binned value is rounded to the nearest integer."""
        if (self.train and name in TRAINING_KNOBS and knobs.kind(name) == "int" and isinstance(value, float)
                and math.isfinite(value)):
            return math.floor(value + 0.5)
        return value

    def move_base(self, p: ParameterRanking) -> None:
        best = _best(p, self.direction)
        if best is None:
            return
        # Against the baseline value where there is one (global designs measure effects from the
        # design's mean, and binned values have no baseline).
        ref = next((v for v in p.values if v.is_baseline), None)
        gain = gain_of(best.effect - (ref.effect if ref is not None else 0.0), self.direction)
        if gain <= 0:
            return
        value = self.as_knob(p.name, best.value)
        old = self.base.get(p.name, self.ranking.baseline.get(p.name))
        problem = self.problem(p.name, value)
        if problem is not None:
            self.reasons.append(f"base.{p.name}: kept at {_show(old) if old is not None else 'its default'}; "
                                f"the best value {_show(value)} does not fit the new base: {problem}")
            return
        self.base[p.name] = value
        versus = (f"vs baseline {ref.mean:.4g}" if ref is not None
                  else f"vs the design's mean {self.ranking.baseline_mean:.4g}")
        self.reasons.append(
            f"base.{p.name}: {_show(old) if old is not None else 'default'} -> {_show(value)}, the best "
            f"value observed ({self.ranking.benchmark} {best.mean:.4g} {versus}, a gain of {gain:.4g}; "
            f"{self.direction} is better)")

    def flagged_factor(self, p: ParameterRanking, declared: dict[str, Any] | None) -> None:
        kinds: set[str] = {f.kind for f in p.flags}
        explored: list[JSONScalar] = []
        for v in p.values:
            x = self.as_knob(p.name, v.value)
            if not any(_same(x, e) for e in explored):
                explored.append(x)
        if not explored and declared is not None:
            explored = factor_levels(FactorSpec.model_validate(declared))
        if not explored:
            self.reasons.append(f"factors.{p.name}: no values recorded in the ranking; left out")
            return
        numeric = all(_is_number(x) for x in explored)
        numbers = sorted(float(x) for x in explored) if numeric else []
        added: list[JSONScalar] = []
        if len(numbers) >= 2 and kinds & {"best_at_edge", "narrow_range"}:
            added = self._extend(p, kinds, numbers, explored)
        kept: list[JSONScalar] = []
        for x in [*explored, *added]:
            problem = self.problem(p.name, x)
            if problem is not None:
                self.reasons.append(f"factors.{p.name}: drops {_show(x)}: {problem}")
                continue
            normalised = knobs.check_value(p.name, x)[0] if self.train else x
            x = x if normalised is None else normalised
            if not any(_same(x, k) for k in kept):
                kept.append(x)
        if not kept:
            self.reasons.append(f"factors.{p.name}: left out: none of its values fits the new base")
            return
        if numeric:
            kept.sort(key=float)
        if not self.train and p.name not in self.base and p.name in self.ranking.baseline:
            self.base[p.name] = self.ranking.baseline[p.name]  # an external executor has no defaults
        self.factors[p.name] = {"values": kept}

    def _extend(self, p: ParameterRanking, kinds: set[str], xs: list[float],
                explored: list[JSONScalar]) -> list[JSONScalar]:
        integer = (knobs.kind(p.name) == "int" if self.train and p.name in TRAINING_KNOBS
                   else all(isinstance(x, int) for x in explored))
        log = log_axis(p.name, xs)
        axis = f"x{LOG_STEP:g} per step on a log axis" if log else "the spacing at that end"
        wanted: list[tuple[float, str]] = []
        if "best_at_edge" in kinds:
            best = _best_overall(p, self.direction)
            at = self.as_knob(p.name, best.value) if best is not None else None
            if at is not None and _is_number(at) and float(at) in (xs[0], xs[-1]):
                up = float(at) == xs[-1]
                where = "largest" if up else "smallest"
                why = f"best at the {where} value tried, {_show(at)}: {EDGE_STEPS} steps beyond ({axis})"
                wanted += [(x, why) for x in _beyond(xs, up, EDGE_STEPS, log)]
        if "narrow_range" in kinds:
            why = f"narrow range {xs[0]:.4g}..{xs[-1]:.4g}: midpoints and one step beyond each end ({axis})"
            wanted += [(x, why) for x in _between(xs, log, integer)]
            wanted += [(x, why) for up in (False, True) for x in _beyond(xs, up, 1, log)]
        added: list[JSONScalar] = []
        by_reason: dict[str, list[JSONScalar]] = {}
        for x, why in wanted:
            value = _tidy(x, integer)
            assert not isinstance(value, bool | str)
            if (xs[0] > 0 and value <= 0) or (xs[0] >= 0 and value < 0):
                self.reasons.append(f"factors.{p.name}: {_show(value)} left out: every value tried was "
                                    f"{'positive' if xs[0] > 0 else 'non-negative'}")
                continue
            if any(_same(value, e) or value == e for e in [*explored, *added]):
                continue
            added.append(value)
            by_reason.setdefault(why, []).append(value)
        for why in dict.fromkeys(why for _, why in wanted):
            vs = by_reason.get(why)
            if vs:
                self.reasons.append(f"factors.{p.name}: adds {', '.join(_show(v) for v in vs)} ({why})")
            else:
                self.reasons.append(f"factors.{p.name}: nothing new to add ({why}: every such value is "
                                    "already listed or left out)")
        return added

    def check_kept_factor(self, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """A declared, unflagged factor against the new base; values that no longer fit are dropped."""
        if not self.train or name not in TRAINING_KNOBS:
            return body
        values = factor_levels(FactorSpec.model_validate(body))
        bad = [(v, self.problem(name, v)) for v in values]
        bad = [(v, why) for v, why in bad if why is not None]
        if not bad:
            return body
        for v, why in bad:
            self.reasons.append(f"factors.{name}: drops {_show(v)} (does not fit the new base: {why})")
        kept = [v for v in values if all(not _same(v, b) for b, _ in bad)]
        return {"values": kept} if kept else None

    def add_seeds(self, flagged: Sequence[ParameterRanking]) -> None:
        few = [p.name for p in flagged if any(f.kind == "few_runs" for f in p.flags)]
        if not few:
            return
        if len(self.seeds) >= FOLLOWUP_SEEDS:
            self.reasons.append(f"seeds: kept at {self.seeds}: few_runs flagged for {', '.join(few)}, and "
                                f"the follow-up's runs add to those already made")
            return
        before = list(self.seeds)
        candidate = 0
        while len(self.seeds) < FOLLOWUP_SEEDS:
            if candidate not in self.seeds:
                self.seeds.append(candidate)
            candidate += 1
        self.reasons.append(f"seeds: {before} -> {self.seeds} (few_runs flagged for {', '.join(few)})")


# --- the spec -------------------------------------------------------------------------------


def followup_name(experiment: str, ranking_id: str) -> str:
    """`<experiment>-followup-<8 hex of the ranking id>`, made a valid spec name."""
    digest = hashlib.sha256(ranking_id.encode("utf-8")).hexdigest()[:8]
    stem = _UNSAFE_NAME.sub("-", experiment).lstrip("._-") or "experiment"
    stem = stem[: 100 - len(NAME_SUFFIX) - len(digest)]
    name = f"{stem}{NAME_SUFFIX}{digest}"
    assert NAME_RE.match(name), name
    return name


def nothing_flagged(ranking: RankingDerived) -> str:
    """Why no parameter of `ranking` is flagged, in words, and what to do instead."""
    head = (f"no parameter of ranking {ranking.ranking_id} ({ranking.experiment} on {ranking.benchmark}) is "
            "flagged as under-used, so there is nothing for a follow-up to explore")
    params = ranking.parameters
    if not params:
        return f"{head}: the ranking has no parameters varied one at a time"
    if all(p.statistic is None and p.noise is None and not p.per_cost for p in params):
        return (f"{head}: the ranking carries no leverage analysis (no statistic, noise verdict or cost "
                "efficiency was computed for it, so no flags either); rank again with a version of knobs "
                "that computes them")
    noisy = [p.name for p in params if p.noise is not None and p.noise.label == "indistinguishable"]
    top = ", ".join(
        f"{p.name} ({len(p.values)} values, {sum(v.n for v in p.values if not v.is_baseline)} runs)"
        for p in params[:3])
    noise = f"; indistinguishable from noise: {', '.join(noisy)}" if noisy else ""
    return (f"{head}: no parameter ({len(params)} ranked) is both high-leverage (top third by effect "
            "or effect per cost, distinguishable from noise) and under-explored (narrow range, few runs, "
            f"best value at an edge, or baseline far from the best){noise}. Top parameters: {top}. "
            "To confirm them, re-run the experiment with more seeds")


def suggest_spec(
    ranking: RankingDerived,
    declared_spec: dict[str, Any] | None,
    *,
    max_runs: int | None = None,
    benchmarks: Sequence[str] | None = None,
) -> SuggestedSpec:
    """The follow-up ofat spec for the flagged parameters of `ranking`; BadInput when none is.

    `declared_spec` is the experiment's declared spec (ExperimentDeclared.spec), None for an
    imported experiment; `benchmarks` (imported only) defaults to the ranking's benchmark;
    `max_runs` caps the design, dropping unflagged factors (lowest ranked first), then extra
    seeds, before refusing.
    """
    flagged = [p for p in ranking.parameters if p.flags]
    if not flagged:
        raise BadInput(nothing_flagged(ranking))
    direction = ranking.direction or direction_for(ranking.benchmark)
    declared = declared_spec or {}
    executor = str(declared.get("executor", "external"))
    if declared:
        base = dict(declared.get("base") or {})
    else:
        base = {k: v for k, v in ranking.baseline.items() if _is_number(v) or isinstance(v, str | bool)}
    declared_factors: dict[str, dict[str, Any]] = dict(declared.get("factors") or {})
    declared_seeds = [int(s) for s in declared.get("seeds") or [0]]
    reasons = [f"{p.name}: {f.kind}: {f.reason}" for p in flagged for f in p.flags]
    b = _Builder(ranking, direction, executor, base, {}, list(declared_seeds), [])

    usable = []
    for p in flagged:
        if b.train and p.name not in TRAINING_KNOBS:
            b.reasons.append(f"{p.name}: not a training knob, so a train follow-up cannot vary it; left out")
        else:
            usable.append(p)
    if not usable:
        names = ", ".join(p.name for p in flagged)
        raise BadInput(f"the flagged parameters ({names}) are not training knobs; a train follow-up "
                       "cannot vary them")
    for p in usable:
        b.move_base(p)
    flagged_names = {p.name for p in usable}
    for name, body in declared_factors.items():
        if name in flagged_names:
            continue
        kept = b.check_kept_factor(name, body)
        if kept is not None:
            b.factors[name] = kept
    for p in usable:
        b.flagged_factor(p, declared_factors.get(p.name))
    b.add_seeds(usable)
    if not b.factors:
        raise BadInput("no factor is left to vary in the follow-up of ranking "
                       f"{ranking.ranking_id}: " + "; ".join(b.reasons))
    if not declared:
        bench = list(benchmarks or [ranking.benchmark])
    else:
        bench = list(declared.get("benchmarks") or [ranking.benchmark])
    name = followup_name(ranking.experiment, ranking.ranking_id)
    design = {"method": "ofat", "seed": int((declared.get("design") or {}).get("seed", 0))}
    raw: dict[str, Any] = {
        "name": name,
        "description": (f"Follow-up of {ranking.experiment} suggested by `knobs suggest` from ranking "
                        f"{ranking.ranking_id} on {ranking.benchmark}"),
        "executor": executor,
        "design": design,
        "base": b.base,
        "factors": _ordered(b.factors, ranking, flagged_names),
        "seeds": b.seeds,
        "benchmarks": bench,
        "budget": {"max_runs": _ANY_RUNS},
    }
    spec = _validated(raw)
    runs = count_runs(spec)
    if max_runs is not None and runs > max_runs:
        raw, runs = _trim(raw, ranking, flagged_names, declared_seeds, max_runs, b.reasons)
    raw["budget"] = {"max_runs": max_runs if max_runs is not None else runs}
    spec = _validated(raw)
    try:
        build_design(spec, source="the suggested spec")
    except BadInput as exc:
        raise BadInput(f"knobs suggest made a spec whose runs are not all valid (please report this): "
                       f"{exc}") from exc
    reasons = list(dict.fromkeys([*reasons, *b.reasons]))
    text = render(raw, ranking, direction, reasons)
    again = validate_spec(yaml.safe_load(text), source="the suggested spec as written")
    assert again.sha256() == spec.sha256(), "the YAML text must give the validated spec back"
    return SuggestedSpec(name=name, yaml=text, reasons=reasons, spec=raw, runs=runs,
                         ranking_id=ranking.ranking_id, experiment=ranking.experiment,
                         benchmark=ranking.benchmark)


def _validated(raw: dict[str, Any]) -> ExperimentSpec:
    try:
        return validate_spec(raw, source="the suggested spec")
    except BadInput as exc:
        raise BadInput(f"knobs suggest made a spec that does not validate (please report this): "
                       f"{exc}") from exc


def _ordered(factors: dict[str, dict[str, Any]], ranking: RankingDerived,
             flagged: set[str]) -> dict[str, dict[str, Any]]:
    """Flagged factors first in rank order, then the others as declared."""
    rank = {p.name: p.rank for p in ranking.parameters}
    first = sorted((n for n in factors if n in flagged), key=lambda n: rank.get(n, 0))
    return {n: factors[n] for n in [*first, *(n for n in factors if n not in flagged)]}


def _trim(raw: dict[str, Any], ranking: RankingDerived, flagged: set[str], declared_seeds: list[int],
          max_runs: int, reasons: list[str]) -> tuple[dict[str, Any], int]:
    """Shrink the design under `max_runs`: drop unflagged factors (unranked, then lowest ranked
    first), then seeds back to the declared ones; BadInput when even that is too many."""
    rank = {p.name: p.rank for p in ranking.parameters}
    raw = {**raw, "factors": dict(raw["factors"])}
    runs = count_runs(_validated(raw))
    droppable = sorted((n for n in raw["factors"] if n not in flagged), key=lambda n: -rank.get(n, 10**9))
    for name in droppable:
        if runs <= max_runs:
            break
        del raw["factors"][name]
        runs = count_runs(_validated(raw))
        reasons.append(f"factors.{name}: left out (not flagged) to stay within --max-runs {max_runs}")
    if runs > max_runs and len(raw["seeds"]) > len(declared_seeds):
        raw["seeds"] = list(declared_seeds)
        runs = count_runs(_validated(raw))
        reasons.append(f"seeds: back to {declared_seeds} to stay within --max-runs {max_runs}")
    if runs > max_runs:
        raise BadInput(f"the follow-up of the flagged parameters ({', '.join(sorted(flagged))}) needs "
                       f"{runs} runs, more than --max-runs {max_runs}; raise --max-runs")
    return raw, runs


# --- YAML -------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Quotes strings the spec loader would read as numbers (`1e-4` is a float in YAML 1.2)."""


class _Flow(dict[str, Any]):
    """A mapping written on one line, as specs write factors: `lr: {values: [0.001, 0.003]}`."""


_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_Dumper.add_representer(
    _Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", list(data.items()), flow_style=True)
)


def render(raw: dict[str, Any], ranking: RankingDerived, direction: Direction, reasons: list[str]) -> str:
    """The spec as YAML under a comment header naming the ranking and every reason."""
    then = ("run it with `knobs experiment run FILE`" if raw["executor"] == "train" else
            "write its run table with `knobs experiment export-design FILE --out runs.csv`")
    header = [
        f"# Follow-up of experiment {ranking.experiment}, written by `knobs suggest`.",
        f"# From ranking {ranking.ranking_id}: {ranking.method} on {ranking.benchmark} "
        f"({direction} is better), evidence up to log position {ranking.as_of}.",
        f"# `knobs audit {ranking.ranking_id}` shows the events it was derived from.",
        "# Why:",
        *(f"#   - {' '.join(r.split())}" for r in reasons),
        f"# Check it with `knobs experiment plan FILE`, then {then}.",
    ]
    doc = {**raw, "factors": {n: _Flow(body) for n, body in raw["factors"].items()}}
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=110,
                     allow_unicode=True)
    return "\n".join(header) + "\n" + body


# --- the command ------------------------------------------------------------------------------


def suggest(
    ctx: Context,
    experiment: str,
    benchmark: str | None,
    out: Path | None,
    *,
    force: bool = False,
    max_runs: int | None = None,
) -> SuggestedSpec:
    """Rank `experiment` on `benchmark` (recorded as usual), build the follow-up and write it to
    `out` (a file, or a folder for `<name>.yaml`; default `<name>.yaml` in the current folder)."""
    from services.experiments.service import declared_experiment
    from services.ranking.evidence import experiment_benchmarks
    from services.ranking.rank import rank

    scored = experiment_benchmarks(ctx, experiment)
    if benchmark is None:
        if not scored:
            raise BadInput(f"experiment {experiment!r} has no scores yet; nothing to rank or follow up")
        if len(scored) > 1:
            raise BadInput(f"experiment {experiment!r} has {len(scored)} benchmarks; say which to follow up "
                           f"with --benchmark: {', '.join(scored)}")
        benchmark = scored[0]
    outcome = rank(ctx, experiment, benchmark)
    declared = declared_experiment(ctx, experiment)
    suggested = suggest_spec(outcome.ranking, declared.spec if declared is not None else None,
                             max_runs=max_runs, benchmarks=scored or None)
    return write_spec(suggested, out if out is not None else Path.cwd(), force=force)


def write_spec(suggested: SuggestedSpec, out: Path, *, force: bool = False) -> SuggestedSpec:
    """Write the spec to `out` (a file, or a folder for `<name>.yaml`); refuse to overwrite."""
    path = out / f"{suggested.name}.yaml" if out.is_dir() else out
    if path.exists() and not force:
        raise BadInput(f"{path} exists; pass --force to overwrite it, or --out another file")
    try:
        path.write_text(suggested.yaml, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from exc
    return replace(suggested, path=path)
