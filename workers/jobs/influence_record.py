# ruff: noqa: RUF002, RUF003  (the definitions use the notation of the papers: ℓ, θ, →)
"""Per-example influence recorded inside training: one job, record and summarise.

A run that sets `influence_every: N` tracks a fixed sample of its training documents
(`influence_examples`, drawn with the data seed, so every seed and every knob setting over the
same corpus tracks the same documents) and, after every N-th optimizer step and after the
last, measures each tracked document i on the model as it stands, in eval mode and fp32:

    loss        ℓ_i, the mean token cross-entropy over its target tokens (every token of the
                document, each predicted from what precedes it; the document is led by the
                end-of-text token, as in training, and cut to the context length)
    grad_norm   ‖∇θ ℓ_i‖₂ over the trainable parameters (a LoRA's adapters only), by ghost norms
                in one backward pass for the whole sample, torch.func vmap where ghost norms do
                not cover the model (both through workers.jobs.shift.measure)
    confidence  the mean probability the model gives the gold target tokens
    correct     whether the greedy (argmax) prediction is right on at least half of the target
                tokens. One rule for every document, prose or question-answer line or a local
                file's text, so forgetting counts compare across `format` and `corpus`; a
                stricter exact match of a QA answer would apply to QA lines only and leave
                biographies without a notion of correct. Each recording keeps the share itself
                (token_accuracy), so another threshold can be applied to the artifact.

From the recordings:

    volatility          pstdev(grad_norm)/mean(grad_norm) over the tracked documents, per recording;
                        the volatility curve is [(step, volatility, mean_grad_norm, mean_loss)]
    cartography         per document (Swayamdipta et al. 2020, "Dataset Cartography"): confidence
                        (mean of confidence over recordings), variability (its population std),
                        correctness (share of recordings where correct)
    forgetting_events   per document (Toneva et al. 2019, "An Empirical Study of Example
                        Forgetting"): transitions correct → incorrect between consecutive
                        recordings; never_learned: never correct at any recording

and three benchmark scores (lower is better): train_volatility (mean volatility over the
recordings), train_volatility_final (at the last recording), train_forgetting (mean forgetting
events per tracked document). Everything goes to `influence.json` in the run's directory.

Recording leaves training exactly as it was: no random numbers are drawn, the model is put
back in the mode it was in, and the step's gradients, which the measurement's backward pass
would overwrite, are put back on the parameters.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from events.models.training import RECORDED_IN_TRAINING
from workers.jobs import ghost_norms
from workers.jobs.evaluate import Score
from workers.jobs.shift import Example, MeasuredModel, ShiftConfig, encode, measure, padded

INFLUENCE_FILE = "influence.json"
CORRECT_SHARE = 0.5  # correct: argmax right on at least this share of the target tokens
# Logits of the confidence pass held at once (rows x positions x vocabulary), about 256 MiB fp32.
LOGITS_BUDGET = 2**26
TEXT_SHOWN = 120  # characters of each tracked document kept in the artifact, to recognise it


@contextmanager
def eager_attention(model: nn.Module, when: bool) -> Iterator[None]:
    """Eager attention for the duration, then the model's own again (SDPA in training).

    vmap, the fallback where ghost norms do not cover the model, cannot trace transformers'
    SDPA mask code (data-dependent control flow); eager attention it can. Ghost norms keep the
    run's attention: eager materialises every T x T attention matrix, costly at long contexts.
    (A model that ghost norms cover but whose forward pass runs a module twice would fall to
    vmap under SDPA and fail; none of the trainer's families does.)"""
    config = getattr(model, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    setter = getattr(model, "set_attn_implementation", None)
    if not when or not callable(setter) or previous in (None, "eager"):
        yield
        return
    setter("eager")
    try:
        yield
    finally:
        setter(previous)


def tracked_documents(documents: Sequence[str], k: int, seed: int) -> list[int]:
    """Indices of k non-empty documents, drawn without replacement by a generator of their own:
    the training data order (seeded by the run's seed) is untouched, and the sample depends on
    the corpus and the data seed only."""
    candidates = [i for i, doc in enumerate(documents) if doc.strip()]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(candidates), size=min(k, len(candidates)), replace=False)
    return sorted(candidates[int(j)] for j in picked)


def is_due(step: int, every: int, total_steps: int) -> bool:
    """Every `every`-th optimizer step, and the last one (so the trained model is measured)."""
    return step % every == 0 or step == total_steps


# --- the figures, from trajectories (pure functions) ----------------------------------------

def volatility(grad_norms: Sequence[float]) -> float:
    """pstdev/mean of the per-example gradient norms (0 when they are all zero)."""
    mean = statistics.fmean(grad_norms)
    return statistics.pstdev(grad_norms) / mean if mean else 0.0


def forgetting_events(correct: Sequence[bool]) -> int:
    """Transitions correct → incorrect between consecutive recordings."""
    return sum(before and not after for before, after in pairwise(correct))


@dataclass(frozen=True)
class Cartography:
    confidence: float  # mean over recordings of the gold tokens' mean probability
    variability: float  # population std of that confidence over recordings
    correctness: float  # share of recordings at which the document was correct


def cartography(confidence: Sequence[float], correct: Sequence[bool]) -> Cartography:
    return Cartography(
        confidence=statistics.fmean(confidence),
        variability=statistics.pstdev(confidence),
        correctness=sum(correct) / len(correct),
    )


@dataclass
class Recording:
    """One recording: per tracked document, in the order of the tracked indices."""

    step: int
    loss: list[float]
    grad_norm: list[float]
    confidence: list[float]
    token_accuracy: list[float]
    correct: list[bool]
    seconds: float = 0.0


def volatility_curve(recordings: Sequence[Recording]) -> list[dict[str, float]]:
    return [{"step": r.step, "volatility": volatility(r.grad_norm),
             "mean_grad_norm": statistics.fmean(r.grad_norm), "mean_loss": statistics.fmean(r.loss)}
            for r in recordings]


def scores(recordings: Sequence[Recording]) -> dict[str, Score]:
    """The three benchmark scores of a run's recordings (at least one)."""
    curve = [volatility(r.grad_norm) for r in recordings]
    n_rec = len(curve)
    last = recordings[-1]
    n = len(last.grad_norm)
    final = curve[-1]
    events = [forgetting_events([r.correct[i] for r in recordings]) for i in range(n)]
    mean_events = statistics.fmean(events)
    return {
        # Across recordings, which are not independent draws: a spread of the curve, not a
        # sampling error; the seeds of an experiment give the latter.
        "train_volatility": Score(statistics.fmean(curve), n_rec,
                                  statistics.stdev(curve) / math.sqrt(n_rec) if n_rec > 1 else 0.0),
        # The coefficient of variation's standard error under normality (McKay's approximation).
        "train_volatility_final": Score(final, n, final / math.sqrt(2 * n) * math.sqrt(1 + 2 * final**2)),
        "train_forgetting": Score(mean_events, n, statistics.stdev(events) / math.sqrt(n) if n > 1 else 0.0),
    }


# --- the recorder -----------------------------------------------------------------------------

@dataclass
class InfluenceRecorder:
    """Called after each optimizer step with (step, total_steps, model); records when due."""

    every: int
    documents: Sequence[str]  # the run's training documents
    indices: list[int]  # the tracked ones (tracked_documents)
    encode_document: Callable[[str], list[int]]  # a document as training sees it: [eos, *tokens]
    context_length: int
    lora: bool = False
    recordings: list[Recording] = field(default_factory=list)
    method: str = ""  # ghost norms or vmap, as shift.measure reports it

    def __post_init__(self) -> None:
        texts = [self.documents[i] for i in self.indices]
        self._examples = [Example(str(i), "", text, plain_text=True) for i, text in zip(self.indices, texts,
                                                                                      strict=True)]
        self._ids = {text: self.encode_document(text) for text in texts}  # tokenised once

    def on_step(self, step: int, total_steps: int, model: nn.Module) -> None:
        if is_due(step, self.every, total_steps):
            self.recordings.append(self.record(model, step))

    def record(self, model: nn.Module, step: int) -> Recording:
        """Measure the tracked documents on `model` now; the model is left as it was, .grad included."""
        started = time.perf_counter()
        measured = MeasuredModel(model, lambda text, _first: self._ids[text], self.context_length,
                                 source="training", lora=self.lora)
        saved = [(p, p.grad) for p in model.parameters()]
        was_training = model.training
        device = next(model.parameters()).device
        model.eval()
        try:
            # fp32 whatever the run's precision; eager attention only where vmap must trace it
            with torch.autocast(device_type=device.type, enabled=False), \
                    eager_attention(model, when=not ghost_norms.supports(model)):
                report = measure(measured, self._examples, config=ShiftConfig(metrics="norms"))
                confidence, accuracy = self._confidence(measured, device)
        finally:
            model.train(was_training)
            for p, grad in saved:  # the step's gradients, for hooks after this one
                p.grad = grad
        self.method = str(report.settings["method"])
        return Recording(
            step=step, loss=[e.loss_before for e in report.examples],
            grad_norm=[e.grad_norm for e in report.examples],
            confidence=confidence, token_accuracy=accuracy,
            correct=[a >= CORRECT_SHARE for a in accuracy],
            seconds=time.perf_counter() - started,
        )

    def _confidence(self, measured: MeasuredModel, device: torch.device) -> tuple[list[float], list[float]]:
        """Per document: mean gold-token probability and share of targets the argmax gets right."""
        encoded = [encode(e, measured) for e in self._examples]
        vocab = int(measured.model.get_output_embeddings().weight.shape[0])  # type: ignore[operator]
        width = max(len(e.ids) for e in encoded)
        rows = max(1, LOGITS_BUDGET // (width * vocab))
        confidence: list[float] = []
        accuracy: list[float] = []
        for start in range(0, len(encoded), rows):
            ids, mask = padded(encoded[start:start + rows], str(device))
            with torch.no_grad():
                output = measured.model(input_ids=ids, attention_mask=torch.ones_like(ids))
                logits = output.logits[:, :-1].float()
                gold = ids[:, 1:]
                p_gold = logits.log_softmax(-1).gather(-1, gold[..., None]).squeeze(-1).exp()
                hit = (logits.argmax(-1) == gold).float()
                weights = mask[:, 1:].float()
                count = weights.sum(-1)
                confidence += ((p_gold * weights).sum(-1) / count).tolist()
                accuracy += ((hit * weights).sum(-1) / count).tolist()
        return confidence, accuracy

    # --- the summary

    def scores(self, names: Sequence[str]) -> dict[str, Score]:
        unknown = [n for n in names if n not in RECORDED_IN_TRAINING]
        if unknown:
            raise ValueError(f"{unknown} are not recorded in training; those are {RECORDED_IN_TRAINING}")
        computed = scores(self.recordings)
        return {name: computed[name] for name in names}

    def summary(self) -> dict[str, Any]:
        """What influence.json holds: settings, per-document trajectories and figures, the curve."""
        recs = self.recordings
        per_document: list[dict[str, Any]] = []
        for row, index in enumerate(self.indices):
            correct = [r.correct[row] for r in recs]
            confidence = [r.confidence[row] for r in recs]
            ids = self._ids[self.documents[index]]
            per_document.append({
                "index": index, "text": self.documents[index][:TEXT_SHOWN],
                "tokens": min(len(ids), self.context_length), "truncated": len(ids) > self.context_length,
                "loss": [r.loss[row] for r in recs], "grad_norm": [r.grad_norm[row] for r in recs],
                "confidence": confidence, "token_accuracy": [r.token_accuracy[row] for r in recs],
                "correct": correct,
                "cartography": asdict(cartography(confidence, correct)),
                "forgetting_events": forgetting_events(correct), "never_learned": not any(correct),
            })
        never = [d["index"] for d in per_document if d["never_learned"]]
        events = [int(d["forgetting_events"]) for d in per_document]
        return {
            "settings": {"every": self.every, "examples": len(self.indices), "method": self.method,
                         "correct": f"argmax right on at least {CORRECT_SHARE:g} of the target tokens",
                         "precision": "fp32, eval mode"},
            "steps": [r.step for r in recs],
            "seconds": sum(r.seconds for r in recs),
            "volatility_curve": volatility_curve(recs),
            "forgetting": {"mean_events": statistics.fmean(events), "total_events": sum(events),
                           "never_learned": never, "never_learned_share": len(never) / len(per_document)},
            "scores": {name: asdict(score) for name, score in scores(recs).items()},
            "documents": per_document,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.summary(), indent=2))
