"""The evaluator battery of the repetition experiment: what a student knows, asked many ways.

Every benchmark here asks about the held-out people (whose questions no training text holds),
so a score is knowledge extracted from biographies, not answers memorised. On a corpus of your
own question-answer pairs (workers/data/pairs.py) qa_f1 and qa_choice_accuracy ask the held-out
pairs, choice among the other answers of the file; the rest need people and are unavailable.
Registered into the trainer's registry (workers/jobs/evaluate.py) by importing this module (train.py does).

- qa_f1: token F1 (SQuAD's normalisation) of the greedy answer against the true value.
- qa_choice_accuracy: multiple choice by likelihood. For each question, the true value and up to
  MAX_CHOICES - 1 other values of the same attribute in the world (drawn per question, fixed);
  each candidate scored by the mean cross-entropy per token of " candidate" after the question
  (length-normalised, so long university names are not penalised for their length); correct
  when the true value scores best. It stays informative when generation gets nothing exactly
  right. Chance: 1 / the number of candidates (1/16 for most attributes; reported in the docs).
- qa_paraphrase_exact_match / qa_paraphrase_choice_accuracy: the same facts asked in words no
  training text uses (biographies.PARAPHRASED_QUESTIONS).
- reversal_choice_accuracy: attribute -> person. "Who was born on <birth date>?", answered by
  choosing among held-out people's full names (birth dates are nearly unique per person).
- two_hop_choice_accuracy: a fact composed from a stored one: "In which state is the company
  that <name> works for based?" — recall where the person works (employer_city), then read off
  its state; candidates are the world's states. (The world has no relation between people, so
  composition is recall-then-derive, as Physics of LM 3.2's knowledge manipulation.)
- distractor_exact_match: the question preceded by another person's biography (a held-out
  rendering): does the model still answer about the person asked, not the one in context?
- probe_accuracy: knowledge stored at the name (Physics of LM 3.1's probing): the last layer's
  hidden state at the last token of the full name, fed alone after end-of-text; a multinomial
  logistic regression per attribute fitted on the QA group's people, tested on the held-out
  people; the mean accuracy over attributes. The last layer, since its state is what predicts
  the next token; a value no QA-group person has cannot be predicted and counts as wrong.
"""

from __future__ import annotations

import math
import random
import re
import string
import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from workers.data.biographies import (
    ATTRIBUTES,
    PARAPHRASED_QUESTIONS,
    QUESTIONS,
    Biographies,
    Person,
    paraphrased_qa_pairs,
)
from workers.data.corpus import Corpus, QAPair
from workers.data.pairs import Pairs
from workers.data.tokenizer import Tokenizer
from workers.jobs.evaluate import (
    BenchmarkUnavailable,
    Score,
    answer_nll,
    benchmark,
    exact_match,
    greedy_answers,
)

MAX_CHOICES = 16
MAX_BATTERY_QUESTIONS = 240  # per benchmark: with 16 candidates, ~4k scored sequences
ARTICLES = re.compile(r"\b(a|an|the)\b")


def _world(data: Corpus) -> tuple[list[Person], list[Person]]:
    """(held-out people, QA-group people) of a biographies corpus; other corpora cannot be asked."""
    if not isinstance(data, Biographies) or not data.people:
        raise BenchmarkUnavailable(f"{data.name} is not a biographies world: the battery asks about "
                                   "its people")
    held = [p for p in data.people if not p.qa_in_training]
    if not held:
        raise BenchmarkUnavailable(f"{data.name} holds nobody out of the QA group")
    return held, [p for p in data.people if p.qa_in_training]


def _proportion(hits: int, n: int) -> Score:
    p = hits / n
    return Score(value=p, n=n, stderr=math.sqrt(p * (1 - p) / n))


# --- generation ---------------------------------------------------------------------------------

def normalise(text: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, truth: str) -> float:
    pred, gold = normalise(prediction), normalise(truth)
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _heldout_pairs(data: Corpus) -> list[QAPair]:
    if isinstance(data, Pairs):
        if not data.qa_eval_heldout:
            raise BenchmarkUnavailable(f"{data.name} holds no pair out of the QA group")
        return data.qa_eval_heldout[:MAX_BATTERY_QUESTIONS]
    held, _ = _world(data)
    ids = {p.index for p in held}
    return [q for q in data.qa_eval_heldout if q.person in ids][:MAX_BATTERY_QUESTIONS]


