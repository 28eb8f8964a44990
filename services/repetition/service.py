"""From a repetition spec to a declared experiment: distil the rewrites, then declare the grid.

The rewrites are a distillation like any other (`knobs distill show` shows it): the
biographies' facts (or the spec's own question-answer pairs, or the cloze items of its text)
through the spec's lenses, by the template engine (no model; biographies only) or a real LLM. A
pairs or text source is read here first, through the workers' `qa_pairs` executor, so that a bad
file is refused before anything is logged and its pair set's sha256 goes into every run's
parameters. A text source's rewrites are of its passages, so its lenses must show the passage
(`{context}` in their template).
Its id becomes every run's `cloud` knob, so a student's data traces back to the distillates it
read. Asking again finds both the distillation and the declaration in the log.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from events.models.distillation import DistillationCompleted, PairSet, QAPair, distill_stream
from services.core.context import Context
from services.core.errors import BadInput
from services.distillation.lenses import LoadedLens, load_lenses, select_lenses
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
    pair_set: PairSet | None = None  # a pairs source: what was read


def pair_source(spec: RepetitionSpec) -> str:
    """The pair source: the spec's JSONL, the cloze items of its text (`cloze:PATH`), or the world the
    trainer renders (its data seed is 0, as here)."""
    return spec.own_source or f"biographies:people={spec.source.n_people},seed=0"


def read_pairs(spec: RepetitionSpec) -> tuple[PairSet, list[QAPair]]:
    """The source's pairs, checked for what the experiment needs: known answers, and a QA group and a
    held-out rest both non-empty."""
    pair_set, pairs = load_pairs(pair_source(spec))
    if not spec.on_pairs:
        return pair_set, pairs
    where = f"source.text {spec.source.text}" if spec.on_text else f"source.pairs {spec.source.pairs}"
    if not spec.on_text and pair_set.kind != "jsonl":
        raise BadInput(f"{where}: a pairs source is a JSONL of question-answer pairs, not {pair_set.kind}")
    unknown = [p.id for p in pairs if not p.known_answer]
    if unknown:
        raise BadInput(f"{where}: pair {unknown[0]!r} (and {len(unknown) - 1} more) has known_answer: false; "
                       "extraction is scored against known answers: drop those pairs or give them answers")
    n_qa = round(spec.source.qa_fraction * len(pairs))
    if not 1 <= n_qa <= len(pairs) - 1:
        raise BadInput(f"{where}: {len(pairs)} pair(s) with qa_fraction {spec.source.qa_fraction} leave "
                       f"{n_qa} in the QA group and {len(pairs) - n_qa} held out; both need at least one "
                       "(give more pairs)")
    return pair_set, pairs


def distil(ctx: Context, spec: RepetitionSpec, endpoint: Endpoint | None,
           source: tuple[PairSet, list[QAPair]] | None = None) -> tuple[str, int]:
    """Distil (or find) the rewrites the spec's lens conditions need; the id and its size."""
    pair_set, pairs = source or read_pairs(spec)
    lenses = select_lenses(",".join(spec.distill.lenses), load_lenses())
    if spec.on_text:
        blind = passage_blind(lenses)
        if blind:
            showing = sorted(name for name, lens in load_lenses().items() if not passage_blind([lens]))
            raise BadInput(f"distill.lenses: {', '.join(blind)} never see the passage (no {{context}} in "
                           "the template), so they would rewrite one sentence, not the passage; a text "
                           f"source needs lenses that show it: {', '.join(showing)}")
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


def passage_blind(lenses: list[LoadedLens]) -> list[str]:
    """The lenses whose template does not show `{context}` (a text source's passage)."""
    return [loaded.lens.name for loaded in lenses
            if "context" not in {f for _, f, _, _ in string.Formatter().parse(loaded.lens.template) if f}]


def completed(ctx: Context, distillation: str) -> bool:
    return any(e.event_type == DistillationCompleted.event_type
               for e in ctx.store().read_stream(distill_stream(distillation)))


def prepare(ctx: Context, path: Path, endpoint: Endpoint | None = None) -> Prepared:
    """Validate the spec, distil its rewrites, declare its runs (all idempotent)."""
    spec = load(path)
    source = read_pairs(spec) if spec.on_pairs else None
    distillation, distillates = distil(ctx, spec, endpoint, source) if spec.needs_cloud else (None, 0)
    rate, _ = calibrated_rate(ctx)
    pair_set = source[0] if source else None
    p = plan_spec(experiment_spec(spec, distillation, str(path), pair_set.sha256 if pair_set else None),
                  str(path), rate)
    return Prepared(spec, p, declare_plan(ctx, p), distillation, distillates, pair_set)
