"""The built-in test of the compatibility hypothesis: does data that jolts a model teach it worse?

The hypothesis (MISSION.md, capability 3): data compatible with what a model already knows moves
it smoothly — the per-example gradient norms, measured before training on it, are alike (low
volatility = pstdev/mean of grad_norm) — and is understood: learned, generalised, and little else
is forgotten. Data the model can only imitate jolts it (high volatility) and learns worse,
generalises worse and makes it forget more. Read top-down:

1. base: a small GPT-2 trained (train.py's run_training) on the biographies of an "old" group
   of people with their QA pairs interleaved, long enough to answer some old questions.
2. candidates, the same size each, all about `touched` people's six facts (one example a fact):
   same_kind       the old facts, asked as training asked them ("Q: ...\\nA:" -> " value")
   unseen_format   the old facts as record-card lines, a format training never shows
   new_people      people the base never read, asked as training asks
   contradicting   the old people with every value changed (biographies.altered_person)
   shuffled_answers the old questions with each attribute's answers permuted across people
3. each candidate's shift on the base, before any training on it (shift.measure): volatility,
   total_shift, net_shift, coherence, noise_scale, and the per-example figures; the probe is
   (the first `probe_facts` of) the untouched old facts, so probe_shift is one-step forgetting.
4. per seed and candidate: a copy of the base fine-tuned on the candidate for a fixed budget
   (AdamW, warm-up and cosine as train.py; the loss is the completion's tokens, as shift's l_i;
   the seed draws the example order). Outcomes, answer loss (nats, primary: smooth at this
   scale) and exact match (secondary):
   learned       the candidate's facts (its values: the new ones for contradicting, the shuffled
                 ones for shuffled_answers), asked with the training question
   generalised   the same facts asked with paraphrased questions no training text contains
   forgotten     the rise of answer loss (drop of exact match) on the untouched old facts,
                 against the base
5. curriculum: per seed, one pool of the candidates' examples (disjoint facts: each touched fact
   goes to one old-people candidate, plus new people), ordered by the base's per-example
   grad_norm ascending, descending, or at random, trained for the same budget in that order.

The statistics (correlations across candidates with bootstrap intervals over seeds, verdicts)
are services/shift/verdict.py's: this job measures, it does not judge.

    python -m workers.jobs.hypothesis [--config '{"seeds": [0, 1]}'] [--json] > result.json
    python -m services.shift.verdict result.json [--predictor coherence]

The default run (a 0.48M-parameter GPT-2, 10% exact match on old facts; deterministic, two runs
gave identical outcomes): volatility 0.30-0.41 across candidates, highest for same_kind (0.41,
whose gradients are small and so relatively dispersed) and lowest for shuffled_answers (0.30);
same_kind learned best (answer loss 0.31 vs 0.55-0.91) and forgot least; every correlation with
volatility was weak (Spearman -0.1 to -0.4 on the primary outcomes, permutation p >= 0.26):
inconclusive. Ascending grad_norm order did worse than descending on every answer loss.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workers.data.biographies import (
    Person,
    altered_person,
    generate,
    make_people,
    paraphrased_qa_pairs,
    qa_pairs,
    record_card_pairs,
    shuffled_answers,
)
from workers.data.corpus import QAPair
from workers.data.tokenizer import Tokenizer
from workers.jobs.checkpoint import load_checkpoint
from workers.jobs.evaluate import answer_loss, exact_match
from workers.jobs.shift import Example, MeasuredModel, ShiftConfig, measure
from workers.jobs.train import DATA_SEED, TrainConfig, lr_at, run_training

CANDIDATES = ("same_kind", "unseen_format", "new_people", "contradicting", "shuffled_answers")
ORDERS = ("ascending", "descending", "random")
Progress = Callable[[str], None]


# --- the config -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HypothesisConfig:
    """Defaults: measured 85 s and 125 s wall on two CPU cores (the base's training 20 s and 29 s
    of it; each candidate's full shift about 3.7 s), identical outcomes both times."""

    # --- the world: old people (the base reads them), of whom `touched` are the candidates'
    n_old: int = 40
    touched: int = 16  # old people the candidates are about; the rest measure forgetting
    n_new: int = 16  # people the base never read (the new_people candidate)
    # --- the base model (TrainingParams knobs; format "mixed", every old person's QA in it)
    base_layers: int = 2
    base_d_model: int = 128
    base_heads: int = 4
    base_context: int = 128
    base_tokenizer: str = "bpe"
    base_vocab: int = 512
    base_repetitions: int = 6
    base_train_tokens: int = 500_000
    base_lr: float = 6e-3
    base_batch: int = 16
    base_seed: int = 0
    # --- measuring the shift, on the base, before training
    shift_metrics: str = "full"  # "norms" is cheaper: no loss_drop, probe_shift, hidden_shift
    shift_lr: float = 1e-3
    shift_optimizer: str = "sgd"
    probe_facts: int = 48  # the first untouched old facts, the probe of probe_shift (full metrics)
    # --- fine-tuning one candidate (every candidate gets the same budget)
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 24
    batch: int = 16
    lr: float = 1e-3
    warmup_fraction: float = 0.1
    # --- the curriculum pool: per old-people candidate this many facts, plus this many new facts
    curriculum_per_candidate: int = 24
    curriculum_epochs: int = 3  # passes over the pool, each in the same order
    exact_match: bool = True  # also greedy exact match (secondary; answer loss is primary)

    def __post_init__(self) -> None:
        if self.touched < 2 or self.touched >= self.n_old:
            raise ValueError(f"touched={self.touched}: need 2 <= touched < n_old={self.n_old} "
                             "(the untouched old people measure forgetting)")
        if self.n_new != self.touched:
            raise ValueError(f"n_new={self.n_new} must equal touched={self.touched}: candidates are "
                             "the same size")
        if not self.seeds:
            raise ValueError("seeds: give at least one")
        if self.curriculum_per_candidate > self.touched * 6 // 4:
            raise ValueError(f"curriculum_per_candidate={self.curriculum_per_candidate}: at most "
                             f"{self.touched * 6 // 4} (the touched facts split over four candidates)")

    def base_params(self) -> dict[str, Any]:
        return {
            "model_family": "gpt2", "n_layer": self.base_layers, "d_model": self.base_d_model,
            "n_head": self.base_heads, "context_length": self.base_context,
            "tokenizer": self.base_tokenizer, "vocab_size": self.base_vocab,
            "n_people": self.n_old, "qa_fraction": 1.0, "format": "mixed",
            "repetitions": self.base_repetitions, "train_tokens": self.base_train_tokens,
            "lr": self.base_lr, "batch_size": self.base_batch,
        }


# --- the result -----------------------------------------------------------------------------------

@dataclass
class Outcomes:
    """One model's figures on one set of facts. *_loss in nats (lower: known better); *_exact a
    share; forgotten_* against the base (positive: forgot). Exact match None when not asked."""

    learned_loss: float
    generalised_loss: float
    forgotten_loss: float
    learned_exact: float | None = None
    generalised_exact: float | None = None
    forgotten_exact: float | None = None


@dataclass
class BaseSummary:
    parameters: int
    steps: int
    train_seconds: float
    final_train_loss: float
    old_loss: float  # answer loss over every old fact
    old_exact: float | None
    untouched_loss: float  # over the old facts no candidate touches (the forgetting set)
    untouched_exact: float | None
    untouched_facts: int


@dataclass
class CandidateResult:
    name: str
    examples: int
    shift: dict[str, Any]  # shift's DatasetShift: volatility, total_shift, net_shift, coherence, ...
    per_example: list[dict[str, Any]]  # shift's ExampleShift per example, with its id
    before: Outcomes  # the base on this candidate's facts (forgotten_* are 0)
    shift_seconds: float
    measurement_id: str | None = None  # when measured through the log (MeasureCandidate)


@dataclass
class Run:
    """One fine-tune: a candidate (or a curriculum order) and a seed."""

    candidate: str  # the candidate's name, or "curriculum"
    seed: int
    outcomes: Outcomes
    steps: int
    seconds: float
    final_train_loss: float
    order: str | None = None  # the curriculum's order


@dataclass
class HypothesisResult:
    config: dict[str, Any]
    base: BaseSummary
    candidates: list[CandidateResult]
    runs: list[Run]
    curriculum: list[Run]
    volatility: dict[str, float]  # candidate -> its pre-training volatility (the predictor)
    device: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        public: dict[str, Any] = _finite(asdict(self))
        return public


def _finite(value: Any) -> Any:
    """NaN and infinities as None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --- the job --------------------------------------------------------------------------------------

MeasureCandidate = Callable[[str, list[Example], list[Example], ShiftConfig, Path],
                            tuple[dict[str, Any], list[dict[str, Any]], str]]
"""(candidate name, its examples, the probe, settings, the base's checkpoint directory) ->
(data-set figures, per-example figures with "id" and "grad_norm", measurement id): how the
service side measures each candidate as events in the log instead of in memory."""


def run(config: HypothesisConfig = HypothesisConfig(), progress: Progress | None = None,
        measure_candidate: MeasureCandidate | None = None, work_dir: Path | None = None) -> HypothesisResult:
    """The whole test; with `work_dir` the base checkpoint is kept there (a measurement names it)."""
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    keep: AbstractContextManager[str] = nullcontext(str(work_dir)) if work_dir is not None \
        else tempfile.TemporaryDirectory(prefix="knobs-hypothesis-")
    with keep as tmp:
        # --- 1. the base: biographies and QA of the old people
        say(f"base: training on {config.n_old} old people")
        base_dir = Path(tmp) / "base"
        trained = run_training(config.base_params(), seed=config.base_seed, benchmarks=[], out_dir=base_dir)
        base, tokenizer, _ = load_checkpoint(base_dir)
        base.to(device).eval()  # type: ignore[arg-type]  # transformers' .to decorator
        # The fine-tunes are runs on the base checkpoint: TrainConfig resolves their schedule.
        finetune_cfg = TrainConfig.from_params(
            {"lr": config.lr, "batch_size": config.batch, "context_length": config.base_context,
             "train_tokens": max(1000, config.steps * config.batch * config.base_context),
             "warmup_fraction": config.warmup_fraction},
            seed=0, out_dir=Path(tmp) / "finetune", base_checkpoint=base_dir)
        finetune_cfg = replace(finetune_cfg, steps=config.steps,
                               warmup_steps=int(config.warmup_fraction * config.steps))

    # --- 2. the world and the candidates
    corpus = generate(n_people=config.n_old, qa_fraction=1.0, data_format="mixed",
                      repetitions=config.base_repetitions, seed=DATA_SEED)
    old = list(corpus.people)
    world = make_people(config.n_old + config.n_new, qa_fraction=1.0, seed=DATA_SEED)
    assert [p.name for p in world[:config.n_old]] == [p.name for p in old]  # worlds nest
    new = [replace(p, qa_in_training=False) for p in world[config.n_old:]]
    touched, untouched = old[:config.touched], old[config.touched:]
    candidates = build_candidates(touched, new)
    forgetting_set = [pair for person in untouched for pair in qa_pairs(person)]

    def scored(model: nn.Module, facts: Candidate, reference: Outcomes | None) -> Outcomes:
        return outcomes(model, tokenizer, facts, forgetting_set, device, reference, config.exact_match)

    base_reference = score_forgetting(base, tokenizer, forgetting_set, device, config.exact_match)
    all_old = [pair for person in old for pair in qa_pairs(person)]
    base_summary = BaseSummary(
        parameters=sum(p.numel() for p in base.parameters()), steps=int(trained.config["steps"]),
        train_seconds=round(trained.costs.get("wall_s", math.nan), 2),
        final_train_loss=trained.final_loss,
        old_loss=_loss(base, tokenizer, all_old, device),
        old_exact=_exact(base, tokenizer, all_old, device) if config.exact_match else None,
        untouched_loss=base_reference.learned_loss, untouched_exact=base_reference.learned_exact,
        untouched_facts=len(forgetting_set),
    )
    say(f"base: {base_summary.parameters} parameters, old facts answer loss {base_summary.old_loss:.3f}"
        f", exact {base_summary.old_exact}")

    # --- 3. each candidate's shift, before training on it
    measured = measured_model(base, tokenizer, config.base_context)
    probe = [_example(f"probe:{pair.person}:{pair.attribute}", pair)
             for pair in forgetting_set[:config.probe_facts]]
    shift_config = ShiftConfig(lr=config.shift_lr, optimizer=config.shift_optimizer,
                               metrics=config.shift_metrics)
    candidate_results: list[CandidateResult] = []
    grad_norm: dict[str, float] = {}  # example id -> grad_norm on the base, for the curriculum
    for candidate in candidates:
        measuring = time.perf_counter()
        if measure_candidate is not None:
            figures, rows, measurement_id = measure_candidate(candidate.name, candidate.examples, probe,
                                                              shift_config, base_dir)
        else:
            report = measure(measured, candidate.examples, probe, shift_config)
            figures, rows, measurement_id = asdict(report.dataset), [asdict(e) for e in report.examples], None
        grad_norm.update({str(e["id"]): float(e["grad_norm"]) for e in rows})
        candidate_results.append(CandidateResult(
            name=candidate.name, examples=len(candidate.examples), shift=figures, per_example=rows,
            measurement_id=measurement_id,
            before=scored(base, candidate, base_reference),
            shift_seconds=round(time.perf_counter() - measuring, 2),
        ))
        say(f"shift {candidate.name}: volatility {figures['volatility']:.3f}, "
            f"coherence {figures['coherence']:.3f}")
    del measured

    # --- 4. fine-tune a copy of the base on each candidate, per seed
    runs: list[Run] = []
    for seed in config.seeds:
        for candidate in candidates:
            batches = shuffled_batches(candidate.examples, config.batch, config.steps, seed)
            runs.append(finetune_and_score(base, tokenizer, candidate, batches, finetune_cfg, seed,
                                           scored, base_reference, device))
            say(f"seed {seed} {candidate.name}: {runs[-1].outcomes}")

    # --- 5. the curriculum: one pool, three orders
    curriculum: list[Run] = []
    for seed in config.seeds:
        pool = curriculum_pool(candidates, config.curriculum_per_candidate, seed)
        for order in ORDERS:
            ordered = order_examples(pool.examples, grad_norm, order, seed)
            batches = ordered_batches(ordered, config.batch, config.curriculum_epochs)
            row = finetune_and_score(base, tokenizer, pool, batches, finetune_cfg, seed, scored,
                                     base_reference, device, order=order)
            curriculum.append(row)
            say(f"seed {seed} curriculum {order}: {row.outcomes}")

    return HypothesisResult(
        config=asdict(config), base=base_summary, candidates=candidate_results, runs=runs,
        curriculum=curriculum,
        volatility={c.name: float(c.shift["volatility"]) for c in candidate_results},
        device=str(device), seconds=round(time.perf_counter() - started, 2),
    )


# --- the candidates -------------------------------------------------------------------------------

@dataclass
class Candidate:
    """Examples to train on, and the facts they teach: asked as training asks (`facts`) and in
    paraphrase (`paraphrased`), each with the candidate's values."""

    name: str
    examples: list[Example]
    facts: list[QAPair]
    paraphrased: list[QAPair]
    keys: list[tuple[int, str]] = field(default_factory=list)  # (person, attribute) per example


def build_candidates(touched: Sequence[Person], new: Sequence[Person],
                     seed: int = DATA_SEED) -> list[Candidate]:
    """The five candidates, one example per (person, attribute), in CANDIDATES order."""
    altered = [altered_person(p, seed) for p in touched]
    shuffled = shuffled_answers(list(touched), seed)
    taught: dict[str, tuple[Sequence[Person], Callable[[Person], list[QAPair]]]] = {
        "same_kind": (touched, qa_pairs),
        "unseen_format": (touched, record_card_pairs),
        "new_people": (new, qa_pairs),
        "contradicting": (altered, qa_pairs),
        "shuffled_answers": (shuffled, qa_pairs),
    }
    out = []
    for name in CANDIDATES:
        people, render = taught[name]
        pairs = [pair for person in people for pair in render(person)]
        out.append(Candidate(
            name=name,
            examples=[_example(f"{name}:{pair.person}:{pair.attribute}", pair) for pair in pairs],
            facts=[pair for person in people for pair in qa_pairs(person)],
            paraphrased=[pair for person in people for pair in paraphrased_qa_pairs(person)],
            keys=[(pair.person, pair.attribute) for pair in pairs],
        ))
    return out


def _example(ident: str, pair: QAPair) -> Example:
    return Example(ident, pair.prompt, " " + pair.answer, plain_text=False)


def curriculum_pool(candidates: Sequence[Candidate], per_candidate: int, seed: int) -> Candidate:
    """A mix of the candidates with no fact taught twice: the touched (person, attribute) facts,
    drawn in a seeded order, go `per_candidate` to each old-people candidate; new_people adds
    `per_candidate` of its own."""
    by_name = {c.name: c for c in candidates}
    old_names = [n for n in CANDIDATES if n != "new_people"]
    keys = list(by_name["same_kind"].keys)
    rng = random.Random(f"hypothesis:pool:{seed}")
    rng.shuffle(keys)
    chosen: list[tuple[str, tuple[int, str]]] = [
        (name, key) for i, name in enumerate(old_names)
        for key in keys[i * per_candidate:(i + 1) * per_candidate]
    ]
    new_keys = list(by_name["new_people"].keys)
    rng.shuffle(new_keys)
    chosen += [("new_people", key) for key in new_keys[:per_candidate]]
    examples, facts, paraphrased = [], [], []
    for name, key in chosen:
        c = by_name[name]
        row = c.keys.index(key)
        examples.append(c.examples[row])
        facts.append(c.facts[row])
        paraphrased.append(c.paraphrased[row])
    return Candidate("curriculum", examples, facts, paraphrased, [key for _, key in chosen])


def order_examples(examples: Sequence[Example], grad_norm: dict[str, float], order: str,
                   seed: int) -> list[Example]:
    """The pool by the base's per-example grad_norm, ascending or descending, or in a seeded
    random order."""
    if order == "random":
        shuffled = list(examples)
        random.Random(f"hypothesis:order:{seed}").shuffle(shuffled)
        return shuffled
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: choose one of {ORDERS}")
    return sorted(examples, key=lambda e: grad_norm[e.id], reverse=order == "descending")


def shuffled_batches(examples: Sequence[Example], batch: int, steps: int, seed: int) -> list[list[Example]]:
    """`steps` batches from epochs in fresh seeded orders (train.py's packed_batches, by example)."""
    rng = np.random.default_rng(seed)
    stream: list[Example] = []
    while len(stream) < batch * steps:
        stream += [examples[i] for i in rng.permutation(len(examples))]
    return [stream[i * batch:(i + 1) * batch] for i in range(steps)]


def ordered_batches(examples: Sequence[Example], batch: int, epochs: int) -> list[list[Example]]:
    """`epochs` passes over `examples` in the order given, cut into batches (the last may be short)."""
    stream = list(examples) * epochs
    return [stream[i:i + batch] for i in range(0, len(stream), batch)]


# --- the model, measured and fine-tuned -----------------------------------------------------------

def measured_model(model: nn.Module, tokenizer: Tokenizer, context_length: int) -> MeasuredModel:
    """A copy of `model` for shift.measure: fp32, eval, eager attention (vmap has rules for it).
    Each example is led by the end-of-text token, as documents are in training and questions
    are at evaluation."""
    copied = copy.deepcopy(model).float().eval()
    set_attention = getattr(copied, "set_attn_implementation", None)
    if callable(set_attention):
        set_attention("eager")
    return MeasuredModel(copied, lambda text, first: _encode(tokenizer, text, first), context_length,
                         source="knobs-run", lora=False, decode=lambda token: tokenizer.decode([token]))


def _encode(tokenizer: Tokenizer, text: str, first: bool) -> list[int]:
    return ([tokenizer.eos_id] if first else []) + tokenizer.encode(text)


def finetune_and_score(
    base: nn.Module, tokenizer: Tokenizer, candidate: Candidate, batches: Sequence[Sequence[Example]],
    cfg: TrainConfig, seed: int, scored: Callable[[nn.Module, Candidate, Outcomes | None], Outcomes],
    reference: Outcomes, device: torch.device, order: str | None = None,
) -> Run:
    started = time.perf_counter()
    torch.manual_seed(seed)
    steps = len(batches)
    schedule = replace(cfg, steps=steps, warmup_steps=int(cfg.warmup_fraction * steps), seed=seed)
    model, losses = finetune(base, tokenizer, batches, schedule, device)
    return Run(candidate=candidate.name, seed=seed, outcomes=scored(model, candidate, reference),
               steps=len(batches), seconds=round(time.perf_counter() - started, 2),
               final_train_loss=float(np.mean(losses[-5:])), order=order)


def finetune(base: nn.Module, tokenizer: Tokenizer, batches: Sequence[Sequence[Example]], cfg: TrainConfig,
             device: torch.device) -> tuple[nn.Module, list[float]]:
    """A copy of `base` after one AdamW step per batch (train.py's optimizer, schedule and
    clipping); the loss is the mean over examples of each one's mean completion-token loss."""
    model = copy.deepcopy(base).to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": cfg.weight_decay},
         {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}],
        lr=cfg.lr, betas=cfg.betas,
    )
    losses = []
    for step, batch in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        ids, mask, attention = _padded(tokenizer, batch, cfg.context_length, device)
        optimizer.zero_grad(set_to_none=True)
        logits = model(input_ids=ids, attention_mask=attention).logits
        loss = _completion_loss(logits, ids, mask).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return model, losses


