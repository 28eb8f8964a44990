"""The repetition experiment's spec (`kind: repetition`): does rewriting beat repeating?

A repetition spec names the knowledge (a biographies world of N people, your own
question-answer pairs, a JSONL, or your text: the cloze items of its passages), the conditions
(`verbatim`: the same text K times; `lenses`: K different rewrites; `mix`: half and half), the K
values, the protocols (Physics of LM 3.1's `pretrain_finetune`, and `mixed` training), the token
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
         "repetitions", "corpus", "format", "pairs_sha256")
# A rewrite of a person joins one distillate per fact (workers/cloud.py); a lens that rewrites
# the whole biography for every fact would repeat each fact six times in one rewrite.
WHOLE_BIOGRAPHY_LENSES = ("template-bio",)


DEFAULT_PEOPLE = 40
# The battery's questions that need the biographies' people (names, attributes, other people's
# biographies); a pairs or text source has none of that, so they are refused for it.
PEOPLE_BENCHMARKS = ("qa_paraphrase_exact_match", "qa_paraphrase_choice_accuracy", "reversal_choice_accuracy",
                     "two_hop_choice_accuracy", "distractor_exact_match", "probe_accuracy")
PAIRS_BENCHMARKS = ("qa_exact_match", "qa_answer_loss", "qa_f1", "qa_choice_accuracy", "qa_exact_match_seen")
TEXT_SUFFIXES = (".txt", ".md", ".markdown")
# The workers' pair source (`qa_pairs` executor, workers/data/qa_sources.py) of a text's cloze items.
CLOZE = "cloze:"

DEFAULT_CONDITIONS: tuple[Condition, ...] = ("verbatim", "lenses")
DEFAULT_PROTOCOLS: tuple[Protocol, ...] = ("pretrain_finetune",)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceSpec(_Frozen):
    """The knowledge: a biographies world (N people, six facts each), your question-answer pairs
    (a JSONL, each pair one unit of knowledge: workers/data/pairs.py), or your text (a .txt/.md
    file or a directory of them, each passage one unit, tested by its cloze item:
    workers/data/cloze.py). At most one; none is the biographies world of DEFAULT_PEOPLE."""

    people: int | None = Field(default=None, ge=4, le=100_000,
                               description=f"the biographies world's size (default {DEFAULT_PEOPLE})")
    pairs: str | None = Field(default=None, min_length=1,
                              description="a JSONL of question-answer pairs (question, answer, optional "
                              "context and id); a relative path is read from the spec's directory")
    text: str | None = Field(default=None, min_length=1,
                             description="a .txt/.md file or a directory of them (a book in files); each "
                             "passage is tested by its cloze item; relative: from the spec's directory")
    qa_fraction: float = Field(default=0.5, gt=0.0, lt=1.0,
                               description="the QA group (fine-tuned on); the rest is held out")

    @property
    def n_people(self) -> int:
        return self.people if self.people is not None else DEFAULT_PEOPLE


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
    samples: int | None = Field(default=None, ge=1, le=1000,
                                description="per (pair, lens); default just enough for the largest K. "
                                "More leaves room for rewrites the checks reject (the first K are used)")
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

    @property
    def on_pairs(self) -> bool:
        """Your own pairs: a JSONL's, or the cloze items of your text (they train and score alike)."""
        return self.source.pairs is not None or self.source.text is not None

    @property
    def on_text(self) -> bool:
        return self.source.text is not None

    @property
    def own_source(self) -> str | None:
        """The pair source the workers read (the JSONL, or `cloze:` and the text), else None."""
        if self.source.text is not None:
            return CLOZE + self.source.text
        return self.source.pairs

    def needed_samples(self) -> int:
        """Samples per (pair, lens) so every unit has the rewrites the largest K needs."""
        need = max(self.K) if "lenses" in self.conditions else max(self.K) // 2
        return max(1, math.ceil(need / len(self.distill.lenses)))

    def samples(self) -> int:
        """Samples per (pair, lens) the distillation asks: distill.samples, else just enough."""
        return self.distill.samples or self.needed_samples()


