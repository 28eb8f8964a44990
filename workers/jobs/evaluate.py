"""The trainer's evaluator: a registry of benchmarks, name -> fn(model, tokenizer, data, device).

Every name in events' TRAINING_BENCHMARKS is registered here. A benchmark that the corpus
cannot support (no questions in a local text file) raises BenchmarkUnavailable, and
`evaluate` reports it, with the reason, beside the scores it could compute. The benchmarks
recorded during training (RECORDED_IN_TRAINING: train_volatility, ...) are not functions of a
trained model: the trainer takes them from its influence recorder, and here they are
unavailable, saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from events.models.training import RECORDED_IN_TRAINING
from workers.data.corpus import Corpus, QAPair
from workers.data.tokenizer import Tokenizer

# Questions asked per QA benchmark at most (the first ones, so the subset is stable): enough
# for a stderr of about 1.5 points, and a few seconds of greedy decoding on a CPU.
MAX_QUESTIONS = 1200
# Held-out documents scored at most (the first ones): a local corpus's last 5% can be large.
MAX_HELDOUT_DOCUMENTS = 2000
BATCH_SIZE = 128


@dataclass(frozen=True)
class Score:
    """A benchmark's value over `n` items, with the standard error of that mean."""

    value: float
    n: int
    stderr: float


class BenchmarkUnavailable(Exception):
    """This benchmark cannot be computed on this corpus; the message says why."""


BenchmarkFn = Callable[[nn.Module, Tokenizer, Corpus, torch.device], Score]
BENCHMARKS: dict[str, BenchmarkFn] = {}


def benchmark(name: str) -> Callable[[BenchmarkFn], BenchmarkFn]:
    """Register `fn` under `name`; a later measurement job may add its own benchmarks."""

    def register(fn: BenchmarkFn) -> BenchmarkFn:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS[name] = fn
        return fn

    return register


def evaluate(
    model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device, names: Sequence[str]
) -> tuple[dict[str, Score], dict[str, str]]:
    """Scores of the named benchmarks, and {name: reason} for those this corpus cannot support."""
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; known: {sorted(BENCHMARKS)}")
    was_training = model.training
    model.eval()
    scores: dict[str, Score] = {}
    unavailable: dict[str, str] = {}
    try:
        for name in names:
            if name in data.unavailable:
                unavailable[name] = data.unavailable[name]
                continue
            try:
                with torch.no_grad():
                    scores[name] = BENCHMARKS[name](model, tokenizer, data, device)
            except BenchmarkUnavailable as exc:
                unavailable[name] = str(exc)
    finally:
        model.train(was_training)
    return scores, unavailable


def context_length(model: nn.Module) -> int:
    """The longest sequence the model's position encoding admits."""
    config = model.config  # a transformers (or peft-wrapped) model
    for key in ("n_positions", "max_position_embeddings"):
        if isinstance(getattr(config, key, None), int):
            return int(getattr(config, key))
    raise ValueError("cannot tell the model's context length from its config")


def greedy_answers(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompts: Sequence[str],
    max_new_tokens: Sequence[int],
    device: torch.device,
) -> list[str]:
    """Greedy continuations of `prompts` up to the first newline, batched with left padding.

    Each prompt starts a fresh document: it is led by the end-of-text token, as every
    document is in training. Prompts are batched in order of their token budgets, so a batch
    of short answers (dates) does not decode as long as one of long answers (universities).
    """
    newline = tokenizer.encode("\n")
    stop_ids = [tokenizer.eos_id, *newline[-1:]]
    encoded_all = tokenizer.encode_batch(prompts)
    order = sorted(range(len(prompts)), key=lambda i: max_new_tokens[i])
    answers = [""] * len(prompts)
    for start in range(0, len(order), BATCH_SIZE):
        rows = order[start : start + BATCH_SIZE]
        budget = max(max_new_tokens[i] for i in rows)
        # Keep each prompt's end (the question) when it is longer than the context allows.
        room = context_length(model) - budget
        encoded = [[tokenizer.eos_id, *encoded_all[i]][-room:] for i in rows]
        width = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), width), tokenizer.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, ids in enumerate(encoded):  # left padding: every prompt ends at column width-1
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
        output = model.generate(  # type: ignore[operator]
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            max_new_tokens=budget,
            do_sample=False,
            eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_id,
        )  # (batch, width + generated)
        for i, generated in zip(rows, output[:, width:].tolist(), strict=True):
            answers[i] = tokenizer.decode(generated).split("\n")[0].strip()
    return answers


def exact_match(
    model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[QAPair], device: torch.device
) -> Score:
    """Share of questions whose greedy answer equals the ground truth exactly."""
    pairs = pairs[:MAX_QUESTIONS]
    # Room for the true answer plus two tokens of slack (the newline; a split differing by one).
    budgets = [len(t) + 2 for t in tokenizer.encode_batch([" " + pair.answer for pair in pairs])]
    answers = greedy_answers(model, tokenizer, [pair.prompt for pair in pairs], budgets, device)
    hits = sum(answer == pair.answer for answer, pair in zip(answers, pairs, strict=True))
    p = hits / len(pairs)
    return Score(value=p, n=len(pairs), stderr=math.sqrt(p * (1 - p) / len(pairs)))


