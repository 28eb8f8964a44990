"""Cost accounting: parameters counted once, bytes per precision, code bytes, FLOPs."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from workers.jobs.cost import code_bytes, measure_flops, parameter_counts


def test_tied_embeddings_count_once_and_embeddings_are_not_non_embedding() -> None:
    model = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=16, n_embd=8, n_layer=1, n_head=2))
    counts = parameter_counts(model)
    assert counts["params_total"] == sum(p.numel() for p in model.parameters())  # parameters() dedups
    assert counts["params_total"] - counts["params_non_embedding"] == 100 * 8 + 16 * 8  # wte + wpe
    model.transformer.h.requires_grad_(False)
    assert counts["params_trainable"] > parameter_counts(model)["params_trainable"]


def test_code_is_small_beside_the_weights_of_a_real_sized_model() -> None:
    config = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)
    with torch.device("meta"):  # shapes only: the 124M-parameter GPT-2, without allocating it
        model = GPT2LMHeadModel(config)
    assert 10_000 < code_bytes(model) < 1_000_000
    assert parameter_counts(model)["params_total"] * 2 > 200 * code_bytes(model)


def test_flops_of_a_matmul_are_counted() -> None:
    a, b = torch.ones(8, 16), torch.ones(16, 4)
    assert measure_flops(lambda: a @ b) == 2 * 8 * 16 * 4
