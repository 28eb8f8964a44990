"""Which way a benchmark improves, from its name."""

from __future__ import annotations

import pytest

from services.ranking.analysis.direction import direction_for, gain


@pytest.mark.parametrize("name", ["heldout_loss", "qa_answer_loss_seen", "ppl_dev",
                                  "train_volatility", "train_forgetting",
                                  "wikitext/word_perplexity", "val/wer", "lambada_openai/ppl",
                                  "wikitext/bits_per_byte", "char_error_rate"])
def test_losses_and_error_rates_go_down(name: str) -> None:
    assert direction_for(name) == "lower"


@pytest.mark.parametrize("name", ["bleu_dev", "hellaswag/acc_norm", "mmlu/acc,none", "answer_f1", "power",
                                  "qa_exact_match"])
def test_everything_else_goes_up(name: str) -> None:
    assert direction_for(name) == "higher"


def test_an_override_wins_and_gain_means_better() -> None:
    assert direction_for("objective", "lower") == "lower"
    assert gain(-0.5, "lower") == 0.5 and gain(-0.5, "higher") == -0.5
