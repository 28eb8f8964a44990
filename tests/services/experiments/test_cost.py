"""Cost estimates: parameter counts match what transformers builds; FLOPs and time follow."""

from __future__ import annotations

from typing import Any

import pytest

from events.models import TrainingParams
from services.experiments.cost import (
    DEFAULT_FLOPS_PER_SECOND,
    CostEstimate,
    estimate,
    parameter_count,
    totals,
)

ARCHITECTURES: list[dict[str, Any]] = [
    {},
    {"n_layer": 3, "d_model": 96, "n_head": 4, "d_ff": 200, "context_length": 64, "vocab_size": 300},
    {"n_layer": 1, "d_model": 32, "n_head": 1, "context_length": 256, "vocab_size": 1000},
]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_gpt2_count_matches_transformers(arch: dict[str, Any]) -> None:
    transformers = pytest.importorskip("transformers")  # the workers' extra; services never import it
    p = TrainingParams(**arch)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=p.vocab_size, n_positions=p.context_length, n_embd=p.d_model, n_layer=p.n_layer,
        n_head=p.n_head, n_inner=p.d_ff, bos_token_id=0, eos_token_id=0,
    ))
    assert parameter_count(p) == sum(t.numel() for t in model.parameters())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_llama_count_matches_transformers(arch: dict[str, Any]) -> None:
    transformers = pytest.importorskip("transformers")
    p = TrainingParams(**arch, model_family="llama")
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=p.vocab_size, hidden_size=p.d_model, intermediate_size=p.d_ff or 4 * p.d_model,
        num_hidden_layers=p.n_layer, num_attention_heads=p.n_head, num_key_value_heads=p.n_head,
        max_position_embeddings=p.context_length, bos_token_id=0, eos_token_id=0,
    ))
    assert parameter_count(p) == sum(t.numel() for t in model.parameters())


def test_flops_are_six_n_t_and_time_follows_the_rate() -> None:
    params = TrainingParams(train_tokens=50_000).model_dump(exclude_none=True)
    cost = estimate("train", params)
    n = parameter_count(TrainingParams())
    assert cost.parameters == n and cost.tokens == 50_000
    assert cost.flops == 6 * n * 50_000
    assert cost.seconds == pytest.approx(cost.flops / DEFAULT_FLOPS_PER_SECOND)
    faster = estimate("train", params, flops_per_second=1e12)
    assert faster.seconds == pytest.approx(cost.flops / 1e12)
    assert cost.as_event()["flops_per_second"] == DEFAULT_FLOPS_PER_SECOND


def test_external_runs_have_no_estimate() -> None:
    cost = estimate("external", {"anything": 1})
    assert not cost.known and cost.as_event() == {}
    t = totals([cost, cost])
    assert t.runs == 2 and t.unknown == 2 and t.as_event() == {}


def test_totals_sum_the_known_runs() -> None:
    a = CostEstimate(parameters=10, tokens=100, flops=6000.0, seconds=3.0, flops_per_second=2000.0)
    b = CostEstimate(parameters=20, tokens=100, flops=12000.0, seconds=6.0, flops_per_second=2000.0)
    t = totals([a, b])
    assert (t.runs, t.tokens, t.flops, t.seconds, t.max_parameters) == (2, 200, 18000.0, 9.0, 20)
    assert t.as_event() == {"runs": 2.0, "tokens": 200.0, "flops": 18000.0, "seconds": 9.0,
                            "max_parameters": 20.0, "flops_per_second": 2000.0}
