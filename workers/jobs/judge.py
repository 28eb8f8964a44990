"""The LLM judge: grade students' free-form answers over the OpenAI-compatible API, and measure
how far the judge can be trusted.

Read it top-down. For each completed run of an experiment, load its model and regenerate its
corpus (as train.py does), answer the first `questions` held-out questions greedily, and ask the
judge whether each answer states the reference answer's fact. Beside the students, two
controls per question whose verdict is known (the reference answer itself; another person's
value of the same attribute) keep the reliability figures informative when every student is
wrong. Then the consistency checks:

- repeat sampling: every pointwise item is asked `repeats` times at temperature > 0 (the sample
  index is part of the cache key and the seed, so each repeat is a real request);
- swapped order: pairs of different answers to one question (two students', and the reference
  against the wrong control) are asked "which is correct, A or B?" in both orders, at
  temperature 0 so that only the order changes between the two asks.

Reliability is the verdicts' agreement with exact match, and Cohen's kappa. The prompts are
fixed (`PROMPT_VERSION`), never tuned on the items they grade.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from events.canonical import canonical_json
from events.models.distillation import Sampling
from workers.jobs.distill import Answer, Call, ClientSettings, Endpoint, ResponseCache, complete_all

PROMPT_VERSION = "judge-v1"
"""Names the prompts below; change it with them, so old cached replies are not reused."""

POINTWISE_SYSTEM = ("You are a strict grader of short answers. You compare a student's answer with "
                    "the reference answer. Reply with exactly one word: yes or no.")
POINTWISE_USER = ("Question: {question}\nReference answer: {reference}\nStudent answer: {answer}\n\n"
                  "Does the student answer state the same fact as the reference answer? A different, "
                  "partial or missing fact is not the same. Reply yes or no.")
PAIRWISE_SYSTEM = ("You are a strict grader of short answers. You compare two answers with the "
                   "reference answer. Reply with exactly one letter: A or B.")
PAIRWISE_USER = ("Question: {question}\nReference answer: {reference}\n\nAnswer A: {a}\nAnswer B: {b}\n\n"
                 "Which answer states the same fact as the reference answer? Reply A or B.")
NO_ANSWER = "(no answer)"

Kind = Literal["student", "control_reference", "control_other"]
Choice = Literal["A", "B"]


@dataclass(frozen=True)
class JudgeSettings:
    """Every choice that changes a judgement's numbers (all of them name the judgement)."""

    questions: int = 48
    """Held-out questions per run at most (the first ones, so the subset is stable)."""
    repeats: int = 2
    """Pointwise samples per item, at `temperature`."""
    temperature: float = 0.7
    max_tokens: int = 12
    """Room for 'yes' or 'no' and a few words a chatty judge puts before it."""
    controls: bool = True

    def __post_init__(self) -> None:
        if self.questions < 1:
            raise ValueError(f"questions={self.questions}: judge at least 1 question per run")
        if self.repeats < 1:
            raise ValueError(f"repeats={self.repeats}: ask each item at least once")
        if self.repeats > 1 and self.temperature <= 0:
            raise ValueError("repeats > 1 at temperature 0 would ask the same thing twice: raise temperature")

    def identity(self) -> dict[str, Any]:
        return {**asdict(self), "prompt_version": PROMPT_VERSION}


# ----------------------------------------------------------------- verdicts, parsed

_YES = frozenset({"yes", "y", "correct", "true", "same"})
_NO = frozenset({"no", "n", "incorrect", "false", "wrong", "different"})


def parse_verdict(reply: str) -> bool | None:
    """yes -> True, no -> False, anything else -> None (counted as unparsable, never guessed).

    The first word decides ("Yes.", "no, because ..."); failing that, the reply must contain
    exactly one of the words yes and no ("The answer is: yes"). A reply with both ("yes or
    no", an echo of the instruction), or neither, has no verdict.
    """
    words = re.findall(r"[a-z]+", reply.lower())
    found = {w for w in words if w in ("yes", "no")}
    if not words or len(found) > 1:
        return None
    if words[0] in _YES:
        return True
    if words[0] in _NO:
        return False
    return (found == {"yes"}) if found else None


def parse_choice(reply: str) -> Choice | None:
    """'A' or 'B' from a pairwise reply ("B", "(A)", "Answer B is correct"); None if unclear."""
    text = reply.strip()
    first = re.match(r"^\W*(?:answer\s+|option\s+)?\(?([AB])\)?(?![A-Za-z])", text, re.IGNORECASE)
    named = {m.upper() for m in re.findall(r"\b(?:answer|option)\s+\(?([AB])\)?(?![A-Za-z])", text,
                                           re.IGNORECASE)}
    if first:
        named.add(first.group(1).upper())
    # Both letters named ("A or B"): an echo of the instruction, not a choice.
    return named.pop() if len(named) == 1 else None


