"""Plan, declare and export experiments: the service functions behind `knobs experiment`.

`declare` appends one atomic batch: the ExperimentDeclared fact and one RunRequested per run,
with ids and idempotency keys derived from their content (as the results importer does), so
declaring the same spec twice stores nothing new. A declared experiment never changes: a
different spec under a stored name is refused. `export_design` writes the run table an
external executor fills in and `knobs import results --experiment NAME` reads back; the
imported facts land in the same `run:<experiment>/<run_id>` streams as the requests.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.errors import ConcurrencyConflict
from events.models import ExperimentDeclared, JSONScalar, RunRequested
from events.models.experiments import run_stream
from events.store import NewEvent
from events.store.identity import new_event
from services.core.context import Context
from services.core.errors import BadInput, Conflict
from services.experiments.cost import (
    DEFAULT_FLOPS_PER_SECOND,
    CostEstimate,
    CostTotals,
    estimate,
    measured_rate,
    totals,
)
from services.experiments.design import Design, PlannedRun, build_design
from services.experiments.spec import ExperimentSpec, load_spec


def experiment_stream(name: str) -> str:
    return f"experiment:{name}"


@dataclass(frozen=True)
class Plan:
    """A validated spec, its runs and their estimated costs (aligned with `runs`)."""

    source: str
    spec: ExperimentSpec
    spec_sha256: str
    design: Design
    costs: list[CostEstimate]
    totals: CostTotals

    @property
    def runs(self) -> list[PlannedRun]:
        return self.design.runs

    def public(self) -> dict[str, Any]:
        return {
            "experiment": self.spec.name,
            "executor": self.spec.executor,
            "method": self.spec.design.method,
            "spec_sha256": self.spec_sha256,
            "spec": self.spec.canonical(),
            "runs": [
                {"run_id": r.run_id, "seed": r.seed, "varied": list(r.varied), "params": r.params,
                 "row": r.row, "estimated_cost": c.as_event() or "unknown"}
                for r, c in zip(self.runs, self.costs, strict=True)
            ],
            "estimated_totals": self.totals.as_event() or "unknown",
            "salib_problem": self.design.problem,
        }


@dataclass(frozen=True)
class Declared:
    experiment: str
    spec_sha256: str
    runs: int
    new_events: int
    already_stored: int
    first_position: int | None
    last_position: int | None


@dataclass(frozen=True)
class Exported:
    experiment: str
    csv_path: Path
    runs: int
    columns: list[str]
    salib_path: Path | None


def plan(spec_path: Path, flops_per_second: float = DEFAULT_FLOPS_PER_SECOND) -> Plan:
    """Validate a spec file, build its design and estimate each run's cost. Appends nothing."""
    if flops_per_second <= 0:
        raise BadInput(f"--flops-per-second must be positive, got {flops_per_second:g}")
    return plan_spec(load_spec(spec_path), str(spec_path), flops_per_second)


def plan_spec(spec: ExperimentSpec, source: str,
              flops_per_second: float = DEFAULT_FLOPS_PER_SECOND) -> Plan:
    """`plan` for a spec validated elsewhere (a repetition spec compiles into one)."""
    design = build_design(spec, source=source)
    costs = [estimate(spec.executor, r.params, flops_per_second) for r in design.runs]
    return Plan(source, spec, spec.sha256(), design, costs, totals(costs))


def declaration_events(p: Plan) -> list[NewEvent]:
    """The batch `declare` appends: ExperimentDeclared, then one RunRequested per run."""
    spec = p.spec
    declared = ExperimentDeclared(
        name=spec.name, executor=spec.executor, design=spec.design.method, spec=spec.canonical(),
        spec_sha256=p.spec_sha256, run_ids=[r.run_id for r in p.runs], benchmarks=spec.benchmarks,
        estimated_cost=p.totals.as_event(),
    )
    out = [new_event(declared, f"experiment:{spec.name}")]
    for run, cost in zip(p.runs, p.costs, strict=True):
        out.append(new_event(RunRequested(
            experiment=spec.name, run_id=run.run_id, executor=spec.executor, params=run.params,
            varied=list(run.varied), seed=run.seed, benchmarks=spec.benchmarks,
            estimated_cost=cost.as_event(),
        ), f"experiment:{spec.name}:{run.run_id}"))
    return out


def declared_experiment(ctx: Context, name: str) -> ExperimentDeclared | None:
    """The stored declaration of an experiment, if there is one."""
    for stored in ctx.store().read_stream(experiment_stream(name)):
        if stored.event_type == "ExperimentDeclared":
            event = stored.decode()
            assert isinstance(event, ExperimentDeclared)
            return event
    return None