def _padded(tokenizer: Tokenizer, batch: Sequence[Example], context: int,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T) ids right-padded (causal attention: padding on the right changes no real position),
    (B, T) masks, True at the completion's tokens, and the (B, T) attention mask of real tokens."""
    rows = []
    for e in batch:
        prompt = _encode(tokenizer, e.prompt, True)
        ids = (prompt + tokenizer.encode(e.target))[:context]
        rows.append((ids, len(prompt)))
    width = max(len(ids) for ids, _ in rows)
    ids_t = torch.full((len(rows), width), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, first_target) in enumerate(rows):
        ids_t[row, :len(ids)] = torch.tensor(ids)
        mask[row, first_target:len(ids)] = True
        attention[row, :len(ids)] = 1
    return ids_t.to(device), mask.to(device), attention.to(device)


def _completion_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    losses = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten(),
                             reduction="none").view(ids[:, 1:].shape)
    weights = mask[:, 1:].float()
    return (losses * weights).sum(-1) / weights.sum(-1).clamp(min=1)


# --- the outcomes ---------------------------------------------------------------------------------

def outcomes(model: nn.Module, tokenizer: Tokenizer, candidate: Candidate, forgetting_set: Sequence[QAPair],
             device: torch.device, reference: Outcomes | None, with_exact: bool) -> Outcomes:
    """learned and generalised on the candidate's facts; forgotten on the untouched old facts,
    against `reference` (the base's score there, held in learned_*)."""
    forgetting = score_forgetting(model, tokenizer, forgetting_set, device, with_exact)
    base_loss = reference.learned_loss if reference else forgetting.learned_loss
    base_exact = reference.learned_exact if reference else forgetting.learned_exact
    return Outcomes(
        learned_loss=_loss(model, tokenizer, candidate.facts, device),
        generalised_loss=_loss(model, tokenizer, candidate.paraphrased, device),
        forgotten_loss=forgetting.learned_loss - base_loss,
        learned_exact=_exact(model, tokenizer, candidate.facts, device) if with_exact else None,
        generalised_exact=_exact(model, tokenizer, candidate.paraphrased, device) if with_exact else None,
        forgotten_exact=(base_exact - forgetting.learned_exact)
        if with_exact and base_exact is not None and forgetting.learned_exact is not None else None,
    )