def is_repetition(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("kind") == KIND


def parse(raw: Any, source: str, base_dir: Path | None = None) -> RepetitionSpec:
    """Validate a parsed `kind: repetition` document; BadInput lists every problem. A relative
    `source.pairs` or `source.text` is resolved against `base_dir` (the spec's directory; default:
    as given)."""
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
    problems += _source_problems(spec)
    samples = spec.distill.samples
    if samples is not None and spec.needs_cloud and samples < spec.needed_samples():
        problems.append(f"distill.samples: {samples} per (pair, lens) cannot give K={max(spec.K)} "
                        f"rewrites through {len(spec.distill.lenses)} lens(es); use at least "
                        f"{spec.needed_samples()}")
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
    if whole and not spec.on_pairs:
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
    for field in ("pairs", "text"):
        given = getattr(spec.source, field)
        if given is not None and base_dir is not None:
            resolved = str((base_dir / given).resolve())
            spec = spec.model_copy(update={"source": spec.source.model_copy(update={field: resolved})})
    return spec


def _source_problems(spec: RepetitionSpec) -> list[str]:
    """What a pairs or text source cannot do: people, another source, the template engine, the
    people's questions."""
    src = spec.source
    if not spec.on_pairs:
        return []
    problems = []
    given = [name for name in ("people", "pairs", "text") if getattr(src, name) is not None]
    if len(given) > 1:
        kinds = {"people": "a biographies world", "pairs": "your JSONL", "text": "your text files"}
        problems.append(f"source: {' and '.join(f'{n} ({kinds[n]})' for n in given)} are "
                        f"{'two' if len(given) == 2 else 'three'} sources; give one")
    if src.pairs is not None:
        path = Path(src.pairs)
        if path.suffix.lower() in TEXT_SUFFIXES:
            problems.append(f"source.pairs: {src.pairs} is text; a text source is source.text "
                            f"(`source: {{text: {src.pairs}}}`: each passage tested by its cloze item)")
        elif path.suffix.lower() != ".jsonl":
            problems.append(f"source.pairs: {src.pairs} is not a .jsonl file; a pairs source is a JSONL of "
                            "question-answer pairs (text files, or a directory of them, are source.text)")
    if src.text is not None and Path(src.text).suffix.lower() == ".jsonl":
        problems.append(f"source.text: {src.text} is a JSONL; question-answer pairs are source.pairs "
                        f"(`source: {{pairs: {src.text}}}`)")
    if spec.needs_cloud and spec.distill.engine == "template":
        problems.append("distill.engine: the template engine rewrites the biographies' structured facts "
                        "(subject, attribute, all the person's facts) and cannot rewrite plain "
                        "question-answer pairs or passages; use engine: llm with lenses (restate, child, "
                        "... for pairs; retell, elaborate, ... for text), or only the verbatim condition")
    people_only = [b for b in spec.benchmarks or [] if b in PEOPLE_BENCHMARKS]
    if people_only:
        problems.append(f"benchmarks: {', '.join(people_only)} ask about the biographies' people (names, "
                        "attributes, other people's biographies); a pairs or text source has none: use "
                        f"{', '.join(PAIRS_BENCHMARKS)}")
    if "heldout_loss" in (spec.benchmarks or []):
        problems.append("benchmarks: heldout_loss needs held-out documents; a pairs or text source trains on "
                        "every unit's statement (qa_answer_loss is its held-out loss)")
    return problems


def load(path: Path) -> RepetitionSpec:
    raw = read_yaml(path)
    if not is_repetition(raw):
        raise BadInput(f"{path}: not a repetition spec (it needs `kind: repetition`; other specs run with "
                       "`knobs experiment run`)")
    return parse(raw, str(path), base_dir=path.resolve().parent)


def benchmarks_of(spec: RepetitionSpec) -> list[str]:
    default = PAIRS_BENCHMARKS if spec.on_pairs else DEFAULT_BENCHMARKS
    return list(spec.benchmarks or [b for b in default if b in TRAINING_BENCHMARKS])


def experiment_spec(spec: RepetitionSpec, cloud: str | None, source: str,
                    pairs_sha256: str | None = None) -> ExperimentSpec:
    """The `train` experiment this spec is: a grid over the factors with more than one value. A pairs
    source needs its pair set's sha256, which every run carries (the data's identity); a text
    source is the corpus `pairs:cloze:PATH`, its cloze items."""
    base: dict[str, Any] = {**spec.student, "qa_fraction": spec.source.qa_fraction}
    if spec.own_source is not None:
        if pairs_sha256 is None:
            raise BadInput(f"{source}: source {spec.own_source}: its pair set's sha256 is needed "
                           "(read the pairs first)")
        base.update(corpus=f"pairs:{spec.own_source}", pairs_sha256=pairs_sha256)
    else:
        base["n_people"] = spec.source.n_people
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
    # condition and K go together (the base alone must be a valid run): when one varies, both are factors
    paired = len(spec.conditions) > 1 or len(spec.K) > 1
    for knob, values in (("condition", spec.conditions), ("K", spec.K), ("protocol", spec.protocols)):
        if len(values) > 1 or (paired and knob != "protocol"):
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