def requested_runs(ctx: Context, name: str) -> list[RunRequested]:
    """The RunRequested facts of a declared experiment, in the declaration's run order."""
    declared = declared_experiment(ctx, name)
    if declared is None:
        return []
    out = []
    for run_id in declared.run_ids:
        for stored in ctx.store().read_stream(run_stream(name, run_id)):
            if stored.event_type == "RunRequested":
                event = stored.decode()
                assert isinstance(event, RunRequested)
                out.append(event)
                break
    return out


def declare(ctx: Context, spec_path: Path,
            flops_per_second: float = DEFAULT_FLOPS_PER_SECOND) -> Declared:
    """Append the experiment and its run requests as one batch; a repeat stores nothing."""
    return declare_plan(ctx, plan(spec_path, flops_per_second))


def declare_plan(ctx: Context, p: Plan) -> Declared:
    """`declare` for a plan made from a spec object."""
    store = ctx.store()
    stream = experiment_stream(p.spec.name)
    for _attempt in range(2):
        version = store.stream_version(stream)
        existing = declared_experiment(ctx, p.spec.name)
        if existing is not None:
            _refuse_if_changed(existing, p)
            # Same spec: already declared in one batch, all of it. Not appending again also
            # keeps a changed cost estimate (another --flops-per-second) from adding facts.
            stored = len(existing.run_ids)
            return Declared(p.spec.name, p.spec_sha256, stored, 0, stored + 1, None, None)
        try:
            # The expected version makes two concurrent first declarations of one name safe.
            appended = store.append(declaration_events(p), expected_versions={stream: version})
        except ConcurrencyConflict:
            continue  # someone declared it meanwhile: look again
        new = [a.position for a in appended if not a.duplicate]
        return Declared(p.spec.name, p.spec_sha256, len(p.runs), len(new), len(appended) - len(new),
                        min(new) if new else None, max(new) if new else None)
    raise Conflict(f"{stream} kept changing while declaring it; try again")


def _refuse_if_changed(existing: ExperimentDeclared, p: Plan) -> None:
    if existing.spec_sha256 == p.spec_sha256:
        return
    changed = sorted(k for k in set(existing.spec) | set(p.spec.canonical())
                     if existing.spec.get(k) != p.spec.canonical().get(k))
    raise Conflict(
        f"experiment {p.spec.name!r} is already declared with a different spec "
        f"(stored sha256 {existing.spec_sha256[:12]}…, this one {p.spec_sha256[:12]}…; "
        f"differs in: {', '.join(changed)}). A declared experiment never changes: give this "
        f"spec a new name (e.g. name: {p.spec.name}-v2) and declare that"
    )


def _cell(value: JSONScalar | None) -> str:
    # The importer reads true/false as booleans and numbers as int or float, so the exported
    # cells come back with their types. A knob left at its default (None) has no scalar
    # form; "none" keeps the cell non-empty, which the importer requires.
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def export_design(spec_path: Path, out_csv: Path, salib_json: Path | None = None) -> Exported:
    """Write the run table (`run,seed,param.<name>...`) and, for Morris/Sobol, the SALib data.

    The CSV is what an external executor runs from; adding `score.<benchmark>` columns turns
    it into a results file for `knobs import results FILE --experiment NAME`. The JSON holds
    SALib's problem, the unit-hypercube sample `X` (one row per point, see `points`) and how
    each column maps to a factor; `salib_json` defaults to `<out>.salib.json` beside the CSV.
    """
    p = plan(spec_path)
    salib = p.design.salib()
    if salib is None and salib_json is not None:
        raise BadInput(f"{spec_path}: a {p.spec.design.method} design has no SALib problem; "
                       "leave out the SALib output (only morris and sobol designs have one)")
    names: list[str] = []
    for run in p.runs:
        names.extend(n for n in run.params if n not in names)
    columns = ["run", "seed", *(f"param.{n}" for n in names)]
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for run in p.runs:
            writer.writerow([run.run_id, run.seed, *(_cell(run.params.get(n)) for n in names)])
    written: Path | None = None
    if salib is not None:
        written = salib_json or out_csv.with_suffix(".salib.json")
        salib["spec_sha256"] = p.spec_sha256
        written.write_text(json.dumps(salib, indent=1) + "\n", encoding="utf-8")
    return Exported(p.spec.name, out_csv, len(p.runs), columns, written)


def calibrated_rate(ctx: Context) -> tuple[float, str]:
    """The FLOP rate to plan with: measured on this log's finished runs when there are any
    (calibrated, not guessed), else the CPU default; with a line saying which."""
    completed = ctx.store().read_all(types=["RunCompleted"])
    found = measured_rate(e.data.get("costs", {}) for e in completed)
    if found is None:
        return DEFAULT_FLOPS_PER_SECOND, (f"rate: the default {DEFAULT_FLOPS_PER_SECOND:.3g} FLOP/s "
                                          "(no finished runs in this log to calibrate from)")
    rate, n = found
    return rate, f"rate: {rate:.3g} FLOP/s, the median measured over {n} finished run(s) in this log"