def score_forgetting(model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[QAPair], device: torch.device,
                     with_exact: bool) -> Outcomes:
    """The model's answer loss (and exact match) on `pairs`, held in learned_*."""
    return Outcomes(learned_loss=_loss(model, tokenizer, pairs, device), generalised_loss=math.nan,
                    forgotten_loss=0.0,
                    learned_exact=_exact(model, tokenizer, pairs, device) if with_exact else None)


def _loss(model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[QAPair], device: torch.device) -> float:
    model.eval()
    with torch.no_grad():
        return answer_loss(model, tokenizer, pairs, device).value


def _exact(model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[QAPair], device: torch.device) -> float:
    model.eval()
    with torch.no_grad():
        return exact_match(model, tokenizer, pairs, device).value


# --- the command ----------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.jobs.hypothesis",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default="{}", help="HypothesisConfig fields as a JSON object")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    args = parser.parse_args(argv)
    try:
        fields = json.loads(args.config)
        if not isinstance(fields, dict):
            raise ValueError("--config must be a JSON object")
        if "seeds" in fields:
            fields["seeds"] = tuple(fields["seeds"])
        config = HypothesisConfig(**fields)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run(config, progress=lambda message: print(message, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True))
    else:
        print(_render(result))
    return 0


def _render(result: HypothesisResult) -> str:
    lines = [f"base: {result.base.parameters} parameters, old facts loss {result.base.old_loss:.3f}, "
             f"exact {result.base.old_exact}; {result.seconds:.0f} s on {result.device}",
             f"{'candidate':>17} {'volatility':>10} {'learned':>8} {'general':>8} {'forgot':>8}"]
    for c in result.candidates:
        rows = [r.outcomes for r in result.runs if r.candidate == c.name]
        lines.append(f"{c.name:>17} {c.shift['volatility']:>10.3f} "
                     f"{np.mean([o.learned_loss for o in rows]):>8.3f} "
                     f"{np.mean([o.generalised_loss for o in rows]):>8.3f} "
                     f"{np.mean([o.forgotten_loss for o in rows]):>+8.3f}")
    for order in ORDERS:
        rows = [r.outcomes for r in result.curriculum if r.order == order]
        lines.append(f"{'curriculum ' + order:>17} {'':>10} {np.mean([o.learned_loss for o in rows]):>8.3f} "
                     f"{np.mean([o.generalised_loss for o in rows]):>8.3f} "
                     f"{np.mean([o.forgotten_loss for o in rows]):>+8.3f}")
    lines.append("the verdict: python -m services.shift.verdict RESULT.json (of --json)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