@benchmark("qa_exact_match")
def qa_exact_match(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
    if not data.qa_eval_heldout:
        raise BenchmarkUnavailable(f"{data.name} has no held-out question-answer pairs")
    return exact_match(model, tokenizer, data.qa_eval_heldout, device)


@benchmark("qa_exact_match_seen")
def qa_exact_match_seen(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
    if not data.qa_eval_seen:
        raise BenchmarkUnavailable(f"{data.name} has no question-answer pairs of the QA group")
    return exact_match(model, tokenizer, data.qa_eval_seen, device)


@benchmark("heldout_loss")
def heldout_loss(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
    """Mean over documents of each document's mean next-token cross-entropy (nats).

    Each document is framed by end-of-text tokens, as in training, and cut into windows of
    the context length that overlap by one token, so every token is predicted exactly once.
    """
    if not data.heldout:
        raise BenchmarkUnavailable(f"{data.name} has no held-out documents")
    documents = data.heldout[:MAX_HELDOUT_DOCUMENTS]
    ctx = context_length(model)
    windows: list[tuple[int, list[int]]] = []  # (document index, token ids)
    for doc, ids in enumerate(tokenizer.encode_batch(documents)):
        ids = [tokenizer.eos_id, *ids, tokenizer.eos_id]
        windows.extend((doc, ids[s : s + ctx]) for s in range(0, len(ids) - 1, ctx - 1))
    loss_sum = torch.zeros(len(documents), dtype=torch.float64)
    count = torch.zeros(len(documents), dtype=torch.float64)
    for start in range(0, len(windows), BATCH_SIZE):
        batch = windows[start : start + BATCH_SIZE]
        width = max(len(ids) for _, ids in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, (_, ids) in enumerate(batch):  # right padding; padded targets are masked out
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = True
        input_ids, mask = input_ids.to(device), mask.to(device)
        logits = model(input_ids=input_ids, attention_mask=mask.long()).logits  # (batch, width, vocab)
        losses = F.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:], reduction="none"
        )  # (batch, width - 1)
        target_mask = mask[:, 1:]
        per_window_sum = (losses * target_mask).sum(dim=1).double().cpu()
        per_window_count = target_mask.sum(dim=1).double().cpu()
        docs = torch.tensor([doc for doc, _ in batch])
        loss_sum.index_add_(0, docs, per_window_sum)
        count.index_add_(0, docs, per_window_count)
    per_doc = loss_sum / count.clamp(min=1)
    n = len(per_doc)
    stderr = float(per_doc.std(unbiased=True)) / math.sqrt(n) if n > 1 else 0.0
    return Score(value=float(per_doc.mean()), n=n, stderr=stderr)



def answer_loss(
    model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[QAPair], device: torch.device
) -> Score:
    """Mean over questions of the answer tokens' cross-entropy (nats) given the question.

    The smooth counterpart of exact match: a tiny model that never gets a whole answer right
    still shows, here, how much of the fact it has absorbed.
    """
    pairs = pairs[:MAX_QUESTIONS]
    per_question = answer_nll(model, tokenizer, [(p.prompt, p.answer) for p in pairs], device)
    n = len(per_question)
    mean = sum(per_question) / n
    var = sum((x - mean) ** 2 for x in per_question) / max(1, n - 1)
    return Score(value=mean, n=n, stderr=math.sqrt(var / n))


def answer_nll(
    model: nn.Module, tokenizer: Tokenizer, items: Sequence[tuple[str, str]], device: torch.device
) -> list[float]:
    """Per (prompt, answer): the mean cross-entropy (nats) of the answer's tokens after the prompt.

    The text is `prompt + " " + answer`, led by the end-of-text token, as in training; a token
    merged across the boundary counts as the answer's. Batched, right-padded.
    """
    ctx = context_length(model)
    rows: list[tuple[list[int], int]] = []  # (token ids, index where the answer starts)
    fulls = tokenizer.encode_batch([f"{prompt} {answer}" for prompt, answer in items])
    prompts = tokenizer.encode_batch([prompt for prompt, _ in items])
    for full, prompt in zip(fulls, prompts, strict=True):
        if full[: len(prompt)] != prompt:  # a merge across the boundary: split where they part
            cut = next(i for i, (a, b) in enumerate(zip(full, prompt, strict=False)) if a != b)
        else:
            cut = len(prompt)
        ids = [tokenizer.eos_id, *full][-ctx:]
        rows.append((ids, max(1, len(ids) - (len(full) - cut))))
    out: list[float] = []
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start : start + BATCH_SIZE]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_id, dtype=torch.long)
        target = torch.zeros((len(batch), width), dtype=torch.bool)  # answer positions
        for row, (ids, answer_start) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            target[row, answer_start : len(ids)] = True
        attention = (torch.arange(width)[None, :] < torch.tensor([len(i) for i, _ in batch])[:, None]).long()
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
        losses = F.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:].to(device), reduction="none"
        ).cpu()  # (batch, width - 1): loss of predicting token t+1
        mask = target[:, 1:]
        out.extend(((losses * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).tolist())
    return out


@benchmark("qa_answer_loss")
def qa_answer_loss(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
    if not data.qa_eval_heldout:
        raise BenchmarkUnavailable(f"{data.name} has no held-out question-answer pairs")
    return answer_loss(model, tokenizer, data.qa_eval_heldout, device)


@benchmark("qa_answer_loss_seen")
def qa_answer_loss_seen(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
    if not data.qa_eval_seen:
        raise BenchmarkUnavailable(f"{data.name} has no question-answer pairs of the QA group")
    return answer_loss(model, tokenizer, data.qa_eval_seen, device)


def _recorded_in_training(name: str) -> BenchmarkFn:
    def unavailable(model: nn.Module, tokenizer: Tokenizer, data: Corpus, device: torch.device) -> Score:
        raise BenchmarkUnavailable(
            f"{name} is recorded during training, not measured on a trained model: set influence_every "
            "(record every N optimizer steps) in the run's params"
        )

    return unavailable


for _name in RECORDED_IN_TRAINING:
    benchmark(_name)(_recorded_in_training(_name))