@benchmark("qa_f1")
def qa_f1(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
    pairs = _heldout_pairs(data)
    budgets = [len(t) + 2 for t in tokenizer.encode_batch([" " + q.answer for q in pairs])]
    answers = greedy_answers(model, tokenizer, [q.prompt for q in pairs], budgets, device)
    f1 = [token_f1(a, q.answer) for a, q in zip(answers, pairs, strict=True)]
    mean = sum(f1) / len(f1)
    sd = math.sqrt(sum((x - mean) ** 2 for x in f1) / max(1, len(f1) - 1))
    return Score(value=mean, n=len(f1), stderr=sd / math.sqrt(len(f1)))


@benchmark("qa_paraphrase_exact_match")
def qa_paraphrase_exact_match(model: nn.Module, tokenizer: Tokenizer, data: Corpus,
                              device: torch.device) -> Score:
    held, _ = _world(data)
    pairs = [q for p in held for q in paraphrased_qa_pairs(p)][:MAX_BATTERY_QUESTIONS]
    return exact_match(model, tokenizer, pairs, device)


@benchmark("distractor_exact_match")
def distractor_exact_match(model: nn.Module, tokenizer: Tokenizer, data: Corpus,
                           device: torch.device) -> Score:
    held, _ = _world(data)
    rendered = {p.index: doc for p, doc in zip(data.people, data.heldout, strict=False)}  # type: ignore[attr-defined]
    pairs = []
    for q in _heldout_pairs(data):
        others = [p.index for p in held if p.index != q.person and p.index in rendered]
        if not others:
            raise BenchmarkUnavailable("no other held-out person's biography to distract with")
        other = others[(q.person + len(q.attribute)) % len(others)]
        pairs.append(QAPair(person=q.person, attribute=q.attribute, answer=q.answer,
                            prompt=f"{rendered[other]}\n{q.prompt}"))
    return exact_match(model, tokenizer, pairs, device)


# --- choice by likelihood -----------------------------------------------------------------------

def candidates(truth: str, pool: Sequence[str], key: str) -> list[str]:
    """The true value and up to MAX_CHOICES - 1 distinct others from `pool`, in an order fixed by `key`."""
    others = sorted(set(pool) - {truth})
    rng = random.Random(f"battery:{key}")
    chosen = [truth, *rng.sample(others, min(MAX_CHOICES - 1, len(others)))]
    rng.shuffle(chosen)
    return chosen


def choice_accuracy(model: nn.Module, tokenizer: Tokenizer, questions: Sequence[tuple[str, str, list[str]]],
                    device: torch.device) -> Score:
    """Share of (prompt, truth, candidates) whose truth has the lowest mean answer-token loss."""
    if not questions:
        raise BenchmarkUnavailable("no questions to ask")
    items = [(prompt, c) for prompt, _, cands in questions for c in cands]
    nll = answer_nll(model, tokenizer, items, device)
    hits, at = 0, 0
    for _, truth, cands in questions:
        scores = nll[at: at + len(cands)]
        at += len(cands)
        hits += cands[int(np.argmin(scores))] == truth
    return _proportion(hits, len(questions))


def _attribute_choices(data: Corpus, questions: dict[str, str]) -> list[tuple[str, str, list[str]]]:
    held, _ = _world(data)
    pools = {a: [p.attributes[a] for p in data.people] for a in ATTRIBUTES}  # type: ignore[attr-defined]
    out = []
    for p in held:
        for a in ATTRIBUTES:
            prompt = f"Q: {questions[a].format(name=p.name)}\nA:"
            out.append((prompt, p.attributes[a], candidates(p.attributes[a], pools[a], f"{p.index}:{a}")))
    return out[:MAX_BATTERY_QUESTIONS]


def _pair_choices(data: Pairs) -> list[tuple[str, str, list[str]]]:
    """Each held-out pair's question, its answer, and up to MAX_CHOICES - 1 other answers of the file
    (a sample fixed by the pair's id)."""
    if len(set(data.answers)) < 2:
        raise BenchmarkUnavailable(f"{data.name} has one distinct answer: nothing to choose among")
    return [(q.prompt, q.answer, candidates(q.answer, data.answers, f"pair:{q.attribute}"))
            for q in _heldout_pairs(data)]


@benchmark("qa_choice_accuracy")
def qa_choice_accuracy(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
    if isinstance(data, Pairs):
        return choice_accuracy(model, tokenizer, _pair_choices(data), device)
    return choice_accuracy(model, tokenizer, _attribute_choices(data, QUESTIONS), device)


@benchmark("qa_paraphrase_choice_accuracy")
def qa_paraphrase_choice_accuracy(model: nn.Module, tokenizer: Tokenizer, data: Corpus,
                                  device: torch.device) -> Score:
    return choice_accuracy(model, tokenizer, _attribute_choices(data, PARAPHRASED_QUESTIONS), device)


@benchmark("reversal_choice_accuracy")
def reversal_choice_accuracy(model: nn.Module, tokenizer: Tokenizer, data: Corpus,
                             device: torch.device) -> Score:
    held, _ = _world(data)
    names = [p.name for p in held]
    questions = [(f"Q: Who was born on {p.attributes['birth_date']}?\nA:", p.name,
                  candidates(p.name, names, f"reversal:{p.index}")) for p in held]
    return choice_accuracy(model, tokenizer, questions[:MAX_BATTERY_QUESTIONS], device)


def state_of(city: str) -> str:
    """'Princeton, NJ' -> 'NJ' (every city of the world is written 'City, ST')."""
    return city.rsplit(",", 1)[-1].strip()


@benchmark("two_hop_choice_accuracy")
def two_hop_choice_accuracy(model: nn.Module, tokenizer: Tokenizer, data: Corpus,
                            device: torch.device) -> Score:
    held, _ = _world(data)
    states = [state_of(p.attributes["employer_city"]) for p in data.people]  # type: ignore[attr-defined]
    questions = []
    for p in held:
        truth = state_of(p.attributes["employer_city"])
        questions.append((f"Q: In which state is the company that {p.name} works for based?\nA:", truth,
                          candidates(truth, states, f"two-hop:{p.index}")))
    return choice_accuracy(model, tokenizer, questions[:MAX_BATTERY_QUESTIONS], device)


# --- probing ------------------------------------------------------------------------------------

def name_states(model: nn.Module, tokenizer: Tokenizer, people: Sequence[Person],
                device: torch.device) -> np.ndarray:
    """(people, d_model): the last layer's hidden state at each full name's last token."""
    rows = []
    encoded = tokenizer.encode_batch([p.name for p in people])
    for ids in encoded:
        input_ids = torch.tensor([[tokenizer.eos_id, *ids]], device=device)
        out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), output_hidden_states=True)
        rows.append(out.hidden_states[-1][0, -1].float().cpu().numpy())
    return np.stack(rows)


@benchmark("probe_accuracy")
def probe_accuracy(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
    held, group = _world(data)
    if len(group) < 2:
        raise BenchmarkUnavailable("the probe is fitted on the QA group's people: it needs two or more")
    train_x = name_states(model, tokenizer, group, device)
    test_x = name_states(model, tokenizer, held, device)
    mean, sd = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    train_x, test_x = (train_x - mean) / sd, (test_x - mean) / sd
    hits, n = 0, 0
    for a in ATTRIBUTES:
        labels = [p.attributes[a] for p in group]
        truth = [p.attributes[a] for p in held]
        if len(set(labels)) < 2:
            predicted = [labels[0]] * len(held)
        else:
            probe = LogisticRegression(max_iter=500, C=1.0)
            with warnings.catch_warnings():  # few people per value is the point, not a mistake
                warnings.simplefilter("ignore")
                predicted = list(probe.fit(train_x, labels).predict(test_x))
        hits += sum(p == t for p, t in zip(predicted, truth, strict=True))
        n += len(truth)
    return _proportion(hits, n)
