"""From a repetition spec to a declared experiment: distil the rewrites, then declare the grid.

The rewrites are a distillation like any other (`knobs distill show` shows it): the
biographies' facts through the spec's lenses, by the template engine (no model) or a real LLM.
Its id becomes every run's `cloud` knob, so a student's data traces back to the distillates it
read. Asking again finds both the distillation and the declaration in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from events.models.distillation import DistillationCompleted, distill_stream
from services.core.context import Context
from services.core.errors import BadInput
from services.distillation.lenses import load_lenses, select_lenses
from services.distillation.request import Endpoint, load_pairs, request, run
from services.experiments.service import Declared, Plan, calibrated_rate, declare_plan, plan_spec
from services.repetition.spec import RepetitionSpec, experiment_spec, load


@dataclass(frozen=True)
class Prepared:
    spec: RepetitionSpec
    plan: Plan
    declared: Declared
    distillation: str | None  # None when every condition is verbatim
    distillates: int


def biographies_source(spec: RepetitionSpec) -> str:
    """The pair source of the world the trainer renders (its data seed is 0, as here)."""
    return f"biographies:people={spec.source.people},seed=0"


def distil(ctx: Context, spec: RepetitionSpec, endpoint: Endpoint | None) -> tuple[str, int]:
    """Distil (or find) the rewrites the spec's lens conditions need; the id and its size."""
    pair_set, pairs = load_pairs(biographies_source(spec))
    lenses = select_lenses(",".join(spec.distill.lenses), load_lenses())
    if spec.distill.engine == "llm" and endpoint is None:
        raise BadInput("distill.engine llm needs a server: start the local one (`knobs services up --llm`) "
                       "or set distill.base_url and distill.model")
    asked = request(ctx.store(), pair_set, pairs, lenses, samples=spec.samples(), engine=spec.distill.engine,
                    endpoint=endpoint if spec.distill.engine == "llm" else None)
    distillation = asked.request.distillation_id
    if not completed(ctx, distillation):
        run(distillation, base_url=endpoint.base_url if endpoint else "")
    if not completed(ctx, distillation):
        raise BadInput(f"distillation {distillation} did not finish (`knobs distill show {distillation}`); "
                       "run the same command again to resume it")
    return distillation, len(pairs) * len(lenses) * spec.samples()


def completed(ctx: Context, distillation: str) -> bool:
    return any(e.event_type == DistillationCompleted.event_type
               for e in ctx.store().read_stream(distill_stream(distillation)))


def prepare(ctx: Context, path: Path, endpoint: Endpoint | None = None) -> Prepared:
    """Validate the spec, distil its rewrites, declare its runs (all idempotent)."""
    spec = load(path)
    distillation, distillates = distil(ctx, spec, endpoint) if spec.needs_cloud else (None, 0)
    rate, _ = calibrated_rate(ctx)
    p = plan_spec(experiment_spec(spec, distillation, str(path)), str(path), rate)
    return Prepared(spec, p, declare_plan(ctx, p), distillation, distillates)