# ---------------------------------------------------------------------- the figures


def agreement(pairs: Sequence[tuple[bool, bool]]) -> float | None:
    """Share of (judge, exact match) pairs that agree; None for no pairs."""
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def cohen_kappa(pairs: Sequence[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two binary raters: (p_o - p_e) / (1 - p_e).

    None when p_e = 1 (both raters constant and equal: chance explains everything, kappa is
    undefined). One constant rater against a varying one gives 0: no agreement beyond chance.
    """
    if not pairs:
        return None
    n = len(pairs)
    p_o = sum(a == b for a, b in pairs) / n
    a_yes = sum(a for a, _ in pairs) / n
    b_yes = sum(b for _, b in pairs) / n
    p_e = a_yes * b_yes + (1 - a_yes) * (1 - b_yes)
    if math.isclose(p_e, 1.0):
        return None
    return (p_o - p_e) / (1 - p_e)


def self_agreement(samples: Sequence[Sequence[bool | None]]) -> float | None:
    """Mean over items of the share of pairs of an item's samples that gave the same verdict.

    An unparsable reply (None) is a verdict of its own: a judge that says yes once and
    something unreadable the next time is not consistent. Items with one sample are left out.
    """
    shares = []
    for verdicts in samples:
        pairs = list(itertools.combinations(verdicts, 2))
        if pairs:
            shares.append(sum(a == b for a, b in pairs) / len(pairs))
    return statistics.fmean(shares) if shares else None


def position_consistency(asks: Sequence[tuple[Choice | None, Choice | None]]) -> float | None:
    """Share of pairs whose choice follows the answer, not its position.

    Each pair is (choice with X shown as A, choice with X shown as B): consistent when the
    judge picked the same answer both times, i.e. ("A", "B") or ("B", "A"). Pairs with an
    unparsable reply are left out (they are counted as unparsable).
    """
    parsable = [(ab, ba) for ab, ba in asks if ab is not None and ba is not None]
    if not parsable:
        return None
    return sum(ab != ba for ab, ba in parsable) / len(parsable)


def first_position_share(asks: Sequence[tuple[Choice | None, Choice | None]]) -> float | None:
    """Share of parsable pairwise verdicts choosing whatever was shown first (0.5: no bias)."""
    choices = [c for ask in asks for c in ask if c is not None]
    return sum(c == "A" for c in choices) / len(choices) if choices else None


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    stderr = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, stderr


# ------------------------------------------------------------------------ the items


@dataclass(frozen=True)
class Question:
    person: int
    attribute: str
    question: str
    reference: str
    other: str | None = None
    """Another person's value of the same attribute: the wrong control (None: there is none)."""


@dataclass(frozen=True)
class Item:
    """One answer to grade: a student's (run_id set) or a control, with its exact-match label."""

    kind: Kind
    question: Question
    answer: str
    run_id: str | None = None

    @property
    def exact(self) -> bool:
        return self.answer == self.question.reference


@dataclass(frozen=True)
class Pair:
    """Two different answers to one question, compared in both orders."""

    question: Question
    first: str
    second: str
    source: str  # "students" or "controls"


def question_text(prompt: str) -> str:
    """The question of a QA prompt ("Q: What ...?\\nA:" -> "What ...?"); the prompt otherwise."""
    text = prompt.strip()
    text = text.removeprefix("Q:").strip()
    return text.removesuffix("A:").strip()


def other_value(person: int, attribute: str, reference: str, pool: Sequence[tuple[str, str]]) -> str | None:
    """Another value of `attribute` among (attribute, value) `pool` (the corpus's answers),
    chosen by the question alone, so every run and every rerun gets the same control."""
    values = sorted({v for a, v in pool if a == attribute and v != reference})
    if not values:
        return None
    digest = int(hashlib.sha256(f"{person}/{attribute}".encode()).hexdigest()[:8], 16)
    return values[digest % len(values)]


def build_items(answers: dict[str, list[tuple[Question, str]]], controls: bool) -> list[Item]:
    """Every student answer, then (when asked) each distinct question's two controls."""
    items = [Item("student", q, a, run_id) for run_id, rows in sorted(answers.items()) for q, a in rows]
    if controls:
        questions = sorted({q for rows in answers.values() for q, _ in rows},
                           key=lambda q: (q.person, q.attribute, q.reference))
        for q in questions:
            items.append(Item("control_reference", q, q.reference))
            if q.other is not None:
                items.append(Item("control_other", q, q.other))
    return items


def build_pairs(answers: dict[str, list[tuple[Question, str]]], controls: bool, limit: int) -> list[Pair]:
    """Up to `limit` pairs of two students' different answers to one question, and (with
    controls) each question's reference against its wrong control."""
    by_question: dict[Question, dict[str, str]] = {}
    for run_id, rows in sorted(answers.items()):
        for q, a in rows:
            by_question.setdefault(q, {})[run_id] = a
    ordered = sorted(by_question, key=lambda q: (q.person, q.attribute, q.reference))
    pairs: list[Pair] = []
    for q in ordered:
        for (_, x), (_, y) in itertools.combinations(sorted(by_question[q].items()), 2):
            if x != y and len([p for p in pairs if p.source == "students"]) < limit:
                pairs.append(Pair(q, x, y, "students"))
    if controls:
        for q in ordered:
            if q.other is not None:
                pairs.append(Pair(q, q.reference, q.other, "controls"))
    return pairs


# ------------------------------------------------------------------------ the calls


def _call(model: str, messages: tuple[dict[str, str], ...], sampling: Sampling, sample: int) -> Call:
    identity = canonical_json({"model": model, "prompt_version": PROMPT_VERSION,
                               "messages": list(messages), "sampling": sampling.model_dump(mode="json"),
                               "sample": sample})
    key = hashlib.sha256(identity.encode()).hexdigest()
    return Call(key=key, messages=messages, sampling=sampling, seed=int(key[:8], 16))


def pointwise_call(model: str, item: Item, settings: JudgeSettings, sample: int) -> Call:
    user = POINTWISE_USER.format(question=item.question.question, reference=item.question.reference,
                                 answer=item.answer or NO_ANSWER)
    sampling = Sampling(temperature=settings.temperature, top_p=0.95, max_tokens=settings.max_tokens)
    return _call(model, ({"role": "system", "content": POINTWISE_SYSTEM},
                         {"role": "user", "content": user}), sampling, sample)


def pairwise_call(model: str, question: Question, a: str, b: str) -> Call:
    user = PAIRWISE_USER.format(question=question.question, reference=question.reference,
                                a=a or NO_ANSWER, b=b or NO_ANSWER)
    # Temperature 0: the two asks of a pair differ in the order alone, not in sampling noise.
    sampling = Sampling(temperature=0.0, top_p=1.0, max_tokens=8)
    return _call(model, ({"role": "system", "content": PAIRWISE_SYSTEM},
                         {"role": "user", "content": user}), sampling, 0)


# ------------------------------------------------------------------------ the job


@dataclass
class Graded:
    """What the judge said: per item its verdicts by sample, per pair its two choices."""

    items: list[Item]
    verdicts: list[list[bool | None]]
    replies: list[list[str]]
    pairs: list[Pair]
    choices: list[tuple[Choice | None, Choice | None]]
    answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0


def grade(items: list[Item], pairs: list[Pair], endpoint: Endpoint, settings: JudgeSettings,
          cache: ResponseCache, client: ClientSettings,
          progress: Callable[[int, int], None] | None = None) -> Graded:
    """Ask the judge about every item (`repeats` times) and every pair (both orders)."""
    point = [[pointwise_call(endpoint.model, item, settings, s) for s in range(settings.repeats)]
             for item in items]
    swapped = [(pairwise_call(endpoint.model, p.question, p.first, p.second),
                pairwise_call(endpoint.model, p.question, p.second, p.first)) for p in pairs]
    every = [*itertools.chain.from_iterable(point), *itertools.chain.from_iterable(swapped)]
    calls = {c.key: c for c in every}
    got: dict[str, Answer] = {}

    def done(call: Call, answer: Answer) -> None:
        got[call.key] = answer
        if progress is not None:
            progress(len(got), len(calls))

    started = time.perf_counter()
    asyncio.run(complete_all(calls.values(), endpoint, cache, client, done))
    seconds = time.perf_counter() - started
    return Graded(
        items=items,
        verdicts=[[parse_verdict(got[c.key].text) for c in row] for row in point],
        replies=[[got[c.key].text for c in row] for row in point],
        pairs=pairs,
        choices=[(parse_choice(got[ab.key].text), parse_choice(got[ba.key].text)) for ab, ba in swapped],
        answers=list(got.values()), seconds=seconds)


@dataclass(frozen=True)
class RunScore:
    run_id: str
    value: float
    n: int
    stderr: float
    exact_match: float


def run_scores(graded: Graded) -> list[RunScore]:
    """Per run: the mean over its answers of the share of samples the judge said yes to (an
    unparsable reply credits nothing), with its standard error, beside exact match."""
    per_run: dict[str, list[tuple[float, bool]]] = {}
    for item, verdicts in zip(graded.items, graded.verdicts, strict=True):
        if item.kind == "student" and item.run_id is not None:
            per_run.setdefault(item.run_id, []).append(
                (sum(v is True for v in verdicts) / len(verdicts), item.exact))
    scores = []
    for run_id, rows in sorted(per_run.items()):
        value, stderr = mean_and_stderr([v for v, _ in rows])
        scores.append(RunScore(run_id, value, len(rows), stderr, sum(e for _, e in rows) / len(rows)))
    return scores


def reliability(graded: Graded) -> dict[str, Any]:
    """The reliability figures of a grading, as JudgeReliabilityMeasured holds them."""
    labelled = [(v, item.exact, item.kind) for item, vs in zip(graded.items, graded.verdicts, strict=True)
                for v in vs if v is not None]
    pairs = [(v, e) for v, e, _ in labelled]
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in ("student", "control_reference", "control_other"):
        of_kind = [(v, e) for v, e, k in labelled if k == kind]
        if any(item.kind == kind for item in graded.items):
            by_kind[kind] = {"judgements": len(of_kind), "agreement": agreement(of_kind),
                             "judged_yes": sum(v for v, _ in of_kind) / len(of_kind) if of_kind else None}
    unparsable = (sum(v is None for vs in graded.verdicts for v in vs)
                  + sum(c is None for ask in graded.choices for c in ask))
    return {
        "items": len(graded.items),
        "judgements": sum(len(vs) for vs in graded.verdicts),
        "agreement_with_exact_match": agreement(pairs),
        "kappa": cohen_kappa(pairs),
        "by_kind": by_kind,
        "self_agreement": self_agreement(graded.verdicts),
        "position_pairs": len(graded.pairs),
        "position_consistency": position_consistency(graded.choices),
        "first_position_share": first_position_share(graded.choices),
        "unparsable": unparsable,
        "seconds": round(graded.seconds, 3),
        "requests": sum(a.attempts for a in graded.answers),
        "cached": sum(a.cached for a in graded.answers),
        "prompt_tokens": sum(a.prompt_tokens for a in graded.answers if not a.cached),
        "completion_tokens": sum(a.completion_tokens for a in graded.answers if not a.cached),
    }


def host_of(base_url: str) -> str:
    """host:port of a base URL: where the judge ran, without a path or credentials."""
    parts = urlsplit(base_url)
    host = parts.hostname or base_url
    return f"{host}:{parts.port}" if parts.port else host


# ------------------------------------------------------------ students' answers


def student_answers(artifact: Path, questions: int) -> list[tuple[Question, str]]:
    """A run's greedy answers to its first `questions` held-out questions.

    The corpus is regenerated from the run's saved config, as train.py built it, so the
    held-out people are the ones the run never saw QA pairs of."""
    import torch  # loaded only when a run is judged
    from transformers.utils import logging as hf_logging

    from workers.data.sources import load_corpus
    from workers.jobs.checkpoint import load_checkpoint
    from workers.jobs.evaluate import greedy_answers

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # the job's output is its result
    model, tokenizer, config = load_checkpoint(artifact)
    corpus = load_corpus(config["corpus"], n_people=config["n_people"], qa_fraction=config["qa_fraction"],
                         data_format=config["format"], repetitions=config["repetitions"],
                         seed=config["data_seed"], pairs_sha256=config.get("pairs_sha256"))
    pairs = corpus.qa_eval_heldout[:questions]
    if not pairs:
        return []
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)  # type: ignore[arg-type]
    model.eval()  # type: ignore[no-untyped-call]
    # The evaluator's budgets: the true answer's length plus two tokens, so exact match here
    # is qa_exact_match on the same questions.
    budgets = [len(t) + 2 for t in tokenizer.encode_batch([" " + p.answer for p in pairs])]
    with torch.no_grad():
        answers = greedy_answers(model, tokenizer, [p.prompt for p in pairs], budgets, device)
    pool = [(p.attribute, p.answer) for p in (*corpus.qa_eval_heldout, *corpus.qa_eval_seen)]
    return [(Question(p.person, p.attribute, question_text(p.prompt), p.answer,
                      other_value(p.person, p.attribute, p.answer, pool)), a)
            for p, a in zip(pairs, answers, strict=True)]
