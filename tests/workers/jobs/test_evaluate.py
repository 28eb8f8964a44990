"""The evaluator: its registry covers the contract, and its scores mean what they say."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from events.models.training import TRAINING_BENCHMARKS
from workers.data.biographies import generate
from workers.data.corpus import Corpus
from workers.data.tokenizer import Tokenizer, train_tokenizer
from workers.jobs import battery  # noqa: F401  # the battery registers into the same registry
from workers.jobs.evaluate import BENCHMARKS, evaluate

CPU = torch.device("cpu")


def test_registry_covers_every_benchmark_the_contract_names() -> None:
    assert set(TRAINING_BENCHMARKS) <= set(BENCHMARKS)


class Oracle(nn.Module):
    """Stands in for a model whose greedy answers we choose: it knows the answers of
    `known` prompts and says `wrong` to the rest, then a newline and more text."""

    def __init__(self, tokenizer: Tokenizer, answers: dict[str, str]) -> None:
        super().__init__()
        self.tokenizer, self.answers = tokenizer, answers
        self.config = GPT2Config(n_positions=128)

    def generate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int, **_: Any
    ) -> torch.Tensor:
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            prompt = self.tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
            answer = self.answers.get(prompt, "wrong")
            new = self.tokenizer.encode(f" {answer}\nQ: more")[:max_new_tokens]
            new += [self.tokenizer.pad_id] * (max_new_tokens - len(new))
            rows.append(ids + new)
        return torch.tensor(rows)


@pytest.fixture(scope="module")
def world() -> tuple[Corpus, Tokenizer]:
    corpus = generate(n_people=10, qa_fraction=0.5)
    return corpus, train_tokenizer("bpe", corpus.train, 300)


def test_exact_match_counts_exact_greedy_answers(world: tuple[Corpus, Tokenizer]) -> None:
    corpus, tokenizer = world
    # Given an oracle that knows every seen answer and half of the held-out ones
    half = corpus.qa_eval_heldout[::2]
    answers = {p.prompt: p.answer for p in [*corpus.qa_eval_seen, *half]}
    # When it is evaluated
    oracle = Oracle(tokenizer, answers)
    scores, unavailable = evaluate(oracle, tokenizer, corpus, CPU, ["qa_exact_match", "qa_exact_match_seen"])
    # Then the seen questions all count, the held-out ones half, with a binomial stderr
    assert unavailable == {}
    assert scores["qa_exact_match_seen"].value == 1.0 and scores["qa_exact_match_seen"].stderr == 0.0
    n = len(corpus.qa_eval_heldout)
    assert scores["qa_exact_match"].n == n == 30
    assert scores["qa_exact_match"].value == pytest.approx(len(half) / n)
    assert scores["qa_exact_match"].stderr == pytest.approx(math.sqrt(0.5 * 0.5 / n))


def test_heldout_loss_is_the_models_own_cross_entropy(world: tuple[Corpus, Tokenizer]) -> None:
    corpus, tokenizer = world
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config)
    model.eval()
    document = corpus.heldout[0]
    one_doc = Corpus(name="one", train=[], heldout=[document])
    score = evaluate(model, tokenizer, one_doc, CPU, ["heldout_loss"])[0]["heldout_loss"]
    ids = [tokenizer.eos_id, *tokenizer.encode(document), tokenizer.eos_id]
    assert len(ids) > 32  # longer than the context: scored in windows, each token once
    losses = []
    with torch.no_grad():
        for start in range(0, len(ids) - 1, 31):
            window = torch.tensor([ids[start : start + 32]])
            logits = model(input_ids=window).logits[0, :-1]
            losses.append(nn.functional.cross_entropy(logits, window[0, 1:], reduction="none"))
    assert score.n == 1 and score.value == pytest.approx(float(torch.cat(losses).mean()), rel=1e-5)

    two_docs = Corpus(name="two", train=[], heldout=corpus.heldout[:2])
    both = evaluate(model, tokenizer, two_docs, CPU, ["heldout_loss"])[0]["heldout_loss"]
    assert both.n == 2 and both.stderr > 0


def test_unknown_benchmark_is_refused(world: tuple[Corpus, Tokenizer]) -> None:
    corpus, tokenizer = world
    with pytest.raises(ValueError, match="unknown benchmarks"):
        evaluate(nn.Linear(1, 1), tokenizer, corpus, CPU, ["mmlu"])


def test_answer_loss_is_the_cross_entropy_of_the_answer_tokens_alone(world: tuple[Corpus, Tokenizer]) -> None:
    corpus, tokenizer = world
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=128, n_embd=16, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config)
    model.eval()
    # Given one question, scored by hand: the loss of each answer token after the question
    pair = corpus.qa_eval_seen[0]
    prompt = tokenizer.encode(pair.prompt)
    full = [tokenizer.eos_id, *tokenizer.encode(f"{pair.prompt} {pair.answer}")]
    assert full[1 : 1 + len(prompt)] == prompt
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([full])).logits[0, :-1]
        losses = nn.functional.cross_entropy(logits, torch.tensor(full[1:]), reduction="none")
    expected = float(losses[len(prompt):].mean())  # targets from the answer's first token on
    one = Corpus(name="one", train=[], heldout=[], qa_eval_seen=[pair])
    # When the benchmark scores it
    score = evaluate(model, tokenizer, one, CPU, ["qa_answer_loss_seen"])[0]["qa_answer_loss_seen"]
    # Then it is that mean, over one question
    assert score.n == 1 and score.value == pytest.approx(expected, rel=1e-5)
