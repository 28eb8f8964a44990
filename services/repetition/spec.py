"""The repetition experiment's spec (`kind: repetition`): does rewriting beat repeating?

A repetition spec names the knowledge (a biographies world), the conditions (`verbatim`: the
same biography K times; `lenses`: K different rewrites; `mix`: half and half), the K values,
the protocols (Physics of LM 3.1's `pretrain_finetune`, and `mixed` training), the token
budget rule, the lenses and their engine, the student, the seeds and the benchmarks. It
compiles into an ordinary `train` experiment (a grid over condition x K x protocol), so every
student is a run whose parameters include `condition` and `K`, and ranking, the matrix, knees,
effect per FLOP and the audit apply unchanged.

The budget rule decides what "the same effort" means, and the report states it:
- `exposures` (default): every run reads its corpus `epochs` times, so a person's facts are
  read K x epochs times whatever the condition: verbatim x K and lenses x K see the same facts
  equally often and the same number of tokens; only the wording differs. Tokens grow with K.
- `tokens`: every run trains on `train_tokens` tokens, whatever K: a larger K spreads the same
  budget over more distinct texts (for verbatim, K changes nothing but the order).
Lens variants are shuffled across epochs: each epoch visits the documents in a fresh order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.models import TRAINING_BENCHMARKS, TRAINING_KNOBS
from events.models.training import Condition, Protocol
from services.core.errors import BadInput
from services.experiments.spec import ExperimentSpec, read_yaml, validate_spec

KIND = "repetition"
DEMO_SPEC = Path(__file__).resolve().parents[1] / "data" / "demo-repetition.yaml"
DEFAULT_BENCHMARKS = (
    "qa_exact_match", "qa_answer_loss", "qa_f1", "qa_choice_accuracy", "qa_paraphrase_choice_accuracy",
    "reversal_choice_accuracy", "two_hop_choice_accuracy", "distractor_exact_match", "probe_accuracy",
    "qa_exact_match_seen",
)
# Knobs the experiment owns: a student setting them would contradict the design.
OWNED = ("condition", "K", "cloud", "protocol", "epochs", "train_tokens", "n_people", "qa_fraction",
         "repetitions", "corpus", "format")
# A rewrite of a person joins one distillate per fact (workers/cloud.py); a lens that rewrites
# the whole biography for every fact would repeat each fact six times in one rewrite.
WHOLE_BIOGRAPHY_LENSES = ("template-bio",)


DEFAULT_CONDITIONS: tuple[Condition, ...] = ("verbatim", "lenses")
DEFAULT_PROTOCOLS: tuple[Protocol, ...] = ("pretrain_finetune",)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceSpec(_Frozen):
    """The knowledge: a biographies world (the people, their six facts, the held-out half)."""

    biographies: bool = True
    people: int = Field(default=40, ge=4, le=100_000)
    qa_fraction: float = Field(default=0.5, gt=0.0, lt=1.0,
                               description="the QA group (fine-tuned on); the rest is held out")


class BudgetSpec(_Frozen):
    rule: Literal["exposures", "tokens"] = "exposures"
    epochs: float | None = Field(default=None, gt=0, le=10_000,
                                 description="exposures: passes over the corpus")
    train_tokens: int | None = Field(default=None, ge=1_000, description="tokens: per run")
    finetune_tokens: int | None = Field(default=None, ge=1_000,
                                        description="pretrain_finetune: the QA fine-tune's tokens")


class DistillSpec(_Frozen):
    engine: Literal["template", "llm"] = "template"
    lenses: list[str] = Field(default_factory=lambda: ["template-fact"], min_length=1)
    model: str | None = Field(default=None, description="llm: the model (default: the local LLM's)")
    base_url: str | None = Field(default=None, description="llm: the server (default: the local LLM)")


class RepetitionSpec(_Frozen):
    kind: Literal["repetition"]
    name: str
    description: str = ""
    source: SourceSpec = SourceSpec()
    conditions: list[Condition] = Field(default_factory=lambda: list(DEFAULT_CONDITIONS), min_length=1)
    K: list[int] = Field(default_factory=lambda: [1, 2, 4], min_length=1)
    protocols: list[Protocol] = Field(default_factory=lambda: list(DEFAULT_PROTOCOLS), min_length=1)
    budget: BudgetSpec = BudgetSpec()
    distill: DistillSpec = DistillSpec()
    student: dict[str, Any] = Field(default_factory=dict, description="training knobs, fixed for every run")
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    benchmarks: list[str] | None = None
    max_runs: int = Field(default=200, ge=1)

    @property
    def needs_cloud(self) -> bool:
        return any(c != "verbatim" for c in self.conditions)

    def samples(self) -> int:
        """Samples per (pair, lens) so every person has the rewrites the largest K needs."""
        need = max(self.K) if "lenses" in self.conditions else max(self.K) // 2
        return max(1, math.ceil(need / len(self.distill.lenses)))


def is_repetition(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("kind") == KIND


def parse(raw: Any, source: str) -> RepetitionSpec:
    """Validate a parsed `kind: repetition` document; BadInput lists every problem."""
    try:
        spec = RepetitionSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()]
        raise BadInput(f"{source}: {len(problems)} problem(s) in the repetition spec:\n  "
                       + "\n  ".join(problems)) from exc
    problems = []
    for field, values in (("conditions", spec.conditions), ("K", spec.K), ("protocols", spec.protocols),
                          ("seeds", spec.seeds), ("distill.lenses", spec.distill.lenses)):
        dupes = sorted({str(v) for v in values if values.count(v) > 1})  # type: ignore[arg-type]
        if dupes:
            problems.append(f"{field}: {', '.join(dupes)} listed more than once")
    if len(spec.conditions) < 2 and len(spec.K) < 2:
        problems.append("conditions, K: nothing to compare; give two conditions (verbatim, lenses) or "
                        "several K")
    if any(k < 1 for k in spec.K):
        problems.append("K: every K must be at least 1")
    owned = sorted(set(spec.student) & set(OWNED))
    if owned:
        problems.append(f"student: {', '.join(owned)} are set by the experiment (source, conditions, K, "
                        "protocols, budget); remove them from student")
    unknown = sorted(set(spec.student) - set(TRAINING_KNOBS))
    if unknown:
        problems.append(f"student: {', '.join(unknown)} are not training knobs")
    b = spec.budget
    if b.rule == "exposures" and b.train_tokens is not None:
        problems.append("budget.train_tokens: the exposures rule trains `epochs` passes; use rule: tokens "
                        "for a fixed token budget")
    if b.rule == "tokens" and b.epochs is not None:
        problems.append("budget.epochs: the tokens rule trains `train_tokens` per run; use rule: exposures "
                        "for a fixed number of passes")
    if b.finetune_tokens is not None and "pretrain_finetune" not in spec.protocols:
        problems.append("budget.finetune_tokens: only the pretrain_finetune protocol fine-tunes")
    whole = sorted(set(spec.distill.lenses) & set(WHOLE_BIOGRAPHY_LENSES))
    if whole:
        problems.append(f"distill.lenses: {', '.join(whole)} rewrites the whole biography for each fact; "
                        "a rewrite joins one distillate per fact: use fact lenses (template-fact, or "
                        "restate, child, ... with engine: llm)")
    if spec.distill.engine == "template" and (spec.distill.model or spec.distill.base_url):
        problems.append("distill.model, distill.base_url: the template engine asks no model")
    benchmarks = spec.benchmarks or []
    bad = [name for name in benchmarks if name not in TRAINING_BENCHMARKS]
    if bad:
        problems.append(f"benchmarks: {', '.join(bad)} unknown; the trainer knows "
                        f"{', '.join(TRAINING_BENCHMARKS)}")
    if problems:
        raise BadInput(f"{source}: {len(problems)} problem(s) in the repetition spec:\n  "
                       + "\n  ".join(problems))
    return spec


def load(path: Path) -> RepetitionSpec:
    raw = read_yaml(path)
    if not is_repetition(raw):
        raise BadInput(f"{path}: not a repetition spec (it needs `kind: repetition`; other specs run with "
                       "`knobs experiment run`)")
    return parse(raw, str(path))


def benchmarks_of(spec: RepetitionSpec) -> list[str]:
    return list(spec.benchmarks or [b for b in DEFAULT_BENCHMARKS if b in TRAINING_BENCHMARKS])


def experiment_spec(spec: RepetitionSpec, cloud: str | None, source: str) -> ExperimentSpec:
    """The `train` experiment this spec is: a grid over the factors with more than one value."""
    base: dict[str, Any] = {**spec.student, "n_people": spec.source.people,
                            "qa_fraction": spec.source.qa_fraction}
    if cloud:
        base["cloud"] = cloud
    b = spec.budget
    if b.rule == "exposures":
        base["epochs"] = b.epochs if b.epochs is not None else 20.0
    else:
        base["train_tokens"] = b.train_tokens if b.train_tokens is not None else 200_000
    if b.finetune_tokens is not None:
        base["finetune_tokens"] = b.finetune_tokens
    factors: dict[str, Any] = {}
    for knob, values in (("condition", spec.conditions), ("K", spec.K), ("protocol", spec.protocols)):
        if len(values) > 1:
            factors[knob] = {"values": list(values)}
        else:
            base[knob] = values[0]
    if not factors:  # parse() refuses this; a grid needs one factor
        raise BadInput(f"{source}: nothing varies")
    raw = {
        "name": spec.name, "description": spec.description or "verbatim versus lens rewrites",
        "executor": "train", "design": {"method": "grid"}, "base": base, "factors": factors,
        "seeds": list(spec.seeds), "benchmarks": benchmarks_of(spec), "budget": {"max_runs": spec.max_runs},
    }
    return validate_spec(raw, source=source)
