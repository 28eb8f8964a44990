"""The evaluator battery: its metrics, an oracle that knows every fact, and a real trained student."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from tests.workers.jobs.conftest import TINY
from workers.data.biographies import generate
from workers.data.tokenizer import Tokenizer, train_tokenizer
from workers.jobs import battery
from workers.jobs.battery import candidates, state_of, token_f1
from workers.jobs.evaluate import evaluate
from workers.jobs.train import run_training

CHOICE = ["qa_choice_accuracy", "qa_paraphrase_choice_accuracy", "reversal_choice_accuracy",
          "two_hop_choice_accuracy"]
ALL = [*CHOICE, "qa_f1", "qa_paraphrase_exact_match", "distractor_exact_match", "probe_accuracy"]


def test_f1_uses_squads_normalisation() -> None:
    assert token_f1("The University of Texas", "university of texas") == 1.0
    assert token_f1("Austin, TX", "Austin TX!") == 1.0
    assert token_f1("Boise", "Austin, TX") == 0.0
    assert token_f1("Rice University", "Rice") == pytest.approx(2 / 3)


def test_candidates_hold_the_truth_are_distinct_and_fixed_by_their_key() -> None:
    pool = [f"v{i}" for i in range(40)] * 2
    chosen = candidates("v3", pool, "k")
    assert "v3" in chosen and len(chosen) == len(set(chosen)) == battery.MAX_CHOICES
    assert chosen == candidates("v3", pool, "k") and chosen != candidates("v3", pool, "other")
    assert state_of("Princeton, NJ") == "NJ"


class Oracle(nn.Module):
    """A metric fixture: a 'model' that continues every text it was given with its next token.

    It knows each held-out person's true facts (the texts prompt + " " + truth), so every
    choice benchmark must score it 1.0 and an honest metric cannot score it lower."""

    def __init__(self, tokenizer: Tokenizer, texts: list[str]) -> None:
        super().__init__()
        self.config = SimpleNamespace(n_positions=512)
        self.vocab = tokenizer.vocab_size
        self.next: dict[tuple[int, ...], int] = {}
        for ids in tokenizer.encode_batch(texts):
            seq = [tokenizer.eos_id, *ids]
            for t in range(1, len(seq)):
                self.next[tuple(seq[:t])] = seq[t]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **_: Any) -> SimpleNamespace:
        logits = torch.zeros((*input_ids.shape, self.vocab))
        for row in range(input_ids.shape[0]):
            ids = input_ids[row].tolist()
            for t in range(len(ids)):
                token = self.next.get(tuple(ids[: t + 1]))
                if token is not None:
                    logits[row, t, token] = 20.0
        return SimpleNamespace(logits=logits)


def test_an_oracle_of_the_true_facts_scores_every_choice_benchmark_one() -> None:
    corpus = generate(n_people=16, data_format="plain")
    tokenizer = train_tokenizer("bpe", corpus.train, 300)
    held = [p for p in corpus.people if not p.qa_in_training]
    texts = []
    for p in held:
        texts += [f"Q: {q.format(name=p.name)}\nA: {p.attributes[a]}"
                  for table in (battery.QUESTIONS, battery.PARAPHRASED_QUESTIONS) for a, q in table.items()]
        texts.append(f"Q: Who was born on {p.attributes['birth_date']}?\nA: {p.name}")
        texts.append(f"Q: In which state is the company that {p.name} works for based?\nA: "
                     f"{state_of(p.attributes['employer_city'])}")
    scores, unavailable = evaluate(Oracle(tokenizer, texts), tokenizer, corpus, torch.device("cpu"), CHOICE)
    assert not unavailable
    assert {name: s.value for name, s in scores.items()} == dict.fromkeys(CHOICE, 1.0)


def test_a_student_records_the_whole_battery_near_chance_when_it_knows_nothing(tmp_path: Path) -> None:
    result = run_training({**TINY, "train_tokens": 8 * 32 * 5}, 0, ALL, tmp_path / "out")
    assert set(result.scores) == set(ALL) and not result.unavailable
    for name in CHOICE:  # five steps teach nothing: chance is about 1/16
        assert result.scores[name].value <= 0.35 and result.scores[name].n > 0


def test_a_corpus_that_is_not_a_biographies_world_says_why(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(f"Paragraph {i} says the number {i * 7} twice: {i * 7}." for i in range(60)))
    result = run_training({**TINY, "corpus": f"file:{path}", "tokenizer": "char", "train_tokens": 8 * 32 * 4},
                          0, ["qa_choice_accuracy", "probe_accuracy"], tmp_path / "out")
    assert set(result.unavailable) == {"qa_choice_accuracy", "probe_accuracy"}
    assert "not a biographies world" in result.unavailable["probe_accuracy"]
